package loop

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pandasync/pandasync/spec"
)

// Loop defaults, used when the Config leaves a setting zero.
const (
	DefaultBackoffBase     = 5 * time.Second
	DefaultBackoffMax      = 5 * time.Minute
	DefaultJitter          = 0.1
	DefaultPassTimeout     = 2 * time.Hour
	DefaultShutdownTimeout = 30 * time.Second
	DefaultDebounce        = 300 * time.Millisecond
)

// Reasons a pass runs, as reported in logs, /status and the history.
// Trigger takes any other reason, such as "SIGHUP" or "POST /sync".
const (
	ReasonStartup    = "start-up"         // the first pass, at once (SyncPolicy runAtStart)
	ReasonSchedule   = "schedule"         // the SyncPolicy schedule
	ReasonRetry      = "retry"            // backoff after a failed pass
	ReasonQuarantine = "quarantine retry" // the slow retry of a quarantined loop
	ReasonSpecChange = "spec change"      // the spec files changed
	ReasonOnce       = "once"             // pandasync run -once
)

// ErrStopping is the gate's error while pandasync stops: the write batch in
// flight completes and no further write starts.
var ErrStopping = errors.New("pandasync is stopping; no further write starts")

// Config configures a Loop. Load and Reconciler are required.
type Config struct {
	// Load reads and validates the spec set. A spec.Problems error (alone
	// or wrapped) means the spec is invalid; the last good set stays in
	// force.
	Load func() (*spec.Set, error)
	// Reconciler does the work of a pass (see Syncer).
	Reconciler Reconciler
	// WatchPaths are the spec files and directories to watch; empty
	// disables watching.
	WatchPaths []string
	// Debounce is how long the watcher waits for the spec files to settle;
	// default DefaultDebounce.
	Debounce time.Duration
	// Revision reads the git revision of a spec set; nil means none.
	Revision func(set *spec.Set) (Revision, error)
	// Clock drives the schedule, the backoff and the notification rate
	// limit; nil means the system clock.
	Clock Clock
	// Rand returns a number in [0, 1) for jitter; nil means math/rand/v2.
	Rand func() float64
	// BackoffBase is the wait after the first failed pass, doubled after
	// each further failure up to BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// Jitter is the fraction by which waits vary: a backoff is shortened by
	// up to this fraction, a scheduled run is delayed by up to this
	// fraction of the schedule's interval. Default DefaultJitter; negative
	// means none.
	Jitter float64
	// PassTimeout bounds one pass; default DefaultPassTimeout.
	PassTimeout time.Duration
	// ShutdownTimeout bounds how long a stopping loop lets the pass finish
	// its write batch in flight before cancelling it; default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Gate, when set, is asked before every write batch after the loop's
	// own checks (stopping, audit log): a non-nil error stops the pass's
	// writes (see reconcile.ApplyOptions.Gate). Leader election fences a
	// leader that lost its lease here.
	Gate func(ctx context.Context) error
	// WriteWithin, when set, bounds how long a write batch that Gate let
	// through may take (see reconcile.ApplyOptions.WriteWithin): a leader
	// bounds it by what is left of its fence window.
	WriteWithin func() (time.Duration, bool)
	// Leadership, when set, is the leader election this replica takes part
	// in: passes run only while it leads (see Leadership).
	Leadership Leadership
	// Audit, when set, receives one entry per attempted write.
	Audit *Audit
	// History keeps the finished passes; nil means in memory only.
	History *History
	// StateDir is shown in /status.
	StateDir string
	// Resolver reads the webhook URLs and the admin token; the zero value
	// uses the process environment and files.
	Resolver spec.Resolver
	// HTTPClient posts webhooks; nil means a client with NotifyTimeout.
	HTTPClient *http.Client
	// Host names this instance in notifications; empty means os.Hostname.
	Host string
	// Logger receives the loop's logs; nil means discard.
	Logger *slog.Logger
	// Events, when set, hears about everything the loop does, from the
	// loop's goroutine. It must not block for long.
	Events func(Event)
}

