package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// Loop defaults, used when the LoopConfig leaves a setting zero.
const (
	DefaultBackoffBase = 5 * time.Second
	DefaultBackoffMax  = 5 * time.Minute
	DefaultJitter      = 0.1
	DefaultPassTimeout = 2 * time.Hour
	DefaultDebounce    = 300 * time.Millisecond
)

// Reasons a pass runs, as reported in logs and /status. Trigger takes any
// other reason, such as "SIGHUP" or "POST /sync".
const (
	ReasonSchedule   = "schedule"
	ReasonRetry      = "retry"
	ReasonSpecChange = "spec change"
	ReasonOnce       = "once"
)

// Clock is the loop's view of time, so that tests can drive the schedule
// and the backoff with a fake. The zero LoopConfig uses the system clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time                 { return time.Now() }
func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

// Providers are the two sides one pass works with. Connect builds them
// afresh for every pass, so that no cached lookup outlives a pass.
type Providers struct {
	Directory DirectoryReader
	Target    TargetWriter
	// Stats returns the Asset Panda client's request counters so far; nil
	// when the target does not count.
	Stats func() TargetStats
	// Close releases the providers; nil when there is nothing to release.
	Close func()
}

// NewProviders wraps the real providers for a pass: their request counters
// feed the metrics, and Close closes the directory connection.
func NewProviders(dir *activedirectory.Reader, ap *assetpanda.Client) *Providers {
	return &Providers{
		Directory: dir,
		Target:    ap,
		Stats: func() TargetStats {
			s := ap.Stats()
			return TargetStats{Requests: s.Total(), Throttled: s.RateLimited}
		},
		Close: func() { dir.Close() },
	}
}

// TargetStats are cumulative request counters of an Asset Panda client.
type TargetStats struct {
	Requests  int // HTTP requests sent
	Throttled int // requests answered 429 Too Many Requests
}

// LoopConfig configures a Loop. Load and Connect are required.
type LoopConfig struct {
	// Load reads and validates the spec set. A spec.Problems error (alone
	// or wrapped) means the spec is invalid; the last good set stays in
	// force.
	Load func() (*spec.Set, error)
	// Connect builds the providers for one pass; log carries the pass id
	// for the providers' own logs. Wrap errors that retrying cannot fix
	// (such as a missing secret) with Terminal.
	Connect func(ctx context.Context, set *spec.Set, log *slog.Logger) (*Providers, error)
	// WatchPaths are the spec files and directories to watch; empty
	// disables watching. Directories are watched, not files, so editors'
	// atomic saves are seen.
	WatchPaths []string
	// Debounce is how long the watcher waits for the spec files to settle
	// before signalling a change; default DefaultDebounce.
	Debounce time.Duration
	// Clock drives the schedule and the backoff; nil means the system
	// clock.
	Clock Clock
	// Rand returns a number in [0, 1) for jitter; nil means math/rand/v2.
	Rand func() float64
	// BackoffBase is the wait after the first failed pass, doubled after
	// each further failure up to BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// Jitter is the fraction by which waits vary: a backoff is shortened
	// by up to this fraction, a scheduled run is delayed by up to this
	// fraction of the schedule's interval. Default DefaultJitter; negative
	// means none.
	Jitter float64
	// PassTimeout bounds one pass; default DefaultPassTimeout.
	PassTimeout time.Duration
	// Logger receives the loop's logs; nil means discard.
	Logger *slog.Logger
	// Notify, when set, hears about everything the loop does, from the
	// loop's goroutine. It must not block for long.
	Notify func(LoopEvent)
}

// LoopEventKind says what a LoopEvent reports.
type LoopEventKind string

// The loop's events.
const (
	EventSpecLoaded  LoopEventKind = "spec-loaded"  // a valid spec set is in force
	EventSpecInvalid LoopEventKind = "spec-invalid" // a new spec was rejected; Err says why
	EventPassStarted LoopEventKind = "pass-started" // Pass has ID, Reason and StartedAt
	EventPassDone    LoopEventKind = "pass-done"    // Pass is the finished report
	EventWaiting     LoopEventKind = "waiting"      // the loop is idle until Next (zero: until an event)
)

// LoopEvent is something the loop did.
type LoopEvent struct {
	Kind LoopEventKind
	Pass *PassReport
	Err  error
	Next time.Time
}

// PassOutcome is how a pass ended.
type PassOutcome string

