package loop

import (
	"fmt"
	"time"

	"github.com/pandasync/pandasync/spec"
)

// loopState is the state the loop's goroutine owns: when it runs next and
// how the last passes went.
type loopState struct {
	set      *spec.Set
	schedule spec.Schedule
	due      time.Time // next scheduled slot, before jitter
	jitter   time.Duration
	startup  bool      // the start-up pass is due
	failures int       // passes in a row that were not green
	retryAt  time.Time // backoff retry; zero when none
	// stalled: the last pass failed terminally; only an event runs a pass.
	stalled bool
	// quarantined is when the loop entered quarantine (zero: it is not);
	// quarantineAt is its next attempt.
	quarantined, quarantineAt time.Time
	// terminal: the last finished pass failed terminally (readiness).
	terminal bool
	lastPass *PassReport
}

// every is the schedule's interval.
func every(s spec.Schedule) time.Duration {
	if s.Every.Duration <= 0 {
		return spec.DefaultEvery
	}
	return s.Every.Duration
}

func (l *Loop) scheduleJitter(s spec.Schedule) time.Duration {
	return time.Duration(l.cfg.Jitter * l.rand() * float64(every(s)))
}

// backoff is the wait after the n-th consecutive failure (n ≥ 1): base
// doubled n-1 times, capped, then shortened by up to the jitter fraction.
func (l *Loop) backoff(n int) time.Duration {
	d := l.cfg.BackoffBase
	for i := 1; i < n && d < l.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, l.cfg.BackoffMax)
	return d - time.Duration(l.cfg.Jitter*l.rand()*float64(d))
}

// nextWake is when the loop runs next by itself, and why; zero when it
// waits for an event.
func (l *Loop) nextWake(st *loopState) (time.Time, string) {
	if st.set == nil || st.stalled || l.standby() != "" {
		return time.Time{}, ""
	}
	if st.startup {
		if l.cfg.Leadership != nil {
			return l.clock.Now(), ReasonElected
		}
		return l.clock.Now(), ReasonStartup
	}
	wake, why := st.due.Add(st.jitter), ReasonSchedule
	if !st.quarantined.IsZero() {
		// Quarantine never runs more often than the schedule.
		if st.quarantineAt.After(wake) {
			wake, why = st.quarantineAt, ReasonQuarantine
		}
		return wake, why
	}
	if !st.retryAt.IsZero() && st.retryAt.Before(wake) {
		wake, why = st.retryAt, ReasonRetry
	}
	return wake, why
}

// advanceSchedule counts a pass starting at start as the scheduled one if
// that was due.
func (l *Loop) advanceSchedule(st *loopState, start time.Time) {
	for ev := every(st.schedule); !st.due.After(start); {
		st.due = st.due.Add(ev)
		st.jitter = l.scheduleJitter(st.schedule)
	}
}

// transition is what a finished pass changed in the loop's health.
type transition struct {
	degraded    bool // entered the degraded state
	quarantined bool // entered quarantine
	recovered   bool // green after passes that were not
}

// settle updates the failure count, backoff, stall and quarantine after a
// finished pass.
func (l *Loop) settle(st *loopState, rep *PassReport, end time.Time) transition {
	var tr transition
	if rep.Outcome == OutcomeStopped {
		return tr
	}
	st.lastPass = rep
	pol := st.set.Policy.Spec
	before := st.failures
	st.terminal = false
	switch {
	case rep.Outcome.Green():
		tr.recovered = st.failures > 0
		st.failures = 0
		st.retryAt = time.Time{}
		st.stalled = false
		st.quarantined, st.quarantineAt = time.Time{}, time.Time{}
		return tr
	case rep.Outcome == OutcomeFailed:
		st.failures++
		if rep.Terminal {
			st.stalled, st.terminal = true, true
			st.retryAt = time.Time{}
		} else {
			st.retryAt = end.Add(l.backoff(st.failures))
		}
	default: // finished with problems: the next scheduled pass retries
		st.failures++
		st.retryAt = time.Time{}
	}
	degradedAfter := max(pol.DegradedAfter, 1)
	tr.degraded = before < degradedAfter && st.failures >= degradedAfter
	if q := pol.Quarantine; q.After > 0 && st.failures >= q.After {
		if st.quarantined.IsZero() {
			st.quarantined = end
			tr.quarantined = true
		}
		st.quarantineAt = end.Add(q.RetryEvery.Duration)
	}
	return tr
}

// refresh recomputes the status from the loop's state for a loop that
// waits until wake (zero: for an event), for why.
func (l *Loop) refresh(st *loopState, wake time.Time, why string) {
	state, reason := l.state(st, wake)
	ready, readyReason := true, ""
	switch {
	case st.set == nil:
		ready, readyReason = false, "no valid spec has loaded"
	case st.terminal && st.lastPass != nil:
		ready, readyReason = false, "the last pass failed and retrying cannot fix it: "+st.lastPass.Error
	}
	l.mu.Lock()
	l.status.State, l.status.StateReason = state, reason
	l.status.Ready, l.status.ReadyReason = ready, readyReason
	l.status.NextRun, l.status.NextRunReason = wake, why
	l.status.ConsecutiveFailures = st.failures
	l.status.QuarantinedSince = st.quarantined
	l.mu.Unlock()
	l.metrics.setState(state)
	l.metrics.consecutiveFailures.Set(float64(st.failures))
}

// state names what a waiting loop is doing, and why.
func (l *Loop) state(st *loopState, wake time.Time) (State, string) {
	last := "the last pass"
	if st.lastPass != nil {
		last += " " + st.lastPass.Describe()
	}
	at := func(t time.Time) string { return t.Format(time.RFC3339) }
	switch {
	case st.set == nil:
		return StateWaitingForSpec, "no valid spec has loaded; " + l.fixHint()
	case l.standby() != "":
		return StateStandby, l.standby()
	case st.stalled:
		return StateStalled, last + "; no pass runs until the spec changes, SIGHUP or POST /sync"
	case !st.quarantined.IsZero():
		return StateQuarantined, fmt.Sprintf("%d passes in a row were not green (%s); quarantined since %s: "+
			"one attempt every %s, next at %s; a spec change, SIGHUP or POST /sync retries at once",
			st.failures, last, at(st.quarantined), st.set.Policy.Spec.Quarantine.RetryEvery.Duration, at(wake))
	case st.failures >= max(st.set.Policy.Spec.DegradedAfter, 1):
		return StateDegraded, fmt.Sprintf("%d passes in a row were not green; %s; next attempt at %s", st.failures, last, at(wake))
	case !st.retryAt.IsZero():
		return StateBackoff, last + "; retrying at " + at(wake)
	case st.failures > 0:
		return StateIdle, last + "; the next scheduled pass retries at " + at(wake)
	}
	if wake.IsZero() {
		return StateIdle, "waiting for a spec change, SIGHUP or POST /sync"
	}
	return StateIdle, "the next pass is at " + at(wake)
}
