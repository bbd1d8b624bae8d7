package loop_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile/loop"
)

// BenchmarkLoopOnceNoChanges measures a whole pass with nothing to do
// (load the spec, connect, read AD, read Asset Panda, plan) against the
// embedded directory and the emulator, and reports the API requests and
// writes it makes: a converged pass must write nothing.
func BenchmarkLoopOnceNoChanges(b *testing.B) {
	w := newWorldWith(b, worldOptions{emulator: emulator.Options{Rate: emulator.Rate{Requests: -1}}})
	l, err := loop.New(loop.Config{Load: w.load, Reconciler: &loop.Syncer{Connect: w.connect}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if rep, err := l.Once(ctx); err != nil || rep.Outcome != loop.OutcomeSuccess {
		b.Fatalf("converging pass: %v %+v", err, rep)
	}
	before := w.emu.Stats()
	b.ResetTimer()
	for b.Loop() {
		rep, err := l.Once(ctx)
		if err != nil || rep.Outcome != loop.OutcomeNoChanges {
			b.Fatalf("pass: %v outcome %q error %q", err, rep.Outcome, rep.Error)
		}
	}
	b.StopTimer()
	after := w.emu.Stats()
	writes := 0
	for route, n := range after.Requests {
		if !isRead(route) {
			writes += n - before.Requests[route]
		}
	}
	b.ReportMetric(float64(after.Total()-before.Total())/float64(b.N), "requests/op")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
}

// isRead reports whether an API route only reads (or authenticates).
func isRead(route string) bool {
	return strings.HasPrefix(route, "GET ") || route == "POST /v3/session/token" || strings.Contains(route, "/search/")
}
