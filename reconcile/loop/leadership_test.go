package loop_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pandasync/pandasync/reconcile/leader"
	"github.com/pandasync/pandasync/reconcile/loop"
)

// fakeLeadership is a leader election the test decides, with a fence it
// can close.
type fakeLeadership struct {
	mu      sync.Mutex
	leading bool
	leader  string
	fenced  bool
	fences  int // Fence calls
}

func (f *fakeLeadership) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leading
}

func (f *fakeLeadership) Status() leader.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return leader.Status{Lease: "ops/pandasync", Identity: "pod-a", Leader: f.leader, Leading: f.leading}
}

func (f *fakeLeadership) Fence(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fences++
	if !f.leading || f.fenced {
		return fmt.Errorf("%w: pod-a's lease may have expired", leader.ErrNotLeader)
	}
	return nil
}

func (f *fakeLeadership) set(leading bool, holder string, fenced bool) {
	f.mu.Lock()
	f.leading, f.leader, f.fenced = leading, holder, fenced
	f.mu.Unlock()
}

// writes counts the emulator's write requests.
func (w *world) writes() int {
	n := 0
	for route, c := range w.emu.Stats().Requests {
		if !strings.HasPrefix(route, "GET ") && !strings.Contains(route, "/session") && !strings.Contains(route, "/search") {
			n += c
		}
	}
	return n
}

// TestLoopStandby: a replica that does not lead keeps the spec loaded and
// ready, runs no pass (not even on demand) and names the leader; once it
// leads it runs its first pass at once; a fenced leader writes nothing and
// its pass ends as stopped, not failed; losing the lease puts it back on
// standby.
func TestLoopStandby(t *testing.T) {
	w := newWorld(t)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	fl := &fakeLeadership{leader: "pod-b"}
	cfg := w.config(clock, ev)
	cfg.Leadership = fl
	cfg.Gate = fl.Fence
	l := startLoop(t, cfg)
	srv := httptest.NewServer(l.Handler(loop.AdminOptions{}))
	defer srv.Close()

	if wait := ev.wait(t, loop.EventWaiting); !wait.Next.IsZero() {
		t.Errorf("standby replica waits until %v for %q, want no timer", wait.Next, wait.Reason)
	}
	st := l.Status()
	if st.State != loop.StateStandby || !strings.Contains(st.StateReason, "pod-b leads") || !st.Ready || !st.Spec.Valid {
		t.Errorf("standby status: state %q (%s), ready %v, spec valid %v; want standby naming pod-b, ready, valid", st.State, st.StateReason, st.Ready, st.Spec.Valid)
	}
	if st.Leader == nil || st.Leader.Leader != "pod-b" || st.Leader.Leading {
		t.Errorf("status leader = %+v, want pod-b leading, not this replica", st.Leader)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != 200 {
		t.Errorf("/readyz of a standby replica = %d %s, want 200", code, body)
	}
	if _, body := get(t, srv.URL+"/status"); !strings.Contains(body, `"leader": "pod-b"`) {
		t.Errorf("/status does not name the leader:\n%s", body)
	}

	// On demand: nothing runs.
	l.Trigger("POST /sync")
	for e := range ev {
		if e.Kind == loop.EventPassStarted {
			t.Fatal("a standby replica ran a pass on demand")
		}
		if e.Kind == loop.EventWaiting {
			break
		}
	}
	if st := l.Status(); st.Passes != 0 || st.State != loop.StateStandby {
		t.Errorf("after POST /sync on standby: %d passes, state %q; want 0, standby", st.Passes, st.State)
	}

	// Elected, but the fence is closed: the pass plans and writes nothing.
	fl.set(true, "pod-a", true)
	l.LeadershipChanged()
	clock.fire(clock.next(t))
	rep := ev.pass(t)
	if rep.Reason != loop.ReasonElected || rep.Outcome != loop.OutcomeStopped {
		t.Errorf("fenced pass: reason %q outcome %q (%s), want %q stopped", rep.Reason, rep.Outcome, rep.Error, loop.ReasonElected)
	}
	fl.mu.Lock()
	fences := fl.fences
	fl.mu.Unlock()
	if n := w.writes(); n != 0 || fences == 0 {
		t.Errorf("the fenced pass made %d writes after %d fence checks; want 0 writes, the fence asked", n, fences)
	}
	if st := l.Status(); st.ConsecutiveFailures != 0 {
		t.Errorf("a fenced pass counts as %d failures, want 0", st.ConsecutiveFailures)
	}

	// The fence opens: the next pass writes.
	fl.set(true, "pod-a", false)
	l.Trigger("POST /sync")
	if rep := ev.pass(t); rep.Outcome != loop.OutcomeSuccess || w.writes() == 0 {
		t.Errorf("leader's pass: outcome %q (%s), %d writes; want success with writes", rep.Outcome, rep.Error, w.writes())
	}
	if st := l.Status(); st.State == loop.StateStandby || !st.Leader.Leading {
		t.Errorf("leader status: state %q, leader %+v", st.State, st.Leader)
	}

	// The lease is lost: back to standby, no timer.
	fl.set(false, "pod-c", false)
	l.LeadershipChanged()
	for {
		e := ev.wait(t, loop.EventWaiting)
		if e.Next.IsZero() {
			break
		}
	}
	if st := l.Status(); st.State != loop.StateStandby || !strings.Contains(st.StateReason, "pod-c leads") || !st.NextRun.IsZero() {
		t.Errorf("after losing the lease: state %q (%s), next run %v; want standby naming pod-c, no next run", st.State, st.StateReason, st.NextRun)
	}
}
