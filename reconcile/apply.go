package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// TargetWriter is what applying a plan needs from Asset Panda.
// *assetpanda.Client implements it.
type TargetWriter interface {
	TargetReader
	RecordsByID(ctx context.Context, col *assetpanda.Collection, ids []string) ([]assetpanda.Record, error)
	CreateRecords(ctx context.Context, col *assetpanda.Collection, key string, recs []map[string]string) ([]assetpanda.Result, error)
	UpdateRecords(ctx context.Context, col *assetpanda.Collection, ups []assetpanda.RecordUpdate) ([]assetpanda.Result, error)
	CreateUser(ctx context.Context, u assetpanda.NewUser) (*assetpanda.User, error)
	UpdateUser(ctx context.Context, id int, u assetpanda.UserUpdate) (*assetpanda.User, error)
}

// Observer hears about apply's progress. Apply calls it from one goroutine.
type Observer interface {
	// Started is called once with the number of changes to apply.
	Started(total int)
	// Done is called once per change, with nil or the reason it failed.
	Done(c Change, err error)
}

// ErrSuspended is returned by Apply when the plan was made under a
// SyncPolicy that suspends writes.
var ErrSuspended = errors.New("writes are suspended by the SyncPolicy (suspend: true)")

// ErrChangedSincePlan marks a change that apply refused because the object
// no longer looks the way the plan saw it.
var ErrChangedSincePlan = errors.New("changed in Asset Panda since the plan was made")

// ErrNotAttempted marks the error of a change Apply never sent because the
// apply stopped before it: the ApplyOptions.Gate closed or the context
// ended. The error also wraps the cause.
var ErrNotAttempted = errors.New("not attempted")

// WriteBatchSize is the largest number of records Apply hands the target in
// one write call, which is Asset Panda's bulk limit: one gated batch is one
// bulk request.
const WriteBatchSize = 200

// ApplyOptions tune ApplyWith.
type ApplyOptions struct {
	// Observer hears about the apply's progress; nil means nobody.
	Observer Observer
	// Gate, when set, is called before every write batch: each bulk create
	// or update call (at most WriteBatchSize records) and each user write.
	// A non-nil error stops the apply between batches without cancelling
	// the request in flight: the batch already sent completes and is
	// reported, no further write starts, and every remaining change is
	// reported (to the Observer and in the result) as not attempted, with
	// an error wrapping ErrNotAttempted and the gate's error. ApplyWith then
	// returns the gate's error.
	//
	// It is the one hook for stopping writes gracefully: pandasync run
	// closes it on SIGTERM, and a leader that can no longer prove its lease
	// closes it to fence itself. It is called from Apply's goroutine and
	// must return quickly.
	Gate func(ctx context.Context) error
	// WriteWithin, when set, is asked after Gate lets a batch through: how
	// long the batch may take from now (ok false: no bound). The batch's
	// request runs under that deadline, so that what it may wait for (the
	// rate limiter, a 429's Retry-After, a new token, retries) cannot carry
	// it past the time the gate vouched for. A leader uses it so that no
	// write is sent after its lease may have passed to another replica; a
	// batch cut short is reported failed, and the next gate stops the rest.
	WriteWithin func() (d time.Duration, ok bool)
}

// Outcome is the result of applying one change.
type Outcome struct {
	Change Change
	Err    error
}

// ApplyResult reports what Apply did.
type ApplyResult struct {
	Applied int
	Failed  int
	// NotAttempted counts the changes never sent because the apply
	// stopped first (their errors wrap ErrNotAttempted).
	NotAttempted int
	Outcomes     []Outcome
}

// Problems lists the failed changes as plan problems. Changes not
// attempted are not listed; NotAttempted counts them.
func (r *ApplyResult) Problems() []Problem {
	var ps []Problem
	for _, o := range r.Outcomes {
		if o.Err != nil && !errors.Is(o.Err, ErrNotAttempted) {
			obj := o.Change.Name
			ps = append(ps, Problem{Mapping: o.Change.Mapping, Key: o.Change.Key, Object: obj,
				Message: fmt.Sprintf("%s %s: %v", o.Change.Action, o.Change.Kind, o.Err)})
		}
	}
	return ps
}

type nopObserver struct{}

func (nopObserver) Started(int)        {}
func (nopObserver) Done(Change, error) {}

// Apply is ApplyWith with only an observer (which may be nil).
func Apply(ctx context.Context, p *Plan, set *spec.Set, tgt TargetWriter, obs Observer) (*ApplyResult, error) {
	return ApplyWith(ctx, p, set, tgt, ApplyOptions{Observer: obs})
}

