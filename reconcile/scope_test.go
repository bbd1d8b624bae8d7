package reconcile

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestObserveScopes checks what each mapping covered, before and after
// the first plan is applied: members in scope (nested ones included, the
// disabled counted apart) and the active objects it manages.
func TestObserveScopes(t *testing.T) {
	w := newWorld(t)
	scopes := func() []Scope {
		t.Helper()
		o, err := Observe(context.Background(), w.set, w.dir, w.ap, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return o.Scopes
	}
	target := Target{Account: "Acme", Module: "IT Assets"}
	people := Target{Account: "Acme", Module: "IT Assets", Collection: "People"}
	want := []Scope{
		{Mapping: "admins", Kind: KindUser, Target: target, Role: "Module Admin", Group: admins, Nested: true, Resolved: true, Members: 2},
		// Dave is disabled; Heidi has no email (a problem), yet a member.
		{Mapping: "users", Kind: KindUser, Target: target, Role: "Collaborator", Group: users, Nested: true, Resolved: true, Members: 5, Disabled: 1},
		// Erin and Frank through Engineering.
		{Mapping: "staff", Kind: KindRecord, Target: people, Group: staff, Nested: true, Resolved: true, Members: 7, Disabled: 1},
	}
	if diff := cmp.Diff(want, scopes()); diff != "" {
		t.Errorf("scopes before the first apply (-want +got):\n%s", diff)
	}
	w.converge()
	// Alice and Carol are admins (Carol's first mapping); Bob and the
	// adopted Grace are users; six records (never one for disabled Dave).
	want[0].Managed, want[1].Managed, want[2].Managed = 2, 2, 6
	if diff := cmp.Diff(want, scopes()); diff != "" {
		t.Errorf("scopes after the first apply (-want +got):\n%s", diff)
	}
}

// TestBlockedOverrideFlag checks the flag each limit and guard names.
func TestBlockedOverrideFlag(t *testing.T) {
	deactivate := Change{Kind: KindRecord, Action: ActionDeactivate}
	role := Change{Kind: KindUser, Action: ActionUpdate, Before: map[string]string{UserRole: "Module Admin"}, After: map[string]string{UserRole: "Collaborator"}}
	for _, tc := range []struct {
		limit  string
		change Change
		want   string
	}{
		{LimitMaxDeactivations, deactivate, "-allow-mass-deactivation"},
		{LimitMaxDeactivationPercent, deactivate, "-allow-mass-deactivation"},
		{LimitMaxRoleChanges, role, "-allow-mass-role-change"},
		{LimitMaxFieldClearPercent, Change{}, "-allow-mass-field-clear"},
		{LimitMaxCreates, Change{Action: ActionCreate}, "-allow-mass-create"},
		{GuardEmptyGroup, deactivate, "-allow-mass-deactivation"},
		{GuardEmptyGroup, role, "-allow-mass-role-change"},
		{GuardIncompleteRead, deactivate, ""},
		{GuardUnresolvedMapping, role, ""},
	} {
		if got := (Blocked{Change: tc.change, Limit: tc.limit}).OverrideFlag(); got != tc.want {
			t.Errorf("%s on a %s: OverrideFlag() = %q, want %q", tc.limit, tc.change.Action, got, tc.want)
		}
	}
}
