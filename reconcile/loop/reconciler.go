package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	// FullRead, when not empty, says why this pass must read everything
	// rather than what changed since the last one: this replica's
	// leadership changed since its previous pass, so another replica may
	// have written in between.
	FullRead string
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
	LDAPSearches int // LDAP searches sent
	APIRequests  int // HTTP requests sent to Asset Panda
	APIThrottled int // of which answered 429 Too Many Requests
	// Read says how the pass read both sides: a full read or only what
	// changed; zero when the pass read nothing.
	Read ReadReport
}

// ReadReport says how a pass read Active Directory and Asset Panda.
type ReadReport struct {
	// Full is set when the pass read everything; Reason says why (no view
	// in memory, the spec changed, the periodic full read, what the
	// directory said, change tracking off).
	Full   bool   `json:"full"`
	Reason string `json:"reason,omitempty"`
	// Replanned is false when nothing the plan depends on changed since
	// the previous pass, which then reused that pass's plan.
	Replanned bool `json:"replanned"`
	// LDAPSearches and LDAPEntries count the directory's work, the
	// identity probes of change tracking (two entries) included;
	// APIRequests the requests sent to Asset Panda.
	LDAPSearches int `json:"ldap_searches"`
	LDAPEntries  int `json:"ldap_entries"`
	APIRequests  int `json:"api_requests"`
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
//
// With change tracking (the SyncPolicy's changeTracking.method, usn by
// default) it keeps a view between passes: the directory as the last read
// left it with its watermark, and what Asset Panda held. A pass then reads
// from AD only what changed since the watermark and folds it into the
// view, and from Asset Panda only the records modified since (one search
// per collection), and plans from the view exactly as a full read would; a
// pass in which nothing changed reuses the previous plan. Everything is
// read again at the first pass (the process has no view: a delta needs
// it), after a spec change, every changeTracking.fullEvery, when the
// directory cannot serve a delta (another DC, a restore, a refused cookie,
// a watermark ahead of the DC), and when the leadership of this replica
// changed; Asset Panda alone is read in full again after an apply that found
// it ahead of the view or stopped, and after a change probe that failed. A
// pass that fails half-way leaves the view consistent (the directory at its
// new watermark, Asset Panda as last read or marked to be read in full), and
// the next pass plans from it again. A full read never
// deletes anything for want of a watermark: it plans from the complete read
// with the usual guards. The watermark is kept in the state directory
// (WatermarkFile) for what it tells an admin; a restart reads everything
// regardless.
type Syncer struct {
	// Connect builds the providers for one pass; log carries the pass id
	// for the providers' own logs. Mark errors that retrying cannot fix
	// (such as a missing secret) with Terminal. Required.
	Connect func(ctx context.Context, set *spec.Set, log *slog.Logger) (*Providers, error)
	// Now stamps plans and times the full reads; nil means time.Now.
	Now func() time.Time
	// StateDir, when set, is where the directory watermark is kept.
	StateDir string

	mu   sync.Mutex // passes never overlap; this guards against misuse
	view *view
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Reconcile runs one pass.
func (s *Syncer) Reconcile(ctx context.Context, req Request) (res Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	var before TargetStats
	if prov.Stats != nil {
		before = prov.Stats()
	}
	defer func() {
		if prov.Stats != nil {
			after := prov.Stats()
			res.Stats.APIRequests = max(after.Requests-before.Requests, 0)
			res.Stats.APIThrottled = max(after.Throttled-before.Throttled, 0)
		}
		r := &res.Stats.Read
		r.LDAPSearches, r.LDAPEntries, r.APIRequests = res.Stats.LDAPSearches, res.Stats.LDAPEntries, res.Stats.APIRequests
	}()
	o, err := s.observe(ctx, req, prov, &res.Stats)
	if err != nil {
		return res, fmt.Errorf("plan: %w", err)
	}
	p := o.plan
	res.Scopes = o.scopes
	p.Prior.Revision, p.Prior.Dirty = req.Revision.String(), req.Revision.Dirty
	p.Seal() // the revision is part of the plan's content
	res.Plan = p
	if p.Suspended || !p.HasChanges() {
		return res, nil
	}
	applied, err := reconcile.ApplyWith(ctx, p, req.Set, prov.Target, req.Apply)
	res.Applied = applied
	s.afterApply(applied, err)
	if err != nil {
		return res, fmt.Errorf("apply: %w", err)
	}
	return res, nil
}

// countingDirectory counts the entries and searches of the directory reads.
type countingDirectory struct {
	reconcile.DirectoryReader
	stats *Stats
}

func (c *countingDirectory) Read(ctx context.Context, q activedirectory.Query) (*activedirectory.Result, error) {
	res, err := c.DirectoryReader.Read(ctx, q)
	if res != nil {
		c.stats.LDAPEntries += res.Stats.Entries
		c.stats.LDAPSearches += res.Stats.Searches
	}
	return res, err
}

func (c *countingDirectory) Lookup(ctx context.Context, sids []string, attrs []string) (map[string]*activedirectory.User, error) {
	found, err := c.DirectoryReader.Lookup(ctx, sids, attrs)
	c.stats.LDAPSearches += (len(sids) + 99) / 100
	c.stats.LDAPEntries += len(found)
	return found, err
}
