package loop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/spec"
)

// WatermarkFile is the file in the state directory that holds the
// directory watermark of the last pass (see WatermarkState).
const WatermarkFile = "watermark.json"

// WatermarkState is what WatermarkFile holds: the watermark the last pass
// left (the DC's dnsHostName and invocationId, its highestCommittedUSN or
// DirSync cookie, a digest of the query), when the last full read ran and
// when the file was written. Nothing in it is a secret. A restart reads
// everything again anyway, since a delta needs the view the watermark
// belongs to; the file says where the directory stood.
type WatermarkState struct {
	Watermark  activedirectory.Watermark `json:"watermark"`
	FullReadAt time.Time                 `json:"full_read_at"`
	UpdatedAt  time.Time                 `json:"updated_at"`
}

// ReadWatermark reads WatermarkFile from a state directory; a missing file
// is the zero state.
func ReadWatermark(dir string) (WatermarkState, error) {
	var ws WatermarkState
	b, err := os.ReadFile(filepath.Join(dir, WatermarkFile))
	if errors.Is(err, os.ErrNotExist) {
		return ws, nil
	}
	if err != nil {
		return ws, fmt.Errorf("watermark: %w", err)
	}
	if err := json.Unmarshal(b, &ws); err != nil {
		return WatermarkState{}, fmt.Errorf("watermark %s: %w", filepath.Join(dir, WatermarkFile), err)
	}
	return ws, nil
}

