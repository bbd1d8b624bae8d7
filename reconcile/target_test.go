package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

// duplicateKeys lets the People collection hold one key twice, so that
// edits in Asset Panda can make and unmake conflicts.
func duplicateKeys(s *emulator.Seed) {
	c := &s.Accounts[0].Modules[0].Collections[0]
	for i := range c.Fields {
		if c.Fields[i].Name == "AD SID" {
			c.Fields[i].Unique = false
		}
	}
}

// people reads the People collection and its records as they are.
func (w *world) people() (*assetpanda.Collection, map[string]assetpanda.Record) {
	w.t.Helper()
	ctx := context.Background()
	col, err := w.ap.Collection(ctx, "Acme", "IT Assets", "People")
	if err != nil {
		w.t.Fatal(err)
	}
	recs, err := w.ap.Records(ctx, col)
	if err != nil {
		w.t.Fatal(err)
	}
	byEmail := map[string]assetpanda.Record{}
	for _, r := range recs {
		byEmail[r.Fields["Email"]] = r
	}
	return col, byEmail
}

func (w *world) updateRecord(email string, fields map[string]string) {
	w.t.Helper()
	col, recs := w.people()
	r, ok := recs[email]
	if !ok {
		w.t.Fatalf("no record with Email %s", email)
	}
	res, err := w.ap.UpdateRecords(context.Background(), col, []assetpanda.RecordUpdate{{ID: r.ID, Fields: fields}})
	if err == nil && len(res) == 1 {
		err = res[0].Err
	}
	if err != nil {
		w.t.Fatalf("update record of %s: %v", email, err)
	}
}

func (w *world) createRecord(fields map[string]string) {
	w.t.Helper()
	col, _ := w.people()
	res, err := w.ap.CreateRecords(context.Background(), col, "AD SID", []map[string]string{fields})
	if err == nil && len(res) == 1 {
		err = res[0].Err
	}
	if err != nil {
		w.t.Fatalf("create record: %v", err)
	}
}

// planFromView plans from a full directory read and the view.
func (w *world) planFromView(ts *TargetState, now time.Time) *Plan {
	w.t.Helper()
	ctx := context.Background()
	res, err := w.dir.Read(ctx, DirectoryQuery(w.set))
	if err != nil {
		w.t.Fatal(err)
	}
	o, err := PlanFrom(ctx, w.set, res, ts, w.dir, Options{Now: func() time.Time { return now }})
	if err != nil {
		w.t.Fatal(err)
	}
	return o.Plan
}

var comparePlans = cmpopts.IgnoreFields(Plan{}, "ID", "Digest")

// TestRefreshPlansAsAFullRead edits records in Asset Panda step by step
// and checks that a view read once and refreshed after each edit plans
// exactly what a full read plans: changes, blocked changes, problems and
// the digest of what was read.
func TestRefreshPlansAsAFullRead(t *testing.T) {
	w := newWorldWith(t, duplicateKeys)
	w.converge()
	ctx := context.Background()
	ts, err := ReadTarget(ctx, w.set, w.ap)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := w.people()
	sid := func(email string) string { return recs[email].Fields["AD SID"] }
	alice, carol, grace := sid("alice@corp.example.com"), sid("carol@corp.example.com"), sid("grace@corp.example.com")
	const stranger = "S-1-5-21-1004336348-1177238915-682003330-4242"

	steps := []struct {
		name   string
		change func()
	}{
		{"edit a mapped field", func() { w.updateRecord("alice@corp.example.com", map[string]string{"First Name": "Edited"}) }},
		{"mark a record as not managed", func() {
			w.updateRecord("bob@corp.example.com", map[string]string{"Integration Status AD": "None"})
		}},
		{"clear a record's key", func() { w.updateRecord("carol@corp.example.com", map[string]string{"AD SID": ""}) }},
		{"give the key back", func() { w.updateRecord("carol@corp.example.com", map[string]string{"AD SID": carol}) }},
		{"move a record to a SID nobody in AD has", func() {
			w.updateRecord("grace@corp.example.com", map[string]string{"AD SID": stranger})
		}},
		{"a second record with a member's key: a conflict", func() {
			w.createRecord(map[string]string{"AD SID": alice, "Email": "copy@corp.example.com", "Integration Status AD": "Active"})
		}},
		{"a third record with that key", func() {
			w.createRecord(map[string]string{"AD SID": alice, "Email": "copy2@corp.example.com", "Integration Status AD": "Active"})
		}},
		{"the conflict goes away", func() {
			w.updateRecord("copy@corp.example.com", map[string]string{"AD SID": ""})
			w.updateRecord("copy2@corp.example.com", map[string]string{"AD SID": ""})
		}},
		{"a record takes the key a moved record left", func() {
			w.updateRecord("copy@corp.example.com", map[string]string{"AD SID": grace})
		}},
		{"a record takes the key of the record that left", func() {
			w.updateRecord("copy2@corp.example.com", map[string]string{"AD SID": stranger})
		}},
	}
	for _, st := range steps {
		st.change()
		now := time.Now().UTC().Truncate(time.Second)
		want := w.plan(Options{Now: func() time.Time { return now }})
		if _, err := ts.Refresh(ctx, w.set, w.ap); err != nil {
			t.Fatalf("%s: refresh: %v", st.name, err)
		}
		if !ts.Resolved(w.set) {
			t.Fatalf("%s: the refreshed view is not resolved", st.name)
		}
		got := w.planFromView(ts, now)
		if diff := cmp.Diff(want, got, comparePlans); diff != "" {
			t.Errorf("%s: the refreshed view plans differently (-full +view):\n%s", st.name, diff)
		}
	}
}

