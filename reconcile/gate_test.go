package reconcile

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

// recordingObserver records every change Apply reports, with its error.
type recordingObserver struct {
	started int
	done    []Outcome
}

func (o *recordingObserver) Started(n int)            { o.started = n }
func (o *recordingObserver) Done(c Change, err error) { o.done = append(o.done, Outcome{c, err}) }

// TestApplyGate closes the gate after n write batches: exactly those
// batches are written, every other change is reported once as not
// attempted with the gate's error, and the next plan lists exactly the
// changes that were not attempted.
func TestApplyGate(t *testing.T) {
	errFenced := errors.New("lost the lease")
	for _, open := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("%d batches then closed", open), func(t *testing.T) {
			w := newWorld(t)
			p := w.plan(Options{})
			calls := 0
			gate := func(ctx context.Context) error {
				calls++
				if calls > open {
					return errFenced
				}
				return nil
			}
			obs := &recordingObserver{}
			res, err := ApplyWith(context.Background(), p, w.set, w.ap, ApplyOptions{Observer: obs, Gate: gate})
			if !errors.Is(err, errFenced) {
				t.Fatalf("ApplyWith = %v, want the gate's error", err)
			}
			if calls != open+1 {
				t.Errorf("gate called %d times, want %d (once per batch sent, then once to refuse)", calls, open+1)
			}
			if obs.started != len(p.Changes) || len(obs.done) != len(p.Changes) {
				t.Errorf("observer heard Started(%d) and %d Done, want %d of each", obs.started, len(obs.done), len(p.Changes))
			}
			var notAttempted []Change
			for _, o := range res.Outcomes {
				switch {
				case o.Err == nil:
				case errors.Is(o.Err, ErrNotAttempted) && errors.Is(o.Err, errFenced):
					notAttempted = append(notAttempted, o.Change)
				default:
					t.Errorf("%s %s %s: %v, want applied or not attempted", o.Change.Action, o.Change.Kind, o.Change.Name, o.Err)
				}
			}
			if res.NotAttempted != len(notAttempted) || res.Failed != 0 || res.Applied+res.NotAttempted != len(p.Changes) {
				t.Errorf("result applied %d failed %d not attempted %d of %d", res.Applied, res.Failed, res.NotAttempted, len(p.Changes))
			}
			if len(res.Problems()) != 0 {
				t.Errorf("Problems() = %v, want none: not attempted is not a failure", res.Problems())
			}
			if open == 0 && res.Applied != 0 {
				t.Errorf("a closed gate let %d changes through", res.Applied)
			}
			if len(notAttempted) == 0 {
				t.Fatal("the gate stopped nothing; the fixture needs more than one batch")
			}
			again := w.plan(Options{})
			if diff := cmp.Diff(rows(notAttempted), rows(again.Changes)); diff != "" {
				t.Errorf("the next plan is not the changes left (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyWriteWithin: a write batch runs under the bound WriteWithin
// gives, so that what it would wait for inside the client (here a 429
// asking for 30 s before the next request) cannot carry it past the time
// the gate vouched for, as a leader's fence window. The user writes, which
// come after the 429, are cut short and reported failed, nothing of them
// is written, and the next plan is exactly those changes.
func TestApplyWriteWithin(t *testing.T) {
	w := newWorld(t)
	p := w.plan(Options{})
	w.emu.Fault(emulator.Fault{Route: "POST /v3/users/invite", Count: -1, Kind: emulator.FaultStatus, Status: 429, RetryAfter: "30"})
	asked := 0
	within := func() (time.Duration, bool) { asked++; return 50 * time.Millisecond, true }
	res, err := ApplyWith(context.Background(), p, w.set, w.ap, ApplyOptions{WriteWithin: within})
	if err != nil {
		t.Fatalf("ApplyWith = %v", err)
	}
	var cut []Change
	for _, o := range res.Outcomes {
		switch {
		case o.Err == nil && o.Change.Kind == KindRecord:
		case errors.Is(o.Err, context.DeadlineExceeded) && o.Change.Kind == KindUser:
			cut = append(cut, o.Change)
		default:
			t.Errorf("%s %s %s: %v; want records written and user writes cut short at their deadline", o.Change.Action, o.Change.Kind, o.Change.Name, o.Err)
		}
	}
	if len(cut) == 0 {
		t.Fatal("no write was cut short; the fixture needs user changes")
	}
	if want := 1 + len(cut); asked != want { // the one batch of records, then each user write
		t.Errorf("WriteWithin asked %d times, want %d (once per write batch)", asked, want)
	}
	w.emu.ClearFaults()
	fresh, err := assetpanda.New(assetpanda.Config{URL: w.apURL, ClientID: "test-client", ClientSecret: "test-secret",
		Email: "admin@example.com", Password: "test-password", Rate: assetpanda.Rate{Requests: -1}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := MakePlan(context.Background(), w.set, w.dir, fresh, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rows(cut), rows(again.Changes)); diff != "" {
		t.Errorf("the next plan is not the writes that were cut short (-want +got):\n%s", diff)
	}
}
