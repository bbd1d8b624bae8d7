package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"
)

// Defaults of Config, client-go's.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// ErrNotLeader is the error of Fence when this process must not write.
var ErrNotLeader = errors.New("not the leader")

// LeaseClient is what the elector needs from the API; *Client has it.
type LeaseClient interface {
	GetLease(ctx context.Context, ns, name string) (*Lease, error)
	CreateLease(ctx context.Context, l *Lease) (*Lease, error)
	UpdateLease(ctx context.Context, l *Lease) (*Lease, error)
}

// Config configures an Elector. Zero durations take the defaults.
type Config struct {
	Client    LeaseClient
	Namespace string
	Name      string
	// Identity names this candidate in the Lease's holderIdentity; it must
	// be unique among the candidates. Default: the host name (a pod's name)
	// and a random suffix, so that a restarted process is a new holder.
	Identity string

	// LeaseDuration is how long followers wait, from the moment they last
	// saw the Lease change, before they take it over: whole seconds, as
	// the Lease stores it.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives up leading.
	RenewDeadline time.Duration
	// RetryPeriod is the time between attempts to acquire or renew.
	RetryPeriod time.Duration
	// FenceMargin is subtracted from LeaseDuration to give the time after
	// the last successful renewal during which Fence lets this process
	// write. It must cover the longest write batch. Default:
	// LeaseDuration - RenewDeadline.
	FenceMargin time.Duration

	// OnStartedLeading, when set, runs in its own goroutine each time this
	// process becomes the leader. Its context ends when leadership ends
	// (lost, or Run's context done); the Lease is renewed until it returns
	// and is released after it returns on a clean stop.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading, when set, is called after OnStartedLeading has
	// returned at the end of each term.
	OnStoppedLeading func()
	// OnNewLeader, when set, is called whenever the observed holder changes
	// ("" when nobody holds the Lease).
	OnNewLeader func(identity string)

	Logger *slog.Logger
}

// Elector campaigns for a Lease and reports whether this process leads.
// Its methods are safe for concurrent use.
type Elector struct {
	cfg Config
	log *slog.Logger
	now func() time.Time // monotonic; a test hook

	// testHookRenew, when set, runs before each renewal attempt; a test
	// blocks in it to pause the leader.
	testHookRenew func()
	// crashOnStop makes a stop abandon the Lease instead of releasing it,
	// as a killed process does; a test hook.
	crashOnStop bool

	mu           sync.Mutex
	observed     *Lease    // the Lease as last read or written
	observedTime time.Time // when observed.Spec last changed, on our clock
	leading      bool
	lastRenew    time.Time // when the last successful acquire or renew was sent
	leader       string    // holder of the observed Lease
	lastErr      string    // the last attempt's error, logged on change
}

