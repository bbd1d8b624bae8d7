// Package emulator serves the Asset Panda REST API (v3, plus the assumed Pro
// scoping of accounts, modules and roles) from memory, for tests and demos.
//
// It enforces what the service enforces, as described in
// reference/assetpanda-api.md: bearer tokens and their expiry, unique fields
// (422 with code 2), field types and single-select options, the 200-object
// bulk limit, paging (default 50, cap 1000; the users list pages with
// offset/limit and counts itself in X-Total-Count), per-module roles, the
// create_users permission and a per-client sliding-window rate limit (429
// with Retry-After). Scripted faults (Fault) make it misbehave on purpose.
//
// Besides the API it serves GET /_emulator/state (the state in the seed
// format, without secrets) and GET /_emulator/stats (request and status
// counters), which need no authentication.
package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is a request limit: at most Requests in any window of Per.
// Requests < 0 switches the limit off.
type Rate struct {
	Requests int
	Per      time.Duration
}

// The documented Asset Panda limit: 400 calls per 3 minutes.
const (
	DefaultRateRequests = 400
	DefaultRatePer      = 180 * time.Second
)

// Options tune an Emulator. The zero value is usable.
type Options struct {
	// Rate overrides the seed's rate_limit; zero = seed or the default
	// (400 per 180 s);
	// Requests < 0 switches the limit off.
	Rate Rate
	// TokenTTL is the lifetime of issued tokens; zero = 3600 s.
	TokenTTL time.Duration
	// Now is the clock (token expiry, rate window, timestamps); nil = time.Now.
	Now func() time.Time
	// Logger receives one debug line per request; nil = discard.
	Logger *slog.Logger
}

// Stats counts the requests the emulator has served: by route pattern
// ("POST /v3/groups/{id}/objects") and by response status ("200", "429").
type Stats struct {
	Requests map[string]int `json:"requests"`
	Status   map[string]int `json:"status"`
}

// Total is the number of API requests counted in s.
func (s Stats) Total() int {
	n := 0
	for _, v := range s.Requests {
		n += v
	}
	return n
}

// FaultKind says what a scripted Fault does.
type FaultKind string

// The fault kinds.
const (
	// FaultStatus answers with Status (429 with RetryAfter, 500, 503, 401...)
	// without running the handler.
	FaultStatus FaultKind = "status"
	// FaultLatency waits Delay, then serves the request normally; a caller
	// that gives up first leaves nothing committed.
	FaultLatency FaultKind = "latency"
	// FaultSlowResponse serves the request (so writes are committed), then
	// waits Delay before answering: a timeout after commit.
	FaultSlowResponse FaultKind = "slow-response"
	// FaultCommitDrop runs the handler (so writes are committed), then
	// closes the connection without sending the response.
	FaultCommitDrop FaultKind = "commit-drop"
	// FaultShortPage makes a search or the users list return fewer objects
	// than it should (half the page, at least one less), with the total
	// unchanged: a list that stops short of its total.
	FaultShortPage FaultKind = "short-page"
	// FaultEmptyPage makes a search or the users list return no objects,
	// the total unchanged.
	FaultEmptyPage FaultKind = "empty-page"
	// FaultNoTotal leaves the total out: a search reply without "totals"
	// (and without "total"), a users list without X-Total-Count. The
	// objects are unchanged.
	FaultNoTotal FaultKind = "no-total"
	// FaultZeroTotal makes the reply say the total is 0 (totals.objects of
	// a search, X-Total-Count of the users list) while it still carries its
	// objects.
	FaultZeroTotal FaultKind = "zero-total"
	// FaultZeroTotalEmpty makes the reply say the total is 0 and carry no
	// objects: a read that stops short. A search keeps the true
	// totals.group_totals.
	FaultZeroTotalEmpty FaultKind = "zero-total-empty"
)

// Fault is a scripted misbehaviour. It matches requests by Route, a route
// pattern exactly as in Stats ("POST /v3/groups/{id}/objects"); empty
// matches every API route. The first Skip matches pass untouched; the fault
// then fires on the next Count matches (0 = once, < 0 = forever).
type Fault struct {
	Route      string
	Skip       int
	Count      int
	Kind       FaultKind
	Status     int           // for FaultStatus
	Message    string        // for FaultStatus; default derived from Status
	RetryAfter string        // Retry-After header for FaultStatus (seconds or HTTP date)
	Delay      time.Duration // for FaultLatency
}

type faultState struct {
	Fault
	seen, fired int
}

