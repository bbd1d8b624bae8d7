package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// DirectoryReader is what planning needs from Active Directory.
// *activedirectory.Reader implements it.
type DirectoryReader interface {
	// Read resolves the groups' members and reads their attributes and the
	// schema. A read that fails part-way returns an error, never a shorter
	// result; members it could not read are listed per group.
	Read(ctx context.Context, q activedirectory.Query) (*activedirectory.Result, error)
	// Lookup finds users by SID; SIDs that no longer exist are absent
	// from the result.
	Lookup(ctx context.Context, sids []string, attrs []string) (map[string]*activedirectory.User, error)
}

// TargetReader is what planning needs from Asset Panda.
// *assetpanda.Client implements it. Lookups by name return an error that
// matches assetpanda.ErrNotFound (an *assetpanda.NotFoundError) for a name
// that does not exist; reads that cannot be shown complete fail.
type TargetReader interface {
	Collection(ctx context.Context, account, module, collection string) (*assetpanda.Collection, error)
	Role(ctx context.Context, account, module, role string) (*assetpanda.Role, error)
	Records(ctx context.Context, col *assetpanda.Collection) ([]assetpanda.Record, error)
	Users(ctx context.Context) ([]assetpanda.User, error)
}

// Options tune a plan.
type Options struct {
	// Mappings selects the named mappings; empty means all. A selection
	// filters the plan of the whole spec: it never narrows what is
	// desired, so a partial plan never takes away anything the full spec
	// would keep.
	Mappings []string
	// Overrides lifts limits for this one plan, for when a mass change is
	// real: OverrideDeactivations, OverrideRoleChanges,
	// OverrideFieldClears, OverrideCreates. The override of a kind of
	// change also lifts the empty-group guard for it; guards against
	// unresolved names and incomplete reads are never lifted.
	Overrides []string
	// OverrideLimits is shorthand for every override.
	OverrideLimits bool
	// Now stamps the plan; nil means time.Now.
	Now func() time.Time
}

// overridden reports whether the options lift the limits of kind.
func (o Options) overridden(kind string) bool {
	return o.OverrideLimits || slices.Contains(o.Overrides, kind)
}

// Overrides lists the valid override names, for flags and messages.
func Overrides() []string {
	return []string{OverrideDeactivations, OverrideRoleChanges, OverrideFieldClears, OverrideCreates}
}

// percentFloor is the number of active managed objects below which the
// percentage limits do not apply: one leaver out of four is 25 % but no
// accident.
const percentFloor = 10

// MakePlan reads Active Directory and Asset Panda and computes the changes
// that bring Asset Panda to the state the spec describes.
//
// It fails closed. A failed directory read, and credentials or permissions
// that either side refuses, fail the whole plan. A mapping that does not
// resolve (an unknown account, module, role, collection, field, option,
// group or AD attribute) or whose Asset Panda side cannot be read plans
// nothing and is a problem; so is a member that could not be read. Changes
// that take something away (deactivations, role changes, field clears)
// whose inputs are not complete are moved to Blocked with the guard that
// stopped them, and so are changes over a limit.
func MakePlan(ctx context.Context, set *spec.Set, dir DirectoryReader, tgt TargetReader, opts Options) (*Plan, error) {
	o, err := Observe(ctx, set, dir, tgt, opts)
	if err != nil {
		return nil, err
	}
	return o.Plan, nil
}

// Observe is MakePlan that also returns what the plan was made from: the
// scope of every mapping, and what it read from the directory, so that
// anyone can be explained from the same reads (Observation.Explain). It
// writes nothing.
func Observe(ctx context.Context, set *spec.Set, dir DirectoryReader, tgt TargetReader, opts Options) (*Observation, error) {
	p, res, pl, err := makePlan(ctx, set, dir, tgt, opts)
	if err != nil {
		return nil, err
	}
	return &Observation{Plan: p, Scopes: pl.scopes(), set: set, res: res}, nil
}

