package reconcile

import (
	"fmt"

	"github.com/pandasync/pandasync/spec"
)

// Names of the limits and guards that block changes.
const (
	LimitMaxDeactivations       = "maxDeactivations"
	LimitMaxDeactivationPercent = "maxDeactivationPercent"
	GuardEmptyGroup             = "emptyGroupGuard"
)

// Default limits, used when the SyncPolicy leaves them zero.
const (
	DefaultMaxDeactivations       = 500
	DefaultMaxDeactivationPercent = 20
)

// effectiveLimits resolves the policy's limits: zero takes the default and
// a negative value switches the limit off (returned as 0).
func effectiveLimits(l spec.Limits) (count, percent int) {
	count, percent = l.MaxDeactivations, l.MaxDeactivationPercent
	switch {
	case count == 0:
		count = DefaultMaxDeactivations
	case count < 0:
		count = 0
	}
	switch {
	case percent == 0:
		percent = DefaultMaxDeactivationPercent
	case percent < 0:
		percent = 0
	}
	return count, percent
}

// applyLimits moves deactivations that a guard or a limit stops from the
// plan's changes to its blocked list. Limits act per mapping and all or
// nothing: when a mapping would deactivate more than allowed, none of its
// deactivations is applied, so that a mass change is looked at by a person.
func (pl *planner) applyLimits(override bool) {
	count, percent := effectiveLimits(pl.set.Policy.Spec.Limits)

	// Which mappings may not deprovision because a group read empty.
	guarded := map[string]string{}
	for _, m := range pl.sel.collections {
		if pl.groupEmpty(m.Spec.Group) {
			guarded[m.Metadata.Name] = m.Spec.Group
		}
	}
	for _, m := range pl.sel.users {
		for _, o := range pl.sel.users {
			if o.Spec.Account == m.Spec.Account && o.Spec.Module == m.Spec.Module && pl.groupEmpty(o.Spec.Group) {
				guarded[m.Metadata.Name] = o.Spec.Group
				break
			}
		}
	}

	deact := map[string]int{}
	for _, c := range pl.plan.Changes {
		if c.Action == ActionDeactivate {
			deact[c.Mapping]++
		}
	}
	blockedBy := map[string]Blocked{}
	for mapping, n := range deact {
		if g, ok := guarded[mapping]; ok {
			g2 := pl.res.Groups[g]
			if g2 != nil && g2.Exists && override {
				continue // an empty group that exists: the override says it is real
			}
			blockedBy[mapping] = Blocked{Limit: GuardEmptyGroup, Detail: fmt.Sprintf(
				"group %s read as empty or missing; pandasync never deprovisions from an empty read", g)}
			continue
		}
		if override {
			continue
		}
		if count > 0 && n > count {
			blockedBy[mapping] = Blocked{Limit: LimitMaxDeactivations, Detail: fmt.Sprintf(
				"%d deactivations planned, limit is %d per mapping per run", n, count)}
			continue
		}
		managed := pl.managed[mapping]
		if percent > 0 && managed >= percentFloor && n*100 > percent*managed {
			blockedBy[mapping] = Blocked{Limit: LimitMaxDeactivationPercent, Detail: fmt.Sprintf(
				"%d of %d managed objects (%d%%) would be deactivated, limit is %d%%", n, managed, n*100/managed, percent)}
		}
	}
	if len(blockedBy) == 0 {
		return
	}
	kept := pl.plan.Changes[:0]
	for _, c := range pl.plan.Changes {
		if b, ok := blockedBy[c.Mapping]; ok && c.Action == ActionDeactivate {
			b.Change = c
			pl.plan.Blocked = append(pl.plan.Blocked, b)
			continue
		}
		kept = append(kept, c)
	}
	pl.plan.Changes = kept
}
