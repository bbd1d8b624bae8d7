package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/leader"
)

// maxLoggedProblems caps the plan problems logged one by one per pass.
const maxLoggedProblems = 20

// pass runs one pass and updates the schedule, the backoff, the status,
// the history and the metrics. With once set (run -once) nothing waits for
// another pass, so the logs promise none.
func (l *Loop) pass(ctx context.Context, st *loopState, reason string, once bool) *PassReport {
	start := l.clock.Now()
	rev := l.revision(st.set)
	rep := &PassReport{ID: newPassID(), Reason: reason, StartedAt: start, Revision: rev.String(), Dirty: rev.Dirty}
	log := l.log.With("pass", rep.ID)
	st.startup = false
	l.advanceSchedule(st, start)
	l.mu.Lock()
	l.status.State, l.status.StateReason = StateRunning, "pass "+rep.ID+" ("+reason+")"
	l.status.Current = rep.clone()
	l.status.NextRun, l.status.NextRunReason = time.Time{}, ""
	l.status.Spec.Revision, l.status.Spec.Dirty = rev.String(), rev.Dirty
	l.mu.Unlock()
	l.metrics.setState(StateRunning)
	l.event(Event{Kind: EventPassStarted, Pass: rep.clone()})
	log.Info("pass started", "reason", reason, "revision", rev.String(), "dirty", rev.Dirty)

	if a := l.cfg.Audit; a != nil {
		if err := a.Retry(); err != nil {
			log.Error("the audit log cannot be written; this pass plans but writes nothing", "error", err)
		}
	}
	obs := &passObserver{l: l, rep: rep, log: log, rev: rev, applied: map[string]reconcile.Summary{}, failed: map[string]int{}}
	req := Request{ID: rep.ID, Reason: reason, Set: st.set, Revision: rev, Log: log,
		Apply: reconcile.ApplyOptions{Observer: obs, Gate: l.gate, WriteWithin: l.cfg.WriteWithin}}
	if e := l.leaderEpoch.Load(); e != l.passEpoch {
		// Another replica may have led, and written, since this one's
		// last pass: what it remembers of both sides may be behind.
		req.FullRead, l.passEpoch = "the leadership of this replica changed since its last pass", e
	}
	res, err := l.reconcile(ctx, req)
	end := l.clock.Now()
	rep.FinishedAt = end
	rep.Duration = end.Sub(start).Seconds()
	l.fill(rep, res, obs)
	rep.Outcome = l.classify(res, err)
	if err != nil && rep.Outcome == OutcomeFailed {
		rep.Err, rep.Error, rep.Terminal = err, err.Error(), IsTerminal(err)
	}
	if err != nil && rep.Outcome == OutcomeStopped && errors.Is(err, leader.ErrNotLeader) {
		rep.Err, rep.Error = err, err.Error() // why the fence closed
	}
	rep.Plan = res.Plan

	tr := l.settle(st, rep, end)
	wake, why := time.Time{}, ""
	if !once && ctx.Err() == nil {
		wake, why = l.nextWake(st)
	}
	l.metrics.pass(rep, res, end)
	if a := l.cfg.Audit; a != nil {
		if err := a.Sync(); err != nil && a.Err() == nil {
			log.Warn("the audit log could not be synced to disk", "error", err)
		}
	}
	if err := l.history.Add(rep); err != nil {
		log.Warn("the pass history could not be saved", "error", err)
	}
	l.mu.Lock()
	l.status.Current = nil
	l.status.LastPass = rep.clone()
	l.status.Passes++
	if rep.Outcome.Green() {
		l.status.LastSuccess = end
	}
	l.mu.Unlock()
	l.refresh(st, wake, why)
	l.logPass(log, rep, res, st, wake, why, once, err)
	if !once {
		l.notifyPass(st, rep, res, tr, wake, why)
	}
	l.event(Event{Kind: EventPassDone, Pass: rep})
	return rep
}

