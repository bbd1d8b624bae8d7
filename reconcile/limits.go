package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pandasync/pandasync/spec"
)

// Names of the limits and guards that block changes, as Blocked.Limit
// holds them.
const (
	LimitMaxDeactivations       = "maxDeactivations"
	LimitMaxDeactivationPercent = "maxDeactivationPercent"
	LimitMaxRoleChanges         = "maxRoleChanges"
	LimitMaxRoleChangePercent   = "maxRoleChangePercent"
	LimitMaxFieldClears         = "maxFieldClears"
	LimitMaxFieldClearPercent   = "maxFieldClearPercent"
	LimitMaxCreates             = "maxCreates"
	LimitMaxCreatePercent       = "maxCreatePercent"
	// GuardEmptyGroup: a mapped group read as empty; nobody is
	// deprovisioned from an empty read unless the override says it is
	// real.
	GuardEmptyGroup = "emptyGroupGuard"
	// GuardUnresolvedMapping: a user mapping of the module does not
	// resolve, so whom it keeps is unknown.
	GuardUnresolvedMapping = "unresolvedMappingGuard"
	// GuardIncompleteRead: members of the group could not be read, or
	// lack the attribute that identifies them.
	GuardIncompleteRead = "incompleteReadGuard"
)

// take is a set of kinds of change that take something away, or that a
// limit caps.
type take uint8

const (
	takeDeactivate take = 1 << iota
	takeRole
	takeClear
	takeCreate
)

// guard stops the take-aways of some kinds in its scope.
type guard struct {
	kind   string
	takes  take
	detail string
	fix    string
	// overridable by the override of the kind of change it blocks.
	overridable bool
}

// limitKind describes one of the four limits.
type limitKind struct {
	take             take
	override         string
	count, percent   string // Blocked.Limit names
	countV, percentV int
	noun             string // "deactivations"
	flag             string // the one-time override flag
}

func limitKinds(l spec.Limits) []limitKind {
	return []limitKind{
		{takeDeactivate, OverrideDeactivations, LimitMaxDeactivations, LimitMaxDeactivationPercent, l.MaxDeactivations, l.MaxDeactivationPercent, "deactivations", "-allow-mass-deactivation"},
		{takeRole, OverrideRoleChanges, LimitMaxRoleChanges, LimitMaxRoleChangePercent, l.MaxRoleChanges, l.MaxRoleChangePercent, "role changes", "-allow-mass-role-change"},
		{takeClear, OverrideFieldClears, LimitMaxFieldClears, LimitMaxFieldClearPercent, l.MaxFieldClears, l.MaxFieldClearPercent, "field clears", "-allow-mass-field-clear"},
		{takeCreate, OverrideCreates, LimitMaxCreates, LimitMaxCreatePercent, l.MaxCreates, l.MaxCreatePercent, "creates", "-allow-mass-create"},
	}
}

// OverrideFlag returns the command-line flag of an override, such as
// "-allow-mass-deactivation" for OverrideDeactivations.
func OverrideFlag(override string) string {
	for _, k := range limitKinds(spec.Limits{}) {
		if k.override == override {
			return k.flag
		}
	}
	return ""
}

// part is one take-away found in a change: the kind and, for role changes
// and field clears, the fields it concerns.
type part struct {
	take   take
	fields []string
}

// takeaways splits a change into the take-aways it carries. A
// deactivation can carry field clears too (a disabled member whose AD
// attributes were emptied): they count, and are blocked, as clears.
func takeaways(c Change) []part {
	if c.Action == ActionCreate {
		return []part{{take: takeCreate}}
	}
	var parts []part
	if c.Action == ActionDeactivate {
		parts = append(parts, part{take: takeDeactivate})
	} else if c.Kind == KindUser {
		if was, ok := c.Before[UserRole]; ok && was != "" && !strings.EqualFold(was, c.After[UserRole]) {
			parts = append(parts, part{take: takeRole, fields: []string{UserRole}})
		}
	}
	var cleared []string
	for f, was := range c.Before {
		if c.Kind == KindUser && (f == UserRole || f == UserActive || f == UserADSID) {
			continue
		}
		if now, ok := c.After[f]; ok && was != "" && now == "" {
			cleared = append(cleared, f)
		}
	}
	if len(cleared) > 0 {
		slices.Sort(cleared)
		parts = append(parts, part{take: takeClear, fields: cleared})
	}
	return parts
}