// TestRefreshFailingHalfWay: a refresh that folds an edit, meets a
// conflict and then cannot read the collection again reports that the view
// changed, and leaves the collection unread, so that nothing is planned
// from what is left of it and the next pass reads Asset Panda in full.
func TestRefreshFailingHalfWay(t *testing.T) {
	w := newWorldWith(t, duplicateKeys)
	w.converge()
	ctx := context.Background()
	ts, err := ReadTarget(ctx, w.set, w.ap)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := w.people()
	w.updateRecord("alice@corp.example.com", map[string]string{"First Name": "Edited"})
	w.createRecord(map[string]string{"AD SID": recs["bob@corp.example.com"].Fields["AD SID"], "Email": "copy@corp.example.com"})
	// The probe answers; the full read that the conflict calls for is
	// incomplete (a page without a total).
	w.emu.Fault(emulator.Fault{Route: "POST /v3/groups/{id}/search/objects", Skip: 1, Count: 1, Kind: emulator.FaultNoTotal})
	changed, err := ts.Refresh(ctx, w.set, w.ap)
	if err == nil {
		t.Fatal("refresh succeeded; want the failed full read's error")
	}
	if !changed {
		t.Error("refresh reported no change, yet it folded an edit before the read failed")
	}
	if ts.Resolved(w.set) {
		t.Error("the view is resolved after a failed read of a collection; want a full read next time")
	}
	w.emu.ClearFaults()
	p := w.planFromView(ts, time.Now())
	var codes []ProblemCode
	for _, e := range p.Errors {
		if e.Mapping == "staff" {
			codes = append(codes, e.Code)
		}
	}
	if diff := cmp.Diff([]ProblemCode{ProblemReadFailed}, codes); diff != "" {
		t.Errorf("problems of mapping staff (-want +got):\n%s", diff)
	}
	for _, c := range p.Changes {
		if c.Mapping == "staff" {
			t.Errorf("planned %s %s from a collection that could not be read", c.Action, c.Name)
		}
	}
}

// TestPlanFromAnotherSpec: a view read for a spec without user mappings
// is refused for one with them, instead of being indexed past its end.
func TestPlanFromAnotherSpec(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	noUsers := *w.set
	noUsers.UserMappings = nil
	ts, err := ReadTarget(ctx, &noUsers, w.ap)
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.dir.Read(ctx, DirectoryQuery(w.set))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PlanFrom(ctx, w.set, res, ts, w.dir, Options{}); err == nil || !strings.Contains(err.Error(), "another spec") {
		t.Errorf("PlanFrom with a view of another spec: err = %v, want one saying so", err)
	}
}