// gate is the loop's write gate, asked before every write batch.
func (l *Loop) gate(ctx context.Context) error {
	if l.stopping.Load() {
		return ErrStopping
	}
	if a := l.cfg.Audit; a != nil {
		if err := a.Err(); err != nil {
			return fmt.Errorf("the audit log cannot be written, so nothing more is written to Asset Panda: %w", err)
		}
	}
	if l.cfg.Gate != nil {
		return l.cfg.Gate(ctx)
	}
	return nil
}

// reconcile runs the Reconciler with the pass's timeout, catching panics.
// Stopping the loop (ctx done) does not cancel the pass: it closes the
// gate, and only after ShutdownTimeout cancels the pass's context.
func (l *Loop) reconcile(ctx context.Context, req Request) (res Result, err error) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	tctx, tcancel := context.WithTimeout(pctx, l.cfg.PassTimeout)
	defer tcancel()
	finished := make(chan struct{})
	defer close(finished)
	stop := context.AfterFunc(ctx, func() {
		l.stopping.Store(true)
		req.Log.Info("stopping: the write batch in flight completes, no further write starts",
			"shutdown_timeout", l.cfg.ShutdownTimeout.String())
		t := time.NewTimer(l.cfg.ShutdownTimeout)
		go func() {
			select {
			case <-t.C:
				req.Log.Warn("the pass did not stop within the shutdown timeout; cancelling it", "shutdown_timeout", l.cfg.ShutdownTimeout.String())
				cancel()
			case <-finished:
				t.Stop()
			}
		}()
	})
	defer stop()
	res, err = safeReconcile(tctx, l.cfg.Reconciler, req)
	if err == nil && tctx.Err() != nil && pctx.Err() == nil {
		err = tctx.Err()
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) && pctx.Err() == nil && !l.stopping.Load() {
		err = fmt.Errorf("pass did not finish within %s: %w", l.cfg.PassTimeout, err)
	}
	return res, err
}

// panicError is a panic in a pass, with its stack for the log.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("pass panicked: %v", e.value) }

func safeReconcile(ctx context.Context, r Reconciler, req Request) (res Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return r.Reconcile(ctx, req)
}

// classify names how a pass ended.
func (l *Loop) classify(res Result, err error) Outcome {
	if err != nil {
		if l.stopping.Load() && (errors.Is(err, ErrStopping) || errors.Is(err, context.Canceled)) {
			return OutcomeStopped
		}
		if errors.Is(err, leader.ErrNotLeader) {
			return OutcomeStopped // fenced: another replica may lead now
		}
		return OutcomeFailed
	}
	p, a := res.Plan, res.Applied
	switch {
	case p == nil:
		return OutcomeFailed
	case len(p.Blocked) > 0 || len(p.Errors) > 0 || a != nil && (a.Failed > 0 || a.NotAttempted > 0):
		return OutcomeProblems
	case p.Suspended:
		return OutcomeSuspended
	case a != nil && a.Applied > 0:
		return OutcomeSuccess
	}
	return OutcomeNoChanges
}

