package reconcile

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// DirectoryReader is what planning needs from Active Directory.
// *activedirectory.Reader implements it.
type DirectoryReader interface {
	// Read resolves the groups' members and reads their attributes. A read
	// that fails part-way returns an error, never a shorter result.
	Read(ctx context.Context, q activedirectory.Query) (*activedirectory.Result, error)
	// Lookup finds users by SID; SIDs that no longer exist are absent
	// from the result.
	Lookup(ctx context.Context, sids []string, attrs []string) (map[string]*activedirectory.User, error)
}

// TargetReader is what planning needs from Asset Panda.
// *assetpanda.Client implements it.
type TargetReader interface {
	Collection(ctx context.Context, account, module, collection string) (*assetpanda.Collection, error)
	Role(ctx context.Context, account, module, role string) (*assetpanda.Role, error)
	Records(ctx context.Context, col *assetpanda.Collection) ([]assetpanda.Record, error)
	Users(ctx context.Context) ([]assetpanda.User, error)
}

// Options tune a plan.
type Options struct {
	// Mappings limits the plan to the named mappings; empty means all.
	Mappings []string
	// OverrideLimits lifts the deactivation limits for this one plan, for
	// when a mass change is real. A group that is missing from AD still
	// blocks every deactivation of its mappings.
	OverrideLimits bool
	// Now stamps the plan; nil means time.Now.
	Now func() time.Time
}

// percentFloor is the number of managed objects below which the percentage
// limit does not apply: one leaver out of four is 25 % but no accident.
const percentFloor = 10

// MakePlan reads Active Directory and Asset Panda and computes the changes
// that bring Asset Panda to the state the spec describes.
//
// A failed directory read fails the whole plan: no plan is ever made from a
// partial read. A mapping whose Asset Panda side cannot be read (unknown
// collection, role or field) is reported in the plan's Errors and left out;
// the other mappings proceed.
func MakePlan(ctx context.Context, set *spec.Set, dir DirectoryReader, tgt TargetReader, opts Options) (*Plan, error) {
	p, _, err := makePlan(ctx, set, dir, tgt, opts)
	return p, err
}

// makePlan is MakePlan, also returning what it read from the directory.
func makePlan(ctx context.Context, set *spec.Set, dir DirectoryReader, tgt TargetReader, opts Options) (*Plan, *activedirectory.Result, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	sel, err := selectMappings(set, opts.Mappings)
	if err != nil {
		return nil, nil, err
	}
	p := &Plan{
		FormatVersion:    FormatVersion,
		ID:               newPlanID(),
		CreatedAt:        now().UTC().Truncate(time.Second),
		Suspended:        set.Policy.Spec.Suspend,
		LimitsOverridden: opts.OverrideLimits,
	}
	for _, m := range sel.users {
		p.Mappings = append(p.Mappings, m.Metadata.Name)
	}
	for _, m := range sel.collections {
		p.Mappings = append(p.Mappings, m.Metadata.Name)
	}

	// Read both sides at once: the directory in the background, Asset
	// Panda here. A failed directory read cancels the Asset Panda reads.
	q := directoryQuery(sel)
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

	pl := &planner{set: set, sel: sel, plan: p, managed: map[string]int{}}
	type observed struct {
		m   spec.CollectionMapping
		obs *collectionState
	}
	var cols []observed
	var colErrs []Problem
	for _, m := range sel.collections {
		obs, err := pl.observeCollection(ctx, tgt, m)
		if err != nil {
			colErrs = append(colErrs, Problem{Mapping: m.Metadata.Name, Message: err.Error()})
			continue
		}
		cols = append(cols, observed{m, obs})
	}
	var users []assetpanda.User
	var roles roleSet
	var usersErr error
	if len(sel.users) > 0 {
		users, roles, usersErr = pl.observeUsers(ctx, tgt)
	}

	r := <-read
	if r.err != nil {
		return nil, nil, fmt.Errorf("read active directory: %w", r.err)
	}
	res := r.res
	pl.res = res
	p.Errors = append(p.Errors, colErrs...)

	var fp fingerprint
	for _, c := range cols {
		fp.records(c.m.Metadata.Name, c.obs)
		pl.planRecords(c.m, c.obs)
	}
	if len(sel.users) > 0 {
		if usersErr != nil {
			for _, m := range sel.users {
				p.Errors = append(p.Errors, Problem{Mapping: m.Metadata.Name, Message: usersErr.Error()})
			}
		} else {
			fp.users(users)
			pl.planUsers(users, roles)
		}
	}
	pl.explainDeactivations(ctx, dir)
	pl.applyLimits(opts.OverrideLimits)

	p.Prior = Prior{
		Spec:      specDigest(set),
		Directory: directoryDigest(q, res),
		Target:    fp.sum(),
	}
	p.finish()
	return p, res, nil
}