// Emulator is an in-memory Asset Panda. It implements http.Handler and is
// safe for concurrent use.
type Emulator struct {
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	ttl    time.Duration
	rate   Rate
	mux    *http.ServeMux
	creds  Credentials
	perms  Permissions
	window map[string][]time.Time // rate-limit log per client

	mu       sync.Mutex // guards the state below and window
	accounts []*account
	modules  map[int]*module
	roles    map[int]*role
	groups   map[int]*group
	users    []*user
	tokens   map[string]tokenInfo
	nextID   int
	nextKey  int
	nextObj  int

	fmu    sync.Mutex // guards faults and stats
	faults []*faultState
	stats  Stats
}

type tokenInfo struct {
	clientID string
	expires  time.Time
}

// New builds an emulator from a seed, validating it: unknown field types,
// list fields without options, records naming unknown fields or options,
// unique violations (unless the collection sets allow_duplicates), and
// users naming unknown roles are errors.
func New(seed *Seed, opts Options) (*Emulator, error) {
	if seed == nil {
		seed = &Seed{}
	}
	e := &Emulator{
		opts:    opts,
		now:     opts.Now,
		log:     opts.Logger,
		ttl:     opts.TokenTTL,
		creds:   seed.Credentials,
		perms:   Permissions{Read: true, Write: true, CreateUsers: true},
		window:  map[string][]time.Time{},
		modules: map[int]*module{},
		roles:   map[int]*role{},
		groups:  map[int]*group{},
		tokens:  map[string]tokenInfo{},
		nextID:  1000,
		stats:   Stats{Requests: map[string]int{}, Status: map[string]int{}},
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.ttl <= 0 {
		e.ttl = time.Hour
	}
	if seed.Permissions != nil {
		e.perms = *seed.Permissions
	}
	seedRate, err := parseSeedRate(seed.RateLimit)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	switch {
	case opts.Rate.Requests != 0:
		e.rate = opts.Rate
	case seedRate.Requests != 0:
		e.rate = seedRate
	default:
		e.rate = Rate{Requests: DefaultRateRequests, Per: DefaultRatePer}
	}
	if e.rate.Requests > 0 && e.rate.Per <= 0 {
		return nil, fmt.Errorf("rate: per must be positive")
	}
	if err := e.load(seed); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	e.routes()
	return e, nil
}

// Fault adds a scripted fault. Faults are checked in the order added; the
// first one that fires wins.
func (e *Emulator) Fault(f Fault) {
	e.fmu.Lock()
	defer e.fmu.Unlock()
	e.faults = append(e.faults, &faultState{Fault: f})
}

// ClearFaults removes every scripted fault.
func (e *Emulator) ClearFaults() {
	e.fmu.Lock()
	defer e.fmu.Unlock()
	e.faults = nil
}

// Stats returns a copy of the request counters.
func (e *Emulator) Stats() Stats {
	e.fmu.Lock()
	defer e.fmu.Unlock()
	s := Stats{Requests: make(map[string]int, len(e.stats.Requests)), Status: make(map[string]int, len(e.stats.Status))}
	for k, v := range e.stats.Requests {
		s.Requests[k] = v
	}
	for k, v := range e.stats.Status {
		s.Status[k] = v
	}
	return s
}

// ResetStats zeroes the request counters.
func (e *Emulator) ResetStats() {
	e.fmu.Lock()
	defer e.fmu.Unlock()
	e.stats = Stats{Requests: map[string]int{}, Status: map[string]int{}}
}

// SetPermissions changes what the API client may do.
func (e *Emulator) SetPermissions(p Permissions) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.perms = p
}

// RevokeTokens invalidates every issued token (as a password change does).
func (e *Emulator) RevokeTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens = map[string]tokenInfo{}
}

// ServeHTTP serves the API and the /_emulator endpoints.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusWriter{ResponseWriter: w}
	e.mux.ServeHTTP(rec, r)
	if strings.HasPrefix(r.URL.Path, "/_emulator/") || rec.hijacked {
		return
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	e.fmu.Lock()
	e.stats.Status[strconv.Itoa(rec.status)]++
	e.fmu.Unlock()
	e.log.Debug("emulator request", "method", r.Method, "path", r.URL.Path, "status", rec.status)
}

type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// bufferWriter captures a response that is never sent (commit-drop).
type bufferWriter struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.h }
func (b *bufferWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }

type ctxKey int

const ctxPageFault ctxKey = 0

// handlerFunc is an API handler: it runs with the state locked and returns
// the status and the JSON body.
type handlerFunc func(r *http.Request, client string) (int, any)

type routeOpts struct {
	noAuth bool
	perm   func(Permissions) bool
	denied string // 403 message when perm says no
}

func (e *Emulator) handle(pattern string, h handlerFunc, ro routeOpts) {
	e.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		e.serveAPI(w, r, pattern, h, ro)
	})
}

