package reconcile

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTakesAway(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Change
		want TakeAway
	}{
		{"create", Change{Kind: KindRecord, Action: ActionCreate, After: map[string]string{"Title": "x"}}, TakeAway{}},
		{"record deactivation with a clear",
			Change{Kind: KindRecord, Action: ActionDeactivate, Before: map[string]string{"Title": "Eng", "Status": "Active"}, After: map[string]string{"Title": "", "Status": "Inactive"}},
			TakeAway{Deactivate: true, Cleared: []string{"Title"}}},
		{"user role change", Change{Kind: KindUser, Action: ActionUpdate, Before: map[string]string{UserRole: "Module Admin"}, After: map[string]string{UserRole: "Collaborator"}},
			TakeAway{Role: true}},
		{"user role granted", Change{Kind: KindUser, Action: ActionUpdate, Before: map[string]string{UserRole: ""}, After: map[string]string{UserRole: "Collaborator"}},
			TakeAway{}},
		{"user fields that are not clears", Change{Kind: KindUser, Action: ActionUpdate, Before: map[string]string{UserADSID: "S-1-5-21-1", UserActive: "true"}, After: map[string]string{UserADSID: "", UserActive: ""}},
			TakeAway{}},
		{"a collection field named role is a clear", Change{Kind: KindRecord, Action: ActionUpdate, Before: map[string]string{"role": "Lead"}, After: map[string]string{"role": ""}},
			TakeAway{Cleared: []string{"role"}}},
		{"reactivation changing a role", Change{Kind: KindUser, Action: ActionReactivate, Before: map[string]string{UserActive: "false", UserRole: "Module Admin"}, After: map[string]string{UserActive: "true", UserRole: "Collaborator"}},
			TakeAway{Role: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.c.TakesAway()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("TakesAway (-want +got):\n%s", diff)
			}
			if got.Any() != (tc.want.Deactivate || tc.want.Role || len(tc.want.Cleared) > 0) {
				t.Errorf("Any() = %t for %+v", got.Any(), got)
			}
		})
	}
}