// EventKind says what an Event reports.
type EventKind string

// The loop's events.
const (
	EventSpecLoaded  EventKind = "spec-loaded"  // a valid spec set is in force
	EventSpecInvalid EventKind = "spec-invalid" // a new spec was rejected; Err says why
	EventPassStarted EventKind = "pass-started" // Pass has ID, Reason and StartedAt
	EventPassDone    EventKind = "pass-done"    // Pass is the finished report
	EventWaiting     EventKind = "waiting"      // idle until Next (zero: until an event), for Reason
)

// Event is something the loop did.
type Event struct {
	Kind   EventKind
	Pass   *PassReport
	Err    error
	Next   time.Time
	Reason string
}

// Loop is the long-running reconciler behind `pandasync run`. It runs one
// pass at a time through its Reconciler: at start-up, on the SyncPolicy
// schedule, when the spec changes, on demand (Trigger), and after failures
// with capped exponential backoff, slowing down to quarantine after many.
// It keeps the audit trail, the pass history, status, metrics and
// notifications, and serves them over HTTP (Handler).
type Loop struct {
	cfg      Config
	log      *slog.Logger
	clock    Clock
	rand     func() float64
	metrics  *metrics
	notifier *notifier
	history  *History
	trigger  chan string
	nudge    chan struct{} // LeadershipChanged: look again, run nothing by itself
	host     string
	// stopping is set once Run's context is done: the gate refuses every
	// further write batch.
	stopping atomic.Bool
	// leaderEpoch counts LeadershipChanged calls; passEpoch is its value
	// at the last pass (owned by the loop's goroutine).
	leaderEpoch atomic.Uint64
	passEpoch   uint64

	mu     sync.Mutex // guards the fields below
	status Status
	// set is the spec set in force; nil before one has loaded.
	set *spec.Set
	// pending holds the reasons of on-demand requests not yet served.
	pending []string
	// token is the admin token in force ("" when none); tokenErr says why
	// the configured one cannot be read.
	token    string
	tokenSet bool
	tokenErr error
}

// New returns a loop; Run or Once starts it.
func New(cfg Config) (*Loop, error) {
	if cfg.Load == nil || cfg.Reconciler == nil {
		return nil, errors.New("loop: Load and Reconciler are required")
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffBase)
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
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	l := &Loop{
		cfg:     cfg,
		log:     cfg.Logger,
		clock:   cfg.Clock,
		rand:    cfg.Rand,
		metrics: newMetrics(),
		history: cfg.History,
		trigger: make(chan string, 1),
		nudge:   make(chan struct{}, 1),
		host:    cfg.Host,
		status:  Status{State: StateStarting, StateDir: cfg.StateDir},
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
	if l.history == nil {
		l.history, _ = OpenHistory("", 0) // memory only: cannot fail
	}
	if l.host == "" {
		l.host, _ = os.Hostname()
	}
	l.notifier = newNotifier(l.clock, l.log.With("component", "webhooks"), cfg.HTTPClient, l.metrics)
	if last := l.history.Last(); last != nil {
		l.status.LastPass = last
	}
	return l, nil
}

// History is the record of recent passes, kept across restarts when the
// loop has a state directory.
func (l *Loop) History() *History { return l.history }

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
	var rs []string
	seen := map[string]bool{}
	for _, r := range l.pending {
		if !seen[r] {
			seen[r] = true
			rs = append(rs, r)
		}
	}
	l.pending = nil
	return strings.Join(rs, ", ")
}