// makePlan is MakePlan, also returning what it read from the directory and
// the planner.
func makePlan(ctx context.Context, set *spec.Set, dir DirectoryReader, tgt TargetReader, opts Options) (*Plan, *activedirectory.Result, *planner, error) {
	if _, err := checkOptions(set, opts); err != nil {
		return nil, nil, nil, err
	}
	// Read both sides at once: the directory in the background, Asset
	// Panda here. A failed directory read cancels the Asset Panda reads.
	q := directoryQuery(set)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type readResult struct {
		res *activedirectory.Result
		err error
	}
	read := make(chan readResult, 1)
	go func() {
		res, err := dir.Read(ctx, q)
		if err != nil {
			cancel()
		}
		read <- readResult{res, err}
	}()
	ts, targetErr := ReadTarget(ctx, set, tgt)
	r := <-read
	if r.err != nil {
		return nil, nil, nil, fmt.Errorf("read active directory: %w", r.err)
	}
	if targetErr != nil {
		return nil, nil, nil, fmt.Errorf("read asset panda: %w", targetErr)
	}
	p, pl, err := planFrom(ctx, set, r.res, ts, dir, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	return p, r.res, pl, nil
}

// DirectoryQuery is the directory read a spec set needs: every mapped
// group and every attribute a mapping reads. PlanFrom expects a Result
// read for it.
func DirectoryQuery(set *spec.Set) activedirectory.Query { return directoryQuery(set) }

// PlanFrom makes a plan from what was read: res is the directory read for
// DirectoryQuery(set) (a full read, or one with deltas applied to it), ts
// what Asset Panda holds (ReadTarget, maybe refreshed since). It plans
// exactly as MakePlan does from the same inputs, reading nothing but, when
// dir is not nil, the SIDs of people who left every mapped group, to tell
// "deleted from AD" from "left the group" in their reasons. It neither
// keeps nor changes res and ts.
func PlanFrom(ctx context.Context, set *spec.Set, res *activedirectory.Result, ts *TargetState, dir DirectoryReader, opts Options) (*Observation, error) {
	p, pl, err := planFrom(ctx, set, res, ts, dir, opts)
	if err != nil {
		return nil, err
	}
	return &Observation{Plan: p, Scopes: pl.scopes(), set: set, res: res}, nil
}

// checkOptions checks the selected mappings and the overrides.
func checkOptions(set *spec.Set, opts Options) (map[string]bool, error) {
	selected, err := selectMappings(set, opts.Mappings)
	if err != nil {
		return nil, err
	}
	for _, o := range opts.Overrides {
		if !slices.Contains(Overrides(), o) {
			return nil, fmt.Errorf("unknown override %q (have: %s)", o, strings.Join(Overrides(), ", "))
		}
	}
	return selected, nil
}

func planFrom(ctx context.Context, set *spec.Set, res *activedirectory.Result, ts *TargetState, dir DirectoryReader, opts Options) (*Plan, *planner, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	selected, err := checkOptions(set, opts)
	if err != nil {
		return nil, nil, err
	}
	if len(ts.cols) != len(set.CollectionMappings) || len(ts.roles) != len(set.UserMappings) {
		return nil, nil, errors.New("the Asset Panda state was read for another spec")
	}
	p := &Plan{
		FormatVersion: FormatVersion,
		ID:            newPlanID(),
		CreatedAt:     now().UTC().Truncate(time.Second),
		Suspended:     set.Policy.Spec.Suspend,
		Selected:      len(opts.Mappings) > 0,
	}
	for _, n := range set.MappingNames() {
		if selected[n] {
			p.Mappings = append(p.Mappings, n)
		}
	}
	for _, o := range Overrides() {
		if opts.overridden(o) {
			p.Overrides = append(p.Overrides, o)
		}
	}
	p.LimitsOverridden = len(p.Overrides) > 0

	pl := newPlanner(set, p, opts)
	type observed struct {
		m   spec.CollectionMapping
		obs *collectionState
	}
	var cols []observed
	for i, m := range set.CollectionMappings {
		if st := pl.useCollection(m, ts.cols[i]); st != nil {
			cols = append(cols, observed{m, st})
		}
	}
	var users []assetpanda.User
	var roles roleSet
	usersRead := false
	if len(set.UserMappings) > 0 {
		users, roles, usersRead = pl.useUsers(ts)
	}
	pl.res = res
	pl.resolveDirectory()

	var fp fingerprint
	for _, c := range cols {
		fp.records(c.m.Metadata.Name, c.obs)
		if !pl.unresolved[c.m.Metadata.Name] {
			pl.planRecords(c.m, c.obs)
		}
	}
	if usersRead {
		fp.users(users)
		pl.planUsers(users, roles)
	}
	if dir != nil {
		pl.explainDeactivations(ctx, dir)
	}
	pl.applyGuardsAndLimits()

	p.Prior = Prior{
		Spec:      specDigest(set),
		Directory: directoryDigest(directoryQuery(set), res),
		Target:    fp.sum(),
	}
	if p.Selected {
		p.filter(selected)
	}
	p.finish()
	p.Seal()
	return p, pl, nil
}

// isTerminal reports whether a provider marked err as one that retrying
// cannot fix, such as refused credentials or a missing permission.
func isTerminal(err error) bool {
	var t interface{ Terminal() bool }
	return errors.As(err, &t) && t.Terminal()
}

// selectMappings checks the names and returns the selected set; no names
// select every mapping.
func selectMappings(set *spec.Set, names []string) (map[string]bool, error) {
	all := set.MappingNames()
	sel := make(map[string]bool, len(all))
	var unknown []string
	for _, n := range names {
		if !slices.Contains(all, n) {
			if !slices.Contains(unknown, n) {
				unknown = append(unknown, n)
			}
			continue
		}
		sel[n] = true
	}
	if len(unknown) > 0 {
		var msgs []string
		for _, n := range unknown {
			msg := fmt.Sprintf("%q", n)
			if c := spec.Closest(n, all); c != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", c)
			}
			msgs = append(msgs, msg)
		}
		quoted := make([]string, len(all))
		for i, n := range all {
			quoted[i] = fmt.Sprintf("%q", n)
		}
		return nil, fmt.Errorf("no mapping named %s (have: %s)", strings.Join(msgs, ", "), strings.Join(quoted, ", "))
	}
	if len(names) == 0 {
		for _, n := range all {
			sel[n] = true
		}
	}
	return sel, nil
}

