package reconcile

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

const (
	people      = ",OU=People," + fixtureBase
	groups      = ",OU=Groups," + fixtureBase
	admins      = "CN=AP Admins" + groups
	users       = "CN=AP Users" + groups
	staff       = "CN=Staff" + groups
	engineering = "CN=Engineering" + groups
	bobDN       = "CN=Bob Baker" + people
)

// TestFirstPlan checks the plan against the fixture's empty Asset Panda:
// creates, adoption by email, role precedence, a disabled member never
// created, and members without the attributes a field requires.
func TestFirstPlan(t *testing.T) {
	for name, newW := range map[string]func(*testing.T) *world{"embedded": newWorld, "samba": newSambaWorld} {
		t.Run(name, func(t *testing.T) {
			w := newW(t)
			p := w.plan(Options{})
			via := func(g string) string { return "member of " + w.dn(g) }
			want := []row{
				{"admins", KindUser, ActionCreate, "alice@corp.example.com", via(admins)},
				{"admins", KindUser, ActionCreate, "carol@corp.example.com", via(admins)},
				{"staff", KindRecord, ActionCreate, w.upn("alice"), via(staff)},
				{"staff", KindRecord, ActionCreate, w.upn("bob"), via(staff)},
				{"staff", KindRecord, ActionCreate, w.upn("carol"), via(staff)},
				{"staff", KindRecord, ActionCreate, w.upn("erin"), via(staff) + " via " + w.dn(engineering)},
				{"staff", KindRecord, ActionCreate, w.upn("frank"), via(staff) + " via " + w.dn(engineering)},
				{"staff", KindRecord, ActionCreate, w.upn("grace"), via(staff)},
				{"users", KindUser, ActionCreate, "bob@corp.example.com", via(users)},
				{"users", KindUser, ActionUpdate, "grace@corp.example.com", "adopt: existing user matched by email; " + via(users)},
			}
			if diff := cmp.Diff(want, rows(p.Changes)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(Summary{Create: 9, Update: 1, Problems: 1}, p.Summary); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}

			for _, c := range p.Changes {
				switch c.Name {
				case "grace@corp.example.com", w.upn("grace"):
					if c.Kind == KindUser {
						want := map[string]string{UserADSID: c.Key}
						if diff := cmp.Diff(want, c.After); diff != "" || !c.Adopt {
							t.Errorf("adoption of grace: adopt=%v, after (-want +got):\n%s", c.Adopt, diff)
						}
					}
				case "carol@corp.example.com":
					if c.Kind == KindUser && c.After[UserRole] != "Module Admin" {
						t.Errorf("carol's role = %q, want the first mapping's role %q", c.After[UserRole], "Module Admin")
					}
				case w.upn("erin"):
					if _, ok := c.After["Email"]; ok {
						t.Errorf("erin has no mail, yet the record sets Email: %v", c.After)
					}
				}
			}
			if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "carol@corp.example.com") || !strings.Contains(p.Notes[0], `"admins" comes first`) {
				t.Errorf("notes = %q, want one role precedence note about carol", p.Notes)
			}
			var problems []string
			for _, e := range p.Errors {
				problems = append(problems, e.Mapping+": "+e.Object)
			}
			if diff := cmp.Diff([]string{"users: " + w.dn("CN=Heidi Hall"+people)}, problems); diff != "" {
				t.Errorf("errors (-want +got):\n%s\n%v", diff, p.Errors)
			}
		})
	}
}

// TestConvergence applies the plan and requires the next plan to be empty
// and to cost no writes.
func TestConvergence(t *testing.T) {
	for name, newW := range map[string]func(*testing.T) *world{"embedded": newWorld, "samba": newSambaWorld} {
		t.Run(name, func(t *testing.T) {
			w := newW(t)
			w.converge()
			before := w.emu.Stats()
			p := w.plan(Options{})
			if p.HasChanges() || len(p.Blocked) > 0 {
				t.Fatalf("plan after convergence: changes %v, blocked %v", rows(p.Changes), blockedRows(p.Blocked))
			}
			after := w.emu.Stats()
			for route, n := range after.Requests {
				if d := n - before.Requests[route]; d > 0 && !strings.HasPrefix(route, "GET ") && !strings.Contains(route, "search") && !strings.Contains(route, "token") {
					t.Errorf("a plan with nothing to do made %d %s request(s)", d, route)
				}
			}
		})
	}
}