// Run runs the loop until ctx is done, then stops gracefully: the write
// batch in flight completes, no further write starts, and after
// ShutdownTimeout the pass is cancelled. Run returns nil then. It returns
// an error only when it cannot start, e.g. the spec directory cannot be
// watched.
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
	defer l.notifier.close(5 * time.Second)
	defer l.setStopped()

	var st loopState
	_ = l.reload(&st, false) // an invalid spec is logged and shown; the loop waits
	for {
		wake, why := l.nextWake(&st)
		var reason string
		switch l.wait(ctx, &st, changes, wake, why) {
		case wokeStop:
			return nil
		case wokeSpecChange:
			if l.reload(&st, false) != nil {
				continue // the last good spec stays; nothing changed
			}
			reason = ReasonSpecChange
		case wokeTrigger:
			reason = l.takePending()
			if reason == "" {
				continue // served by the pass that took its request
			}
			_ = l.reload(&st, false) // on demand runs with the last good spec
		case wokeTimer:
			reason = why
		case wokeNudge:
			continue // leadership changed: look again
		}
		if st.set == nil {
			continue // no valid spec yet: nothing to run
		}
		if l.standby() != "" {
			continue // another replica leads: it runs the passes
		}
		l.pass(ctx, &st, reason, false)
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
	wokeNudge
)

// wait waits until ctx is done, the spec changes, a pass is asked for or
// wake comes (never, when zero).
func (l *Loop) wait(ctx context.Context, st *loopState, changes <-chan struct{}, wake time.Time, why string) wakeup {
	// The status says what the loop waits for before the timer exists, so
	// that whoever sees the timer sees the status too.
	l.refresh(st, wake, why)
	var timerC <-chan time.Time
	if !wake.IsZero() {
		timer := l.clock.NewTimer(max(wake.Sub(l.clock.Now()), 0))
		defer timer.Stop()
		timerC = timer.C()
	}
	l.event(Event{Kind: EventWaiting, Next: wake, Reason: why})
	select {
	case <-ctx.Done():
		return wokeStop
	case <-changes:
		return wokeSpecChange
	case <-l.trigger:
		return wokeTrigger
	case <-timerC:
		return wokeTimer
	case <-l.nudge:
		return wokeNudge
	}
}

// Once loads the spec and runs a single pass, for `pandasync run -once`.
// The error is non-nil when the spec cannot be loaded; it is returned, not
// logged. A failed pass is in the report, and logged once by the pass.
// Cancelling ctx stops the pass as Run does. Once sends no notification.
func (l *Loop) Once(ctx context.Context) (*PassReport, error) {
	var st loopState
	if err := l.reload(&st, true); err != nil {
		return nil, err
	}
	return l.pass(ctx, &st, ReasonOnce, true), nil
}

// reload loads the spec. A valid set replaces the one in force, resets the
// schedule if it changed and ends a stall; an invalid one is reported, the
// old set stays, and its error is returned. With once set, nothing waits
// for a fix, so a failure is only returned, not logged.
func (l *Loop) reload(st *loopState, once bool) error {
	set, err := l.load()
	now := l.clock.Now()
	if err != nil {
		l.metrics.specReloads.WithLabelValues("invalid").Inc()
		l.metrics.specValid.Set(0)
		l.mu.Lock()
		l.status.Spec.Valid = false
		l.status.Spec.Problems = problemLines(err)
		l.status.Spec.Details = problemDetails(err)
		l.status.Spec.FailedAt = now
		l.mu.Unlock()
		switch {
		case once:
		case st.set != nil:
			l.log.Error("the new spec is not valid; the last good one stays in force", "error", err)
		default:
			l.log.Error("the spec is not valid; no pass runs until a valid one loads", "error", err, "hint", l.fixHint())
		}
		l.event(Event{Kind: EventSpecInvalid, Err: err})
		return err
	}
	l.metrics.specReloads.WithLabelValues("ok").Inc()
	l.metrics.specValid.Set(1)
	pol := set.Policy.Spec
	// Under change tracking a pass runs every changeTracking.every.
	sch := pol.PassSchedule()
	if st.set == nil || sch.Start != st.schedule.Start || sch.Every != st.schedule.Every {
		st.schedule = sch
		st.due = sch.Next(now)
		st.jitter = 0 // the first slot is on time; later ones are jittered
	}
	if st.set == nil && !once {
		st.startup = pol.RunAtStart == nil || *pol.RunAtStart
	}
	st.set = set
	st.stalled = false
	rev := l.revision(set)
	l.mu.Lock()
	l.status.Spec = SpecStatus{Valid: true, Files: set.Files, LoadedAt: now, Revision: rev.String(), Dirty: rev.Dirty}
	l.set = set
	l.mu.Unlock()
	if !once {
		l.configure(set)
	}
	l.log.Info("spec loaded", "files", len(set.Files), "user_mappings", len(set.UserMappings),
		"collection_mappings", len(set.CollectionMappings), "suspend", pol.Suspend,
		"schedule_start", sch.Start, "schedule_every", sch.Every.Duration.String(),
		"change_tracking", pol.ChangeTracking.Method,
		"revision", rev.String(), "dirty", rev.Dirty)
	l.event(Event{Kind: EventSpecLoaded})
	return nil
}

