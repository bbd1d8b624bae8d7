package activedirectory

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// The bulk searches (user pages, member lists, change reads) bypass
// go-ldap's decoder, which builds a packet tree per message and copies
// every value several times (about 24 KB of garbage per user entry, measured). muxConn sits
// between go-ldap and the connection: it reads the stream itself, passes
// every message to go-ldap unchanged except the responses to the reader's
// own searches (message IDs from leanFirstID up, far above go-ldap's
// counter), and hands those whole, in reused buffers, to the search that is
// waiting for them, which decodes them with decode.go: the member searches
// and base reads of a read, member lists and change reads. Binds, StartTLS,
// the rootDSE and DC probes, the group listing, Lookup and Find stay with
// go-ldap.
//
// The pump runs in go-ldap's reader goroutine (which is always inside
// Read); requests are written under a mutex shared with go-ldap's writes.

// leanFirstID is the first message ID of the reader's own searches.
const leanFirstID = 1 << 30

const (
	muxReadBuffer = 64 << 10 // bufio size of the pump
	chunkSize     = 64 << 10 // messages are batched into chunks of about this size
	chunkQueue    = 4        // chunks in flight between the pump and the search
)

// errMuxClosed is reported to a search whose connection went away.
var errMuxClosed = ldap.NewError(ldap.ErrorNetwork, errors.New("ldap connection closed"))

// muxConn routes the messages read from the connection.
type muxConn struct {
	net.Conn     // the size-capped connection below
	max      int // largest message accepted

	wmu sync.Mutex // serializes writes: go-ldap's and the reader's

	// Touched only by the goroutine in Read (go-ldap's reader).
	br    *bufio.Reader
	pass  int    // bytes of the current go-ldap message still to hand over
	chunk []byte // messages batched for the subscriber, not yet sent

	mu     sync.Mutex
	sub    *subscription // the search waiting for its responses, or nil
	nextID int64
	free   [][]byte // returned chunks, for reuse
	err    error    // why the pump stopped
	dead   chan struct{}
	closed bool
}

// subscription receives the responses to one request.
type subscription struct {
	id   int64
	ch   chan []byte   // chunks of whole messages
	done chan struct{} // closed when the search stops listening
}

func newMux(c net.Conn, maxBytes int) *muxConn {
	m := &muxConn{Conn: c, max: maxBytes, nextID: leanFirstID, dead: make(chan struct{})}
	m.br = bufio.NewReaderSize(readerOnly{c}, muxReadBuffer)
	return m
}

// readerOnly hides everything but Read (bufio must not see WriteTo etc.).
type readerOnly struct{ io.Reader }

func (m *muxConn) Write(p []byte) (int, error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	return m.Conn.Write(p)
}

func (m *muxConn) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		if m.err == nil {
			m.err = errMuxClosed
			close(m.dead)
		}
	}
	m.mu.Unlock()
	return m.Conn.Close()
}

// fail records why the pump stopped and wakes the waiting search.
func (m *muxConn) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err == nil {
		m.err = ldap.NewError(ldap.ErrorNetwork, err)
		close(m.dead)
	}
}

// Read hands go-ldap the bytes of the messages meant for it, routing the
// others on the way.
func (m *muxConn) Read(p []byte) (int, error) {
	for {
		if m.pass > 0 {
			n, err := m.br.Read(p[:min(len(p), m.pass)])
			m.pass -= n
			if err != nil {
				m.fail(err)
			}
			return n, err
		}
		if m.br.Buffered() == 0 {
			m.flush() // about to block on the network
		}
		total, id, err := m.peekHeader()
		if err != nil {
			m.flush()
			m.fail(err)
			return 0, err
		}
		if id < leanFirstID {
			m.pass = total
			continue
		}
		if err := m.route(id, total); err != nil {
			m.fail(err)
			return 0, err
		}
	}
}

