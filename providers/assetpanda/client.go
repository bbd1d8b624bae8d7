// Package assetpanda is the Asset Panda REST client of pandasync.
//
// It speaks the v3 API plus the Pro scoping (accounts, modules, per-module
// roles, invites) that the reference marks as assumed; every wire shape
// lives in wire.go and is listed in the README. The client looks
// everything up by name (accounts, modules, roles, collections, fields,
// options), never by hard-coded id or field key.
//
// Transport behaviour: a bearer token from POST /v3/session/token, fetched
// again once on a 401 and ahead of expires_in; a client-side rate limit
// (default 400 requests per 180 s); Retry-After honoured on 429; capped
// exponential backoff with jitter on 5xx and network errors for calls that
// are safe to repeat; a create whose outcome is unknown is never re-sent
// blindly but looked up by its key first. Every request has a deadline.
// Failures are *Error values, classified retryable (IsRetryable) or
// terminal (Error.Terminal: refused credentials or permissions), and no
// secret ever appears in an error, a log line or a dump.
//
// Reads prove they are complete: a paged search or users list whose reply
// carries no total, stops short of it, or does not add up to it fails with
// an error matching ErrIncomplete. Probe checks, read-only, that the
// service answers with the shapes the client decodes.
package assetpanda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is a client-side request limit: at most Requests per Per.
type Rate struct {
	Requests int
	Per      time.Duration
}

// The documented Asset Panda limit, the default Rate: 400 calls per 3 minutes.
const (
	DefaultRateRequests = 400
	DefaultRatePer      = 180 * time.Second
)

// msgNoResponse is the Message of an *Error when no HTTP response arrived.
const msgNoResponse = "no response"

// DefaultRequestTimeout is the default deadline of one HTTP request.
const DefaultRequestTimeout = 30 * time.Second

// Config configures a Client. ClientSecret and Password are secrets:
// String, GoString and LogValue redact them.
type Config struct {
	URL                                     string // base URL, e.g. https://api.assetpanda.com
	ClientID, ClientSecret, Email, Password string
	Rate                                    Rate // zero = default; Requests < 0 = unlimited
	HTTPClient                              *http.Client
	RequestTimeout                          time.Duration // per request; zero = 30 s
	Logger                                  *slog.Logger  // nil = discard
	// Progress, when set, is called after every page of records and every
	// list of users read, with the totals the client has read so far, for
	// a live progress line. It must be quick.
	Progress func(ReadProgress)
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "REDACTED"
}

// String describes the configuration without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("assetpanda.Config{URL:%q ClientID:%q ClientSecret:%s Email:%q Password:%s Rate:%d/%s RequestTimeout:%s}",
		c.URL, c.ClientID, redacted(c.ClientSecret), c.Email, redacted(c.Password), c.Rate.Requests, c.Rate.Per, c.RequestTimeout)
}

// GoString is String, so %#v does not leak secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redacted(c.ClientSecret)),
		slog.String("email", c.Email),
		slog.String("password", redacted(c.Password)),
	)
}

// Stats counts what a Client has sent, for tests and metrics.
type Stats struct {
	Requests    map[string]int // by route pattern, e.g. "POST /v3/groups/{id}/objects"
	RateLimited int            // 429 answers seen
	Retries     int            // requests sent again after a 429, 5xx or network error
	Reauths     int            // tokens fetched again after a 401
}

// Total is the number of requests counted in s.
func (s Stats) Total() int {
	n := 0
	for _, v := range s.Requests {
		n += v
	}
	return n
}

// retryPolicy is the backoff of repeatable calls; tests shrink it.
type retryPolicy struct {
	attempts    int           // tries of a repeatable call on 5xx / network errors
	attempts429 int           // tries of any call on 429
	base, max   time.Duration // backoff before the second try, and its cap
}

// Client talks to one Asset Panda tenant. It is safe for concurrent use and
// caches the lookups by name for its lifetime.
type Client struct {
	cfg     Config
	base    string
	hc      *http.Client
	log     *slog.Logger
	lim     *limiter
	now     func() time.Time
	retry   retryPolicy
	timeout time.Duration

	tokMu sync.Mutex // serialises token fetches

	mu       sync.Mutex // guards everything below
	token    string
	tokenExp time.Time // zero = no known expiry
	accounts []wireAccount
	roles    map[int][]wireRole
	groups   map[int][]wireGroup
	cols     map[string]*Collection
	stats    Stats
	read     ReadProgress
}

