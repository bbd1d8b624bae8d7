package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/spec"
)

// Explanation says how one person maps: which mappings include them,
// through which groups, and what the plan would do to their objects.
type Explanation struct {
	// Person is the AD account, or nil when no mapped group holds it.
	Person *activedirectory.User
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

// Explain finds a person among the members of the mapped groups by
// sAMAccountName, userPrincipalName, mail or SID (case-insensitive) and
// explains how the spec maps them.
func Explain(ctx context.Context, set *spec.Set, dir DirectoryReader, tgt TargetReader, who string) (*Explanation, error) {
	p, res, err := makePlan(ctx, set, dir, tgt, Options{})
	if err != nil {
		return nil, err
	}
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
	key := strings.ToUpper(who)
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