// peekHeader returns the length and message ID of the next message without
// consuming it.
func (m *muxConn) peekHeader() (total int, id int64, err error) {
	h, err := m.br.Peek(2)
	if err != nil {
		return 0, 0, err
	}
	if h[0] != tagSequence {
		return 0, 0, fmt.Errorf("unexpected ber tag 0x%02x at message start: %w", h[0], errBER)
	}
	hl, n := 2, int(h[1])
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > maxLengthOctets {
			return 0, 0, fmt.Errorf("message length of %d octets: %w", k, errBER)
		}
		if h, err = m.br.Peek(2 + k); err != nil {
			return 0, 0, err
		}
		n = 0
		for _, x := range h[2 : 2+k] {
			n = n<<8 | int(x)
		}
		hl = 2 + k
	}
	if n < 0 || n > m.max {
		return 0, 0, fmt.Errorf("server sent a %d-byte message, limit %d: %w", n, m.max, ErrPacketTooLarge)
	}
	if n < 3 {
		return 0, 0, fmt.Errorf("message of %d bytes: %w", n, errBER)
	}
	if h, err = m.br.Peek(hl + 2); err != nil {
		return 0, 0, err
	}
	if h[hl] != tagInteger || h[hl+1] == 0 || h[hl+1] > 4 || int(h[hl+1])+2 > n {
		return 0, 0, fmt.Errorf("bad message id: %w", errBER)
	}
	if h, err = m.br.Peek(hl + 2 + int(h[hl+1])); err != nil {
		return 0, 0, err
	}
	id, err = berInt(h[hl+2:])
	if err != nil {
		return 0, 0, err
	}
	return hl + n, id, nil
}

// route moves one message of total bytes for a lean request into the
// subscriber's chunk, or discards it when nobody waits for it.
func (m *muxConn) route(id int64, total int) error {
	m.mu.Lock()
	sub := m.sub
	m.mu.Unlock()
	if sub == nil || sub.id != id {
		m.flush()
		_, err := m.br.Discard(total)
		return err
	}
	if len(m.chunk) > 0 && len(m.chunk)+total > chunkSize {
		m.flush()
	}
	if m.chunk == nil {
		m.chunk = m.getChunk()
	}
	// Grow with the bytes that actually arrive, never from the announced
	// length alone.
	for read := 0; read < total; {
		if len(m.chunk) == cap(m.chunk) {
			m.chunk = append(m.chunk, 0)[:len(m.chunk)]
		}
		room := m.chunk[len(m.chunk):min(cap(m.chunk), len(m.chunk)+total-read)]
		n, err := m.br.Read(room)
		m.chunk = m.chunk[:len(m.chunk)+n]
		read += n
		if err != nil {
			m.chunk = m.chunk[:0]
			return err
		}
	}
	if len(m.chunk) >= chunkSize {
		m.flush()
	}
	return nil
}

// flush sends the pending chunk to the subscriber.
func (m *muxConn) flush() {
	if len(m.chunk) == 0 {
		return
	}
	chunk := m.chunk
	m.chunk = nil
	m.mu.Lock()
	sub := m.sub
	m.mu.Unlock()
	if sub == nil {
		m.putChunk(chunk)
		return
	}
	select {
	case sub.ch <- chunk:
	case <-sub.done:
		m.putChunk(chunk)
	case <-m.dead:
		m.putChunk(chunk)
	}
}

func (m *muxConn) getChunk() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.free); n > 0 {
		c := m.free[n-1]
		m.free = m.free[:n-1]
		return c[:0]
	}
	return make([]byte, 0, chunkSize)
}

// putChunk keeps a chunk for reuse unless it grew for a large message.
func (m *muxConn) putChunk(c []byte) {
	if cap(c) > 2*chunkSize {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.free) < chunkQueue+2 {
		m.free = append(m.free, c[:0])
	}
}

// subscribe registers the next message ID; only one request is in flight.
func (m *muxConn) subscribe() (*subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	if m.sub != nil {
		return nil, errors.New("ldap: a search is already in flight on this connection")
	}
	m.nextID++
	m.sub = &subscription{id: m.nextID, ch: make(chan []byte, chunkQueue), done: make(chan struct{})}
	return m.sub, nil
}

