package assetpanda

// ReadProgress counts what a client has read: pages of records and lists
// of users (Pages), and the records and users in them (Objects).
type ReadProgress struct {
	Pages   int
	Objects int
}

// progress counts a page of n objects and reports the totals to
// Config.Progress.
func (c *Client) progress(n int) {
	if c.cfg.Progress == nil {
		return
	}
	c.mu.Lock()
	c.read.Pages++
	c.read.Objects += n
	p := c.read
	c.mu.Unlock()
	c.cfg.Progress(p)
}