// writeWatermark replaces WatermarkFile atomically.
func writeWatermark(dir string, ws WatermarkState) error {
	b, err := json.MarshalIndent(ws, "", "  ")
	if err != nil {
		return fmt.Errorf("watermark: %w", err)
	}
	path := filepath.Join(dir, WatermarkFile)
	if err := writeFileSync(path+".tmp", append(b, '\n')); err != nil {
		return fmt.Errorf("watermark: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("watermark: %w", err)
	}
	return nil
}

// changeReader is what a delta pass needs from the directory;
// *activedirectory.Reader has it.
type changeReader interface {
	ReadChanges(ctx context.Context, q activedirectory.Query, wm activedirectory.Watermark, have *activedirectory.Result) (*activedirectory.Delta, error)
}

// view is what the Syncer keeps between passes under change tracking.
type view struct {
	spec   string // reconcile.SpecDigest of the set it was read for
	dir    *activedirectory.Result
	wm     activedirectory.Watermark
	target *reconcile.TargetState
	fullAt time.Time // when the last full read started
	// targetStale: apply found Asset Panda differing from the view (a
	// record gone, an edit the probe missed): read it in full next time.
	targetStale bool
	// usersStale: users were written; read them again next time.
	usersStale bool
	// plan is the last plan made from the view, with its scopes; nil when
	// the view changed since.
	plan   *reconcile.Plan
	scopes []reconcile.Scope
}

// observed is what a pass planned.
type observed struct {
	plan   *reconcile.Plan
	scopes []reconcile.Scope
}

// observe reads what the pass needs (everything, or what changed since the
// view) and plans.
func (s *Syncer) observe(ctx context.Context, req Request, prov *Providers, stats *Stats) (observed, error) {
	set := req.Set
	ct := set.Policy.Spec.ChangeTracking
	dir := &countingDirectory{DirectoryReader: prov.Directory, stats: stats}
	cr, canDelta := prov.Directory.(changeReader)
	opts := reconcile.Options{Now: s.Now}
	v := s.view
	reason := ""
	switch {
	case !ct.Enabled():
		reason = "change tracking is off"
	case !canDelta:
		reason = "the directory provider cannot read changes"
	case v == nil:
		reason = s.noViewReason()
	case req.FullRead != "":
		reason = req.FullRead
	case v.spec != reconcile.SpecDigest(set):
		reason = "the spec changed"
	case !s.now().Before(v.fullAt.Add(ct.FullEvery.Duration)):
		reason = fmt.Sprintf("the periodic full read (changeTracking.fullEvery %s)", ct.FullEvery.Duration)
	}
	if reason != "" {
		s.view = nil // let the old view go before reading the new one
		return s.fullWith(ctx, req, prov, dir, nil, reason, stats)
	}

	// A delta. The view is folded into in place; v.plan is dropped as
	// soon as anything changed, so that a pass failing half-way leaves a
	// consistent view (the directory at its new watermark, each collection
	// at its last probe, Asset Panda marked to be read in full when a
	// probe failed) that the next pass plans from again.
	q := reconcile.DirectoryQuery(set)
	d, err := cr.ReadChanges(ctx, q, v.wm, v.dir)
	if err != nil {
		return observed{}, fmt.Errorf("read active directory changes: %w", err)
	}
	stats.LDAPEntries += d.Stats.Entries
	stats.LDAPSearches += d.Stats.Searches
	if d.Full {
		req.Log.Info("the directory cannot serve a delta; reading everything", "reason", d.FullReason)
		s.view = nil
		return s.fullWith(ctx, req, prov, dir, d, d.FullReason, stats)
	}
	if v.dir.Apply(d) {
		v.plan = nil
	}
	v.wm = d.Watermark
	s.saveWatermark(req, v)
	usersRead := false // the users were read in this pass
	if v.targetStale || !v.target.Resolved(set) {
		// Asset Panda in full; the directory view stays.
		fresh, err := reconcile.ReadTarget(ctx, set, prov.Target)
		if err != nil {
			return observed{}, fmt.Errorf("read asset panda: %w", err)
		}
		v.target, v.plan = fresh, nil
		v.targetStale, v.usersStale = false, false
		usersRead = true
	} else {
		probe, ok := prov.Target.(reconcile.ModifiedRecordsReader)
		if !ok {
			return observed{}, errors.New("the Asset Panda provider cannot read modified records")
		}
		changed, err := v.target.Refresh(ctx, set, probe)
		if changed {
			v.plan = nil
		}
		if err != nil {
			// A probe that failed may have folded part of what it read (a
			// collection read again in full fails after its fold began),
			// and one that keeps failing (a server without the filter)
			// must not fail every pass until the periodic full read: read
			// Asset Panda in full next time.
			v.targetStale, v.plan = true, nil
			return observed{}, fmt.Errorf("read asset panda changes: %w", err)
		}
		if v.usersStale {
			if err := s.refreshUsers(ctx, v, prov); err != nil {
				return observed{}, err
			}
			usersRead = true
		}
	}
	stats.Read = ReadReport{Replanned: v.plan == nil}
	if v.plan == nil {
		if err := s.planView(ctx, set, v, dir, opts); err != nil {
			return observed{}, err
		}
	}
	// The users are read again only after a pass that wrote users: there
	// is no filter for users modified in Asset Panda. A plan that would
	// deactivate a user or change a role must not rest on that: a role
	// given in Asset Panda since (to a mapping that ignores leavers, say)
	// decides it. Read them, and plan again if they moved.
	if !usersRead && takesFromUsers(v.plan) {
		if err := s.refreshUsers(ctx, v, prov); err != nil {
			return observed{}, err
		}
		if v.plan == nil {
			stats.Read.Replanned = true
			if err := s.planView(ctx, set, v, dir, opts); err != nil {
				return observed{}, err
			}
		}
	}
	return observed{plan: v.plan.Reissue(s.now()), scopes: v.scopes}, nil
}

// planView plans from the view and keeps the plan in it.
func (s *Syncer) planView(ctx context.Context, set *spec.Set, v *view, dir *countingDirectory, opts reconcile.Options) error {
	o, err := reconcile.PlanFrom(ctx, set, v.dir, v.target, dir, opts)
	if err != nil {
		return err
	}
	v.plan, v.scopes = o.Plan, o.Scopes
	return nil
}

// refreshUsers reads the view's users again; a change drops the plan.
func (s *Syncer) refreshUsers(ctx context.Context, v *view, prov *Providers) error {
	changed, err := v.target.RefreshUsers(ctx, prov.Target)
	if err != nil {
		v.plan = nil
		return fmt.Errorf("read asset panda users: %w", err)
	}
	if changed {
		v.plan = nil
	}
	v.usersStale = false
	return nil
}

// takesFromUsers reports whether a plan deactivates a user or changes a
// user's role, applied or blocked.
func takesFromUsers(p *reconcile.Plan) bool {
	takes := func(c reconcile.Change) bool {
		t := c.TakesAway()
		return c.Kind == reconcile.KindUser && (t.Deactivate || t.Role)
	}
	for _, c := range p.Changes {
		if takes(c) {
			return true
		}
	}
	for _, b := range p.Blocked {
		if takes(b.Change) {
			return true
		}
	}
	return false
}

// noViewReason says why a pass has no view: the process has just started
// (whether or not the state directory holds a watermark), or the last pass
// failed.
func (s *Syncer) noViewReason() string {
	if s.StateDir != "" {
		if ws, err := ReadWatermark(s.StateDir); err == nil && !ws.Watermark.IsZero() {
			return "no view in memory (a delta needs the view the stored watermark of " + ws.Watermark.Server + " belongs to)"
		}
	}
	return "no view in memory"
}

// fullWith reads both sides completely and plans; with change tracking,
// it keeps the view for the next passes. d, when not nil, is a full read
// the directory already made (ReadChanges decided it could not serve a
// delta).
func (s *Syncer) fullWith(ctx context.Context, req Request, prov *Providers, dir *countingDirectory, d *activedirectory.Delta, reason string, stats *Stats) (observed, error) {
	set := req.Set
	ct := set.Policy.Spec.ChangeTracking
	cr, canDelta := prov.Directory.(changeReader)
	track := ct.Enabled() && canDelta
	start := s.now()
	if d != nil {
		start = d.Time
	}
	stats.Read = ReadReport{Full: true, Reason: reason, Replanned: true}
	req.Log.Debug("reading everything", "reason", reason)

	// Both sides at once: the directory in the background, Asset Panda
	// here. Either side failing cancels the other's read; the error
	// reported is the one that came first.
	q := reconcile.DirectoryQuery(set)
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dirFailed, targetFailed := errors.New("the directory read failed"), errors.New("the Asset Panda read failed")
	type readResult struct {
		d   *activedirectory.Delta
		err error
	}
	read := make(chan readResult, 1)
	go func() {
		if d != nil {
			read <- readResult{d: d}
			return
		}
		var r readResult
		if track {
			r.d, r.err = cr.ReadChanges(rctx, q, activedirectory.Watermark{}, nil)
			if r.d != nil {
				stats.LDAPEntries += r.d.Stats.Entries
				stats.LDAPSearches += r.d.Stats.Searches
			}
		} else {
			var res *activedirectory.Result
			res, r.err = dir.Read(rctx, q)
			r.d = &activedirectory.Delta{Full: true, Result: res}
		}
		if r.err != nil {
			cancel(dirFailed)
		}
		read <- r
	}()
	ts, targetErr := reconcile.ReadTarget(rctx, set, prov.Target)
	if targetErr != nil {
		cancel(targetFailed)
	}
	r := <-read
	if r.err != nil && !errors.Is(context.Cause(rctx), targetFailed) {
		return observed{}, fmt.Errorf("read active directory: %w", r.err)
	}
	if targetErr != nil {
		return observed{}, fmt.Errorf("read asset panda: %w", targetErr)
	}
	if !r.d.Full {
		return observed{}, errors.New("the directory returned a delta for a full read")
	}
	o, err := reconcile.PlanFrom(ctx, set, r.d.Result, ts, dir, reconcile.Options{Now: s.Now})
	if err != nil {
		return observed{}, err
	}
	if track && r.d.Watermark.IsZero() {
		req.Log.Info("the directory cannot serve deltas; every pass reads everything", "reason", r.d.FullReason)
	}
	if track && !r.d.Watermark.IsZero() {
		v := &view{spec: reconcile.SpecDigest(set), dir: r.d.Result, wm: r.d.Watermark, target: ts, fullAt: start,
			plan: o.Plan, scopes: o.Scopes}
		s.view = v
		s.saveWatermark(req, v)
	}
	return observed{plan: o.Plan, scopes: o.Scopes}, nil
}

// afterApply notes what applying the plan means for the view: users
// written are read again next pass (records written are seen by the next
// probe, their updated_at having moved), and a change refused because Asset
// Panda no longer matched the plan, or an apply that stopped, means the view
// is behind: Asset Panda is read in full next pass.
func (s *Syncer) afterApply(applied *reconcile.ApplyResult, err error) {
	v := s.view
	if v == nil {
		return
	}
	if applied == nil || err != nil {
		v.targetStale = true
		v.plan = nil
		return
	}
	for _, o := range applied.Outcomes {
		if o.Change.Kind == reconcile.KindUser {
			v.usersStale = true
		}
		if o.Err != nil && errors.Is(o.Err, reconcile.ErrChangedSincePlan) {
			v.targetStale = true
		}
	}
	// What was written is not in the view until the next pass reads it.
	v.plan = nil
}

// saveWatermark writes the view's watermark to the state directory; a
// failure is logged, never fatal: nothing depends on the file.
func (s *Syncer) saveWatermark(req Request, v *view) {
	if s.StateDir == "" {
		return
	}
	ws := WatermarkState{Watermark: v.wm, FullReadAt: v.fullAt.UTC(), UpdatedAt: s.now().UTC()}
	if err := writeWatermark(s.StateDir, ws); err != nil {
		req.Log.Warn("the directory watermark could not be saved", "error", err)
	}
}
