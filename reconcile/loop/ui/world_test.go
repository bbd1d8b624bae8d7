package ui_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/providers/sandbox"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/reconcile/loop/ui"
	"github.com/pandasync/pandasync/spec"
)

// waitLimit bounds every wait for the loop or the browser: a deadline for
// a hung test, never an assertion about speed.
const waitLimit = 20 * time.Second

// adminToken is the admin token of the test spec.
const adminToken = "ui-test-admin-token-7f3a"

// world is a real `run` loop over the embedded directory and the Asset
// Panda emulator (providers/sandbox), seeded with the demo, with a state
// directory, a watched spec directory and the status page in front of it.
type world struct {
	sb       *sandbox.Sandbox
	specDir  string
	stateDir string
	loop     *loop.Loop
	ev       chan loop.Event
	explain  *ui.PlanExplainer
	url      string // the status page
	handler  *httptest.Server
}

// worldOptions vary the world.
type worldOptions struct {
	// noToken leaves the admin token out of the spec.
	noToken bool
	// refresh is the page's auto-refresh period (default: none).
	refresh time.Duration
}

func newWorld(t *testing.T, opts worldOptions) *world {
	t.Helper()
	ldif, err := os.Open(filepath.FromSlash("../../../examples/demo/directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	defer ldif.Close()
	seed, err := os.Open(filepath.FromSlash("../../../examples/demo/assetpanda-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	sb, err := sandbox.Load(ldif, seed, sandbox.Options{Emulator: emulator.Options{Rate: emulator.Rate{Requests: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)

	w := &world{sb: sb, specDir: t.TempDir(), stateDir: t.TempDir(), ev: make(chan loop.Event, 1000)}
	mappings, err := os.ReadFile("testdata/mappings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if opts.noToken {
		const line = "  admin: {token: {env: PANDASYNC_ADMIN_TOKEN}}\n"
		if !strings.Contains(string(mappings), line) {
			t.Fatal("the test mappings have no admin token line to remove")
		}
		mappings = []byte(strings.Replace(string(mappings), line, "", 1))
	}
	w.writeSpec(t, "00-connection.yaml", string(sb.ConnectionYAML("sandbox")))
	w.writeSpec(t, "10-mappings.yaml", string(mappings))

	audit, err := loop.OpenAudit(filepath.Join(w.stateDir, loop.AuditFile), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { audit.Close() })
	history, err := loop.OpenHistory(filepath.Join(w.stateDir, loop.HistoryFile), 0)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PANDASYNC_ADMIN_TOKEN": adminToken}
	l, err := loop.New(loop.Config{
		Load:        func() (*spec.Set, error) { return spec.Load(w.specDir) },
		Reconciler:  &loop.Syncer{Connect: w.connect},
		WatchPaths:  []string{w.specDir},
		Debounce:    50 * time.Millisecond,
		BackoffBase: time.Hour, // a failed pass is not retried during the test
		Audit:       audit,
		History:     history,
		StateDir:    w.stateDir,
		Resolver:    spec.Resolver{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }},
		Events:      func(ev loop.Event) { w.ev <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	w.loop = l
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

	refresh := opts.refresh
	if refresh == 0 {
		refresh = -1
	}
	w.explain = &ui.PlanExplainer{Source: l, Connect: w.connect, MinInterval: time.Millisecond}
	h, err := ui.New(ui.Options{
		Source:       l,
		Admin:        l.Handler(loop.AdminOptions{}),
		Explainer:    w.explain,
		StateDir:     w.stateDir,
		SpecPaths:    []string{w.specDir},
		RefreshEvery: refresh,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.handler = httptest.NewServer(h)
	t.Cleanup(w.handler.Close)
	w.url = w.handler.URL
	return w
}

// connect builds real providers pointed at the sandbox.
func (w *world) connect(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
	dir, ap, err := w.sb.Providers()
	if err != nil {
		return nil, err
	}
	return loop.NewProviders(dir, ap), nil
}

// writeSpec saves a spec file the way editors do: a temporary file renamed
// over the old one.
func (w *world) writeSpec(t *testing.T, name, content string) {
	t.Helper()
	tmp := filepath.Join(w.specDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(w.specDir, name)); err != nil {
		t.Fatal(err)
	}
}

// wait returns the next event of the kind.
func (w *world) wait(t *testing.T, kind loop.EventKind) loop.Event {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case ev := <-w.ev:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event from the loop", kind)
		}
	}
}

// pass returns the next finished pass.
func (w *world) pass(t *testing.T) *loop.PassReport {
	t.Helper()
	return w.wait(t, loop.EventPassDone).Pass
}