// ApplyWith executes the plan's changes and nothing else. Before writing, it
// re-reads each mapping's objects and refuses every change whose object no
// longer matches the plan's Before (ErrChangedSincePlan). Each mapping
// succeeds or fails on its own and one failed object never stops the
// others; every failure is in the result. Blocked changes are never
// applied. The Observer hears about every change exactly once.
//
// The returned error is non-nil only when nothing could be attempted (a
// suspended policy), the context ended, or opts.Gate stopped the apply; in
// the last two cases the result holds what was done and the changes left
// are counted in NotAttempted.
func ApplyWith(ctx context.Context, p *Plan, set *spec.Set, tgt TargetWriter, opts ApplyOptions) (*ApplyResult, error) {
	obs := opts.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	if p.Suspended || set.Policy.Spec.Suspend {
		return nil, ErrSuspended
	}
	a := &applier{set: set, tgt: tgt, obs: obs, gateFn: opts.Gate, within: opts.WriteWithin, res: &ApplyResult{}}
	obs.Started(len(p.Changes))

	var users []Change
	records := map[string][]Change{}
	var order []string
	for _, c := range p.Changes {
		switch c.Kind {
		case KindUser:
			users = append(users, c)
		case KindRecord:
			if _, ok := records[c.Mapping]; !ok {
				order = append(order, c.Mapping)
			}
			records[c.Mapping] = append(records[c.Mapping], c)
		default:
			a.done(c, fmt.Errorf("unknown object kind %q", c.Kind))
		}
	}
	for _, name := range order {
		if a.stopped(ctx) {
			a.skipAll(records[name])
			continue
		}
		a.applyRecords(ctx, name, records[name])
	}
	if len(users) > 0 {
		if a.stopped(ctx) {
			a.skipAll(users)
		} else {
			a.applyUsers(ctx, users)
		}
	}
	if a.stop != nil {
		return a.res, a.stop
	}
	return a.res, ctx.Err()
}

type applier struct {
	set    *spec.Set
	tgt    TargetWriter
	obs    Observer
	gateFn func(context.Context) error
	within func() (time.Duration, bool)
	res    *ApplyResult
	// stop is why the apply stopped writing: the gate's error or the
	// context's; nil while it goes on.
	stop error
}

// stopped reports whether the apply has stopped writing, noting a context
// that ended. It does not call the gate.
func (a *applier) stopped(ctx context.Context) bool {
	if a.stop == nil && ctx.Err() != nil {
		a.stop = ctx.Err()
	}
	return a.stop != nil
}

// gate is called before every write batch: it reports whether the batch
// may be sent, and the context to send it in (bounded by WriteWithin);
// call done when the batch's request returned.
func (a *applier) gate(ctx context.Context) (bctx context.Context, done context.CancelFunc, ok bool) {
	if a.stopped(ctx) {
		return nil, nil, false
	}
	if a.gateFn != nil {
		if err := a.gateFn(ctx); err != nil {
			a.stop = err
			return nil, nil, false
		}
	}
	if a.within != nil {
		if d, bounded := a.within(); bounded {
			bctx, done = context.WithTimeout(ctx, d)
			return bctx, done, true
		}
	}
	return ctx, func() {}, true
}

// skipAll reports changes as not attempted because the apply stopped.
func (a *applier) skipAll(cs []Change) {
	for _, c := range cs {
		a.done(c, fmt.Errorf("%w: %w", ErrNotAttempted, a.stop))
	}
}

func (a *applier) done(c Change, err error) {
	a.res.Outcomes = append(a.res.Outcomes, Outcome{Change: c, Err: err})
	switch {
	case err == nil:
		a.res.Applied++
	case errors.Is(err, ErrNotAttempted):
		a.res.NotAttempted++
	default:
		a.res.Failed++
	}
	a.obs.Done(c, err)
}

func (a *applier) failAll(cs []Change, err error) {
	for _, c := range cs {
		a.done(c, err)
	}
}

func (a *applier) collectionMapping(name string) (spec.CollectionMapping, bool) {
	for _, m := range a.set.CollectionMappings {
		if m.Metadata.Name == name {
			return m, true
		}
	}
	return spec.CollectionMapping{}, false
}