// New validates cfg and returns a Client. No request is sent until a
// method needs one. Plain http:// is accepted only for loopback hosts.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("asset panda url %q: want an absolute http(s) URL", cfg.URL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("asset panda url %q: refusing cleartext http to a non-loopback host, use https", cfg.URL)
		}
	default:
		return nil, fmt.Errorf("asset panda url %q: want an http(s) URL", cfg.URL)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"client id", cfg.ClientID}, {"client secret", cfg.ClientSecret}, {"email", cfg.Email}, {"password", cfg.Password},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("asset panda credentials: missing %s", strings.Join(missing, ", "))
	}
	if cfg.Rate.Requests == 0 {
		cfg.Rate = Rate{Requests: DefaultRateRequests, Per: DefaultRatePer}
	}
	if cfg.Rate.Requests > 0 && cfg.Rate.Per <= 0 {
		return nil, fmt.Errorf("asset panda rate limit: per must be positive")
	}
	c := &Client{
		cfg:     cfg,
		base:    strings.TrimRight(u.String(), "/"),
		hc:      cfg.HTTPClient,
		log:     cfg.Logger,
		now:     time.Now,
		timeout: cfg.RequestTimeout,
		retry:   retryPolicy{attempts: 4, attempts429: 8, base: 500 * time.Millisecond, max: 30 * time.Second},
		roles:   map[int][]wireRole{},
		groups:  map[int][]wireGroup{},
		cols:    map[string]*Collection{},
		stats:   Stats{Requests: map[string]int{}},
	}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 8
		c.hc = &http.Client{Transport: tr}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRequestTimeout
	}
	c.lim = newLimiter(cfg.Rate, func() time.Time { return c.now() })
	return c, nil
}

// String describes the client without secrets.
func (c *Client) String() string { return "assetpanda.Client{" + c.cfg.String() + "}" }

// GoString is String, so %#v does not leak the token or secrets.
func (c *Client) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without secrets.
func (c *Client) LogValue() slog.Value { return c.cfg.LogValue() }

// Stats returns a copy of the request counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Requests = make(map[string]int, len(c.stats.Requests))
	for k, v := range c.stats.Requests {
		s.Requests[k] = v
	}
	return s
}

// request describes one API call.
type request struct {
	op         string
	route      route
	args       []string
	query      url.Values
	body       any
	out        any
	key        string
	idempotent bool // safe to send again after a 5xx or network error
	noAuth     bool
	reply      *reply // if set, receives the status, headers and body of a 2xx reply
}

// reply is a raw 2xx reply, for calls that need more than the decoded body
// (a header) or check the body's shape themselves (Probe).
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do performs rq with token handling, rate limit and retries.
func (c *Client) do(ctx context.Context, rq request) error {
	var body []byte
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			return &Error{Op: rq.op, Key: rq.key, Message: "encode request", Err: err}
		}
		body = b
	}
	reauthed := false
	tries, tries429 := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return &Error{Op: rq.op, Key: rq.key, Err: err}
		}
		tok := ""
		if !rq.noAuth {
			t, err := c.ensureToken(ctx)
			if err != nil {
				return err
			}
			tok = t
		}
		if err := c.lim.wait(ctx); err != nil {
			return &Error{Op: rq.op, Key: rq.key, Err: err}
		}
		status, hdr, resp, err := c.send(ctx, rq, tok, body)
		if err != nil {
			if ctx.Err() != nil {
				return &Error{Op: rq.op, Key: rq.key, Err: ctx.Err()}
			}
			tries++
			e := &Error{Op: rq.op, Key: rq.key, Message: msgNoResponse, Retryable: true, Err: err}
			if rq.idempotent && tries < c.retry.attempts {
				if err := c.backoff(ctx, tries); err != nil {
					return e
				}
				continue
			}
			return e
		}
		if status >= 200 && status < 300 {
			if rq.reply != nil {
				*rq.reply = reply{status: status, header: hdr, body: resp}
			}
			if rq.out == nil || len(bytes.TrimSpace(resp)) == 0 {
				return nil
			}
			if err := json.Unmarshal(resp, rq.out); err != nil {
				return &Error{Op: rq.op, Key: rq.key, Status: status, Message: "unexpected response body", Err: err}
			}
			return nil
		}
		var we wireError
		_ = json.Unmarshal(resp, &we)
		apiErr := &Error{Op: rq.op, Key: rq.key, Status: status, Message: c.scrub(we.text(), tok), Code: we.Code}
		if apiErr.Message == "" {
			apiErr.Message = http.StatusText(status)
		}
		switch {
		case status == http.StatusUnauthorized && !rq.noAuth && reauthed:
			apiErr.Reason = "asset panda refused a freshly issued token (401 after re-authenticating): " +
				"check that the admin account (email) may use the API and that its password did not change during the run"
			return apiErr
		case status == http.StatusForbidden && !rq.noAuth:
			apiErr.Reason = fmt.Sprintf("asset panda refused the permission for %s (403): "+
				"grant the API client %s access in Asset Panda (Settings > API Configuration)", rq.route, rq.route.permission())
			return apiErr
		case status == http.StatusUnauthorized && !rq.noAuth && !reauthed:
			reauthed = true
			c.dropToken(tok)
			c.mu.Lock()
			c.stats.Reauths++
			c.mu.Unlock()
			c.log.Debug("asset panda token rejected, fetching a new one", "op", rq.op)
			continue
		case status == http.StatusTooManyRequests:
			tries429++
			apiErr.Retryable = true
			wait, ok := retryAfter(hdr.Get("Retry-After"), c.now())
			if !ok {
				wait = c.backoffDelay(tries429)
			}
			c.mu.Lock()
			c.stats.RateLimited++
			c.mu.Unlock()
			if tries429 >= c.retry.attempts429 {
				return apiErr
			}
			c.log.Debug("asset panda rate limited", "op", rq.op, "wait", wait)
			c.lim.pause(wait)
			c.countRetry()
			continue
		case status >= 500:
			apiErr.Retryable = true
			tries++
			if rq.idempotent && tries < c.retry.attempts {
				if err := c.backoff(ctx, tries); err != nil {
					return apiErr
				}
				continue
			}
			return apiErr
		default:
			return apiErr
		}
	}
}