// TestScenarios changes the directory or Asset Panda after convergence and
// checks the next plan.
func TestScenarios(t *testing.T) {
	tests := map[string]struct {
		change      func(w *world)
		opts        Options
		wantChanges []row
		wantBlocked []row
	}{
		"disabled user is deactivated, record set inactive": {
			change: func(w *world) { w.replace(bobDN, "userAccountControl", "546") },
			wantChanges: []row{
				{"staff", KindRecord, ActionDeactivate, "bob@corp.example.com", "disabled in AD"},
				{"users", KindUser, ActionDeactivate, "bob@corp.example.com", "disabled in AD"},
			},
		},
		"user who left the group is deactivated": {
			change: func(w *world) {
				w.replace(users, "member", w.dn("CN=Carol Cole"+people), w.dn("CN=Grace Hopper"+people))
			},
			wantChanges: []row{
				{"users", KindUser, ActionDeactivate, "bob@corp.example.com", "no longer in any user mapping's group"},
			},
		},
		"deleted user is deactivated, not deleted": {
			change: func(w *world) {
				w.replace(users, "member", w.dn("CN=Carol Cole"+people), w.dn("CN=Grace Hopper"+people))
				w.replace(staff, "member", w.dn(engineering), w.dn("CN=Grace Hopper"+people), w.dn("CN=Alice Archer"+people), w.dn("CN=Carol Cole"+people))
				w.delete(bobDN)
			},
			wantChanges: []row{
				{"staff", KindRecord, ActionDeactivate, "bob@corp.example.com", "deleted from AD"},
				{"users", KindUser, ActionDeactivate, "bob@corp.example.com", "deleted from AD"},
			},
		},
		"field clears of a disabled member count against the field-clear limit": {
			// Bob is disabled and his department emptied, Alice's too: two
			// clears over a limit of one. Bob's clear rides in his
			// deactivation, and is blocked with Alice's; his deactivation
			// goes ahead without it.
			change: func(w *world) {
				w.set.Policy.Spec.Limits.MaxFieldClears = 1
				w.replace(bobDN, "userAccountControl", "546")
				w.replace(bobDN, "department")
				w.replace("CN=Alice Archer"+people, "department")
			},
			wantChanges: []row{
				{"staff", KindRecord, ActionDeactivate, "bob@corp.example.com", "disabled in AD"},
				{"users", KindUser, ActionDeactivate, "bob@corp.example.com", "disabled in AD"},
			},
			wantBlocked: []row{
				{"staff", KindRecord, ActionUpdate, "alice@corp.example.com", LimitMaxFieldClears},
				{"staff", KindRecord, ActionUpdate, "bob@corp.example.com", LimitMaxFieldClears},
			},
		},
		"changed attribute updates the record": {
			change: func(w *world) { w.replace("CN=Alice Archer"+people, "department", "Finance") },
			wantChanges: []row{
				{"staff", KindRecord, ActionUpdate, "alice@corp.example.com", "AD differs in Department"},
			},
		},
		"role follows the group": {
			change: func(w *world) { w.replace(admins, "member", w.dn("CN=Alice Archer"+people)) },
			wantChanges: []row{
				{"users", KindUser, ActionUpdate, "carol@corp.example.com", "AD differs in role"},
			},
		},
		"mass deactivation is blocked by the count limit": {
			change: func(w *world) { w.replace(staff, "member", w.dn(engineering)) },
			wantBlocked: []row{
				{"staff", KindRecord, ActionDeactivate, "alice@corp.example.com", LimitMaxDeactivations},
				{"staff", KindRecord, ActionDeactivate, "bob@corp.example.com", LimitMaxDeactivations},
				{"staff", KindRecord, ActionDeactivate, "carol@corp.example.com", LimitMaxDeactivations},
				{"staff", KindRecord, ActionDeactivate, "grace@corp.example.com", LimitMaxDeactivations},
			},
		},
		"override lets a real mass change through": {
			change: func(w *world) { w.replace(staff, "member", w.dn(engineering)) },
			opts:   Options{OverrideLimits: true},
			wantChanges: []row{
				{"staff", KindRecord, ActionDeactivate, "alice@corp.example.com", "no longer a member of " + staff},
				{"staff", KindRecord, ActionDeactivate, "bob@corp.example.com", "no longer a member of " + staff},
				{"staff", KindRecord, ActionDeactivate, "carol@corp.example.com", "no longer a member of " + staff},
				{"staff", KindRecord, ActionDeactivate, "grace@corp.example.com", "no longer a member of " + staff},
			},
		},
		"empty group never deprovisions": {
			change: func(w *world) { w.replace(admins, "member") },
			// carol, also in AP Users, would move to its role: an empty
			// group of the module guards role changes too.
			wantBlocked: []row{
				{"admins", KindUser, ActionDeactivate, "alice@corp.example.com", GuardEmptyGroup},
				{"users", KindUser, ActionUpdate, "carol@corp.example.com", GuardEmptyGroup},
			},
		},
	}
	for name, tc := range tests {
		for world, newW := range map[string]func(*testing.T) *world{"embedded": newWorld, "samba": newSambaWorld} {
			t.Run(world+"/"+name, func(t *testing.T) {
				w := newW(t)
				w.converge()
				tc.change(w)
				p := w.plan(tc.opts)
				if diff := cmp.Diff(tc.wantChanges, w.canon(rows(p.Changes))); diff != "" {
					t.Errorf("changes (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantBlocked, w.canon(blockedRows(p.Blocked))); diff != "" {
					t.Errorf("blocked (-want +got):\n%s", diff)
				}
				// What is applied converges: the next plan repeats only what
				// stays blocked.
				w.apply(p)
				p2 := w.plan(tc.opts)
				if p2.HasChanges() {
					t.Errorf("plan after apply has changes: %v", rows(p2.Changes))
				}
			})
		}
	}
}

// TestReactivation disables a user, applies, enables them again and
// expects both the user and the record to come back.
func TestReactivation(t *testing.T) {
	w := newWorld(t)
	w.converge()
	w.replace(bobDN, "userAccountControl", "546")
	w.converge()
	w.replace(bobDN, "userAccountControl", "544")
	p := w.plan(Options{})
	want := []row{
		{"staff", KindRecord, ActionReactivate, "bob@corp.example.com", "back in AD: member of " + staff},
		{"users", KindUser, ActionReactivate, "bob@corp.example.com", "back in AD: member of " + users},
	}
	if diff := cmp.Diff(want, rows(p.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	w.apply(p)
	if p := w.plan(Options{}); p.HasChanges() {
		t.Errorf("plan after reactivation has changes: %v", rows(p.Changes))
	}
}

// TestApplyRechecks edits a record in Asset Panda between plan and apply:
// apply refuses that change and makes the others.
func TestApplyRechecks(t *testing.T) {
	w := newWorld(t)
	w.converge()
	w.replace("CN=Alice Archer"+people, "department", "Finance")
	w.replace("CN=Frank Ford"+people, "department", "Research")
	p := w.plan(Options{})
	if len(p.Changes) != 2 {
		t.Fatalf("want 2 changes, got %v", rows(p.Changes))
	}
	ctx := context.Background()
	col, err := w.ap.Collection(ctx, "Acme", "IT Assets", "People")
	if err != nil {
		t.Fatal(err)
	}
	var aliceID string
	for _, c := range p.Changes {
		if c.Name == "alice@corp.example.com" {
			aliceID = c.ID
		}
	}
	if _, err := w.ap.UpdateRecords(ctx, col, []assetpanda.RecordUpdate{{ID: aliceID, Fields: map[string]string{"Department": "Edited by hand"}}}); err != nil {
		t.Fatal(err)
	}
	res, err := Apply(ctx, p, w.set, w.ap, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, o := range res.Outcomes {
		got[o.Change.Name] = errors.Is(o.Err, ErrChangedSincePlan)
	}
	if diff := cmp.Diff(map[string]bool{"alice@corp.example.com": true, "frank@corp.example.com": false}, got); diff != "" {
		t.Errorf("refused because changed since plan (-want +got):\n%s", diff)
	}
}

// TestSuspend plans but writes nothing.
func TestSuspend(t *testing.T) {
	w := newWorld(t)
	w.set.Policy.Spec.Suspend = true
	p := w.plan(Options{})
	if !p.Suspended || !p.HasChanges() {
		t.Fatalf("suspended=%v changes=%d, want a suspended plan with changes", p.Suspended, len(p.Changes))
	}
	before := w.emu.Stats().Total()
	if _, err := Apply(context.Background(), p, w.set, w.ap, nil); !errors.Is(err, ErrSuspended) {
		t.Fatalf("apply under suspend: err = %v, want ErrSuspended", err)
	}
	if after := w.emu.Stats().Total(); after != before {
		t.Errorf("apply under suspend made %d requests", after-before)
	}
}

// TestMappingIndependence breaks one mapping (an unknown collection): it is
// reported, and the other mappings are planned as usual.
func TestMappingIndependence(t *testing.T) {
	w := newWorld(t)
	w.set.CollectionMappings[0].Spec.Collection = "Peeple"
	p := w.plan(Options{})
	var errs []string
	for _, e := range p.Errors {
		if e.Mapping == "staff" {
			errs = append(errs, e.Message)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], `"Peeple"`) || !strings.Contains(errs[0], `"People"`) {
		t.Errorf("staff errors = %q, want one naming the missing and the existing collection", errs)
	}
	if p.Summary.Create != 3 || p.Summary.Update != 1 {
		t.Errorf("summary = %+v, want the 3 user creates and 1 adoption", p.Summary)
	}
}

// TestStatusNone leaves a record an admin marked None alone.
func TestStatusNone(t *testing.T) {
	w := newWorld(t)
	w.converge()
	ctx := context.Background()
	col, err := w.ap.Collection(ctx, "Acme", "IT Assets", "People")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := w.ap.Records(ctx, col)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, r := range recs {
		if r.Fields["Email"] == "bob@corp.example.com" {
			id = r.ID
		}
	}
	if _, err := w.ap.UpdateRecords(ctx, col, []assetpanda.RecordUpdate{{ID: id, Fields: map[string]string{"Integration Status AD": "None", "Department": "Kept"}}}); err != nil {
		t.Fatal(err)
	}
	w.replace(bobDN, "userAccountControl", "546")
	p := w.plan(Options{})
	want := []row{{"users", KindUser, ActionDeactivate, "bob@corp.example.com", "disabled in AD"}}
	if diff := cmp.Diff(want, rows(p.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

// TestNoStatusField: without a status field, a record whose person left
// cannot be marked Inactive; the plan says so instead of staying silent.
func TestNoStatusField(t *testing.T) {
	w := newWorld(t)
	w.converge()
	w.set.CollectionMappings[0].Spec.Status = nil
	w.replace(staff, "member", w.dn(engineering), w.dn("CN=Grace Hopper"+people), w.dn("CN=Alice Archer"+people), w.dn("CN=Carol Cole"+people))
	p := w.plan(Options{})
	if p.HasChanges() {
		t.Errorf("changes = %v, want none", rows(p.Changes))
	}
	want := []string{`mapping "staff": 1 managed record(s) belong to people no longer in ` + staff + `, but the mapping has no status field to mark them Inactive`}
	var got []string
	for _, n := range p.Notes {
		if strings.HasPrefix(n, `mapping "staff"`) {
			got = append(got, n)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
}

// TestInterruptedApply: user creation fails mid-apply (Asset Panda answers
// 500 to every invite); the records are written, the users are reported,
// and the next plan lists exactly the users, whose creation then converges
// without duplicates (R17, R21).
func TestInterruptedApply(t *testing.T) {
	w := newWorld(t)
	w.emu.Fault(emulator.Fault{Route: "POST /v3/users/invite", Count: -1, Kind: emulator.FaultStatus, Status: 500})
	p := w.plan(Options{})
	res, err := Apply(context.Background(), p, w.set, w.ap, nil)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, o := range res.Outcomes {
		if o.Err != nil {
			failed = append(failed, o.Change.Name)
		}
	}
	wantFailed := []string{"alice@corp.example.com", "bob@corp.example.com", "carol@corp.example.com"}
	slices.Sort(failed)
	if diff := cmp.Diff(wantFailed, failed); diff != "" {
		t.Errorf("failed changes (-want +got):\n%s", diff)
	}
	if res.Applied != len(p.Changes)-3 {
		t.Errorf("applied %d of %d changes, want all but the 3 user creates", res.Applied, len(p.Changes))
	}

	w.emu.ClearFaults()
	p = w.plan(Options{})
	var left []string
	for _, c := range p.Changes {
		left = append(left, string(c.Action)+" "+string(c.Kind)+" "+c.Name)
	}
	want := []string{"create user alice@corp.example.com", "create user bob@corp.example.com", "create user carol@corp.example.com"}
	slices.Sort(left)
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("plan after the interrupted apply (-want +got):\n%s", diff)
	}
	w.converge()
	users, err := w.ap.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, u := range users {
		seen[strings.ToLower(u.Email)]++
	}
	for email, n := range seen {
		if n > 1 {
			t.Errorf("%d users with email %s", n, email)
		}
	}
}

// TestApplyRequestCount: applying one change re-reads that record by id
// and writes it: two requests, whatever the size of the collection.
func TestApplyRequestCount(t *testing.T) {
	w := newWorld(t)
	w.converge()
	w.replace("CN=Alice Archer"+people, "department", "Finance")
	p := w.plan(Options{})
	w.emu.ResetStats()
	w.apply(p)
	want := map[string]int{
		"POST /v3/groups/{id}/search/objects": 1,
		"PUT /v3/groups/{id}/objects":         1,
	}
	if diff := cmp.Diff(want, w.emu.Stats().Requests); diff != "" {
		t.Errorf("requests to apply one record update (-want +got):\n%s", diff)
	}
}
