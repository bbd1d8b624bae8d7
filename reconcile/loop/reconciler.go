package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/spec"
)

// Request is what one pass reconciles. It is level-based, in the manner of
// controller-runtime: it names the desired state (the spec set in force),
// never the event that caused the pass, so a reconciler does the same work
// whatever the reason.
type Request struct {
	// ID is the pass id, on every log line and audit entry of the pass.
	ID string
	// Reason says why the pass runs ("start-up", "schedule", "SIGHUP", ...).
	// It is for logs only: a Reconciler must not act on it.
	Reason string
	// Set is the spec set in force.
	Set *spec.Set
	// Revision is the git revision of the spec files; zero outside git.
	Revision Revision
	// Log carries the pass id; use it for everything the pass logs.
	Log *slog.Logger
	// Apply holds the observer and the gate the loop built for this pass:
	// hand it to reconcile.ApplyWith unchanged. The observer writes the
	// audit trail and the per-change log lines; the gate stops writes
	// between batches when the loop is stopping.
	Apply reconcile.ApplyOptions
}

// Result is what a pass did. The loop derives the pass's Outcome from it
// and from the error.
type Result struct {
	// Plan is the pass's plan; nil when none was made.
	Plan *reconcile.Plan
	// Applied is what applying the plan did; nil when nothing was applied
	// (no changes, or writes suspended).
	Applied *reconcile.ApplyResult
	// Scopes describes each mapping as the plan saw it (members in scope,
	// managed objects); nil when no plan was made.
	Scopes []reconcile.Scope
	// Stats are the pass's traffic, for the metrics.
	Stats Stats
}

// Stats count the traffic of one pass.
type Stats struct {
	LDAPEntries  int // LDAP entries read
	APIRequests  int // HTTP requests sent to Asset Panda
	APIThrottled int // of which answered 429 Too Many Requests
}

// Reconciler does the work of one pass. The loop owns everything around
// it: when passes run, their id and logger, the per-pass timeout, panics,
// backoff and jitter, the audit trail, status, metrics and notifications.
//
// Reconcile returns a nil error when a plan was made and applied as far as
// it goes (failed changes, blocked changes and problems are in the Result);
// a non-nil error when the pass failed as a whole: nothing could be
// planned, or the apply stopped early (then the Result holds what was
// done). An error retrying cannot fix is marked terminal: its chain holds
// an error with a Terminal() bool method that returns true (see Terminal).
type Reconciler interface {
	Reconcile(ctx context.Context, req Request) (Result, error)
}

// ReconcilerFunc adapts a function to a Reconciler.
type ReconcilerFunc func(ctx context.Context, req Request) (Result, error)

// Reconcile calls f.
func (f ReconcilerFunc) Reconcile(ctx context.Context, req Request) (Result, error) {
	return f(ctx, req)
}

// terminalError marks an error that retrying cannot fix.
type terminalError struct{ err error }

func (e *terminalError) Error() string  { return e.err.Error() }
func (e *terminalError) Unwrap() error  { return e.err }
func (e *terminalError) Terminal() bool { return true }

// Terminal marks err as one that retrying cannot fix: the loop stops
// retrying until the spec changes or a pass is asked for (SIGHUP, POST
// /sync). Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err}
}

// IsTerminal reports whether retrying cannot fix err: an error in its chain
// has a Terminal() bool method that returns true (providers classify their
// own errors this way), or the spec is invalid (spec.Problems).
func IsTerminal(err error) bool {
	var ps spec.Problems
	if errors.As(err, &ps) {
		return true
	}
	return anyTerminal(err)
}

// anyTerminal walks err's whole tree, since the first error with a
// Terminal method may say false while a deeper one says true.
func anyTerminal(err error) bool {
	if err == nil {
		return false
	}
	if t, ok := err.(interface{ Terminal() bool }); ok && t.Terminal() {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return anyTerminal(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if anyTerminal(e) {
				return true
			}
		}
	}
	return false
}

// Providers are the two sides one pass works with.
type Providers struct {
	Directory reconcile.DirectoryReader
	Target    reconcile.TargetWriter
	// Stats returns the Asset Panda client's request counters so far; nil
	// when the target does not count.
	Stats func() TargetStats
	// Close releases the providers; nil when there is nothing to release.
	Close func()
}

// TargetStats are cumulative request counters of an Asset Panda client.
type TargetStats struct {
	Requests  int // HTTP requests sent
	Throttled int // requests answered 429 Too Many Requests
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

// Syncer is the Reconciler behind pandasync run: connect to both sides,
// plan, apply what the plan allows (nothing while the SyncPolicy suspends
// writes).
type Syncer struct {
	// Connect builds the providers for one pass; log carries the pass id
	// for the providers' own logs. Mark errors that retrying cannot fix
	// (such as a missing secret) with Terminal. Required.
	Connect func(ctx context.Context, set *spec.Set, log *slog.Logger) (*Providers, error)
	// Now stamps plans; nil means time.Now.
	Now func() time.Time
}

// Reconcile runs one pass.
func (s *Syncer) Reconcile(ctx context.Context, req Request) (res Result, err error) {
	prov, err := s.Connect(ctx, req.Set, req.Log)
	if err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	if prov == nil || prov.Directory == nil || prov.Target == nil {
		return res, errors.New("connect returned no providers")
	}
	if prov.Close != nil {
		defer prov.Close()
	}
	if prov.Stats != nil {
		before := prov.Stats()
		defer func() {
			after := prov.Stats()
			res.Stats.APIRequests = max(after.Requests-before.Requests, 0)
			res.Stats.APIThrottled = max(after.Throttled-before.Throttled, 0)
		}()
	}
	dir := &countingDirectory{DirectoryReader: prov.Directory, stats: &res.Stats}
	o, err := reconcile.Observe(ctx, req.Set, dir, prov.Target, reconcile.Options{Now: s.Now})
	if err != nil {
		return res, fmt.Errorf("plan: %w", err)
	}
	p := o.Plan
	res.Scopes = o.Scopes
	p.Prior.Revision, p.Prior.Dirty = req.Revision.String(), req.Revision.Dirty
	p.Seal() // the revision is part of the plan's content
	res.Plan = p
	if p.Suspended || !p.HasChanges() {
		return res, nil
	}
	applied, err := reconcile.ApplyWith(ctx, p, req.Set, prov.Target, req.Apply)
	res.Applied = applied
	if err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	return res, nil
}

// countingDirectory counts the entries the directory reads return.
type countingDirectory struct {
	reconcile.DirectoryReader
	stats *Stats
}

func (c *countingDirectory) Read(ctx context.Context, q activedirectory.Query) (*activedirectory.Result, error) {
	res, err := c.DirectoryReader.Read(ctx, q)
	if res != nil {
		c.stats.LDAPEntries += res.Stats.Entries
	}
	return res, err
}