// New checks cfg, applies the defaults and returns an Elector.
func New(cfg Config) (*Elector, error) {
	if cfg.Client == nil {
		return nil, errors.New("leader election: no client")
	}
	if cfg.Namespace == "" || cfg.Name == "" {
		return nil, errors.New("leader election: the lease needs a namespace and a name")
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = DefaultRenewDeadline
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	if cfg.FenceMargin == 0 {
		cfg.FenceMargin = cfg.LeaseDuration - cfg.RenewDeadline
	}
	if err := checkTiming(cfg); err != nil {
		return nil, err
	}
	if cfg.Identity == "" {
		id, err := defaultIdentity()
		if err != nil {
			return nil, err
		}
		cfg.Identity = id
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)
	return &Elector{cfg: cfg, log: log, now: time.Now}, nil
}

// checkTiming applies client-go's rule, LeaseDuration > RenewDeadline >
// 1.2 × RetryPeriod, wants LeaseDuration in whole seconds as the Lease
// stores it, and keeps Fence's window longer than RetryPeriod so that a
// healthy leader always passes it.
func checkTiming(c Config) error {
	switch {
	case c.LeaseDuration < time.Second:
		// leaseDurationSeconds is whole seconds.
		return fmt.Errorf("leader election: lease duration %s is shorter than 1s", c.LeaseDuration)
	case c.LeaseDuration%time.Second != 0:
		// Followers wait the whole seconds written in the Lease, while
		// Fence's window is counted from LeaseDuration: a fraction would
		// let a leader write after a follower took over.
		return fmt.Errorf("leader election: lease duration %s is not a whole number of seconds", c.LeaseDuration)
	case c.RetryPeriod <= 0:
		return fmt.Errorf("leader election: retry period %s is not positive", c.RetryPeriod)
	case c.LeaseDuration <= c.RenewDeadline:
		return fmt.Errorf("leader election: lease duration %s must be longer than the renew deadline %s", c.LeaseDuration, c.RenewDeadline)
	case float64(c.RenewDeadline) <= 1.2*float64(c.RetryPeriod):
		return fmt.Errorf("leader election: renew deadline %s must be longer than 1.2 × the retry period %s", c.RenewDeadline, c.RetryPeriod)
	case c.FenceMargin <= 0:
		return fmt.Errorf("leader election: fence margin %s is not positive", c.FenceMargin)
	case c.LeaseDuration-c.FenceMargin <= c.RetryPeriod:
		return fmt.Errorf("leader election: lease duration %s minus the fence margin %s must be longer than the retry period %s", c.LeaseDuration, c.FenceMargin, c.RetryPeriod)
	}
	return nil
}

func defaultIdentity() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("leader election identity: %w", err)
	}
	return fmt.Sprintf("%s_%08x", host, rand.Uint32()), nil
}

// Identity is this candidate's holderIdentity.
func (e *Elector) Identity() string { return e.cfg.Identity }

// IsLeader reports whether this process currently believes it leads. A
// writer asks Fence instead.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading
}

// Leader is the holder of the Lease as last observed; "" when nobody holds
// it or it has not been read yet.
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Fence returns nil when this process may write now: it leads, and its last
// successful renewal, on the monotonic clock from the moment it was sent, is
// younger than LeaseDuration - FenceMargin. Otherwise the error wraps
// ErrNotLeader and says why. Call it before every write batch.
func (e *Elector) Fence(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := e.now()
	e.mu.Lock()
	leading, last, holder := e.leading, e.lastRenew, e.leader
	e.mu.Unlock()
	if !leading {
		if holder == "" || holder == e.cfg.Identity {
			return fmt.Errorf("%w: this replica does not hold lease %s/%s (any more)", ErrNotLeader, e.cfg.Namespace, e.cfg.Name)
		}
		return fmt.Errorf("%w: %s holds lease %s/%s", ErrNotLeader, holder, e.cfg.Namespace, e.cfg.Name)
	}
	window := e.cfg.LeaseDuration - e.cfg.FenceMargin
	if age := now.Sub(last); age >= window {
		return fmt.Errorf("%w: lease %s/%s was last renewed %s ago, and this replica may write for %s after a renewal; another replica may have taken over",
			ErrNotLeader, e.cfg.Namespace, e.cfg.Name, age.Round(time.Millisecond), window)
	}
	return nil
}

// WriteWithin is how long a write that Fence has just let through may
// take: what is left of the fence window since the last renewal, measured
// on this process's monotonic clock. Apply runs each write batch under it
// (reconcile.ApplyOptions.WriteWithin), so that waits and retries inside
// a batch cannot carry a write past the window. It is 0 when this replica
// does not lead or the window has passed.
func (e *Elector) WriteWithin() (time.Duration, bool) {
	now := e.now()
	e.mu.Lock()
	leading, last := e.leading, e.lastRenew
	e.mu.Unlock()
	if !leading {
		return 0, true
	}
	return max(0, e.cfg.LeaseDuration-e.cfg.FenceMargin-now.Sub(last)), true
}

