package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// Explainer explains one person for the People page.
type Explainer interface {
	Explain(ctx context.Context, who string) (*Explained, error)
}

// Explained is an explanation and the plan it comes from.
type Explained struct {
	*reconcile.Explanation
	// PlannedAt is when the read-only plan was made.
	PlannedAt time.Time
	// Stale is set when a pass finished after the plan was made, or the
	// plan is older than MaxAge, and the rate limit forbids another yet.
	Stale bool
	// NextPlan is when a fresh plan may be made.
	NextPlan time.Time
}

// RateLimitedError says no read-only plan may be made before RetryAt.
type RateLimitedError struct{ RetryAt time.Time }

func (e *RateLimitedError) Error() string {
	return "a read-only plan was made moments ago; the next may start at " + e.RetryAt.Format(time.RFC3339)
}

// ErrNoSpec is the error of an explanation asked for before a valid spec
// has loaded.
var ErrNoSpec = errors.New("no valid spec has loaded yet")

// PlanExplainer explains people from a read-only plan made on demand with
// the loop's providers (reconcile.Observe: reads only, nothing is ever
// written), shared by every question and rate-limited so that the page
// cannot hammer AD or Asset Panda: no two plans start less than
// MinInterval apart, and one is reused until a pass finishes after it (a
// new spec in force runs a pass) or it is MaxAge old. Within MinInterval a
// stale plan is reused, marked Stale. Concurrent questions wait for the
// same plan.
type PlanExplainer struct {
	// Source gives the spec in force and the last pass. Required.
	Source Source
	// Connect builds the providers, as for a pass. Required.
	Connect func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error)
	// MinInterval is the least time between two plans; default 1 minute.
	MinInterval time.Duration
	// MaxAge is how long a plan is reused while no pass finishes; default
	// 5 minutes.
	MaxAge time.Duration
	// Timeout bounds one plan; default 2 minutes.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the providers' logs; nil discards them.
	Logger *slog.Logger

	mu       sync.Mutex
	obs      *reconcile.Observation
	madeAt   time.Time
	started  time.Time
	inflight chan struct{}
	lastErr  error
	// Plans counts the plans made, for tests.
	plans int
}

// Plans returns how many read-only plans were made.
func (e *PlanExplainer) Plans() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.plans
}

func (e *PlanExplainer) defaults() (minInterval, maxAge, timeout time.Duration, now func() time.Time) {
	minInterval, maxAge, timeout, now = e.MinInterval, e.MaxAge, e.Timeout, e.Now
	if minInterval <= 0 {
		minInterval = time.Minute
	}
	if maxAge <= 0 {
		maxAge = 5 * time.Minute
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return
}

// Explain explains who from the current read-only plan, making one when
// none is fresh and the rate limit allows.
func (e *PlanExplainer) Explain(ctx context.Context, who string) (*Explained, error) {
	minInterval, maxAge, timeout, now := e.defaults()
	set := e.Source.Spec()
	if set == nil {
		return nil, ErrNoSpec
	}
	var lastPass time.Time
	if lp := e.Source.Status().LastPass; lp != nil {
		lastPass = lp.FinishedAt
	}
	for {
		e.mu.Lock()
		t := now()
		fresh := e.obs != nil && e.madeAt.After(lastPass) && t.Sub(e.madeAt) < maxAge
		next := e.started.Add(minInterval)
		switch {
		case fresh:
			obs, made := e.obs, e.madeAt
			e.mu.Unlock()
			return e.explain(ctx, obs, who, made, false, next)
		case e.inflight != nil:
			ch := e.inflight
			e.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			e.mu.Lock()
			err, got := e.lastErr, e.obs != nil
			obs, made := e.obs, e.madeAt
			e.mu.Unlock()
			if err != nil {
				return nil, err
			}
			if got {
				return e.explain(ctx, obs, who, made, false, made.Add(minInterval))
			}
			continue
		case !e.started.IsZero() && t.Before(next):
			obs, made := e.obs, e.madeAt
			e.mu.Unlock()
			if obs != nil {
				return e.explain(ctx, obs, who, made, true, next)
			}
			return nil, &RateLimitedError{RetryAt: next}
		}
		ch := make(chan struct{})
		e.inflight, e.started = ch, t
		e.plans++
		e.mu.Unlock()

		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		obs, err := e.observe(pctx, set)
		cancel()
		e.mu.Lock()
		e.inflight, e.lastErr = nil, err
		if err == nil {
			e.obs, e.madeAt = obs, now()
		}
		made := e.madeAt
		e.mu.Unlock()
		close(ch)
		if err != nil {
			return nil, err
		}
		return e.explain(ctx, obs, who, made, false, t.Add(minInterval))
	}
}

// observe makes one read-only plan.
func (e *PlanExplainer) observe(ctx context.Context, set *spec.Set) (*reconcile.Observation, error) {
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Its lines say what they are for, as a pass's carry the pass id (and
	// pandasync apply's audit entries "apply").
	log = log.With("pass", "explain")
	prov, err := e.Connect(ctx, set, log)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if prov.Close != nil {
		defer prov.Close()
	}
	obs, err := reconcile.Observe(ctx, set, prov.Directory, prov.Target, reconcile.Options{})
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return obs, nil
}

func (e *PlanExplainer) explain(ctx context.Context, obs *reconcile.Observation, who string, made time.Time, stale bool, next time.Time) (*Explained, error) {
	ex, err := obs.Explain(ctx, noLookup{}, who)
	if err != nil {
		return nil, err
	}
	return &Explained{Explanation: ex, PlannedAt: made, Stale: stale, NextPlan: next}, nil
}

// noLookup answers the explanation's search for an account outside the
// mapped groups with nothing: the page reads AD only through the shared,
// rate-limited plan.
type noLookup struct{}

func (noLookup) Read(context.Context, activedirectory.Query) (*activedirectory.Result, error) {
	return nil, errors.New("the status page reads the directory only through its plan")
}

func (noLookup) Lookup(context.Context, []string, []string) (map[string]*activedirectory.User, error) {
	return nil, nil
}