// TakeAway is what a change takes from a person, as the safety limits
// count it.
type TakeAway struct {
	Deactivate bool     // the user or record is deactivated (set Inactive)
	Role       bool     // a user's role changes from one they had
	Cleared    []string // fields emptied that had a value, sorted
}

// Any reports whether the change takes anything away.
func (t TakeAway) Any() bool { return t.Deactivate || t.Role || len(t.Cleared) > 0 }

// TakesAway says what c takes away: the same split the guards and limits
// use, for callers that report or react to take-aways.
func (c Change) TakesAway() TakeAway {
	var t TakeAway
	for _, pt := range takeaways(c) {
		switch pt.take {
		case takeDeactivate:
			t.Deactivate = true
		case takeRole:
			t.Role = true
		case takeClear:
			t.Cleared = pt.fields
		}
	}
	return t
}

// applyGuardsAndLimits moves the changes (or the parts of changes) that a
// guard or a limit stops from the plan's changes to its blocked list.
//
// Guards come first: an empty group, an unresolved user mapping of the
// module, or members that could not be read stop the take-aways in their
// scope. Limits then count, per mapping, what is left of each kind and are
// all or nothing: when a mapping would deactivate more than allowed, none
// of its deactivations is applied, so that a person looks at them.
func (pl *planner) applyGuardsAndLimits() {
	pl.emptyGroupGuards()

	type blockedPart struct {
		b      Blocked
		fields []string // nil: the whole change
	}
	blocked := make(map[int][]blockedPart)
	block := func(i int, pt part, limit, detail, fix string) {
		blocked[i] = append(blocked[i], blockedPart{Blocked{Limit: limit, Detail: detail, Fix: fix}, pt.fields})
	}
	isBlocked := func(i int, pt part) bool {
		for _, bp := range blocked[i] {
			if bp.fields == nil || slices.Equal(bp.fields, pt.fields) {
				return true
			}
		}
		return false
	}

	parts := make([][]part, len(pl.plan.Changes))
	for i, c := range pl.plan.Changes {
		parts[i] = takeaways(c)
		for _, pt := range parts[i] {
			if g, ok := pl.guardFor(i, c, pt.take); ok {
				fix := g.fix
				if g.overridable {
					fix = fmt.Sprintf(g.fix, OverrideFlag(overrideOf(pt.take)))
				}
				block(i, pt, g.kind, g.detail, fix)
			}
		}
	}

	// Limits, per mapping and kind, over what the guards left.
	for _, k := range limitKinds(pl.set.Policy.Spec.Limits) {
		if pl.opts.overridden(k.override) {
			continue
		}
		byMapping := map[string][]int{}
		for i, c := range pl.plan.Changes {
			for _, pt := range parts[i] {
				if pt.take == k.take && !isBlocked(i, pt) {
					byMapping[c.Mapping] = append(byMapping[c.Mapping], i)
				}
			}
		}
		for _, mapping := range slices.Sorted(maps.Keys(byMapping)) {
			idx := byMapping[mapping]
			n, active := len(idx), pl.active[mapping]
			var limit, detail string
			switch {
			case k.countV > 0 && n > k.countV:
				limit, detail = k.count, fmt.Sprintf("%d %s planned, the limit is %d per mapping per run", n, k.noun, k.countV)
			case k.percentV > 0 && active >= percentFloor && n*100 > k.percentV*active:
				limit, detail = k.percent, fmt.Sprintf("%d %s planned for %d active managed objects (%d%%), the limit is %d%%", n, k.noun, active, n*100/active, k.percentV)
			default:
				continue
			}
			fix := fmt.Sprintf("if the change is real, plan again with %s (this one run only)", k.flag)
			for _, i := range idx {
				for _, pt := range parts[i] {
					if pt.take == k.take && !isBlocked(i, pt) {
						block(i, pt, limit, detail, fix)
					}
				}
			}
		}
	}

	// A user whose creation is blocked cannot get roles in further
	// modules either.
	created := map[string]Blocked{}
	for i, c := range pl.plan.Changes {
		if c.Kind == KindUser && c.Action == ActionCreate && len(blocked[i]) > 0 {
			created[c.Key] = blocked[i][0].b
		}
	}
	for i, c := range pl.plan.Changes {
		if b, ok := created[c.Key]; ok && c.ReasonCode == ReasonRoleGranted && len(blocked[i]) == 0 {
			blocked[i] = append(blocked[i], blockedPart{Blocked{Limit: b.Limit, Detail: "the user's creation is blocked: " + b.Detail, Fix: b.Fix}, nil})
		}
	}

	if len(blocked) == 0 {
		return
	}
	kept := pl.plan.Changes[:0]
	for i, c := range pl.plan.Changes {
		bps := blocked[i]
		if len(bps) == 0 {
			kept = append(kept, c)
			continue
		}
		rest := c
		whole := false
		for _, bp := range bps {
			b := bp.b
			if bp.fields == nil {
				whole = true
				b.Change = c
				pl.plan.Blocked = append(pl.plan.Blocked, b)
				break
			}
			b.Change = withFields(c, bp.fields)
			b.Change.Action = ActionUpdate
			pl.plan.Blocked = append(pl.plan.Blocked, b)
			rest = withoutFields(rest, bp.fields)
		}
		if whole || len(rest.After) == 0 {
			continue
		}
		kept = append(kept, rest)
	}
	pl.plan.Changes = kept
}

