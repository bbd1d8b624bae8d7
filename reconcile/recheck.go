package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pandasync/pandasync/spec"
)

// ErrStalePlan is returned by Recheck when a saved plan is no longer what a
// fresh plan would do.
var ErrStalePlan = errors.New("the saved plan is stale")

// Recheck re-plans a saved plan (with its selection and overrides, under
// the limits in force now) and returns the fresh plan when its changes are
// exactly the saved plan's, so that apply does exactly the plan that was
// reviewed and nothing a fresh plan would block. Otherwise it returns an
// error matching ErrStalePlan that says what differs: the directory, Asset
// Panda or the spec changed since, the plan was applied already, or the
// file was edited (a change moved out of Blocked by hand is blocked again
// by the fresh plan, and so differs).
func Recheck(ctx context.Context, saved *Plan, set *spec.Set, dir DirectoryReader, tgt TargetReader) (*Plan, error) {
	opts := Options{Overrides: saved.Overrides}
	if saved.Selected {
		opts.Mappings = saved.Mappings
	}
	if saved.LimitsOverridden && len(saved.Overrides) == 0 {
		opts.OverrideLimits = true
	}
	fresh, err := MakePlan(ctx, set, dir, tgt, opts)
	if err != nil {
		return nil, err
	}
	if diff := changesDiff(saved.Changes, fresh.Changes); diff != "" {
		var changed []string
		if saved.Prior.Spec != fresh.Prior.Spec {
			changed = append(changed, "the spec")
		}
		if saved.Prior.Directory != fresh.Prior.Directory {
			changed = append(changed, "Active Directory")
		}
		if saved.Prior.Target != fresh.Prior.Target {
			changed = append(changed, "Asset Panda")
		}
		why := "the plan file does not match what a fresh plan would do"
		switch {
		case len(fresh.Changes) == 0 && len(changed) > 0:
			why = strings.Join(changed, " and ") + " changed since the plan was made, and nothing is left to do (it was applied already?)"
		case len(changed) > 0:
			why = strings.Join(changed, " and ") + " changed since the plan was made"
		}
		return nil, fmt.Errorf("%w: %s: %s; run pandasync plan again", ErrStalePlan, why, diff)
	}
	return fresh, nil
}

// changeID identifies a change for comparison.
type changeID struct {
	mapping string
	kind    Kind
	key     string
	target  Target
	action  Action
}

// changesDiff describes how two lists of changes differ in what they
// write (everything but the human reason and label), or returns "".
func changesDiff(saved, fresh []Change) string {
	index := func(cs []Change) map[changeID][]Change {
		m := make(map[changeID][]Change, len(cs))
		for _, c := range cs {
			id := changeID{c.Mapping, c.Kind, c.Key, c.Target, c.Action}
			m[id] = append(m[id], c)
		}
		return m
	}
	a, b := index(saved), index(fresh)
	var missing, extra, differ []string
	for id, cs := range a {
		fs, ok := b[id]
		if !ok {
			missing = append(missing, describe(cs[0]))
			continue
		}
		if len(cs) != len(fs) {
			differ = append(differ, describe(cs[0]))
			continue
		}
		for i := range cs {
			if !sameWrite(cs[i], fs[i]) {
				differ = append(differ, describe(cs[i]))
				break
			}
		}
	}
	for id, fs := range b {
		if _, ok := a[id]; !ok {
			extra = append(extra, describe(fs[0]))
		}
	}
	var parts []string
	add := func(what string, list []string) {
		if len(list) == 0 {
			return
		}
		slices.Sort(list)
		shown := list
		if len(shown) > 5 {
			shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(list)-5))
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(list), what, strings.Join(shown, ", ")))
	}
	add("planned change(s) a fresh plan would not make", missing)
	add("change(s) a fresh plan would make differently", differ)
	add("change(s) only a fresh plan has", extra)
	return strings.Join(parts, "; ")
}

func describe(c Change) string {
	return fmt.Sprintf("%s %s %s in %s", c.Action, c.Kind, label(c), c.Mapping)
}

func label(c Change) string {
	if c.Name != "" && c.Name != c.Key {
		return c.Name
	}
	return c.Key
}

// sameWrite reports whether two changes write the same thing.
func sameWrite(a, b Change) bool {
	return a.ID == b.ID && a.Adopt == b.Adopt && maps.Equal(a.Before, b.Before) && maps.Equal(a.After, b.After)
}