// selection is the part of a spec set a plan covers.
type selection struct {
	users       []spec.UserMapping
	collections []spec.CollectionMapping
}

func selectMappings(set *spec.Set, names []string) (selection, error) {
	var s selection
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, m := range set.UserMappings {
		if len(want) == 0 || want[m.Metadata.Name] {
			s.users = append(s.users, m)
			delete(want, m.Metadata.Name)
		}
	}
	for _, m := range set.CollectionMappings {
		if len(want) == 0 || want[m.Metadata.Name] {
			s.collections = append(s.collections, m)
			delete(want, m.Metadata.Name)
		}
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, fmt.Sprintf("%q", n))
		}
		sort.Strings(missing)
		return s, fmt.Errorf("no mapping named %s (have: %s)", strings.Join(missing, ", "), strings.Join(mappingNames(set), ", "))
	}
	return s, nil
}

func mappingNames(set *spec.Set) []string {
	var names []string
	for _, m := range set.UserMappings {
		names = append(names, fmt.Sprintf("%q", m.Metadata.Name))
	}
	for _, m := range set.CollectionMappings {
		names = append(names, fmt.Sprintf("%q", m.Metadata.Name))
	}
	return names
}

func nested(b *bool) bool { return b == nil || *b }

// directoryQuery collects the groups and attributes every selected mapping
// needs into one read.
func directoryQuery(sel selection) activedirectory.Query {
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
	for _, m := range sel.users {
		addGroup(m.Spec.Group, nested(m.Spec.Nested))
		f := userFields(m.Spec.Fields)
		addAttr(f.Email)
		addAttr(f.FirstName)
		addAttr(f.LastName)
	}
	for _, m := range sel.collections {
		addGroup(m.Spec.Group, nested(m.Spec.Nested))
		addAttr(keyAttribute(m.Spec.Key))
		for _, f := range m.Spec.Fields {
			addAttr(f.Attribute)
		}
	}
	return q
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

func userFields(f spec.UserFields) spec.UserFields {
	if f.Email == "" {
		f.Email = "mail"
	}
	if f.FirstName == "" {
		f.FirstName = "givenName"
	}
	if f.LastName == "" {
		f.LastName = "sn"
	}
	return f
}

func keyAttribute(k spec.KeyField) string {
	if k.Attribute == "" {
		return "objectSid"
	}
	return k.Attribute
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
	vs := u.Attr(name)
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return strings.TrimSpace(vs[0])
	}
	return strings.TrimSpace(strings.Join(vs, ", "))
}

// inactive reports whether AD says the account must not be active, and why.
func inactive(u *activedirectory.User) (bool, string) {
	switch {
	case u.Disabled:
		return true, "disabled in AD"
	case u.Expired:
		return true, "account expired in AD"
	}
	return false, ""
}

// planner holds the state of one MakePlan call.
type planner struct {
	set  *spec.Set
	sel  selection
	res  *activedirectory.Result
	plan *Plan
	// managed counts the objects each mapping manages, for the percentage
	// limit.
	managed map[string]int
	// gone are deactivations whose reason waits for a SID lookup.
	gone []int
}

// member is one user member of a mapping's group.
type member struct {
	dn  string
	via []string
	u   *activedirectory.User
}

// members returns the user members of a mapping's group in a stable order;
// a non-nested mapping keeps only direct members. ok is false when the group
// does not exist.
func (pl *planner) members(group string, isNested bool) (ms []member, ok bool) {
	g := pl.res.Groups[group]
	if g == nil || !g.Exists {
		return nil, false
	}
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
	return ms, true
}

func (pl *planner) groupEmpty(group string) bool {
	g := pl.res.Groups[group]
	return g == nil || !g.Exists || len(g.Members) == 0
}

// memberReason explains why a member is in a mapping.
func memberReason(group string, via []string) string {
	if len(via) <= 1 {
		return "member of " + group
	}
	return "member of " + group + " via " + strings.Join(via[1:], " → ")
}

func (pl *planner) problem(mapping, key, object, format string, args ...any) {
	pl.plan.Errors = append(pl.plan.Errors, Problem{Mapping: mapping, Key: key, Object: object, Message: fmt.Sprintf(format, args...)})
}

func (pl *planner) add(c Change) int {
	pl.plan.Changes = append(pl.plan.Changes, c)
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
