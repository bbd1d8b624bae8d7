package loop_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
)

const routeBulkCreate = "POST /v3/groups/{id}/objects"

// peopleKeys returns how many People records hold each AD SID.
func (w *world) peopleKeys(t *testing.T) map[string]int {
	t.Helper()
	_, body := get(t, w.apURL+"/_emulator/state")
	var seed emulator.Seed
	if err := json.Unmarshal([]byte(body), &seed); err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, a := range seed.Accounts {
		for _, m := range a.Modules {
			for _, c := range m.Collections {
				if c.Name != "People" {
					continue
				}
				for _, r := range c.Records {
					keys[r.Fields["AD SID"]]++
				}
			}
		}
	}
	return keys
}

// TestStopDuringBulkWrite stops the loop (what SIGTERM does) while a bulk
// create is in flight, held there by the emulator's latency fault: that
// batch completes and is audited, no further write starts, Run returns
// nil, and the next start writes exactly what is left, with no duplicate.
func TestStopDuringBulkWrite(t *testing.T) {
	const staff = 450 // three bulk creates of at most 200
	w := newWorldWith(t, worldOptions{staff: staff, emulator: emulator.Options{Rate: emulator.Rate{Requests: -1}}})
	w.emu.Fault(emulator.Fault{Route: routeBulkCreate, Kind: emulator.FaultLatency, Delay: 500 * time.Millisecond})
	before := len(w.peopleKeys(t))
	stateDir := t.TempDir()
	audit, err := loop.OpenAudit(filepath.Join(stateDir, loop.AuditFile), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Close()
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	cfg := w.config(clock, ev)
	cfg.Audit = audit
	l, err := loop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	clock.fire(clock.next(t))

	// Wait until the first bulk create is in flight, then stop.
	deadline := time.Now().Add(waitLimit)
	for w.emu.Stats().Requests[routeBulkCreate] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no bulk create was sent")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return")
	}
	rep := ev.pass(t)
	total := rep.Summary.Total()
	if rep.Outcome != loop.OutcomeStopped || rep.Counts.Applied != reconcile.WriteBatchSize || rep.Counts.Failed != 0 ||
		rep.Counts.NotAttempted != total-reconcile.WriteBatchSize {
		t.Fatalf("stopped pass: outcome %q counts %+v of %d changes, want stopped with one batch (%d) applied and the rest not attempted",
			rep.Outcome, rep.Counts, total, reconcile.WriteBatchSize)
	}
	if n := w.emu.Stats().Requests[routeBulkCreate]; n != 1 {
		t.Errorf("%d bulk creates sent, want only the one in flight", n)
	}
	if got := len(w.peopleKeys(t)); got != before+reconcile.WriteBatchSize {
		t.Errorf("People holds %d records, want %d: the batch in flight completes", got, before+reconcile.WriteBatchSize)
	}
	entries, _, err := loop.ReadAudit(stateDir, 0)
	if err != nil || len(entries) != reconcile.WriteBatchSize {
		t.Errorf("audit holds %d entries (%v), want the %d writes of the batch", len(entries), err, reconcile.WriteBatchSize)
	}

	// The next start writes exactly what is left.
	w.emu.ClearFaults()
	l2, err := loop.New(w.config(newFakeClock(t0), make(events, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := l2.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Outcome != loop.OutcomeSuccess || rep2.Counts.Applied != rep.Counts.NotAttempted {
		t.Errorf("after the restart: outcome %q counts %+v, want the %d changes left applied", rep2.Outcome, rep2.Counts, rep.Counts.NotAttempted)
	}
	for key, n := range w.peopleKeys(t) {
		if n > 1 {
			t.Errorf("%d People records hold %s", n, key)
		}
	}
	if rep3, err := l2.Once(context.Background()); err != nil || rep3.Outcome != loop.OutcomeNoChanges {
		t.Errorf("third pass: %v %+v, want no changes", err, rep3)
	}
}