// fixHint says what makes the loop look at the spec again.
func (l *Loop) fixHint() string {
	if len(l.cfg.WatchPaths) > 0 {
		return "fix the files (they are watched), or send SIGHUP or POST /sync after fixing them"
	}
	return "send SIGHUP or POST /sync after fixing the files"
}

// revision reads the set's git revision and records it in the metrics.
func (l *Loop) revision(set *spec.Set) Revision {
	var rev Revision
	if l.cfg.Revision != nil {
		var err error
		rev, err = l.cfg.Revision(set)
		if err != nil {
			l.log.Warn("the spec's git revision cannot be read", "error", err)
		}
	}
	l.metrics.setRevision(rev)
	return rev
}

// configure resolves the admin token and the webhook URLs of the spec in
// force. What cannot be resolved is logged once, here.
func (l *Loop) configure(set *spec.Set) {
	pol := set.Policy.Spec
	var token string
	var tokenErr error
	if !pol.Admin.Token.IsZero() {
		t, err := l.cfg.Resolver.Resolve(pol.Admin.Token)
		token = strings.TrimSpace(t)
		if err == nil && token == "" {
			err = errors.New("it is empty")
		}
		if err != nil {
			tokenErr = fmt.Errorf("spec.admin.token: %w", err)
			token = ""
			l.log.Error("the admin token cannot be read; requests that change something are refused until it can", "error", tokenErr)
		}
	}
	l.mu.Lock()
	l.token, l.tokenSet, l.tokenErr = token, !pol.Admin.Token.IsZero(), tokenErr
	l.mu.Unlock()

	var hooks []webhook
	for _, w := range pol.Webhooks {
		u, err := l.cfg.Resolver.Resolve(w.URL)
		if err == nil && strings.TrimSpace(u) == "" {
			err = errors.New("it is empty")
		}
		if err != nil {
			l.log.Error("webhook URL cannot be read; the webhook is off until it can", "webhook", w.Name, "error", err)
			continue
		}
		hooks = append(hooks, webhook{name: w.Name, url: strings.TrimSpace(u), format: w.Format})
	}
	l.notifier.configure(hooks)
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

// Spec returns the spec set in force, or nil before a valid one has
// loaded. The set is shared: callers must not change it.
func (l *Loop) Spec() *spec.Set {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set
}

// problemDetails lists a rejected spec's problems with their file and
// field; nil when err is not a spec.Problems.
func problemDetails(err error) []SpecProblem {
	var ps spec.Problems
	if !errors.As(err, &ps) {
		return nil
	}
	out := make([]SpecProblem, len(ps))
	for i, p := range ps {
		out[i] = SpecProblem{File: p.File, Document: p.Document, Line: p.Line, Kind: p.Kind, Name: p.Name, Path: p.Path, Message: p.Message}
	}
	return out
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

func (l *Loop) event(ev Event) {
	if l.cfg.Events != nil {
		l.cfg.Events(ev)
	}
}

func (l *Loop) setStopped() {
	l.mu.Lock()
	l.status.State, l.status.StateReason = StateStopped, ""
	l.status.NextRun, l.status.NextRunReason = time.Time{}, ""
	l.mu.Unlock()
	l.metrics.setState(StateStopped)
}

func newPassID() string {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		return fmt.Sprintf("%016x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}