// filter keeps the parts of the plan that concern the selected mappings,
// and the problems that concern no mapping in particular.
func (p *Plan) filter(sel map[string]bool) {
	changes := p.Changes[:0]
	for _, c := range p.Changes {
		if sel[c.Mapping] {
			changes = append(changes, c)
		}
	}
	p.Changes = changes
	blocked := p.Blocked[:0]
	for _, b := range p.Blocked {
		if sel[b.Mapping] {
			blocked = append(blocked, b)
		}
	}
	p.Blocked = blocked
	errs := p.Errors[:0]
	for _, e := range p.Errors {
		if e.Mapping == "" || sel[e.Mapping] {
			errs = append(errs, e)
		}
	}
	p.Errors = errs
}

// directoryQuery collects the groups and attributes every mapping needs
// into one read.
func directoryQuery(set *spec.Set) activedirectory.Query {
	var q activedirectory.Query
	groups := map[string]int{}
	addGroup := func(dn string, n bool) {
		if i, ok := groups[dn]; ok {
			q.Groups[i].Nested = q.Groups[i].Nested || n
			return
		}
		groups[dn] = len(q.Groups)
		q.Groups = append(q.Groups, activedirectory.GroupQuery{DN: dn, Nested: n})
	}
	attrs := map[string]bool{}
	addAttr := func(a string) {
		if a == "" || builtinAttr(a) || attrs[strings.ToLower(a)] {
			return
		}
		attrs[strings.ToLower(a)] = true
		q.Attributes = append(q.Attributes, a)
	}
	for _, m := range set.UserMappings {
		addGroup(m.Spec.Group, m.Spec.IncludeNested())
		for _, a := range userAttributes(m) {
			addAttr(a)
		}
	}
	for _, m := range set.CollectionMappings {
		addGroup(m.Spec.Group, m.Spec.IncludeNested())
		for _, a := range collectionAttributes(m) {
			addAttr(a)
		}
	}
	return q
}

// userAttributes lists the AD attributes a user mapping reads.
func userAttributes(m spec.UserMapping) []string {
	return []string{m.Spec.Fields.Email, m.Spec.Fields.FirstName, m.Spec.Fields.LastName}
}

// collectionAttributes lists the AD attributes a collection mapping reads:
// the key's first.
func collectionAttributes(m spec.CollectionMapping) []string {
	as := []string{m.Spec.Key.Attribute}
	for _, f := range m.Spec.Fields {
		as = append(as, f.Attribute)
	}
	return as
}

