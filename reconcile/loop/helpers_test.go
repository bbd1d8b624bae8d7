package loop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// waitLimit bounds every wait for the loop; it is a deadline for a hung
// test, never an assertion about speed.
const waitLimit = 10 * time.Second

// t0 is the fake clock's start: a Wednesday, 10:20 local time.
var t0 = time.Date(2025, 1, 15, 10, 20, 0, 0, time.Local)

// fakeClock is a Clock the test moves by firing the timers the loop asks
// for. Every requested timer is sent on timers.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers chan *fakeTimer
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, timers: make(chan *fakeTimer, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) loop.Timer {
	c.mu.Lock()
	t := &fakeTimer{d: d, at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.mu.Unlock()
	c.timers <- t
	return t
}

// next returns the next timer the loop asks for.
func (c *fakeClock) next(t *testing.T) *fakeTimer {
	t.Helper()
	select {
	case tm := <-c.timers:
		return tm
	case <-time.After(waitLimit):
		t.Fatal("the loop asked for no timer")
		return nil
	}
}

// fire moves the clock to the timer's deadline and fires it.
func (c *fakeClock) fire(tm *fakeTimer) {
	c.mu.Lock()
	if tm.at.After(c.now) {
		c.now = tm.at
	}
	now := c.now
	c.mu.Unlock()
	select {
	case tm.c <- now:
	default:
	}
}

type fakeTimer struct {
	d  time.Duration
	at time.Time
	c  chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { return true }

// events collects the loop's events.
type events chan loop.Event

func (e events) notify(ev loop.Event) { e <- ev }

// wait returns the next event of the kind.
func (e events) wait(t *testing.T, kind loop.EventKind) loop.Event {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case ev := <-e:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event from the loop", kind)
		}
	}
}

// pass returns the report of the next finished pass.
func (e events) pass(t *testing.T) *loop.PassReport {
	t.Helper()
	return e.wait(t, loop.EventPassDone).Pass
}

// startLoop runs the loop until the test ends; the test's cleanup cancels
// it and checks that Run returned nil.
func startLoop(t *testing.T, cfg loop.Config) *loop.Loop {
	t.Helper()
	l, err := loop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Run did not return after cancel")
		}
	})
	return l
}

// world is an embedded directory and an Asset Panda emulator seeded with
// the demo data, and a spec directory holding the demo spec.
type world struct {
	dir     *embedded.Server
	ldapURL string
	emu     *emulator.Emulator
	apURL   string
	specDir string
}

const (
	demoBase     = "DC=corp,DC=example,DC=com"
	demoBindDN   = "CN=svc-pandasync,OU=Service Accounts," + demoBase
	demoPassword = "demo-password"
)

func newWorld(t testing.TB) *world {
	return newWorldWith(t, worldOptions{})
}

// worldOptions vary the world.
type worldOptions struct {
	emulator emulator.Options
	// staff adds that many people to All Staff, so that the People
	// collection gets more than one write batch.
	staff int
}

// staffDN is the DN of the i-th extra member of All Staff.
func staffDN(i int) string { return fmt.Sprintf("CN=Staff %04d,OU=People,%s", i, demoBase) }