// The pass outcomes.
const (
	OutcomeSuccess   PassOutcome = "success"    // changes applied, none failed
	OutcomeNoChanges PassOutcome = "no_changes" // nothing to do
	OutcomePartial   PassOutcome = "partial"    // some changes or mappings failed; the rest went through
	OutcomeSuspended PassOutcome = "suspended"  // planned only: the SyncPolicy suspends writes
	OutcomeFailed    PassOutcome = "failed"     // nothing applied: the pass failed
	OutcomeCanceled  PassOutcome = "canceled"   // the loop was stopped during the pass
)

// PassReport describes one pass: why it ran, what it planned and applied,
// and how it ended.
type PassReport struct {
	ID         string    `json:"id"`
	Reason     string    `json:"reason"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Duration is in seconds.
	Duration float64     `json:"duration_seconds"`
	Outcome  PassOutcome `json:"outcome,omitempty"`
	// Error is the pass's failure; Terminal says retrying cannot fix it,
	// so the loop waits for a spec change or an on-demand run.
	Error    string `json:"error,omitempty"`
	Terminal bool   `json:"terminal,omitempty"`
	// Summary counts the planned changes; nil when no plan was made.
	Summary *Summary `json:"summary,omitempty"`
	// Blocked counts changes a limit or guard stopped.
	Blocked int `json:"blocked"`
	Applied int `json:"applied"`
	Failed  int `json:"failed"`
	// Problems are the plan's per-object and per-mapping problems (first,
	// as in Plan.Errors), then the changes that failed to apply.
	Problems  []Problem `json:"problems,omitempty"`
	Suspended bool      `json:"suspended,omitempty"`
	// Plan is the pass's plan, when one was made.
	Plan *Plan `json:"-"`
	// Err is the pass's failure as an error.
	Err error `json:"-"`
}

// ExitCode maps the report to the -detailed-exitcode convention: 0 no
// changes, 2 changes planned (and applied, unless suspended), 1 failure or
// any failed change or mapping.
func (r *PassReport) ExitCode() int {
	switch {
	case r.Err != nil || r.Outcome == OutcomeFailed || r.Outcome == OutcomeCanceled || r.Outcome == OutcomePartial:
		return 1
	case r.Plan != nil && r.Plan.HasChanges():
		return 2
	}
	return 0
}

// ErrTerminal matches, with errors.Is, every error marked with Terminal.
var ErrTerminal = errors.New("retrying cannot fix this")

type terminalError struct{ err error }

func (e *terminalError) Error() string        { return e.err.Error() }
func (e *terminalError) Unwrap() error        { return e.err }
func (e *terminalError) Is(target error) bool { return target == ErrTerminal }

// Terminal marks err as one that retrying cannot fix: the loop stops
// retrying until the spec changes or a pass is asked for. Terminal(nil) is
// nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err}
}

// IsTerminal reports whether retrying cannot fix err: it is marked with
// Terminal, the spec is invalid, or a provider refused the credentials or
// the permission (Asset Panda 401/403 after re-authenticating; LDAP
// invalid credentials, insufficient access, or a server that demands
// stronger authentication).
func IsTerminal(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrTerminal) {
		return true
	}
	var ps spec.Problems
	if errors.As(err, &ps) {
		return true
	}
	var ae *assetpanda.Error
	if errors.As(err, &ae) && !ae.Retryable && (ae.Status == 401 || ae.Status == 403) {
		return true
	}
	return ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInsufficientAccessRights,
		ldap.LDAPResultStrongAuthRequired, ldap.LDAPResultConfidentialityRequired, ldap.LDAPResultInappropriateAuthentication)
}

// Loop is the long-running reconciler behind `pandasync run`. It runs one
// pass (read, plan, limits, apply) at a time: on the SyncPolicy schedule,
// when the spec changes, on demand (Trigger), and after failures with
// capped exponential backoff. It serves health, readiness, metrics and
// status over HTTP (Handler).
type Loop struct {
	cfg     LoopConfig
	log     *slog.Logger
	clock   Clock
	rand    func() float64
	metrics *loopMetrics
	trigger chan string

	mu     sync.Mutex // guards status and pending
	status Status
	// pending holds the reasons of on-demand requests not yet served.
	pending []string
}

// NewLoop returns a loop; Run starts it.
func NewLoop(cfg LoopConfig) (*Loop, error) {
	if cfg.Load == nil || cfg.Connect == nil {
		return nil, errors.New("loop: Load and Connect are required")
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffMax < cfg.BackoffBase {
		cfg.BackoffMax = cfg.BackoffBase
	}
	switch {
	case cfg.Jitter == 0:
		cfg.Jitter = DefaultJitter
	case cfg.Jitter < 0:
		cfg.Jitter = 0
	case cfg.Jitter > 1:
		cfg.Jitter = 1
	}
	if cfg.PassTimeout <= 0 {
		cfg.PassTimeout = DefaultPassTimeout
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	l := &Loop{
		cfg:     cfg,
		log:     cfg.Logger,
		clock:   cfg.Clock,
		rand:    cfg.Rand,
		metrics: newLoopMetrics(),
		trigger: make(chan string, 1),
		status:  Status{State: StateStarting},
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.clock == nil {
		l.clock = systemClock{}
	}
	if l.rand == nil {
		l.rand = rand.Float64
	}
	return l, nil
}

// Trigger asks for a pass as soon as the current one, if any, is done.
// Requests made while one is pending are served by the same pass. A
// trigger also reloads the spec. It never blocks.
func (l *Loop) Trigger(reason string) {
	l.mu.Lock()
	l.pending = append(l.pending, reason)
	l.mu.Unlock()
	select {
	case l.trigger <- reason:
	default:
	}
}

// takePending returns the reasons of the pending on-demand requests.
func (l *Loop) takePending() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	var s string
	for _, r := range l.pending {
		if seen[r] {
			continue
		}
		seen[r] = true
		if s != "" {
			s += ", "
		}
		s += r
	}
	l.pending = nil
	return s
}

// loopState is the state the loop's goroutine owns.
type loopState struct {
	set      *spec.Set
	schedule spec.Schedule
	due      time.Time // next scheduled run, before jitter
	jitter   time.Duration
	failures int       // consecutive failed passes
	retryAt  time.Time // zero when not backing off
	terminal bool      // wait for a spec change or an on-demand pass
}

// Run runs the loop until ctx is done. Cancelling ctx (SIGTERM) cancels
// the current pass, which starts no further write, and Run returns nil. Run
// returns an error only when it cannot start, e.g. the spec directory
// cannot be watched.
func (l *Loop) Run(ctx context.Context) error {
	var changes <-chan struct{}
	if len(l.cfg.WatchPaths) > 0 {
		w, err := NewWatcher(l.cfg.WatchPaths, l.cfg.Debounce, l.log.With("component", "watcher"))
		if err != nil {
			return err
		}
		defer w.Close()
		changes = w.Changes()
	}
	defer l.setState(StateStopped)

	var st loopState
	_ = l.reload(&st) // an invalid spec is reported; the loop waits for a fix
	for {
		wake, why := l.nextWake(&st)
		var reason string
		switch l.wait(ctx, &st, changes, wake, why) {
		case wokeStop:
			return nil
		case wokeSpecChange:
			if l.reload(&st) != nil {
				continue // the last good spec stays; nothing changed
			}
			reason = ReasonSpecChange
		case wokeTrigger:
			reason = l.takePending()
			if reason == "" {
				continue // served by the pass that took its request
			}
			_ = l.reload(&st) // on demand runs with the last good spec
		case wokeTimer:
			reason = why
		}
		if st.set == nil {
			continue // no valid spec yet: nothing to run
		}
		l.pass(ctx, &st, reason)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// wakeup is what ended a wait of the loop.
type wakeup int

const (
	wokeStop wakeup = iota
	wokeSpecChange
	wokeTrigger
	wokeTimer
)

// wait waits until ctx is done, the spec changes, a pass is asked for or
// wake comes (never, when zero).
func (l *Loop) wait(ctx context.Context, st *loopState, changes <-chan struct{}, wake time.Time, why string) wakeup {
	var timerC <-chan time.Time
	if !wake.IsZero() {
		timer := l.clock.NewTimer(max(wake.Sub(l.clock.Now()), 0))
		defer timer.Stop()
		timerC = timer.C()
	}
	l.idle(st, wake, why)
	select {
	case <-ctx.Done():
		return wokeStop
	case <-changes:
		return wokeSpecChange
	case <-l.trigger:
		return wokeTrigger
	case <-timerC:
		return wokeTimer
	}
}

// Once loads the spec and runs a single pass, for `pandasync run -once`.
// The error is non-nil when the spec cannot be loaded; a failed pass is in
// the report.
func (l *Loop) Once(ctx context.Context) (*PassReport, error) {
	var st loopState
	if err := l.reload(&st); err != nil {
		return nil, err
	}
	rep := l.pass(ctx, &st, ReasonOnce)
	return &rep, nil
}

// reload loads the spec. A valid set replaces the one in force, resets the
// schedule if it changed and ends a wait for a spec change; an invalid one
// is reported, the old set stays, and its error is returned.
func (l *Loop) reload(st *loopState) error {
	set, err := l.load()
	now := l.clock.Now()
	if err != nil {
		l.metrics.specReloads.WithLabelValues("invalid").Inc()
		l.metrics.specValid.Set(0)
		l.mu.Lock()
		l.status.Spec.Valid = false
		l.status.Spec.Problems = problemLines(err)
		l.status.Spec.FailedAt = now
		l.mu.Unlock()
		if st.set != nil {
			l.log.Error("the new spec is not valid; keeping the last good one", "error", err)
		} else {
			l.log.Error("the spec is not valid; waiting for a fix", "error", err)
		}
		l.notify(LoopEvent{Kind: EventSpecInvalid, Err: err})
		return err
	}
	l.metrics.specReloads.WithLabelValues("ok").Inc()
	l.metrics.specValid.Set(1)
	sched := set.Policy.Spec.Schedule
	if st.set == nil || sched != st.schedule || st.due.IsZero() {
		st.schedule = sched
		st.due = sched.Next(now)
		st.jitter = 0 // the first run is at start; later ones are jittered
	}
	st.set = set
	st.terminal = false
	l.mu.Lock()
	l.status.Spec = SpecStatus{Valid: true, Files: set.Files, LoadedAt: now}
	l.mu.Unlock()
	l.log.Info("spec loaded", "files", len(set.Files), "user_mappings", len(set.UserMappings),
		"collection_mappings", len(set.CollectionMappings), "suspend", set.Policy.Spec.Suspend,
		"schedule_start", sched.Start, "schedule_every", sched.Every.Duration.String())
	l.notify(LoopEvent{Kind: EventSpecLoaded})
	return nil
}

// load calls cfg.Load, turning a panic into an error.
func (l *Loop) load() (set *spec.Set, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("loading the spec panicked: %v", r)
		}
	}()
	set, err = l.cfg.Load()
	if err == nil && set == nil {
		err = errors.New("loading the spec returned no set")
	}
	return set, err
}

func problemLines(err error) []string {
	var ps spec.Problems
	if errors.As(err, &ps) {
		lines := make([]string, len(ps))
		for i, p := range ps {
			lines[i] = p.String()
		}
		return lines
	}
	return []string{err.Error()}
}

// every is the schedule's interval with the default applied.
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
	if st.set == nil || st.terminal {
		return time.Time{}, ""
	}
	wake, why := st.due.Add(st.jitter), ReasonSchedule
	if !st.retryAt.IsZero() && st.retryAt.Before(wake) {
		wake, why = st.retryAt, ReasonRetry
	}
	return wake, why
}

// maxLoggedProblems caps the problems logged one by one per pass.
const maxLoggedProblems = 20

// pass runs one pass and updates the schedule, the backoff and the status.
func (l *Loop) pass(ctx context.Context, st *loopState, reason string) PassReport {
	start := l.clock.Now()
	rep := PassReport{ID: newPlanID(), Reason: reason, StartedAt: start}
	log := l.log.With("pass", rep.ID)
	l.mu.Lock()
	l.status.State = StateRunning
	l.status.Current = &PassReport{ID: rep.ID, Reason: reason, StartedAt: start}
	l.status.NextRun, l.status.NextRunReason = time.Time{}, ""
	l.mu.Unlock()
	l.notify(LoopEvent{Kind: EventPassStarted, Pass: &PassReport{ID: rep.ID, Reason: reason, StartedAt: start}})
	log.Info("pass started", "reason", reason)

	// The schedule counts this pass as the scheduled one if that was due.
	for ev := every(st.schedule); !st.due.After(start); {
		st.due = st.due.Add(ev)
		st.jitter = l.scheduleJitter(st.schedule)
	}

	pctx, cancel := context.WithTimeout(ctx, l.cfg.PassTimeout)
	err := l.safePass(pctx, st.set, &rep, log)
	if err == nil && pctx.Err() != nil && ctx.Err() == nil {
		err = pctx.Err()
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("pass did not finish within %s: %w", l.cfg.PassTimeout, err)
	}
	cancel()

	end := l.clock.Now()
	rep.FinishedAt = end
	rep.Duration = end.Sub(start).Seconds()
	switch {
	case ctx.Err() != nil:
		rep.Outcome = OutcomeCanceled
		if err == nil {
			err = ctx.Err()
		}
	case err != nil:
		rep.Outcome = OutcomeFailed
	}
	rep.Err = err
	if err != nil {
		rep.Error = err.Error()
		rep.Terminal = IsTerminal(err)
	}

	// Backoff and terminal state.
	switch rep.Outcome {
	case OutcomeCanceled:
	case OutcomeFailed:
		st.failures++
		if rep.Terminal {
			st.terminal = true
			st.retryAt = time.Time{}
		} else {
			st.retryAt = end.Add(l.backoff(st.failures))
		}
	default:
		st.failures = 0
		st.retryAt = time.Time{}
		st.terminal = false
	}

	l.metrics.pass(&rep, end)
	l.metrics.consecutiveFailures.Set(float64(st.failures))
	l.mu.Lock()
	l.status.Current = nil
	last := rep
	last.Plan = nil // the status keeps the summary, not every change
	l.status.LastPass = &last
	l.status.Passes++
	l.status.ConsecutiveFailures = st.failures
	if rep.Outcome != OutcomeFailed && rep.Outcome != OutcomeCanceled {
		l.status.LastSuccess = end
	}
	if rep.Outcome != OutcomeCanceled {
		l.status.Ready = true
	}
	l.mu.Unlock()

	attrs := []any{"reason", reason, "outcome", rep.Outcome, "duration", end.Sub(start).Round(time.Millisecond).String()}
	if rep.Summary != nil {
		attrs = append(attrs, "create", rep.Summary.Create, "update", rep.Summary.Update,
			"deactivate", rep.Summary.Deactivate, "reactivate", rep.Summary.Reactivate)
	}
	attrs = append(attrs, "applied", rep.Applied, "failed", rep.Failed, "blocked", rep.Blocked, "problems", len(rep.Problems))
	switch rep.Outcome {
	case OutcomeFailed:
		attrs = append(attrs, "error", err, "terminal", rep.Terminal, "consecutive_failures", st.failures)
		if !st.retryAt.IsZero() {
			attrs = append(attrs, "retry_in", st.retryAt.Sub(end).Round(time.Millisecond).String())
		} else {
			attrs = append(attrs, "retry", "after the spec changes or on demand (SIGHUP, POST /sync)")
		}
		log.Error("pass failed", attrs...)
	case OutcomeCanceled:
		log.Warn("pass canceled", attrs...)
	case OutcomePartial:
		for i, p := range rep.Problems {
			if i == maxLoggedProblems {
				log.Warn("more problems; see /status", "count", len(rep.Problems)-i)
				break
			}
			log.Warn("problem", "mapping", p.Mapping, "object", p.Object, "key", p.Key, "message", p.Message)
		}
		log.Warn("pass finished with problems", attrs...)
	default:
		log.Info("pass finished", attrs...)
	}
	if ctx.Err() == nil {
		wake, why := l.nextWake(st)
		l.setWaiting(st, wake, why)
	}
	done := rep
	l.notify(LoopEvent{Kind: EventPassDone, Pass: &done})
	return rep
}

// safePass runs doPass, turning a panic into an error.
func (l *Loop) safePass(ctx context.Context, set *spec.Set, rep *PassReport, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pass panicked: %v", r)
			log.Error("panic in pass", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	return l.doPass(ctx, set, rep, log)
}

// doPass is one pass: connect, read and plan, check limits (MakePlan does),
// apply. It fills in rep; the error is the pass's failure.
func (l *Loop) doPass(ctx context.Context, set *spec.Set, rep *PassReport, log *slog.Logger) error {
	prov, err := l.cfg.Connect(ctx, set, log)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if prov == nil || prov.Directory == nil || prov.Target == nil {
		return errors.New("connect returned no providers")
	}
	if prov.Close != nil {
		defer prov.Close()
	}
	var before TargetStats
	if prov.Stats != nil {
		before = prov.Stats()
		defer func() {
			after := prov.Stats()
			l.metrics.apiRequests.Add(float64(max(after.Requests-before.Requests, 0)))
			l.metrics.apiThrottled.Add(float64(max(after.Throttled-before.Throttled, 0)))
		}()
	}
	dir := &countingDirectory{DirectoryReader: prov.Directory, metrics: l.metrics}

	p, err := MakePlan(ctx, set, dir, prov.Target, Options{Now: l.clock.Now})
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	rep.Plan = p
	sum := p.Summary
	rep.Summary = &sum
	rep.Blocked = len(p.Blocked)
	rep.Problems = append(rep.Problems, p.Errors...)
	rep.Suspended = p.Suspended
	l.metrics.blocked(p.Blocked)

	switch {
	case p.Suspended || set.Policy.Spec.Suspend:
		rep.Outcome = OutcomeSuspended
	case !p.HasChanges():
		rep.Outcome = OutcomeNoChanges
	default:
		res, err := Apply(ctx, p, set, prov.Target, metricsObserver{l.metrics})
		if res != nil {
			rep.Applied, rep.Failed = res.Applied, res.Failed
			rep.Problems = append(rep.Problems, res.Problems()...)
		}
		if errors.Is(err, ErrSuspended) {
			rep.Outcome = OutcomeSuspended
			break
		}
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		rep.Outcome = OutcomeSuccess
	}
	if rep.Outcome != OutcomeSuspended && len(rep.Problems) > 0 {
		rep.Outcome = OutcomePartial
	}
	return nil
}

// countingDirectory counts the entries the directory reads return.
type countingDirectory struct {
	DirectoryReader
	metrics *loopMetrics
}

func (c *countingDirectory) Read(ctx context.Context, q activedirectory.Query) (*activedirectory.Result, error) {
	res, err := c.DirectoryReader.Read(ctx, q)
	if res != nil {
		c.metrics.ldapEntries.Add(float64(res.Stats.Entries))
	}
	return res, err
}

func (l *Loop) notify(ev LoopEvent) {
	if l.cfg.Notify != nil {
		l.cfg.Notify(ev)
	}
}

// idle records that the loop waits until wake (zero: for an event).
func (l *Loop) idle(st *loopState, wake time.Time, why string) {
	l.setWaiting(st, wake, why)
	l.notify(LoopEvent{Kind: EventWaiting, Next: wake})
}

// setWaiting sets the status of a loop waiting until wake.
func (l *Loop) setWaiting(st *loopState, wake time.Time, why string) {
	l.mu.Lock()
	switch {
	case st.set == nil:
		l.status.State = StateWaitingForSpec
	case st.terminal:
		l.status.State = StateWaitingForSpec
	case why == ReasonRetry:
		l.status.State = StateBackoff
	default:
		l.status.State = StateIdle
	}
	l.status.NextRun, l.status.NextRunReason = wake, why
	l.mu.Unlock()
}

func (l *Loop) setState(s State) {
	l.mu.Lock()
	l.status.State = s
	l.status.NextRun, l.status.NextRunReason = time.Time{}, ""
	l.mu.Unlock()
}

// State is what the loop is doing.
type State string

// The loop's states.
const (
	StateStarting       State = "starting"
	StateIdle           State = "idle"             // waiting for the next scheduled run or an event
	StateRunning        State = "running"          // a pass is running
	StateBackoff        State = "backoff"          // waiting to retry a failed pass
	StateWaitingForSpec State = "waiting_for_spec" // no valid spec, or a failure retrying cannot fix
	StateStopped        State = "stopped"
)

// SpecStatus describes the spec in force and the last attempt to load one.
type SpecStatus struct {
	// Valid is false when the last load failed; the set loaded at
	// LoadedAt, if any, stays in force.
	Valid    bool      `json:"valid"`
	Files    []string  `json:"files,omitempty"`
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	FailedAt time.Time `json:"failed_at,omitzero"`
	// Problems lists what is wrong with the rejected spec.
	Problems []string `json:"problems,omitempty"`
}

// Status is the loop's state, as /status shows it.
type Status struct {
	State State `json:"state"`
	// Ready is set once the first pass has finished.
	Ready bool       `json:"ready"`
	Spec  SpecStatus `json:"spec"`
	// Current is the running pass, if any.
	Current  *PassReport `json:"current,omitempty"`
	LastPass *PassReport `json:"last_pass,omitempty"`
	// LastSuccess is when a pass last finished without failing.
	LastSuccess         time.Time `json:"last_success,omitzero"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	Passes              int       `json:"passes"`
	NextRun             time.Time `json:"next_run,omitzero"`
	NextRunReason       string    `json:"next_run_reason,omitempty"`
}

// Status returns a copy of the loop's status.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status
	s.Spec.Files = append([]string(nil), s.Spec.Files...)
	s.Spec.Problems = append([]string(nil), s.Spec.Problems...)
	if s.Current != nil {
		c := *s.Current
		s.Current = &c
	}
	if s.LastPass != nil {
		p := *s.LastPass
		s.LastPass = &p
	}
	return s
}