// Status is what /status shows about the election.
type Status struct {
	Lease    string `json:"lease"`    // namespace/name
	Identity string `json:"identity"` // this replica's
	Leader   string `json:"leader"`   // the holder observed; "" when none
	Leading  bool   `json:"leading"`
	// LastRenewal is when this replica last renewed the Lease, while it
	// leads.
	LastRenewal *time.Time `json:"last_renewal,omitempty"`
	// Transitions is the Lease's leaseTransitions as last observed.
	Transitions int32 `json:"transitions"`
}

// Status reports the election's state.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Status{Lease: e.cfg.Namespace + "/" + e.cfg.Name, Identity: e.cfg.Identity, Leader: e.leader, Leading: e.leading}
	if e.leading {
		t := e.lastRenew.Round(0)
		st.LastRenewal = &t
	}
	if e.observed != nil {
		st.Transitions = e.observed.Spec.LeaseTransitions
	}
	return st
}

// Run campaigns until ctx is done: it acquires the Lease when it is free or
// has expired, leads while it can renew it, and campaigns again after
// losing it. On a clean stop it waits for OnStartedLeading to return and
// then releases the Lease. It returns nil once ctx is done.
func (e *Elector) Run(ctx context.Context) error {
	for {
		if !e.acquire(ctx) {
			return nil
		}
		e.lead(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// acquire tries until it holds the Lease (true) or ctx is done (false).
func (e *Elector) acquire(ctx context.Context) bool {
	for {
		if e.tryAcquireOrRenew(ctx) {
			return true
		}
		t := time.NewTimer(e.nextAttempt())
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// nextAttempt is how long a follower waits: RetryPeriod shortened by up to
// a quarter at random, so that candidates spread out, and no later than
// the moment the observed Lease expires.
func (e *Elector) nextAttempt() time.Duration {
	wait := e.cfg.RetryPeriod - time.Duration(rand.Int64N(int64(e.cfg.RetryPeriod/4)+1))
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.observed != nil && e.observed.Spec.HolderIdentity != "" {
		// A few milliseconds past expiry, so that it has surely expired.
		until := e.observedTime.Add(leaseDuration(e.observed)).Sub(e.now()) + 5*time.Millisecond
		if until > 0 && until < wait {
			wait = until
		}
	}
	return wait
}

func leaseDuration(l *Lease) time.Duration {
	return time.Duration(l.Spec.LeaseDurationSeconds) * time.Second
}

// lead renews the Lease every RetryPeriod while OnStartedLeading runs, and
// returns when leadership is lost or, after a clean stop, released.
func (e *Elector) lead(ctx context.Context) {
	e.log.Info("leading: this replica holds the lease")
	term, endTerm := context.WithCancel(ctx)
	defer endTerm()
	workDone := make(chan struct{})
	go func() {
		defer close(workDone)
		if e.cfg.OnStartedLeading != nil {
			e.cfg.OnStartedLeading(term)
		}
	}()
	// Renewals go on after ctx is done, until the work has stopped.
	renewCtx := context.WithoutCancel(ctx)
	stopping, worked := false, false
	stop := ctx.Done()
	t := time.NewTimer(e.cfg.RetryPeriod)
	defer t.Stop()
	for {
		select {
		case <-stop:
			stopping, stop = true, nil
			endTerm()
		case <-workDone:
			worked, workDone = true, nil
		case <-t.C:
			t.Reset(e.cfg.RetryPeriod)
			if e.testHookRenew != nil {
				e.testHookRenew()
			}
			if e.renew(renewCtx) {
				continue
			}
			e.log.Warn("lost the lease: stopped leading", "leader", e.Leader())
			endTerm()
			e.endTerm(workDone)
			return
		}
		if stopping && worked {
			if !e.crashOnStop {
				e.release(renewCtx)
			}
			e.endTerm(nil)
			return
		}
	}
}

// endTerm marks this replica a follower, waits for the term's work and
// calls OnStoppedLeading.
func (e *Elector) endTerm(workDone <-chan struct{}) {
	e.mu.Lock()
	e.leading = false
	e.mu.Unlock()
	if workDone != nil {
		<-workDone
	}
	if e.cfg.OnStoppedLeading != nil {
		e.cfg.OnStoppedLeading()
	}
}

// renew tries to renew the Lease, retrying every RetryPeriod until the
// renew deadline counted from the last successful renewal. It reports
// false once leadership is lost.
func (e *Elector) renew(ctx context.Context) bool {
	for {
		e.mu.Lock()
		deadline := e.lastRenew.Add(e.cfg.RenewDeadline)
		e.mu.Unlock()
		if !e.now().Before(deadline) {
			return false
		}
		rctx, cancel := context.WithTimeout(ctx, deadline.Sub(e.now()))
		ok := e.tryAcquireOrRenew(rctx)
		cancel()
		if ok {
			return true
		}
		if !e.IsLeader() {
			return false // another holder was seen
		}
		wait := min(e.cfg.RetryPeriod, deadline.Sub(e.now()))
		if wait <= 0 {
			return false
		}
		time.Sleep(wait)
	}
}

// tryAcquireOrRenew makes one attempt to take or keep the Lease and
// reports whether this replica holds it afterwards. A leader that sees
// another holder becomes a follower.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) bool {
	start := e.now()
	wall := time.Now()
	id := e.cfg.Identity
	secs := int32(e.cfg.LeaseDuration / time.Second)

	// A leader first writes over the Lease it holds, without reading it.
	e.mu.Lock()
	cached, leading := e.observed, e.leading
	e.mu.Unlock()
	if leading && cached != nil && cached.Spec.HolderIdentity == id {
		l := *cached
		l.Spec.RenewTime = wall
		l.Spec.LeaseDurationSeconds = secs
		got, err := e.cfg.Client.UpdateLease(ctx, &l)
		if err == nil {
			e.held(got, start)
			return true
		}
		if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
			e.attemptFailed("renew", err)
			return false
		}
		// Someone else wrote, or deleted the Lease: read what is there now.
	}

	cur, err := e.cfg.Client.GetLease(ctx, e.cfg.Namespace, e.cfg.Name)
	if errors.Is(err, ErrNotFound) {
		l := &Lease{Namespace: e.cfg.Namespace, Name: e.cfg.Name, Spec: LeaseSpec{
			HolderIdentity: id, LeaseDurationSeconds: secs, AcquireTime: wall, RenewTime: wall}}
		got, err := e.cfg.Client.CreateLease(ctx, l)
		if err != nil {
			e.attemptFailed("create", err)
			e.lostRace(ctx, err)
			return false
		}
		e.held(got, start)
		return true
	}
	if err != nil {
		e.attemptFailed("read", err)
		return false
	}
	// Expiry is counted from when we saw the record, after the answer.
	e.observe(cur, e.now())
	holder := cur.Spec.HolderIdentity
	if holder != "" && holder != id {
		e.mu.Lock()
		valid := e.now().Before(e.observedTime.Add(leaseDuration(cur)))
		e.mu.Unlock()
		if valid {
			e.attemptFailed("", nil)
			return false
		}
	}
	l := *cur
	l.Spec.HolderIdentity = id
	l.Spec.LeaseDurationSeconds = secs
	l.Spec.RenewTime = wall
	if holder != id {
		l.Spec.AcquireTime = wall
		l.Spec.LeaseTransitions++
	}
	got, err := e.cfg.Client.UpdateLease(ctx, &l)
	if err != nil {
		e.attemptFailed("update", err)
		e.lostRace(ctx, err)
		return false
	}
	e.held(got, start)
	return true
}

// lostRace reads the Lease after a write that another candidate beat, so
// that Leader names the winner at once rather than after RetryPeriod.
func (e *Elector) lostRace(ctx context.Context, err error) {
	if !errors.Is(err, ErrConflict) {
		return
	}
	if cur, err := e.cfg.Client.GetLease(ctx, e.cfg.Namespace, e.cfg.Name); err == nil {
		e.observe(cur, e.now())
	}
}

// observe records a Lease seen at time seen. A change of the record (its
// spec or resourceVersion) restarts the expiry clock; a new holder is
// announced.
func (e *Elector) observe(l *Lease, seen time.Time) {
	e.mu.Lock()
	// Any write changes the resourceVersion, even one that leaves the spec
	// as it was (a renewal whose wall clock stepped back).
	if e.observed == nil || e.observed.Spec != l.Spec || e.observed.ResourceVersion != l.ResourceVersion {
		e.observedTime = seen
	}
	e.observed = l
	lost := e.leading && l.Spec.HolderIdentity != e.cfg.Identity
	if lost {
		e.leading = false
	}
	changed := e.leader != l.Spec.HolderIdentity
	e.leader = l.Spec.HolderIdentity
	e.mu.Unlock()
	if changed {
		e.newLeader(l.Spec.HolderIdentity)
	}
}

// held records a successful acquire or renew sent at sent. The fence counts
// from when the write was sent, the earliest moment the API server can have
// stored it; followers count from later, when they see it.
func (e *Elector) held(l *Lease, sent time.Time) {
	seen := e.now()
	e.mu.Lock()
	e.observed, e.observedTime = l, seen
	e.leading, e.lastRenew = true, sent
	changed := e.leader != e.cfg.Identity
	e.leader = e.cfg.Identity
	recovered := e.lastErr != ""
	e.lastErr = ""
	e.mu.Unlock()
	if recovered {
		e.log.Info("the lease API answers again")
	}
	if changed {
		e.newLeader(e.cfg.Identity)
	}
}

func (e *Elector) newLeader(id string) {
	if id == "" {
		e.log.Info("nobody holds the lease")
	} else if id != e.cfg.Identity {
		e.log.Info("another replica leads", "leader", id)
	}
	if e.cfg.OnNewLeader != nil {
		e.cfg.OnNewLeader(id)
	}
}

// attemptFailed logs an attempt's error when it differs from the last one,
// so that an API server that is down is logged once, not every RetryPeriod.
// A lost race is not an error.
func (e *Elector) attemptFailed(op string, err error) {
	msg := ""
	if err != nil && !errors.Is(err, ErrConflict) {
		msg = op + " lease: " + err.Error()
	}
	e.mu.Lock()
	changed := msg != e.lastErr
	was := e.lastErr
	e.lastErr = msg
	e.mu.Unlock()
	switch {
	case !changed:
	case msg != "":
		e.log.Warn("leader election attempt failed; retrying", "error", err, "op", op)
	case was != "":
		e.log.Info("the lease API answers again")
	}
}

// release gives the Lease up after a clean stop: an empty holder and a
// duration of one second, so that a follower takes over at its next try.
func (e *Elector) release(ctx context.Context) {
	e.mu.Lock()
	cached, leading := e.observed, e.leading
	e.leading = false
	e.mu.Unlock()
	if !leading || cached == nil || cached.Spec.HolderIdentity != e.cfg.Identity {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline)
	defer cancel()
	l := *cached
	now := time.Now()
	l.Spec.HolderIdentity = ""
	l.Spec.LeaseDurationSeconds = 1
	l.Spec.RenewTime, l.Spec.AcquireTime = now, now
	got, err := e.cfg.Client.UpdateLease(ctx, &l)
	if errors.Is(err, ErrConflict) {
		// Written since our last renewal: release it only if still ours.
		cur, gerr := e.cfg.Client.GetLease(ctx, e.cfg.Namespace, e.cfg.Name)
		if gerr != nil {
			err = gerr
		} else if cur.Spec.HolderIdentity != e.cfg.Identity {
			e.observe(cur, e.now())
			return
		} else {
			l.ResourceVersion = cur.ResourceVersion
			l.rawMeta, l.rawSpec = cur.rawMeta, cur.rawSpec
			got, err = e.cfg.Client.UpdateLease(ctx, &l)
		}
	}
	if err != nil {
		// Followers take over when the lease expires instead.
		e.log.Warn("could not release the lease; another replica takes over when it expires", "error", err)
		return
	}
	e.observe(got, e.now())
	e.log.Info("released the lease")
}
