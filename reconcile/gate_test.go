package reconcile

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
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
