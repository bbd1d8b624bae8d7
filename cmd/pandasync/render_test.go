package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/reconcile"
)

// samplePlan has one change of every kind, a blocked change, a problem and
// a note.
func samplePlan() *reconcile.Plan {
	people := reconcile.Target{Account: "Acme", Module: "IT Assets", Collection: "People"}
	module := reconcile.Target{Account: "Acme", Module: "IT Assets"}
	const sid = "S-1-5-21-1004336348-1177238915-682003330-"
	p := &reconcile.Plan{
		FormatVersion: reconcile.FormatVersion,
		ID:            "0123456789abcdef",
		CreatedAt:     time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		Changes: []reconcile.Change{
			{Mapping: "it-admins", Kind: reconcile.KindUser, Action: reconcile.ActionCreate, Key: sid + "1101", Target: module,
				After:  map[string]string{"email": "ada@corp.example.com", "first_name": "Ada", "last_name": "Lovelace", "role": "Module Admin"},
				Reason: "member of CN=AP Admins,OU=Groups,DC=corp,DC=example,DC=com", ReasonCode: reconcile.ReasonMember, Name: "ada@corp.example.com"},
			{Mapping: "it-users", Kind: reconcile.KindUser, Action: reconcile.ActionUpdate, Key: sid + "1110", Target: module,
				Before: map[string]string{"ad_sid": ""}, After: map[string]string{"ad_sid": sid + "1110"}, Adopt: true, ID: "7",
				Reason: "adopt: existing user matched by email; member of CN=AP Users,OU=Groups,DC=corp,DC=example,DC=com", ReasonCode: reconcile.ReasonAdopt, Name: "grace@corp.example.com"},
			{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionUpdate, Key: sid + "1107", Target: people, ID: "64b7f0c2a1b2c3d4e5f60718",
				Before: map[string]string{"Title": "Engineer"}, After: map[string]string{"Title": "Principal Engineer"},
				Reason: "AD differs in Title", ReasonCode: reconcile.ReasonADChanged, Name: "alan@corp.example.com"},
			{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionReactivate, Key: sid + "1108", Target: people, ID: "64b7f0c2a1b2c3d4e5f60719",
				Before: map[string]string{"Integration Status AD": "Inactive"}, After: map[string]string{"Integration Status AD": "Active"},
				Reason: "back in AD: member of CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com", ReasonCode: reconcile.ReasonBackInAD, Name: "joan@corp.example.com"},
			{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionDeactivate, Key: sid + "1109", Target: people, ID: "64b7f0c2a1b2c3d4e5f6071a",
				Before: map[string]string{"Integration Status AD": "Active"}, After: map[string]string{"Integration Status AD": "Inactive"},
				Reason: "disabled in AD", ReasonCode: reconcile.ReasonDisabled, Name: "ken@corp.example.com"},
		},
		Summary: reconcile.Summary{Create: 1, Update: 2, Deactivate: 1, Reactivate: 1, Blocked: 1, Problems: 1},
		Blocked: []reconcile.Blocked{{
			Change: reconcile.Change{Mapping: "it-users", Kind: reconcile.KindUser, Action: reconcile.ActionDeactivate, Key: sid + "1111", Target: module,
				Before: map[string]string{"active": "true"}, After: map[string]string{"active": "false"}, Reason: "deleted from AD", ReasonCode: reconcile.ReasonDeletedFromAD, Name: "old@corp.example.com", ID: "9"},
			Limit: reconcile.GuardEmptyGroup, Detail: "group CN=AP Users,OU=Groups,DC=corp,DC=example,DC=com read as empty; pandasync never deprovisions from an empty read",
			Fix: "if the group is meant to be empty, plan again with -allow-mass-deactivation (this one run only)"}},
		Errors: []reconcile.Problem{{Code: reconcile.ProblemMemberNoKey, Mapping: "people", Object: "CN=Nomail\\, Ned,OU=People,DC=corp,DC=example,DC=com",
			Message: "no objectSid (absent, or not readable by the bind account) to key the record on; skipped, and deactivations are held back",
			Fix:     "set objectSid on the account, or let the bind account read it"}},
		Notes:    []string{`carol@corp.example.com is in mappings "it-admins" (role "Module Admin") and "it-users" (role "Collaborator") of Acme/IT Assets: "it-admins" comes first, so the role is "Module Admin"`},
		Mappings: []string{"it-admins", "it-users", "people"},
		Prior:    reconcile.Prior{Spec: "sha256:aa", Directory: "sha256:bb", Target: "sha256:cc"},
	}
	p.Seal()
	return p
}

// TestRender compares the human and JSON views of plans with golden files;
// run with -update to rewrite them.
func TestRender(t *testing.T) {
	empty := &reconcile.Plan{FormatVersion: reconcile.FormatVersion, Changes: []reconcile.Change{}, Blocked: []reconcile.Blocked{}, Errors: []reconcile.Problem{},
		Prior: reconcile.Prior{Spec: "sha256:aa", Directory: "sha256:bb", Target: "sha256:cc"}}
	empty.Seal()
	tests := map[string]*reconcile.Plan{"sample": samplePlan(), "empty": empty}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			var text, js bytes.Buffer
			renderPlan(&text, p, plain)
			if err := p.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "render", name+".txt"), text.Bytes())
			golden(t, filepath.Join("testdata", "render", name+".json"), js.Bytes())

			// The JSON reads back into the same plan.
			back, err := reconcile.ReadPlan(&js)
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			if diff := cmp.Diff(p, back); diff != "" {
				t.Errorf("plan after a JSON round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}