// applyRecords applies one collection mapping's changes: it re-reads the
// objects the changes touch, checks every change against them, then writes
// creates and updates in bulk.
//
// Updates are re-read by id (1,000 per request), so a few changes to a
// large collection cost a few requests, not a read of the whole
// collection. Creates rely on the key field being unique in Asset Panda,
// which refuses a second record with the same key; when the key field is
// not unique, the whole collection is read to look for the keys first.
func (a *applier) applyRecords(ctx context.Context, name string, cs []Change) {
	m, ok := a.collectionMapping(name)
	if !ok {
		a.failAll(cs, fmt.Errorf("mapping %q is not in the spec", name))
		return
	}
	col, err := a.tgt.Collection(ctx, m.Spec.Account, m.Spec.Module, m.Spec.Collection)
	if err != nil {
		a.failAll(cs, err)
		return
	}
	key := m.Spec.Key.Field
	keyField, err := col.Field(key)
	if err != nil {
		a.failAll(cs, err)
		return
	}

	var creates, updates []Change
	var ids []string
	for _, c := range cs {
		if c.Action == ActionCreate {
			creates = append(creates, c)
		} else {
			updates = append(updates, c)
			ids = append(ids, c.ID)
		}
	}

	if len(creates) > 0 {
		taken := map[string]bool{}
		if !keyField.Unique {
			recs, err := a.tgt.Records(ctx, col)
			if err != nil {
				a.failAll(creates, fmt.Errorf("re-read before writing: %w", err))
				creates = nil
			}
			for _, r := range recs {
				taken[r.Fields[key]] = true
			}
		}
		var ok []Change
		var fields []map[string]string
		for _, c := range creates {
			if taken[c.Key] {
				a.done(c, fmt.Errorf("a record with %s %s exists: %w", key, c.Key, ErrChangedSincePlan))
				continue
			}
			ok = append(ok, c)
			fields = append(fields, c.After)
		}
		for start := 0; start < len(ok); start += WriteBatchSize {
			end := min(start+WriteBatchSize, len(ok))
			bctx, done, pass := a.gate(ctx)
			if !pass {
				a.skipAll(ok[start:])
				break
			}
			results, err := a.tgt.CreateRecords(bctx, col, key, fields[start:end])
			done()
			a.report(ok[start:end], results, err)
		}
	}

	if len(updates) > 0 {
		if a.stopped(ctx) {
			a.skipAll(updates)
			return
		}
		recs, err := a.tgt.RecordsByID(ctx, col, ids)
		if err != nil {
			a.failAll(updates, fmt.Errorf("re-read before writing: %w", err))
			return
		}
		byID := make(map[string]*assetpanda.Record, len(recs))
		for i := range recs {
			byID[recs[i].ID] = &recs[i]
		}
		var ok []Change
		var ups []assetpanda.RecordUpdate
		for _, c := range updates {
			cur := byID[c.ID]
			if cur == nil || cur.Fields[key] != c.Key {
				a.done(c, fmt.Errorf("record %s is gone or no longer holds %s %s: %w", c.ID, key, c.Key, ErrChangedSincePlan))
				continue
			}
			if err := sameFields(cur.Fields, c.Before); err != nil {
				a.done(c, err)
				continue
			}
			ok = append(ok, c)
			ups = append(ups, assetpanda.RecordUpdate{ID: c.ID, Fields: c.After})
		}
		for start := 0; start < len(ok); start += WriteBatchSize {
			end := min(start+WriteBatchSize, len(ok))
			bctx, done, pass := a.gate(ctx)
			if !pass {
				a.skipAll(ok[start:])
				break
			}
			results, err := a.tgt.UpdateRecords(bctx, col, ups[start:end])
			done()
			a.report(ok[start:end], results, err)
		}
	}
}

// report matches per-object results to their changes. A change without a
// result failed with err (or an unknown outcome).
func (a *applier) report(cs []Change, results []assetpanda.Result, err error) {
	got := make([]error, len(cs))
	seen := make([]bool, len(cs))
	for _, r := range results {
		if r.Index >= 0 && r.Index < len(cs) {
			got[r.Index], seen[r.Index] = r.Err, true
		}
	}
	for i, c := range cs {
		switch {
		case seen[i]:
			a.done(c, got[i])
		case err != nil:
			a.done(c, err)
		default:
			a.done(c, errors.New("no result reported for this object"))
		}
	}
}

// sameFields checks that the current values still equal the plan's Before.
func sameFields(cur, before map[string]string) error {
	for _, f := range sortedKeys(before) {
		if cur[f] != before[f] {
			return fmt.Errorf("field %q is now %q, the plan expected %q: %w", f, cur[f], before[f], ErrChangedSincePlan)
		}
	}
	return nil
}