// emptyGroupGuards guards the mappings whose group exists but read as
// empty: for a collection mapping its deactivations; for a user mapping the
// deactivations and role changes of its whole module, since role
// precedence ties the module's user mappings together.
func (pl *planner) emptyGroupGuards() {
	g := func(group string) guard {
		return guard{kind: GuardEmptyGroup, overridable: true,
			detail: fmt.Sprintf("group %s read as empty; pandasync never deprovisions from an empty read", group),
			fix:    "if the group is meant to be empty, plan again with %s (this one run only)"}
	}
	for _, m := range pl.set.CollectionMappings {
		if !pl.unresolved[m.Metadata.Name] && pl.groupEmpty(m.Spec.Group) {
			gd := g(m.Spec.Group)
			gd.takes = takeDeactivate
			pl.mappingGuards[m.Metadata.Name] = append(pl.mappingGuards[m.Metadata.Name], gd)
		}
	}
	for _, m := range pl.set.UserMappings {
		if !pl.unresolved[m.Metadata.Name] && pl.groupEmpty(m.Spec.Group) {
			gd := g(m.Spec.Group)
			gd.takes = takeDeactivate | takeRole
			mk := moduleOf(m.Spec.Account, m.Spec.Module)
			pl.moduleGuards[mk] = append(pl.moduleGuards[mk], gd)
		}
	}
}

// guardFor returns the first guard that stops the take-away t of change i.
func (pl *planner) guardFor(i int, c Change, t take) (guard, bool) {
	var gs []guard
	gs = append(gs, pl.mappingGuards[c.Mapping]...)
	if c.Kind == KindUser {
		gs = append(gs, pl.userGuards...)
		for _, mk := range pl.meta[i].modules {
			gs = append(gs, pl.moduleGuards[mk]...)
		}
	}
	for _, g := range gs {
		if g.takes&t == 0 {
			continue
		}
		if g.overridable {
			if o := overrideOf(t); o != "" && pl.opts.overridden(o) {
				continue
			}
		}
		return g, true
	}
	return guard{}, false
}

func overrideOf(t take) string {
	for _, k := range limitKinds(spec.Limits{}) {
		if k.take == t {
			return k.override
		}
	}
	return ""
}

// withFields returns c restricted to the given fields.
func withFields(c Change, fields []string) Change {
	c.Before, c.After = pick(c.Before, fields, true), pick(c.After, fields, true)
	c.Reason = narrowReason(c.Reason, c.After)
	return c
}

// withoutFields returns c without the given fields.
func withoutFields(c Change, fields []string) Change {
	c.Before, c.After = pick(c.Before, fields, false), pick(c.After, fields, false)
	c.Reason = narrowReason(c.Reason, c.After)
	return c
}

// narrowReason keeps, in an "AD differs in A, B" reason, the fields that
// are left in after.
func narrowReason(reason string, after map[string]string) string {
	const prefix = "AD differs in "
	list, ok := strings.CutPrefix(reason, prefix)
	if !ok {
		return reason
	}
	var kept []string
	for _, f := range strings.Split(list, ", ") {
		if _, ok := after[f]; ok {
			kept = append(kept, f)
		}
	}
	if len(kept) == 0 {
		return reason
	}
	return prefix + strings.Join(kept, ", ")
}

func pick(m map[string]string, fields []string, keep bool) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if slices.Contains(fields, k) == keep {
			out[k] = v
		}
	}
	return out
}
