package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/spec"
)

// Explanation says how one person maps: which mappings include them,
// through which groups, and what the plan would do to their objects.
type Explanation struct {
	// Person is the AD account, or nil when the directory has none by that
	// name. It may be outside every mapped group.
	Person *activedirectory.User
	// NotFound is set when neither the directory nor the plan knows the
	// person; Similar then lists members of the mapped groups whose names
	// are close to the one asked for (sAMAccountName or mail).
	NotFound bool
	Similar  []string
	// Memberships lists, per mapping, whether the person is in and how.
	Memberships []Membership
	// Changes, Blocked and Errors are the parts of the plan that concern
	// the person.
	Changes []Change
	Blocked []Blocked
	Errors  []Problem
	Notes   []string
}

// Membership is the person's standing in one mapping.
type Membership struct {
	Mapping string
	Kind    Kind
	Group   string
	Member  bool
	// Via is the chain of groups from the mapping's group down to the one
	// that holds the person directly.
	Via []string
	// Excluded says why a member does not count, e.g. only direct members.
	Excluded string
}

// personFinder is what Explain uses, when the directory offers it, to find
// a person outside the mapped groups. *activedirectory.Reader implements
// it.
type personFinder interface {
	Find(ctx context.Context, who string, attrs []string) ([]*activedirectory.User, error)
}

// maxSimilar caps Explanation.Similar.
const maxSimilar = 5

// Observation is a plan together with what it was made from, returned by
// Observe: anyone can be explained from it without reading AD and Asset
// Panda again.
type Observation struct {
	// Plan is the plan Observe made.
	Plan *Plan
	// Scopes describes each mapping the plan covers.
	Scopes []Scope

	set *spec.Set
	res *activedirectory.Result
}

// Explain finds a person among the members of the mapped groups by
// sAMAccountName, userPrincipalName, mail or SID (case-insensitive), else
// in the whole directory (when dir can search it), and explains how the
// spec maps them.
func Explain(ctx context.Context, set *spec.Set, dir DirectoryReader, tgt TargetReader, who string) (*Explanation, error) {
	o, err := Observe(ctx, set, dir, tgt, Options{})
	if err != nil {
		return nil, err
	}
	return o.Explain(ctx, dir, who)
}

// Explain explains one person (by sAMAccountName, userPrincipalName, mail
// or SID, case-insensitive) from the observation. Only someone who is not
// among the members of the mapped groups is looked for in dir: a SID with
// Lookup, any other name with Find when dir offers it (one search each);
// nothing else is read.
func (o *Observation) Explain(ctx context.Context, dir DirectoryReader, who string) (*Explanation, error) {
	set, p, res := o.set, o.Plan, o.res
	ex := &Explanation{}
	for _, u := range res.Users {
		if matchPerson(u, who) {
			ex.Person = u
			break
		}
	}
	if ex.Person == nil {
		if strings.HasPrefix(strings.ToUpper(who), "S-1-") {
			found, err := dir.Lookup(ctx, []string{strings.ToUpper(who)}, nil)
			if err != nil {
				return nil, fmt.Errorf("look up %s: %w", who, err)
			}
			for _, u := range found {
				ex.Person = u
			}
		}
	}
	if f, ok := dir.(personFinder); ok && ex.Person == nil && !strings.HasPrefix(strings.ToUpper(who), "S-1-") {
		found, err := f.Find(ctx, who, []string{"mail"})
		if err != nil {
			return nil, err
		}
		if len(found) > 0 {
			ex.Person = found[0]
		}
	}
	key := strings.ToUpper(who)
	if ex.Person == nil {
		// Someone no longer in the directory may still be in the plan, by
		// the email Asset Panda holds.
		for _, c := range append(changesOf(p.Blocked), p.Changes...) {
			if c.Name != "" && strings.EqualFold(c.Name, who) {
				key = c.Key
			}
		}
	}
	if ex.Person != nil {
		key = ex.Person.SID
		dn := activedirectory.NormalizeDN(ex.Person.DN)
		add := func(mapping string, kind Kind, group string, isNested bool) {
			m := Membership{Mapping: mapping, Kind: kind, Group: group}
			if g := res.Groups[group]; g != nil {
				if via, ok := g.Via[dn]; ok {
					m.Member, m.Via = true, via
					if !isNested && len(via) > 1 {
						m.Member, m.Excluded = false, "the mapping takes direct members only"
					}
				}
			}
			ex.Memberships = append(ex.Memberships, m)
		}
		for _, m := range set.UserMappings {
			add(m.Metadata.Name, KindUser, m.Spec.Group, m.Spec.IncludeNested())
		}
		for _, m := range set.CollectionMappings {
			add(m.Metadata.Name, KindRecord, m.Spec.Group, m.Spec.IncludeNested())
		}
	}
	for _, c := range p.Changes {
		if c.Key == key {
			ex.Changes = append(ex.Changes, c)
		}
	}
	for _, b := range p.Blocked {
		if b.Key == key {
			ex.Blocked = append(ex.Blocked, b)
		}
	}
	for _, e := range p.Errors {
		if e.Key == key || (ex.Person != nil && e.Object == ex.Person.DN) {
			ex.Errors = append(ex.Errors, e)
		}
	}
	if ex.Person == nil && len(ex.Changes)+len(ex.Blocked)+len(ex.Errors) == 0 {
		ex.NotFound = true
		ex.Similar = similarMembers(res.Users, who)
	}
	if ex.Person != nil {
		for _, n := range p.Notes {
			if mail := attr(ex.Person, "mail"); mail != "" && strings.Contains(n, mail) {
				ex.Notes = append(ex.Notes, n)
			}
		}
	}
	return ex, nil
}

func matchPerson(u *activedirectory.User, who string) bool {
	for _, v := range []string{u.SAMAccountName, u.UPN, u.SID, attr(u, "mail")} {
		if v != "" && strings.EqualFold(v, who) {
			return true
		}
	}
	return false
}

func changesOf(bs []Blocked) []Change {
	out := make([]Change, len(bs))
	for i, b := range bs {
		out[i] = b.Change
	}
	return out
}

// similarMembers returns up to maxSimilar names of mapped members close to
// who, one per person (their sAMAccountName or mail, whichever is closer):
// within a small edit distance, or starting with who; nearest first.
func similarMembers(users map[string]*activedirectory.User, who string) []string {
	type scored struct {
		name string
		d    int
	}
	var found []scored
	for _, u := range users {
		best := scored{d: -1}
		for _, name := range []string{u.SAMAccountName, attr(u, "mail")} {
			if name == "" {
				continue
			}
			local, _, _ := strings.Cut(name, "@")
			for _, cand := range []string{name, local} {
				if d, ok := spec.Closeness(who, cand); ok && (best.d < 0 || d < best.d) {
					best = scored{name, d}
				}
			}
		}
		if best.d >= 0 {
			found = append(found, best)
		}
	}
	slices.SortFunc(found, func(a, b scored) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	var out []string
	for _, f := range found[:min(len(found), maxSimilar)] {
		out = append(out, f.name)
	}
	return out
}