func (m *muxConn) unsubscribe(s *subscription) {
	m.mu.Lock()
	if m.sub == s {
		m.sub = nil
	}
	m.mu.Unlock()
	close(s.done)
	for {
		select {
		case c := <-s.ch:
			m.putChunk(c)
		default:
			return
		}
	}
}

func (m *muxConn) failure() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// search sends req and streams its entries to fn as raw entries. It returns
// the decoded SearchResultDone; a result code other than success is
// returned as the error (an *ldap.Error).
func (m *muxConn) search(ctx context.Context, req *ldap.SearchRequest, fn func(rawEntry) error) (*searchDone, error) {
	sub, err := m.subscribe()
	if err != nil {
		return nil, err
	}
	defer m.unsubscribe(sub)
	pkt, err := encodeSearch(sub.id, req)
	if err != nil {
		return nil, err
	}
	if _, err := m.Write(pkt); err != nil {
		return nil, ldap.NewError(ldap.ErrorNetwork, fmt.Errorf("sending the search request: %w", err))
	}
	for {
		var chunk []byte
		select {
		case chunk = <-sub.ch:
		case <-m.dead:
			select { // deliver what arrived before the failure first
			case chunk = <-sub.ch:
			default:
				return nil, m.failure()
			}
		case <-ctx.Done():
			m.abandon(sub.id)
			return nil, ctx.Err()
		}
		done, err := m.consume(sub.id, chunk, fn)
		m.putChunk(chunk)
		if err != nil {
			if !errors.Is(err, errBER) {
				m.abandon(sub.id)
			}
			return nil, err
		}
		if done != nil {
			return done, done.err()
		}
	}
}

// consume decodes the messages of one chunk.
func (m *muxConn) consume(id int64, chunk []byte, fn func(rawEntry) error) (*searchDone, error) {
	for len(chunk) > 0 {
		_, _, rest, err := splitTLV(chunk)
		if err != nil {
			return nil, err
		}
		msg, err := parseMessage(chunk[:len(chunk)-len(rest)])
		chunk = rest
		if err != nil {
			return nil, err
		}
		if msg.id != id {
			continue
		}
		switch msg.op {
		case opSearchEntry:
			e, err := parseEntry(msg.body)
			if err != nil {
				return nil, err
			}
			if err := fn(e); err != nil {
				return nil, err
			}
		case opSearchRef: // continuation references are not followed
		case opSearchDone:
			return parseDone(msg)
		default:
			return nil, fmt.Errorf("unexpected protocol op 0x%02x in a search response: %w", msg.op, errBER)
		}
	}
	return nil, nil
}

// abandon asks the server to stop sending results for id (best effort;
// whatever still arrives is discarded).
func (m *muxConn) abandon(id int64) {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, m.idAfter(), "MessageID"))
	p.AppendChild(ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationAbandonRequest, id, "Abandon Request"))
	_, _ = m.Write(p.Bytes())
}

func (m *muxConn) idAfter() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	return m.nextID
}

// encodeSearch encodes a SearchRequest message (RFC 4511 4.5.1), as go-ldap
// does, with the given message ID.
func encodeSearch(id int64, req *ldap.SearchRequest) ([]byte, error) {
	f, err := ldap.CompileFilter(req.Filter)
	if err != nil {
		return nil, fmt.Errorf("compiling filter %s: %w", req.Filter, err)
	}
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	s := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "Search Request")
	s.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, req.BaseDN, "Base DN"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(req.Scope), "Scope"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(req.DerefAliases), "Deref Aliases"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, uint64(req.SizeLimit), "Size Limit"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, uint64(req.TimeLimit), "Time Limit"))
	s.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, req.TypesOnly, "Types Only"))
	s.AppendChild(f)
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	for _, a := range req.Attributes {
		attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a, "Attribute"))
	}
	s.AppendChild(attrs)
	p.AppendChild(s)
	if len(req.Controls) > 0 {
		ctls := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		for _, c := range req.Controls {
			ctls.AppendChild(c.Encode())
		}
		p.AppendChild(ctls)
	}
	return p.Bytes(), nil
}