func newWorldWith(t testing.TB, opts worldOptions) *world {
	t.Helper()
	f, err := os.Open(filepath.FromSlash("../../examples/demo/directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := embedded.ParseLDIF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i := range opts.staff {
		name := fmt.Sprintf("staff%04d", i)
		entries = append(entries, ldap.NewEntry(staffDN(i), map[string][]string{
			"objectClass": {"top", "person", "organizationalPerson", "user"}, "cn": {fmt.Sprintf("Staff %04d", i)},
			"givenName": {"Staff"}, "sn": {fmt.Sprintf("%04d", i)}, "sAMAccountName": {name},
			"userPrincipalName": {name + "@corp.example.com"}, "mail": {name + "@corp.example.com"},
			"userAccountControl": {"512"},
		}))
	}
	if opts.staff > 0 {
		for _, e := range entries {
			if strings.HasPrefix(e.DN, "CN=All Staff,") {
				for i := range opts.staff {
					e.Attributes = append(e.Attributes, &ldap.EntryAttribute{Name: "member", Values: []string{staffDN(i)}})
				}
			}
		}
	}
	srv, err := embedded.New(entries, embedded.Options{BindDN: demoBindDN, Password: demoPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sf, err := os.Open(filepath.FromSlash("../../examples/demo/assetpanda-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := emulator.LoadSeed(sf)
	sf.Close()
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(seed, opts.emulator)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)

	w := &world{dir: srv, ldapURL: url, emu: emu, apURL: hs.URL, specDir: t.TempDir()}
	w.writeSpec(t, "pandasync.yaml", readFile(t, "testdata/pandasync.yaml"))
	return w
}

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeSpec saves a spec file the way editors do: write a temporary file,
// then rename it over the old one.
func (w *world) writeSpec(t testing.TB, name, content string) {
	t.Helper()
	tmp := filepath.Join(w.specDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(w.specDir, name)); err != nil {
		t.Fatal(err)
	}
}

func (w *world) load() (*spec.Set, error) { return spec.Load(w.specDir) }

// connect builds real providers pointed at the world's servers.
func (w *world) connect(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
	dir, err := activedirectory.New(activedirectory.Config{URLs: []string{w.ldapURL}, BaseDN: demoBase,
		BindDN: demoBindDN, Password: demoPassword, AllowCleartextBind: true, Logger: log})
	if err != nil {
		return nil, err
	}
	ap, err := assetpanda.New(assetpanda.Config{URL: w.apURL, ClientID: "demo-client", ClientSecret: "demo-secret",
		Email: "admin@example.com", Password: "demo-password", Logger: log})
	if err != nil {
		dir.Close()
		return nil, err
	}
	return loop.NewProviders(dir, ap), nil
}

// config is a loop configuration against the world with a fake clock and
// no jitter.
func (w *world) config(clock *fakeClock, ev events) loop.Config {
	return loop.Config{
		Load:       w.load,
		Reconciler: &loop.Syncer{Connect: w.connect},
		Clock:      clock,
		Rand:       func() float64 { return 0 },
		Events:     ev.notify,
		Debounce:   50 * time.Millisecond,
	}
}

// get fetches an admin URL and returns the status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metricLines returns the pandasync_ sample lines of a /metrics body,
// leaving out histogram buckets.
func metricLines(body string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "pandasync_") && !strings.Contains(line, "_bucket{") {
			out = append(out, line)
		}
	}
	return out
}

// errFlaky is a failure retrying can fix.
var errFlaky = errors.New("directory server unavailable")

// policy returns the loop tests' spec with lines added to the SyncPolicy's
// spec (the file's last document), each a YAML line such as
// "runAtStart: false".
func policy(t testing.TB, lines ...string) string {
	t.Helper()
	s := readFile(t, "testdata/pandasync.yaml")
	for _, l := range lines {
		s += "  " + l + "\n"
	}
	return s
}

// withSchedule returns the loop tests' spec with another schedule.
func withSchedule(t testing.TB, schedule string, lines ...string) string {
	t.Helper()
	s := strings.Replace(policy(t, lines...), "schedule: {every: 1h}", "schedule: "+schedule, 1)
	if !strings.Contains(s, "schedule: "+schedule) {
		t.Fatal("the test spec's schedule is not the one this helper rewrites")
	}
	return s
}

// terminalError is an error that says, as providers do, that retrying
// cannot fix it.
type terminalError struct{ msg string }

func (e *terminalError) Error() string  { return e.msg }
func (e *terminalError) Terminal() bool { return true }

// failingConnect fails while *n > 0 (counting down), then connects to the
// world.
func (w *world) failingConnect(n *atomic.Int32, err error) func(context.Context, *spec.Set, *slog.Logger) (*loop.Providers, error) {
	return func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
		if n.Add(-1) >= 0 {
			return nil, err
		}
		return w.connect(ctx, set, log)
	}
}

// logBuffer collects JSON log lines, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log records whose msg is msg.
func (l *logBuffer) lines(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