// fill copies the plan's counts and bounded lists into the report.
func (l *Loop) fill(rep *PassReport, res Result, obs *passObserver) {
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if p := res.Plan; p != nil {
		sum := p.Summary
		rep.Summary = &sum
		read := res.Stats.Read
		rep.Read = &read
		rep.Counts.Blocked = len(p.Blocked)
		rep.Counts.Problems = len(p.Errors)
		rep.Blocked = bounded(p.Blocked)
		rep.Problems = bounded(p.Errors)
	}
	if a := res.Applied; a != nil {
		// The observer counted what it heard; the result is authoritative
		// should a reconciler not have passed the observer on.
		rep.Counts.Applied, rep.Counts.Failed, rep.Counts.NotAttempted = a.Applied, a.Failed, a.NotAttempted
	}
	c := rep.Counts
	rep.Truncated = len(rep.Changes) < c.Applied || len(rep.Failed) < c.Failed ||
		len(rep.Blocked) < c.Blocked || len(rep.Problems) < c.Problems
	if len(res.Scopes) > 0 {
		rep.Mappings = make([]MappingReport, len(res.Scopes))
		idx := make(map[string]int, len(res.Scopes))
		for i, s := range res.Scopes {
			rep.Mappings[i] = MappingReport{Scope: s, Applied: obs.applied[s.Mapping], Failed: obs.failed[s.Mapping]}
			idx[s.Mapping] = i
		}
		if p := res.Plan; p != nil {
			for _, b := range p.Blocked {
				if i, ok := idx[b.Mapping]; ok {
					rep.Mappings[i].Blocked++
				}
			}
			for _, e := range p.Errors {
				if i, ok := idx[e.Mapping]; ok {
					rep.Mappings[i].Problems++
				}
			}
		}
	}
}

// count adds an applied change to a per-mapping tally by action.
func count(s *reconcile.Summary, a reconcile.Action) {
	switch a {
	case reconcile.ActionCreate:
		s.Create++
	case reconcile.ActionUpdate:
		s.Update++
	case reconcile.ActionDeactivate:
		s.Deactivate++
	case reconcile.ActionReactivate:
		s.Reactivate++
	}
}

func bounded[T any](s []T) []T {
	return slices.Clone(s[:min(len(s), MaxListed)])
}

// passObserver hears every change of a pass: it writes the audit entry and
// one log line per attempted change, counts it, and keeps the first
// MaxListed in the report.
type passObserver struct {
	l   *Loop
	rep *PassReport
	log *slog.Logger
	rev Revision

	mu          sync.Mutex // guards rep's counts and lists, and the tallies
	auditFailed bool
	// applied and failed tally the attempted changes per mapping.
	applied map[string]reconcile.Summary
	failed  map[string]int
}

func (o *passObserver) Started(total int) {
	o.log.Info("applying", "changes", total)
}

func (o *passObserver) Done(c reconcile.Change, err error) {
	l := o.l
	if errors.Is(err, reconcile.ErrNotAttempted) {
		l.metrics.change(c, "not_attempted")
		o.mu.Lock()
		o.rep.Counts.NotAttempted++
		o.mu.Unlock()
		return
	}
	result := ResultApplied
	if err != nil {
		result = ResultFailed
	}
	if a := l.cfg.Audit; a != nil {
		if werr := a.Write(NewAuditEntry(l.clock.Now(), o.rep.ID, o.rev, c, err)); werr != nil {
			l.metrics.auditErrors.Inc()
			if !o.auditFailed {
				o.auditFailed = true
				o.log.Error("the audit log cannot be written; no further write starts", "error", werr)
			}
		}
	}
	attrs := []any{"mapping", c.Mapping, "kind", c.Kind, "action", c.Action, "key", c.Key, "name", c.Name, "fields", fieldNames(c)}
	if err != nil {
		o.log.Warn("change failed", append(attrs, "error", err)...)
	} else {
		o.log.Info("change applied", attrs...)
	}
	l.metrics.change(c, result)
	cr := ChangeResult{Mapping: c.Mapping, Kind: c.Kind, Action: c.Action, Key: c.Key, Name: c.Name,
		Before: c.Before, After: c.After, Result: result}
	o.mu.Lock()
	if err != nil {
		cr.Error = err.Error()
		o.failed[c.Mapping]++
		o.rep.Counts.Failed++
		if len(o.rep.Failed) < MaxListed {
			o.rep.Failed = append(o.rep.Failed, cr)
		}
	} else {
		sum := o.applied[c.Mapping]
		count(&sum, c.Action)
		o.applied[c.Mapping] = sum
		o.rep.Counts.Applied++
		if len(o.rep.Changes) < MaxListed {
			o.rep.Changes = append(o.rep.Changes, cr)
		}
	}
	counts := o.rep.Counts
	o.mu.Unlock()
	l.mu.Lock()
	if cur := l.status.Current; cur != nil && cur.ID == o.rep.ID {
		cur.Counts = counts
	}
	l.mu.Unlock()
}

