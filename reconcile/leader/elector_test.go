package leader

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConfigTiming(t *testing.T) {
	client := &Client{}
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"defaults":                     {Config{}, ""},
		"cert-manager's 60/40/15":      {Config{LeaseDuration: 60 * time.Second, RenewDeadline: 40 * time.Second, RetryPeriod: 15 * time.Second}, ""},
		"lease not above deadline":     {Config{LeaseDuration: 10 * time.Second, RenewDeadline: 10 * time.Second}, "longer than the renew deadline"},
		"deadline not above 1.2×retry": {Config{RenewDeadline: 6 * time.Second, RetryPeriod: 5 * time.Second}, "1.2 × the retry period"},
		"sub-second lease":             {Config{LeaseDuration: 900 * time.Millisecond, RenewDeadline: 600 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}, "shorter than 1s"},
		"lease not whole seconds":      {Config{LeaseDuration: 2500 * time.Millisecond, RenewDeadline: 2200 * time.Millisecond, RetryPeriod: 500 * time.Millisecond}, "whole number of seconds"},
		"fence margin eats the lease":  {Config{FenceMargin: 14 * time.Second}, "minus the fence margin"},
		"negative fence margin":        {Config{FenceMargin: -time.Second}, "not positive"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			tt.cfg.Client, tt.cfg.Namespace, tt.cfg.Name = client, "ops", "pandasync"
			e, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name == "defaults" {
				c := e.cfg
				if c.LeaseDuration != 15*time.Second || c.RenewDeadline != 10*time.Second || c.RetryPeriod != 2*time.Second || c.FenceMargin != 5*time.Second {
					t.Errorf("defaults = %s/%s/%s margin %s, want 15s/10s/2s margin 5s", c.LeaseDuration, c.RenewDeadline, c.RetryPeriod, c.FenceMargin)
				}
				if !strings.Contains(c.Identity, "_") {
					t.Errorf("default identity %q has no random suffix", c.Identity)
				}
			}
		})
	}
	if _, err := New(Config{Client: client, Name: "x"}); err == nil {
		t.Error("New without a namespace: no error")
	}
}