func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request, pattern string, h handlerFunc, ro routeOpts) {
	e.fmu.Lock()
	e.stats.Requests[pattern]++
	f := e.matchFault(pattern)
	e.fmu.Unlock()

	var pageFault FaultKind
	drop := false
	var slow time.Duration
	if f != nil {
		switch f.Kind {
		case FaultStatus:
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			msg := f.Message
			if msg == "" {
				msg = http.StatusText(f.Status)
				if f.Status == http.StatusUnauthorized {
					msg = "Unauthorized"
				}
			}
			writeJSON(w, f.Status, apiError{Message: msg})
			return
		case FaultLatency:
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		case FaultSlowResponse:
			slow = f.Delay
		case FaultCommitDrop:
			drop = true
		case FaultShortPage, FaultEmptyPage, FaultNoTotal, FaultZeroTotal, FaultZeroTotalEmpty:
			pageFault = f.Kind
		}
	}

	e.mu.Lock()
	client, authed := e.identify(r)
	if retry, limited := e.limited(client); limited {
		e.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		writeJSON(w, http.StatusTooManyRequests, apiError{Message: "Rate limit exceeded"})
		return
	}
	if !ro.noAuth && !authed {
		e.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, apiError{Message: "Unauthorized"})
		return
	}
	if ro.perm != nil && !ro.perm(e.perms) {
		e.mu.Unlock()
		writeJSON(w, http.StatusForbidden, apiError{Message: ro.denied})
		return
	}
	ctx := context.WithValue(r.Context(), ctxPageFault, pageFault)
	status, body := h(r.WithContext(ctx), client)
	// The reply's Date comes from the emulator's clock, which also stamps
	// updated_at: clients take it as the server's time.
	w.Header().Set("Date", e.now().UTC().Format(http.TimeFormat))
	e.mu.Unlock()

	if slow > 0 {
		t := time.NewTimer(slow)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	if drop {
		bw := &bufferWriter{h: http.Header{}}
		writeJSON(bw, status, body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			// Not hijackable (HTTP/2): the best we can do is abort the handler.
			panic(http.ErrAbortHandler)
		}
		if sw, ok := w.(*statusWriter); ok {
			sw.hijacked = true
		}
		_ = conn.Close()
		return
	}
	writeJSON(w, status, body)
}

// matchFault returns the fault that fires for this request, if any. fmu held.
func (e *Emulator) matchFault(pattern string) *Fault {
	for _, fs := range e.faults {
		if fs.Route != "" && fs.Route != pattern {
			continue
		}
		fs.seen++
		if fs.seen <= fs.Skip {
			continue
		}
		limit := fs.Count
		if limit == 0 {
			limit = 1
		}
		if limit > 0 && fs.fired >= limit {
			continue
		}
		fs.fired++
		f := fs.Fault
		return &f
	}
	return nil
}

// identify returns the rate-limit key of the caller and whether its bearer
// token is valid. mu held.
func (e *Emulator) identify(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
		if ti, ok := e.tokens[tok]; ok {
			if e.now().Before(ti.expires) {
				return "client:" + ti.clientID, true
			}
			delete(e.tokens, tok)
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host, false
}

// limited records a request of client in the sliding window and reports
// whether it is over the limit, with the seconds until a slot frees. mu held.
func (e *Emulator) limited(client string) (int, bool) {
	if e.rate.Requests <= 0 {
		return 0, false
	}
	now := e.now()
	cut := now.Add(-e.rate.Per)
	log := e.window[client]
	i := 0
	for i < len(log) && !log[i].After(cut) {
		i++
	}
	log = log[i:]
	if len(log) >= e.rate.Requests {
		e.window[client] = log
		wait := log[0].Add(e.rate.Per).Sub(now)
		secs := int(math.Ceil(wait.Seconds()))
		if secs < 1 {
			secs = 1
		}
		return secs, true
	}
	e.window[client] = append(log, now)
	return 0, false
}

// withHeader is a handler's reply that sets headers next to its JSON body.
type withHeader struct {
	header http.Header
	body   any
}

// apiError is the error body: every error has a message; validation errors
// add the v2-style errors list and a code (2 = not unique).
type apiError struct {
	Message string              `json:"message"`
	Errors  []map[string]string `json:"errors,omitempty"`
	Code    int                 `json:"code,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	if wh, ok := body.(withHeader); ok {
		for k, v := range wh.header {
			w.Header()[k] = v
		}
		body = wh.body
	}
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ListenAndServe serves e on addr (e.g. "127.0.0.1:8080") until ctx is done,
// then shuts down gracefully. onReady, if not nil, gets the base URL once the
// listener is open.
func ListenAndServe(ctx context.Context, addr string, e *Emulator, onReady func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if onReady != nil {
		onReady("http://" + ln.Addr().String())
	}
	select {
	case err := <-done:
		return fmt.Errorf("serve emulator: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down emulator: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve emulator: %w", err)
	}
	return nil
}

// decodeBody reads a JSON request body into v (numbers as json.Number).
func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}