// applyUsers applies the user changes: creates first, so that role changes
// in further modules can find the users they create.
func (a *applier) applyUsers(ctx context.Context, cs []Change) {
	users, err := a.tgt.Users(ctx)
	if err != nil {
		a.failAll(cs, fmt.Errorf("re-read users before writing: %w", err))
		return
	}
	bySID := map[string]*assetpanda.User{}
	byEmail := map[string]*assetpanda.User{}
	byID := map[string]*assetpanda.User{}
	for i := range users {
		u := &users[i]
		if u.ADSID != "" {
			bySID[u.ADSID] = u
		}
		byEmail[strings.ToLower(u.Email)] = u
		byID[strconv.Itoa(u.ID)] = u
	}
	roles := map[string]*assetpanda.Role{}
	role := func(t Target, name string) (*assetpanda.Role, error) {
		k := t.Account + "\x00" + t.Module + "\x00" + name
		if r, ok := roles[k]; ok {
			return r, nil
		}
		r, err := a.tgt.Role(ctx, t.Account, t.Module, name)
		if err != nil {
			return nil, err
		}
		roles[k] = r
		return r, nil
	}

	for _, pass := range []bool{true, false} {
		for _, c := range cs {
			if (c.Action == ActionCreate) != pass {
				continue
			}
			if a.stopped(ctx) {
				a.skipAll([]Change{c})
				continue
			}
			if c.Action == ActionCreate {
				if u := bySID[c.Key]; u != nil {
					a.done(c, fmt.Errorf("a user carrying this SID exists (%s): %w", u.Email, ErrChangedSincePlan))
					continue
				}
				if u := byEmail[strings.ToLower(c.After[UserEmail])]; u != nil {
					a.done(c, fmt.Errorf("a user with email %s exists: %w", u.Email, ErrChangedSincePlan))
					continue
				}
				r, err := role(c.Target, c.After[UserRole])
				if err != nil {
					a.done(c, err)
					continue
				}
				bctx, done, pass := a.gate(ctx)
				if !pass {
					a.skipAll([]Change{c})
					continue
				}
				u, err := a.tgt.CreateUser(bctx, assetpanda.NewUser{Email: c.After[UserEmail], FirstName: c.After[UserFirstName],
					LastName: c.After[UserLastName], ADSID: c.Key, Role: r})
				done()
				if err == nil && u != nil {
					bySID[c.Key] = u
				}
				a.done(c, err)
				continue
			}
			u := bySID[c.Key]
			if c.ID != "" {
				u = byID[c.ID]
			}
			if u == nil || (!c.Adopt && u.ADSID != c.Key) {
				a.done(c, fmt.Errorf("user is gone or no longer carries this SID: %w", ErrChangedSincePlan))
				continue
			}
			up, err := a.userUpdate(c, u, role)
			if err != nil {
				a.done(c, err)
				continue
			}
			bctx, done, pass := a.gate(ctx)
			if !pass {
				a.skipAll([]Change{c})
				continue
			}
			_, err = a.tgt.UpdateUser(bctx, u.ID, up)
			done()
			a.done(c, err)
		}
	}
}

// userUpdate checks a user change against the current user and builds the
// update request.
func (a *applier) userUpdate(c Change, u *assetpanda.User, role func(Target, string) (*assetpanda.Role, error)) (assetpanda.UserUpdate, error) {
	var up assetpanda.UserUpdate
	check := func(field, have string, fold bool) error {
		want, ok := c.Before[field]
		if !ok {
			return nil
		}
		if have == want || (fold && strings.EqualFold(have, want)) {
			return nil
		}
		return fmt.Errorf("%s is now %q, the plan expected %q: %w", field, have, want, ErrChangedSincePlan)
	}
	for _, err := range []error{
		check(UserEmail, u.Email, true),
		check(UserFirstName, u.FirstName, false),
		check(UserLastName, u.LastName, false),
		check(UserActive, strconv.FormatBool(u.Active), false),
		check(UserADSID, u.ADSID, false),
	} {
		if err != nil {
			return up, err
		}
	}
	str := func(field string) *string {
		if v, ok := c.After[field]; ok {
			return &v
		}
		return nil
	}
	up.Email, up.FirstName, up.LastName, up.ADSID = str(UserEmail), str(UserFirstName), str(UserLastName), str(UserADSID)
	if v, ok := c.After[UserActive]; ok {
		b := v == "true"
		up.Active = &b
	}
	if name, ok := c.After[UserRole]; ok {
		r, err := role(c.Target, name)
		if err != nil {
			return up, err
		}
		if want, ok := c.Before[UserRole]; ok {
			have := roleOf(u, r.ModuleID)
			if want == "" && have != 0 {
				return up, fmt.Errorf("user got a role in %s since the plan: %w", c.Target.Module, ErrChangedSincePlan)
			}
		}
		up.Role = r
	}
	return up, nil
}
