package assetpanda

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

const (
	testClientID = "test-client"
	testSecret   = "canary-secret-5e1b"
	testEmail    = "admin@example.com"
	testPassword = "canary-password-77fa"
	sidPrefix    = "S-1-5-21-1004336348-1177238915-682003330-"
)

// baseSeed is a small tenant: Acme with IT Assets (People) and Facilities.
func baseSeed(people int) *emulator.Seed {
	s := &emulator.Seed{
		Credentials: emulator.Credentials{ClientID: testClientID, ClientSecret: testSecret, Email: testEmail, Password: testPassword},
		Accounts: []emulator.SeedAccount{{
			Name: "Acme",
			Modules: []emulator.SeedModule{
				{
					Name:  "IT Assets",
					Roles: []string{"Module Admin", "Collaborator"},
					Collections: []emulator.SeedCollection{{
						Name: "People",
						Fields: []emulator.SeedField{
							{Name: "AD SID", Type: "text", Unique: true},
							{Name: "First Name", Type: "text"},
							{Name: "Email", Type: "text"},
							{Name: "Integration Status AD", Type: "list", Options: []string{"Active", "Inactive", "None"}},
						},
					}},
				},
				{Name: "Facilities", Roles: []string{"Collaborator"}, Collections: []emulator.SeedCollection{{
					Name: "Rooms", Fields: []emulator.SeedField{{Name: "Room", Type: "text", Unique: true}},
				}}},
			},
		}},
		Users: []emulator.SeedUser{
			{Email: testEmail, FirstName: "Admin", Active: true},
			{Email: "Grace@Corp.Example.com", FirstName: "Grace", LastName: "Hopper", Active: true,
				Roles: []emulator.SeedUserRole{{Account: "Acme", Module: "IT Assets", Role: "Collaborator"}}},
		},
	}
	recs := make([]emulator.SeedRecord, people)
	for i := range recs {
		recs[i] = emulator.SeedRecord{Fields: map[string]string{
			"AD SID": sid(i), "First Name": fmt.Sprintf("Person %d", i), "Email": fmt.Sprintf("p%d@corp.example.com", i),
			"Integration Status AD": "Active",
		}}
	}
	s.Accounts[0].Modules[0].Collections[0].Records = recs
	return s
}

func sid(i int) string { return fmt.Sprintf("%s%d", sidPrefix, 10000+i) }

// env is an emulator behind a real HTTP server and a client pointed at it.
type env struct {
	emu *emulator.Emulator
	srv *httptest.Server
	c   *Client
	log *syncBuffer
}

type envOpts struct {
	emu    emulator.Options
	cfg    func(*Config)
	server func(http.Handler) http.Handler // wraps the emulator
}

func newEnv(t *testing.T, seed *emulator.Seed, o envOpts) *env {
	t.Helper()
	if o.emu.Rate.Requests == 0 {
		o.emu.Rate.Requests = -1 // most tests do not exercise the server limit
	}
	emu, err := emulator.New(seed, o.emu)
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	var h http.Handler = emu
	if o.server != nil {
		h = o.server(emu)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	cfg := Config{
		URL: srv.URL, ClientID: testClientID, ClientSecret: testSecret, Email: testEmail, Password: testPassword,
		Rate:           Rate{Requests: -1},
		HTTPClient:     &http.Client{Transport: deadlineChecker{t: t, base: http.DefaultTransport}},
		RequestTimeout: 5 * time.Second,
		Logger:         slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.retry.base, c.retry.max = time.Millisecond, 5*time.Millisecond
	return &env{emu: emu, srv: srv, c: c, log: logs}
}

// deadlineChecker fails the test if a request has no context deadline.
type deadlineChecker struct {
	t    *testing.T
	base http.RoundTripper
}

func (d deadlineChecker) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Context().Deadline(); !ok {
		d.t.Errorf("%s %s sent without a context deadline", r.Method, r.URL.Path)
	}
	return d.base.RoundTrip(r)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e *env) people(t *testing.T) *Collection {
	t.Helper()
	col, err := e.c.Collection(ctx(t), "Acme", "IT Assets", "People")
	if err != nil {
		t.Fatalf("Collection: %v", err)
	}
	return col
}

// records returns the People records of the emulator state by AD SID.
func (e *env) stateRecords(t *testing.T) []emulator.SeedRecord {
	t.Helper()
	return e.emu.State().Accounts[0].Modules[0].Collections[0].Records
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// manualClock is a settable clock shared by emulator and client.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (m *manualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

func (m *manualClock) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = m.t.Add(d)
}

func newBenchServer(b *testing.B, h http.Handler) string {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}

// rewriter is a server wrapper that edits JSON replies of the emulator on
// their way out: for requests whose path ends with suffix (and method
// matches), edit gets the call number (from 1), the request and the
// decoded body, and returns the body to send (nil = unchanged). before,
// if set, may change the request first.
type rewriter struct {
	method, suffix string
	before         func(r *http.Request)
	edit           func(call int, r *http.Request, h http.Header, body any) any
}

func rewrite(rules ...rewriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		var mu sync.Mutex
		calls := make([]int, len(rules))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for i, rl := range rules {
				if r.Method != rl.method || !strings.HasSuffix(r.URL.Path, rl.suffix) {
					continue
				}
				mu.Lock()
				calls[i]++
				n := calls[i]
				mu.Unlock()
				if rl.before != nil {
					rl.before(r)
				}
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				var body any
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK || rl.edit == nil {
					copyReply(w, rec.Code, rec.Header(), rec.Body.Bytes())
					return
				}
				h := rec.Header().Clone()
				if nb := rl.edit(n, r, h, body); nb != nil {
					body = nb
				}
				b, _ := json.Marshal(body)
				copyReply(w, rec.Code, h, b)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func copyReply(w http.ResponseWriter, code int, h http.Header, body []byte) {
	for k, v := range h {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