// fakeClock is a monotonic clock the step tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// stepElector is an elector whose clock the test moves; it is driven one
// attempt at a time, without Run.
func stepElector(t *testing.T, client LeaseClient, id string, clock *fakeClock) *Elector {
	t.Helper()
	e, err := New(Config{Client: client, Namespace: "ops", Name: "pandasync", Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	e.now = clock.now
	return e
}

// TestTakeOverOnOwnClock walks the election step by step with the defaults
// (15 s lease): expiry is measured on the candidate's clock from when it saw
// the record change, never from the times stored in the Lease.
func TestTakeOverOnOwnClock(t *testing.T) {
	f, srv := newFakeAPI(t)
	ctx := context.Background()
	clockA := &fakeClock{t: time.Unix(1000, 0)}
	clockB := &fakeClock{t: time.Unix(5000, 0)} // the clocks need not agree
	a := stepElector(t, f.client(t, srv), "a", clockA)
	b := stepElector(t, f.client(t, srv), "b", clockB)

	if !a.tryAcquireOrRenew(ctx) {
		t.Fatal("a could not create the lease")
	}
	if b.tryAcquireOrRenew(ctx) {
		t.Fatal("b took a lease a holds")
	}
	if got := b.Leader(); got != "a" {
		t.Errorf("b sees leader %q, want a", got)
	}
	clockA.advance(2 * time.Second)
	clockB.advance(14 * time.Second)
	if !a.tryAcquireOrRenew(ctx) { // a renews: the record changes
		t.Fatal("a could not renew")
	}
	clockB.advance(900 * time.Millisecond) // 14.9 s after b first saw it
	if b.tryAcquireOrRenew(ctx) {
		t.Fatal("b took the lease although it changed 0 s ago on b's clock")
	}
	clockB.advance(14 * time.Second) // a is silent: 14 s since b saw the renewal
	if b.tryAcquireOrRenew(ctx) {
		t.Fatal("b took the lease 14 s after it last changed")
	}
	clockB.advance(1100 * time.Millisecond) // 15.1 s
	if !b.tryAcquireOrRenew(ctx) {
		t.Fatal("b did not take the expired lease")
	}
	l, err := f.client(t, srv).GetLease(ctx, "ops", "pandasync")
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity != "b" || l.Spec.LeaseTransitions != 1 || l.Spec.LeaseDurationSeconds != 15 {
		t.Errorf("lease spec = %+v, want holder b, 1 transition, 15 s", l.Spec)
	}

	// a wakes up: its renewal conflicts, it reads b's record and steps down.
	clockA.advance(time.Second)
	if a.tryAcquireOrRenew(ctx) {
		t.Fatal("a renewed a lease b holds")
	}
	if a.IsLeader() || a.Leader() != "b" {
		t.Errorf("a: leading %v, leader %q; want a follower of b", a.IsLeader(), a.Leader())
	}
	if err := a.Fence(ctx); !errors.Is(err, ErrNotLeader) || !strings.Contains(err.Error(), "b holds") {
		t.Errorf("a.Fence = %v, want ErrNotLeader naming b", err)
	}
	if n := len(f.writesBy("a")); n != 2 {
		t.Errorf("a wrote %d times, want 2 (create, renew)", n)
	}
}

// TestAnyWriteRestartsExpiry: a write that leaves the spec as it was (a
// renewal whose wall clock stepped back writes the same renewTime) still
// changes the record's resourceVersion, and a follower counts expiry from
// it.
func TestAnyWriteRestartsExpiry(t *testing.T) {
	f, srv := newFakeAPI(t)
	ctx := context.Background()
	clockB := &fakeClock{t: time.Unix(5000, 0)}
	a := stepElector(t, f.client(t, srv), "a", &fakeClock{t: time.Unix(1000, 0)})
	b := stepElector(t, f.client(t, srv), "b", clockB)
	if !a.tryAcquireOrRenew(ctx) {
		t.Fatal("a could not create the lease")
	}
	if b.tryAcquireOrRenew(ctx) {
		t.Fatal("b took a lease a holds")
	}
	clockB.advance(14 * time.Second)
	c := f.client(t, srv)
	l, err := c.GetLease(ctx, "ops", "pandasync")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := c.UpdateLease(ctx, l) // the same spec, a new resourceVersion
	if err != nil {
		t.Fatal(err)
	}
	if l2.Spec != l.Spec || l2.ResourceVersion == l.ResourceVersion {
		t.Fatalf("the rewrite changed spec %+v → %+v, resourceVersion %s → %s; want only the resourceVersion", l.Spec, l2.Spec, l.ResourceVersion, l2.ResourceVersion)
	}
	if b.tryAcquireOrRenew(ctx) {
		t.Fatal("b took the lease 14 s after it first saw it, 0 s after it was written")
	}
	clockB.advance(1100 * time.Millisecond)
	if b.tryAcquireOrRenew(ctx) {
		t.Fatal("b took the lease 1.1 s after it was written: the write with an unchanged spec did not restart the expiry")
	}
	clockB.advance(14 * time.Second)
	if !b.tryAcquireOrRenew(ctx) {
		t.Fatal("b did not take the lease 15.1 s after its last write")
	}
}

func TestFenceWindow(t *testing.T) {
	f, srv := newFakeAPI(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	e := stepElector(t, f.client(t, srv), "a", clock)
	if err := e.Fence(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Fence before any election = %v, want ErrNotLeader", err)
	}
	if d, ok := e.WriteWithin(); d != 0 || !ok {
		t.Errorf("WriteWithin before any election = %s, %t; want 0, true", d, ok)
	}
	if !e.tryAcquireOrRenew(ctx) {
		t.Fatal("no lease")
	}
	// The window is LeaseDuration - FenceMargin = 15 s - 5 s.
	tests := []struct {
		after  time.Duration
		ok     bool
		within time.Duration // what WriteWithin gives a batch
	}{
		{0, true, 10 * time.Second},
		{2 * time.Second, true, 8 * time.Second},
		{9999 * time.Millisecond, true, time.Millisecond},
		{10 * time.Second, false, 0},
		{25 * time.Second, false, 0}, // a SIGSTOPped leader wakes up
	}
	for _, tt := range tests {
		clock.mu.Lock()
		clock.t = time.Unix(1000, 0).Add(tt.after)
		clock.mu.Unlock()
		err := e.Fence(ctx)
		if tt.ok != (err == nil) {
			t.Errorf("Fence %s after the renewal = %v, want ok %v", tt.after, err, tt.ok)
		}
		if d, ok := e.WriteWithin(); d != tt.within || !ok {
			t.Errorf("WriteWithin %s after the renewal = %s, %t; want %s, true", tt.after, d, ok, tt.within)
		}
		if err != nil && !errors.Is(err, ErrNotLeader) {
			t.Errorf("Fence error %v does not wrap ErrNotLeader", err)
		}
	}
	if !e.IsLeader() {
		t.Error("the fence changed the elector's own belief; it should only refuse writes")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	clock.mu.Lock()
	clock.t = time.Unix(1000, 0)
	clock.mu.Unlock()
	if err := e.Fence(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Fence with a done context = %v, want context.Canceled", err)
	}
}

func TestReleaseLetsNextTakeOverAtOnce(t *testing.T) {
	f, srv := newFakeAPI(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	a := stepElector(t, f.client(t, srv), "a", clock)
	b := stepElector(t, f.client(t, srv), "b", clock)
	if !a.tryAcquireOrRenew(ctx) || b.tryAcquireOrRenew(ctx) {
		t.Fatal("a should lead, b follow")
	}
	a.release(ctx)
	if a.IsLeader() {
		t.Error("a still leads after releasing")
	}
	l, _ := f.client(t, srv).GetLease(ctx, "ops", "pandasync")
	if l.Spec.HolderIdentity != "" || l.Spec.LeaseDurationSeconds != 1 {
		t.Errorf("released lease spec = %+v, want no holder and 1 s", l.Spec)
	}
	if !b.tryAcquireOrRenew(ctx) { // same instant: no waiting for expiry
		t.Fatal("b did not take the released lease at once")
	}
}

func TestLeaderRenewsWithoutReading(t *testing.T) {
	f, srv := newFakeAPI(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	a := stepElector(t, f.client(t, srv), "a", clock)
	if !a.tryAcquireOrRenew(ctx) {
		t.Fatal("no lease")
	}
	gets := f.requests(http.MethodGet)
	for range 5 {
		clock.advance(2 * time.Second)
		if !a.tryAcquireOrRenew(ctx) {
			t.Fatal("renewal failed")
		}
	}
	if got := f.requests(http.MethodGet) - gets; got != 0 {
		t.Errorf("5 renewals sent %d GETs, want 0 (one PUT each)", got)
	}
	if got := f.requests(http.MethodPut); got != 5 {
		t.Errorf("5 renewals sent %d PUTs, want 5", got)
	}
}

// timing for the tests that run the real loop: short, and valid.
var fastTiming = Config{LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 250 * time.Millisecond}

// candidate is one elector running its loop.
type candidate struct {
	*Elector
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	started []time.Time   // when each term began
	stopped []time.Time   // when each term's work had returned
	resume  chan struct{} // while set, renewals wait for it to close
}

// pause stops the candidate's renewals, as SIGSTOP would stop the process:
// its next renewal waits until resume.
func (c *candidate) pause() {
	c.mu.Lock()
	c.resume = make(chan struct{})
	c.mu.Unlock()
}

func (c *candidate) unpause() {
	c.mu.Lock()
	close(c.resume)
	c.resume = nil
	c.mu.Unlock()
}

// renewGate is the elector's testHookRenew.
func (c *candidate) renewGate() {
	c.mu.Lock()
	ch := c.resume
	c.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// kill stops the candidate as SIGKILL would: the Lease is not released.
func (c *candidate) kill(t *testing.T) {
	t.Helper()
	c.crashOnStop = true
	c.stop(t)
}

func (c *candidate) terms() (started, stopped int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.started), len(c.stopped)
}

// stop cancels the candidate and waits for Run to return.
func (c *candidate) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop", c.Identity())
	}
}

// startCandidate runs an elector on client. work, when set, is the term's
// work; it gets the term's context.
func startCandidate(t *testing.T, client LeaseClient, ns, name, id string, timing Config, work func(ctx context.Context)) *candidate {
	t.Helper()
	c := &candidate{done: make(chan struct{})}
	cfg := timing
	cfg.Client, cfg.Namespace, cfg.Name, cfg.Identity = client, ns, name, id
	cfg.OnStartedLeading = func(ctx context.Context) {
		c.mu.Lock()
		c.started = append(c.started, time.Now())
		c.mu.Unlock()
		if work != nil {
			work(ctx)
		} else {
			<-ctx.Done()
		}
		c.mu.Lock()
		c.stopped = append(c.stopped, time.Now())
		c.mu.Unlock()
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Elector = e
	e.testHookRenew = c.renewGate
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		if err := e.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", id, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// leaders returns the candidates that believe they lead.
func leaders(cs []*candidate) []*candidate {
	var ls []*candidate
	for _, c := range cs {
		if c.IsLeader() {
			ls = append(ls, c)
		}
	}
	return ls
}

// waitFor polls cond every 5 ms until it holds, and returns how long that
// took; it fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// electionEnv is where the scenarios run: the fake API or a real API
// server.
type electionEnv struct {
	client   func(t *testing.T) LeaseClient
	ns, name string
	timing   Config
	// writes returns the successful Lease writes that left holder in it, or
	// nil when the environment cannot tell.
	writesBy func(holder string) []fakeWrite
	// slack covers request latency and scheduling on top of the bounds the
	// timing promises.
	slack time.Duration
}

func fakeEnvironment(t *testing.T) electionEnv {
	f, srv := newFakeAPI(t)
	return electionEnv{
		client:   func(t *testing.T) LeaseClient { return f.client(t, srv) },
		ns:       "ops",
		name:     "pandasync",
		timing:   fastTiming,
		writesBy: f.writesBy,
		slack:    300 * time.Millisecond,
	}
}

func TestExactlyOneLeads(t *testing.T)      { scenarioExactlyOne(t, fakeEnvironment(t)) }
func TestKilledLeaderReplaced(t *testing.T) { scenarioKilledLeader(t, fakeEnvironment(t)) }
func TestPausedLeaderIsFenced(t *testing.T) { scenarioPausedLeader(t, fakeEnvironment(t)) }
func TestCleanStopHandsOver(t *testing.T)   { scenarioCleanStop(t, fakeEnvironment(t)) }
func TestLeaderStepsDownWhenAPIDown(t *testing.T) {
	f, srv := newFakeAPI(t)
	a := startCandidate(t, f.client(t, srv), "ops", "pandasync", "a", fastTiming, nil)
	waitFor(t, 5*time.Second, "a leads", a.IsLeader)
	down := time.Now()
	f.setFail(func(*http.Request) int { return http.StatusServiceUnavailable })
	// RenewDeadline after the last renewal, which was at most RetryPeriod
	// before the API went down.
	took := waitFor(t, 5*time.Second, "a steps down", func() bool { return !a.IsLeader() })
	if max := fastTiming.RenewDeadline + 300*time.Millisecond; took > max {
		t.Errorf("a stepped down %s after the API went down, want within the renew deadline (%s)", took, max)
	}
	if err := a.Fence(context.Background()); !errors.Is(err, ErrNotLeader) {
		t.Errorf("Fence with the API down = %v, want ErrNotLeader", err)
	}
	_, stopped := a.terms()
	if stopped != 1 {
		t.Errorf("a's work stopped %d times, want 1", stopped)
	}
	f.setFail(nil)
	waitFor(t, 5*time.Second, "a leads again", a.IsLeader)
	t.Logf("stepped down %s after the API went down; leads again %s after it came back", took, time.Since(down)-took)
}

// TestWorkDrainsBeforeRelease: on a clean stop the term's context ends at
// once, the Lease is renewed while the work finishes, and it is released
// after the work returned.
func TestWorkDrainsBeforeRelease(t *testing.T) {
	f, srv := newFakeAPI(t)
	drain := 4 * fastTiming.RetryPeriod
	var canceledAt time.Time
	a := startCandidate(t, f.client(t, srv), "ops", "pandasync", "a", fastTiming, func(ctx context.Context) {
		<-ctx.Done()
		canceledAt = time.Now()
		time.Sleep(drain) // the write batch in flight
	})
	waitFor(t, 5*time.Second, "a leads", a.IsLeader)
	a.stop(t)
	_, stopped := a.terms()
	if stopped != 1 {
		t.Fatalf("work stopped %d times, want 1", stopped)
	}
	renewalsWhileDraining := 0
	for _, w := range f.writesBy("a") {
		if w.At.After(canceledAt) {
			renewalsWhileDraining++
		}
	}
	if renewalsWhileDraining < 2 {
		t.Errorf("%d renewals while the work drained for %s, want at least 2", renewalsWhileDraining, drain)
	}
	released := f.writesBy("")
	if len(released) != 1 {
		t.Fatalf("%d releases, want 1", len(released))
	}
	a.mu.Lock()
	workEnd := a.stopped[0]
	a.mu.Unlock()
	if released[0].At.Before(workEnd) {
		t.Errorf("released at %s, before the work returned at %s", released[0].At, workEnd)
	}
}

func scenarioExactlyOne(t *testing.T, env electionEnv) {
	var cs []*candidate
	for _, id := range []string{"one", "two", "three"} {
		cs = append(cs, startCandidate(t, env.client(t), env.ns, env.name, t.Name()+"-"+id, env.timing, nil))
	}
	took := waitFor(t, 3*env.timing.LeaseDuration, "someone leads", func() bool { return len(leaders(cs)) == 1 })
	waitFor(t, 2*env.timing.RetryPeriod, "all agree who leads", func() bool {
		ls := leaders(cs)
		for _, c := range cs {
			if len(ls) != 1 || c.Leader() != ls[0].Identity() {
				return false
			}
		}
		return true
	})
	// Watch for three lease durations: never two, never none.
	var leader *candidate
	end := time.Now().Add(3 * env.timing.LeaseDuration)
	for samples := 0; time.Now().Before(end); samples++ {
		ls := leaders(cs)
		if len(ls) != 1 {
			t.Fatalf("after %d samples: %d leaders, want exactly 1", samples, len(ls))
		}
		if leader == nil {
			leader = ls[0]
		} else if ls[0] != leader {
			t.Fatalf("leadership moved from %s to %s without a failure", leader.Identity(), ls[0].Identity())
		}
		for _, c := range cs {
			if got := c.Leader(); got != leader.Identity() {
				t.Fatalf("%s says %q leads, want %q", c.Identity(), got, leader.Identity())
			}
			if err := c.Fence(context.Background()); (err == nil) != (c == leader) {
				t.Fatalf("%s: Fence = %v while %s leads", c.Identity(), err, leader.Identity())
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range cs {
		started, _ := c.terms()
		if want := map[bool]int{true: 1, false: 0}[c == leader]; started != want {
			t.Errorf("%s started %d terms, want %d", c.Identity(), started, want)
		}
	}
	t.Logf("%s led %s after start", leader.Identity(), took)
}

// firstLeader waits until one of cs leads and returns it.
func firstLeader(t *testing.T, env electionEnv, cs []*candidate) *candidate {
	t.Helper()
	waitFor(t, 3*env.timing.LeaseDuration, "someone leads", func() bool { return len(leaders(cs)) == 1 })
	return leaders(cs)[0]
}

func others(cs []*candidate, not *candidate) []*candidate {
	var os []*candidate
	for _, c := range cs {
		if c != not {
			os = append(os, c)
		}
	}
	return os
}

func scenarioKilledLeader(t *testing.T, env electionEnv) {
	var cs []*candidate
	for _, id := range []string{"one", "two", "three"} {
		cs = append(cs, startCandidate(t, env.client(t), env.ns, env.name, t.Name()+"-"+id, env.timing, nil))
	}
	old := firstLeader(t, env, cs)
	rest := others(cs, old)
	// Let it renew once more so the kill does not fall right after the
	// acquisition.
	time.Sleep(env.timing.RetryPeriod + env.timing.RetryPeriod/2)
	killed := time.Now()
	old.kill(t)
	waitFor(t, 3*env.timing.LeaseDuration, "a follower takes over", func() bool { return len(leaders(rest)) == 1 })
	took := time.Since(killed)
	bound := env.timing.LeaseDuration + env.timing.RetryPeriod
	if took > bound+env.slack {
		t.Errorf("took over %s after the kill, want within lease duration + retry period = %s (+%s slack)", took, bound, env.slack)
	}
	if len(leaders(rest)) != 1 {
		t.Errorf("%d leaders after the takeover, want 1", len(leaders(rest)))
	}
	t.Logf("killed leader replaced after %s (bound %s)", took, bound)
}

func scenarioPausedLeader(t *testing.T, env electionEnv) {
	var cs []*candidate
	for _, id := range []string{"one", "two"} {
		cs = append(cs, startCandidate(t, env.client(t), env.ns, env.name, t.Name()+"-"+id, env.timing, nil))
	}
	old := firstLeader(t, env, cs)
	next := others(cs, old)[0]
	// The old leader's renewals stop, as if the process were SIGSTOPped.
	old.pause()
	paused := time.Now()

	// Until next leads, and after, the old leader must fail Fence whenever
	// its lease may have expired; sample the two side by side.
	var fencedAfter time.Duration
	took := waitFor(t, 3*env.timing.LeaseDuration, "the follower takes over", func() bool {
		oldOK := old.Fence(context.Background()) == nil
		if !oldOK && fencedAfter == 0 {
			fencedAfter = time.Since(paused)
		}
		if next.IsLeader() && oldOK {
			t.Fatalf("two writers: %s leads and the paused %s passes Fence", next.Identity(), old.Identity())
		}
		return next.IsLeader()
	})
	if !old.IsLeader() {
		t.Log("note: the paused leader already stepped down on its own")
	} else if err := old.Fence(context.Background()); !errors.Is(err, ErrNotLeader) {
		t.Errorf("paused leader that still believes it leads: Fence = %v, want ErrNotLeader", err)
	}
	if window := env.timing.LeaseDuration - env.timing.FenceMargin; env.timing.FenceMargin > 0 && fencedAfter > window+env.slack {
		t.Errorf("fenced %s after the pause, want within the fence window %s", fencedAfter, window)
	}
	takenOver := time.Now()
	// Keep it paused past its lease, then wake it up.
	time.Sleep(env.timing.RetryPeriod)
	old.unpause()
	woke := time.Now()
	waitFor(t, 2*env.timing.LeaseDuration, "the old leader steps down", func() bool {
		if err := old.Fence(context.Background()); err == nil {
			t.Fatalf("the woken leader passes Fence while %s leads", next.Identity())
		}
		return !old.IsLeader()
	})
	if !next.IsLeader() {
		t.Error("the new leader lost the lease to the woken one")
	}
	if env.writesBy != nil {
		for _, w := range env.writesBy(old.Identity()) {
			if w.At.After(takenOver) {
				t.Errorf("the old leader wrote the lease at %s, after %s took over", w.At.Format(time.StampMicro), next.Identity())
			}
		}
	}
	t.Logf("paused leader fenced %s after the pause, replaced after %s, stepped down %s after waking", fencedAfter, took, time.Since(woke))
}

func scenarioCleanStop(t *testing.T, env electionEnv) {
	var cs []*candidate
	for _, id := range []string{"one", "two"} {
		cs = append(cs, startCandidate(t, env.client(t), env.ns, env.name, t.Name()+"-"+id, env.timing, nil))
	}
	old := firstLeader(t, env, cs)
	next := others(cs, old)[0]
	stopped := time.Now()
	old.stop(t)
	waitFor(t, 3*env.timing.LeaseDuration, "the follower takes over", next.IsLeader)
	took := time.Since(stopped)
	// The follower's next attempt: at most one retry period.
	if bound := env.timing.RetryPeriod + env.slack; took > bound {
		t.Errorf("took over %s after a clean stop, want within the retry period %s (+%s slack)", took, env.timing.RetryPeriod, env.slack)
	}
	if err := old.Fence(context.Background()); !errors.Is(err, ErrNotLeader) {
		t.Errorf("stopped leader: Fence = %v, want ErrNotLeader", err)
	}
	t.Logf("clean stop handed over after %s", took)
}