// fieldNames lists the fields a change writes.
func fieldNames(c reconcile.Change) []string {
	names := make([]string, 0, len(c.After))
	for k := range c.After {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// logPass logs the end of a pass: one line, plus (except for run -once,
// which prints the plan) one per plan problem and per blocked mapping and
// limit. A failed change was logged when it failed; a pass's error is
// logged here only, once.
func (l *Loop) logPass(log *slog.Logger, rep *PassReport, res Result, st *loopState, wake time.Time, why string, once bool, err error) {
	attrs := []any{"reason", rep.Reason, "outcome", rep.Outcome, "duration", time.Duration(rep.Duration * float64(time.Second)).Round(time.Millisecond).String()}
	if rep.Summary != nil {
		attrs = append(attrs, "create", rep.Summary.Create, "update", rep.Summary.Update,
			"deactivate", rep.Summary.Deactivate, "reactivate", rep.Summary.Reactivate)
	}
	c := rep.Counts
	attrs = append(attrs, "applied", c.Applied, "failed", c.Failed, "not_attempted", c.NotAttempted, "blocked", c.Blocked, "problems", c.Problems)
	if r := rep.Read; r != nil {
		if r.Full {
			attrs = append(attrs, "read", "full", "read_reason", r.Reason)
		} else {
			attrs = append(attrs, "read", "delta", "replanned", r.Replanned)
		}
		attrs = append(attrs, "ldap_searches", r.LDAPSearches, "ldap_entries", r.LDAPEntries, "api_requests", r.APIRequests)
	}
	if rep.Outcome != OutcomeStopped && !rep.Outcome.Green() {
		attrs = append(attrs, "consecutive_failures", st.failures)
	}
	if !once {
		if wake.IsZero() {
			if rep.Outcome != OutcomeStopped {
				attrs = append(attrs, "next_run", "after a spec change, SIGHUP or POST /sync")
			}
		} else {
			attrs = append(attrs, "next_run", wake.Format(time.RFC3339), "next_run_reason", why)
		}
	}
	// run -once shows the plan, problems and blocked changes included, on
	// stdout; the service logs them.
	if p := res.Plan; p != nil && !once {
		for i, pr := range p.Errors {
			if i == maxLoggedProblems {
				log.Warn("more problems; see /status or pandasync plan", "count", len(p.Errors)-i)
				break
			}
			log.Warn("problem", "mapping", pr.Mapping, "object", pr.Object, "key", pr.Key, "message", pr.Message)
		}
		for _, b := range blockedGroups(p.Blocked) {
			log.Warn("changes blocked", "mapping", b.mapping, "limit", b.limit, "count", b.count, "detail", b.detail)
		}
	}
	switch rep.Outcome {
	case OutcomeFailed:
		attrs = append(attrs, "error", err, "terminal", rep.Terminal)
		var pe *panicError
		if errors.As(err, &pe) {
			attrs = append(attrs, "stack", string(pe.stack))
		}
		log.Error("pass failed", attrs...)
	case OutcomeStopped:
		if rep.Error != "" {
			attrs = append(attrs, "error", rep.Error)
		}
		log.Warn("pass stopped", attrs...)
	case OutcomeProblems:
		log.Warn("pass finished with problems", attrs...)
	default:
		log.Info("pass finished", attrs...)
	}
}

// blockedGroup counts the blocked changes of one mapping and limit.
type blockedGroup struct {
	mapping, limit, detail string
	count                  int
}

func blockedGroups(bs []reconcile.Blocked) []blockedGroup {
	var out []blockedGroup
	idx := map[[2]string]int{}
	for _, b := range bs {
		k := [2]string{b.Mapping, b.Limit}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, blockedGroup{mapping: b.Mapping, limit: b.Limit, detail: b.Detail})
		}
		out[i].count++
	}
	return out
}

