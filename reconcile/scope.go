package reconcile

import "github.com/pandasync/pandasync/spec"

// Scope is what one mapping covered when a plan was made: where it writes,
// which group feeds it, how many members that group gave it and how many
// objects it manages. The status page shows one row per mapping from it.
type Scope struct {
	Mapping string `json:"mapping"`
	Kind    Kind   `json:"kind"`
	Target  Target `json:"target"`
	// Role is the role a user mapping gives; empty for collections.
	Role   string `json:"role,omitempty"`
	Group  string `json:"group"`
	Nested bool   `json:"nested"`
	// Resolved is false when a name of the mapping did not resolve or its
	// Asset Panda side could not be read: it planned nothing (the plan's
	// problems say why), and the counts below are what could be read.
	Resolved bool `json:"resolved"`
	// Members counts the group's user members the mapping takes (only
	// direct members when it is not nested); Disabled counts those of them
	// that are disabled or expired in AD.
	Members  int `json:"members"`
	Disabled int `json:"disabled"`
	// Managed counts the active objects the mapping manages in Asset Panda:
	// records whose key holds a SID and that are not Inactive, users
	// carrying an AD SID that are active and belong to the mapping. It is
	// the figure the percentage limits are taken of.
	Managed int `json:"managed"`
}

// scopes describes each mapping the plan covers, in the spec's order.
func (pl *planner) scopes() []Scope {
	covered := map[string]bool{}
	for _, n := range pl.plan.Mappings {
		covered[n] = true
	}
	var out []Scope
	add := func(s Scope, isNested bool) {
		if !covered[s.Mapping] {
			return
		}
		s.Nested = isNested
		s.Resolved = !pl.unresolved[s.Mapping]
		s.Managed = pl.active[s.Mapping]
		if pl.res != nil {
			for _, mb := range pl.members(s.Group, isNested) {
				s.Members++
				if off, _, _ := inactive(mb.u); off {
					s.Disabled++
				}
			}
		}
		out = append(out, s)
	}
	for _, m := range pl.set.UserMappings {
		add(Scope{Mapping: m.Metadata.Name, Kind: KindUser, Target: Target{Account: m.Spec.Account, Module: m.Spec.Module},
			Role: m.Spec.Role, Group: m.Spec.Group}, m.Spec.IncludeNested())
	}
	for _, m := range pl.set.CollectionMappings {
		add(Scope{Mapping: m.Metadata.Name, Kind: KindRecord,
			Target: Target{Account: m.Spec.Account, Module: m.Spec.Module, Collection: m.Spec.Collection},
			Group:  m.Spec.Group}, m.Spec.IncludeNested())
	}
	return out
}

// OverrideFlag is the command-line flag that lets this blocked change go
// ahead for one plan, such as "-allow-mass-deactivation"; empty when no
// override lifts what stopped it (a guard against an incomplete read or an
// unresolved mapping: only a repair does, as Fix says).
func (b Blocked) OverrideFlag() string {
	for _, k := range limitKinds(spec.Limits{}) {
		if b.Limit == k.count || b.Limit == k.percent {
			return k.flag
		}
	}
	if b.Limit != GuardEmptyGroup {
		return ""
	}
	for _, pt := range takeaways(b.Change) {
		return OverrideFlag(overrideOf(pt.take))
	}
	return ""
}