// builtinAttr reports whether the reader always reads the attribute into a
// dedicated User field.
func builtinAttr(a string) bool {
	switch strings.ToLower(a) {
	case "objectsid", "objectguid", "samaccountname", "userprincipalname", "distinguishedname", "dn":
		return true
	}
	return false
}

// attr returns the value of an AD attribute of u as Asset Panda text:
// multi-valued attributes are joined with ", ".
func attr(u *activedirectory.User, name string) string {
	switch strings.ToLower(name) {
	case "objectsid":
		return u.SID
	case "objectguid":
		return u.GUID
	case "samaccountname":
		return u.SAMAccountName
	case "userprincipalname":
		return u.UPN
	case "distinguishedname", "dn":
		return u.DN
	}
	return strings.TrimSpace(u.AttrText(name, ", "))
}

// inactive reports whether AD says the account must not be active, and why.
func inactive(u *activedirectory.User) (bool, string, ReasonCode) {
	switch {
	case u.Disabled:
		return true, "disabled in AD", ReasonDisabled
	case u.Expired:
		return true, "account expired in AD", ReasonExpired
	}
	return false, "", ""
}

// planner holds the state of one MakePlan call.
type planner struct {
	set  *spec.Set
	res  *activedirectory.Result
	plan *Plan
	opts Options
	// unresolved marks the mappings that plan nothing this time.
	unresolved map[string]bool
	// active counts the active objects each mapping manages, for the
	// percentage limits.
	active map[string]int
	// meta holds, per change of plan.Changes, what the guards need.
	meta []changeMeta
	// guards stop take-aways: per mapping, per module of the user
	// mappings, and for every user.
	mappingGuards map[string][]guard
	moduleGuards  map[moduleKey][]guard
	userGuards    []guard
	// gone are deactivations whose reason waits for a SID lookup.
	gone []int
}

func newPlanner(set *spec.Set, p *Plan, opts Options) *planner {
	return &planner{set: set, plan: p, opts: opts, unresolved: map[string]bool{}, active: map[string]int{},
		mappingGuards: map[string][]guard{}, moduleGuards: map[moduleKey][]guard{}}
}

// moduleKey names an Asset Panda module, case-folded.
type moduleKey struct{ account, module string }

func moduleOf(account, module string) moduleKey {
	return moduleKey{strings.ToLower(account), strings.ToLower(module)}
}

// changeMeta is what the guards need to know about a change beyond the
// change itself: for users, the modules the change concerns.
type changeMeta struct {
	modules []moduleKey
}

// member is one user member of a mapping's group.
type member struct {
	dn  string
	via []string
	u   *activedirectory.User
}

// members returns the user members of a mapping's group in a stable order;
// a non-nested mapping keeps only direct members. The group must exist
// (resolveDirectory checked it).
func (pl *planner) members(group string, isNested bool) []member {
	g := pl.res.Groups[group]
	if g == nil {
		return nil
	}
	ms := make([]member, 0, len(g.Members))
	for _, dn := range g.Members {
		via := g.Via[dn]
		if !isNested && len(via) > 1 {
			continue
		}
		u := pl.res.Users[dn]
		if u == nil {
			continue
		}
		ms = append(ms, member{dn: dn, via: via, u: u})
	}
	return ms
}

func (pl *planner) groupEmpty(group string) bool {
	g := pl.res.Groups[group]
	return g == nil || !g.Exists || (len(g.Members) == 0 && len(g.Unresolved) == 0)
}

// memberReason explains why a member is in a mapping.
func memberReason(group string, via []string) string {
	if len(via) <= 1 {
		return "member of " + group
	}
	return "member of " + group + " via " + strings.Join(via[1:], " → ")
}

func (pl *planner) problem(pr Problem) {
	pl.plan.Errors = append(pl.plan.Errors, pr)
}

// add plans a change; modules are the user modules it concerns.
func (pl *planner) add(c Change, modules ...moduleKey) int {
	pl.plan.Changes = append(pl.plan.Changes, c)
	pl.meta = append(pl.meta, changeMeta{modules: modules})
	return len(pl.plan.Changes) - 1
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
