package reconcile_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile"
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

func (c *fakeClock) NewTimer(d time.Duration) reconcile.Timer {
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
type events chan reconcile.LoopEvent

func (e events) notify(ev reconcile.LoopEvent) { e <- ev }

// wait returns the next event of the kind.
func (e events) wait(t *testing.T, kind reconcile.LoopEventKind) reconcile.LoopEvent {
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
func (e events) pass(t *testing.T) *reconcile.PassReport {
	t.Helper()
	return e.wait(t, reconcile.EventPassDone).Pass
}

// startLoop runs the loop until the test ends; the test's cleanup cancels
// it and checks that Run returned nil.
func startLoop(t *testing.T, cfg reconcile.LoopConfig) *reconcile.Loop {
	t.Helper()
	l, err := reconcile.NewLoop(cfg)
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
	return newWorldWith(t, emulator.Options{})
}

func newWorldWith(t testing.TB, opts emulator.Options) *world {
	t.Helper()
	f, err := os.Open(filepath.FromSlash("../examples/demo/directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := embedded.ParseLDIF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
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
	sf, err := os.Open(filepath.FromSlash("../examples/demo/assetpanda-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := emulator.LoadSeed(sf)
	sf.Close()
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(seed, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)

	w := &world{dir: srv, ldapURL: url, emu: emu, apURL: hs.URL, specDir: t.TempDir()}
	w.writeSpec(t, "pandasync.yaml", readFile(t, "testdata/loop/pandasync.yaml"))
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
func (w *world) connect(ctx context.Context, set *spec.Set, log *slog.Logger) (*reconcile.Providers, error) {
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
	return reconcile.NewProviders(dir, ap), nil
}

// config is a loop configuration against the world with a fake clock and
// no jitter.
func (w *world) config(clock *fakeClock, ev events) reconcile.LoopConfig {
	return reconcile.LoopConfig{
		Load:     w.load,
		Connect:  w.connect,
		Clock:    clock,
		Rand:     func() float64 { return 0 },
		Notify:   ev.notify,
		Debounce: 50 * time.Millisecond,
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