// notifyPass sends the notifications a finished pass calls for.
func (l *Loop) notifyPass(st *loopState, rep *PassReport, res Result, tr transition, wake time.Time, why string) {
	if rep.Outcome == OutcomeStopped {
		return
	}
	l.mu.Lock()
	state := l.status.State
	l.mu.Unlock()
	base := Notification{Time: rep.FinishedAt.UTC(), Host: l.host, State: state, ConsecutiveFailures: st.failures,
		NextRun: wake, NextRunReason: why, Revision: rep.Revision, Dirty: rep.Dirty,
		Pass: &PassSummary{ID: rep.ID, Reason: rep.Reason, Outcome: rep.Outcome, Error: rep.Error, Terminal: rep.Terminal, Counts: rep.Counts}}
	send := func(ev NotificationEvent, msg string, details []string, key string) {
		n := base
		n.Event, n.Message, n.Details = ev, msg, details
		l.notifier.notify(n, key)
	}
	if rep.Outcome.Green() {
		send(NotifyRecovered, fmt.Sprintf("recovered: pass %s %s", rep.ID, rep.Describe()), nil, "")
		return
	}
	next := "next attempt after a spec change, SIGHUP or POST /sync"
	if !wake.IsZero() {
		next = "next attempt at " + wake.Format(time.RFC3339) + " (" + why + ")"
	}
	switch {
	case rep.Outcome == OutcomeFailed:
		send(NotifyPassFailed, fmt.Sprintf("pass %s %s; %s", rep.ID, rep.Describe(), next), nil, "failed:"+rep.Error)
	case rep.Counts.Failed > 0 || rep.Counts.Problems > 0:
		var lines, keys []string
		for _, f := range rep.Failed {
			lines = append(lines, fmt.Sprintf("%s: %s %s %s: %s", f.Mapping, f.Action, f.Kind, label(f.Name, f.Key), f.Error))
		}
		for _, p := range res.Plan.Errors {
			lines = append(lines, p.String())
		}
		keys = append(keys, lines...)
		send(NotifyPassFailed, fmt.Sprintf("pass %s %s", rep.ID, rep.Describe()), clip(lines), "problems:"+digest(keys))
	}
	if p := res.Plan; p != nil && len(p.Blocked) > 0 {
		var lines, keys []string
		for _, g := range blockedGroups(p.Blocked) {
			lines = append(lines, fmt.Sprintf("%s: %s blocked by %s: %s", g.mapping, plural(g.count, "change"), g.limit, g.detail))
		}
		for _, b := range p.Blocked {
			keys = append(keys, strings.Join([]string{b.Mapping, string(b.Kind), b.Key, string(b.Action), b.Limit}, "\x00"))
		}
		send(NotifyChangesBlocked, fmt.Sprintf("%s blocked by a limit or guard; review them with pandasync plan", plural(len(p.Blocked), "change")),
			clip(lines), digest(keys))
	}
	if tr.degraded {
		send(NotifyDegraded, fmt.Sprintf("degraded: %d passes in a row were not green; the last pass %s", st.failures, rep.Describe()), nil, "degraded")
	}
	if tr.quarantined {
		send(NotifyQuarantined, fmt.Sprintf("quarantined after %d passes in a row that were not green: one attempt every %s; %s",
			st.failures, st.set.Policy.Spec.Quarantine.RetryEvery.Duration, next), nil, "quarantined")
	}
}

func label(name, key string) string {
	if name != "" {
		return name
	}
	return key
}

// clip bounds the detail lines of a notification.
func clip(lines []string) []string {
	if len(lines) <= maxDetails {
		return lines
	}
	return append(lines[:maxDetails:maxDetails], fmt.Sprintf("and %d more", len(lines)-maxDetails))
}