// pagedSearchRaw is pagedSearch on the reader's own decoder: every entry
// reaches fn still encoded (see rawEntry), valid only during the call. An
// error on any page fails the whole search.
func (r *Reader) pagedSearchRaw(ctx context.Context, base string, scope int, f filter, attrs []string, st *ReadStats, fn func(rawEntry) error, extra ...ldap.Control) error {
	st.Searches++
	req := r.newRequest(base, scope, f, attrs)
	var cookie []byte
	for page := 1; ; page++ {
		paging := ldap.NewControlPaging(uint32(r.cfg.PageSize))
		paging.SetCookie(cookie)
		req.Controls = append([]ldap.Control{paging}, extra...)
		st.Pages++
		done, err := r.searchRaw(ctx, req, st, fn)
		if err != nil {
			return fmt.Errorf("searching %s for %s (page %d): %w", base, req.Filter, page, err)
		}
		if r.cfg.Progress != nil {
			r.cfg.Progress(*st)
		}
		if len(done.pagingCookie) == 0 {
			return nil
		}
		cookie = done.pagingCookie
		if r.afterPage != nil {
			r.afterPage(page)
		}
	}
}

// searchRaw sends one search request on the connection's mux and feeds its
// entries to fn, within the per-request timeout.
func (r *Reader) searchRaw(ctx context.Context, req *ldap.SearchRequest, st *ReadStats, fn func(rawEntry) error) (*searchDone, error) {
	if r.mux == nil {
		return nil, errMuxClosed
	}
	sctx, cancel := context.WithTimeoutCause(ctx, r.cfg.Timeout, errRequestTimeout)
	defer cancel()
	done, err := r.mux.search(sctx, req, func(e rawEntry) error {
		st.Entries++
		return fn(e)
	})
	switch {
	case err == nil:
		return done, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case sctx.Err() != nil:
		return nil, context.Cause(sctx)
	case errors.Is(err, errBER):
		// The stream can no longer be trusted: drop the connection.
		_ = r.mux.Close()
		return nil, ldap.NewError(ldap.ErrorNetwork, err)
	}
	return nil, err
}

// attrEntry is an entry decoded into plain attribute lists (values as raw
// bytes in strings), for the few small reads that need more than one
// attribute by name.
type attrEntry struct {
	DN         string
	Attributes []rawAttr
}

type rawAttr struct {
	Name   string
	Values []string
}

// get returns the values of an attribute, matched case-insensitively.
func (e *attrEntry) get(name string) []string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			return a.Values
		}
	}
	return nil
}

func toAttrEntry(e rawEntry) (*attrEntry, error) {
	out := &attrEntry{DN: string(e.dn)}
	err := e.each(func(name, vals []byte) error {
		n, err := countValues(vals)
		if err != nil {
			return err
		}
		a := rawAttr{Name: string(name), Values: make([]string, 0, n)}
		for len(vals) > 0 {
			var v []byte
			v, vals, _ = nextValue(vals)
			a.Values = append(a.Values, string(v))
		}
		out.Attributes = append(out.Attributes, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// baseReadAttrs reads one entry on the mux. A missing entry (noSuchObject)
// returns nil, nil.
func (r *Reader) baseReadAttrs(ctx context.Context, dn string, attrs []string, st *ReadStats) (*attrEntry, error) {
	var got *attrEntry
	err := r.baseReadRaw(ctx, dn, attrs, st, func(e rawEntry) error {
		var err error
		got, err = toAttrEntry(e)
		return err
	})
	return got, err
}

// baseReadRaw reads one entry on the mux and passes it to fn. A missing
// entry (noSuchObject) is not an error: fn is not called.
func (r *Reader) baseReadRaw(ctx context.Context, dn string, attrs []string, st *ReadStats, fn func(rawEntry) error) error {
	st.Searches++
	st.Pages++
	_, err := r.searchRaw(ctx, r.newRequest(dn, ldap.ScopeBaseObject, present("objectClass"), attrs), st, fn)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", dn, err)
	}
	return nil
}