func (c *Client) countRetry() {
	c.mu.Lock()
	c.stats.Retries++
	c.mu.Unlock()
}

// backoffDelay is the capped exponential delay before try n+1, with jitter
// in [d/2, d].
func (c *Client) backoffDelay(n int) time.Duration {
	d := c.retry.base
	for i := 1; i < n && d < c.retry.max; i++ {
		d *= 2
	}
	d = min(d, c.retry.max)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func (c *Client) backoff(ctx context.Context, n int) error {
	c.countRetry()
	return sleep(ctx, c.backoffDelay(n))
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// send makes one HTTP exchange under its own deadline.
func (c *Client) send(ctx context.Context, rq request, tok string, body []byte) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base + rq.route.path(rq.args...)
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.route.method(), u, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", authScheme+" "+tok)
	}
	c.mu.Lock()
	c.stats.Requests[string(rq.route)]++
	c.mu.Unlock()
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.log.Debug("asset panda request failed", "route", string(rq.route), "err", err)
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response: %w", err)
	}
	c.log.Debug("asset panda request", "route", string(rq.route), "status", resp.StatusCode, "duration", time.Since(start))
	return resp.StatusCode, resp.Header, b, nil
}

// ensureToken returns a valid token, fetching one when there is none or
// the current one is about to expire.
func (c *Client) ensureToken(ctx context.Context) (string, error) {
	if t := c.validToken(); t != "" {
		return t, nil
	}
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if t := c.validToken(); t != "" {
		return t, nil
	}
	var tr tokenResponse
	err := c.do(ctx, request{
		op:         "get asset panda token",
		route:      routeToken,
		body:       c.tokenRequest(),
		out:        &tr,
		idempotent: true,
		noAuth:     true,
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.TokenRequest = true
			switch e.Status {
			case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
				e.Reason = "asset panda refused the credentials (client id/secret or admin email/password)"
			case http.StatusNotFound:
				e.Reason = "asset panda has no " + string(routeToken) + " at this url: check that url is the Asset Panda API base (e.g. https://api.assetpanda.com)"
			}
		}
		return "", err
	}
	tok := tr.AccessToken
	if tok == "" {
		tok = tr.Token
	}
	if tok == "" {
		return "", &Error{Op: "get asset panda token", TokenRequest: true, Message: "the response has neither access_token nor token"}
	}
	var exp time.Time
	if secs, err := tr.ExpiresIn.Float64(); err == nil && secs > 0 {
		ttl := time.Duration(secs * float64(time.Second))
		exp = c.now().Add(ttl - min(ttl/10, time.Minute)) // refresh ahead of expiry
	}
	c.mu.Lock()
	c.token, c.tokenExp = tok, exp
	c.mu.Unlock()
	return tok, nil
}

// tokenRequest is the body of the token request, from the credentials.
func (c *Client) tokenRequest() tokenRequest {
	return tokenRequest{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, Email: c.cfg.Email, Password: c.cfg.Password}
}

func (c *Client) validToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" || (!c.tokenExp.IsZero() && !c.now().Before(c.tokenExp)) {
		return ""
	}
	return c.token
}

// scrub blanks the client's secrets (client secret, password, current
// token, and the tokens in also: the one a request was sent with) out of
// text that came from the service, in case it echoes them.
func (c *Client) scrub(text string, also ...string) string {
	c.mu.Lock()
	tok := c.token
	c.mu.Unlock()
	for _, s := range append([]string{c.cfg.ClientSecret, c.cfg.Password, tok}, also...) {
		if s != "" {
			text = strings.ReplaceAll(text, s, "REDACTED")
		}
	}
	return text
}

// dropToken forgets tok unless another caller already replaced it.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}
