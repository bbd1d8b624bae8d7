package loop_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// TestPassMappings checks what a pass records per mapping for the status
// page: each mapping's scope, and complete per-mapping counts that agree
// with the pass's lists.
func TestPassMappings(t *testing.T) {
	w := newWorld(t)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	l := startLoop(t, w.config(clock, ev))
	clock.fire(clock.next(t))
	first := ev.pass(t)
	if first.Outcome != loop.OutcomeSuccess {
		t.Fatalf("first pass: %s %s", first.Outcome, first.Error)
	}
	var names []string
	applied := map[string]reconcile.Summary{}
	for _, c := range first.Changes {
		s := applied[c.Mapping]
		switch c.Action {
		case reconcile.ActionCreate:
			s.Create++
		case reconcile.ActionUpdate:
			s.Update++
		case reconcile.ActionDeactivate:
			s.Deactivate++
		case reconcile.ActionReactivate:
			s.Reactivate++
		}
		applied[c.Mapping] = s
	}
	for _, m := range first.Mappings {
		names = append(names, m.Mapping)
		if diff := cmp.Diff(applied[m.Mapping], m.Applied); diff != "" {
			t.Errorf("mapping %s: applied (-from the changes +counted):\n%s", m.Mapping, diff)
		}
		if !m.Resolved || m.Members == 0 || m.Group == "" || m.Target.Module != "IT Assets" || m.Failed+m.Blocked+m.Problems != 0 {
			t.Errorf("mapping %+v, want resolved with members, a group and a target, nothing failed", m)
		}
	}
	if diff := cmp.Diff([]string{"it-admins", "it-users", "people"}, names); diff != "" {
		t.Errorf("mappings (-want +got):\n%s", diff)
	}

	// The next pass sees the objects the first one made as managed: a
	// record for every enabled member of All Staff.
	l.Trigger("test")
	second := ev.pass(t)
	for _, m := range second.Mappings {
		if m.Mapping == "people" && (m.Managed != m.Members-m.Disabled || m.Managed == 0) {
			t.Errorf("people after the first pass: %d managed of %d members (%d disabled), want one per enabled member", m.Managed, m.Members, m.Disabled)
		}
		if m.Applied.Total() != 0 {
			t.Errorf("mapping %s: %+v applied by a pass with nothing to do", m.Mapping, m.Applied)
		}
	}
	if got := l.History().Pass(second.ID); got == nil || len(got.Mappings) != 3 {
		t.Errorf("the history's copy of the pass has mappings %+v, want 3", got)
	}
}

// TestSpecInForce checks Spec and the rejected spec's problems with file
// and field.
func TestSpecInForce(t *testing.T) {
	w := newWorld(t)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	cfg := w.config(clock, ev)
	cfg.WatchPaths = []string{w.specDir}
	l := startLoop(t, cfg)
	ev.wait(t, loop.EventWaiting)
	set := l.Spec()
	if set == nil || len(set.CollectionMappings) != 1 {
		t.Fatalf("Spec() = %+v, want the loaded set", set)
	}
	good := readFile(t, "testdata/pandasync.yaml")
	w.writeSpec(t, "pandasync.yaml", strings.Replace(good, "role: Collaborator", "role: Collaborator\n  colour: blue", 1))
	inv := ev.wait(t, loop.EventSpecInvalid)
	var ps spec.Problems
	if !errors.As(inv.Err, &ps) {
		t.Fatalf("invalid spec error %v", inv.Err)
	}
	st := l.Status()
	want := []loop.SpecProblem{{File: filepath.Join(w.specDir, "pandasync.yaml"), Document: 3, Line: ps[0].Line, Kind: "UserMapping", Name: "it-users",
		Path: "spec.colour", Message: ps[0].Message}}
	if ps[0].Line == 0 {
		t.Errorf("the problem %+v has no line", ps[0])
	}
	if diff := cmp.Diff(want, st.Spec.Details); diff != "" {
		t.Errorf("spec problem details (-want +got):\n%s", diff)
	}
	if l.Spec() != set {
		t.Errorf("Spec() changed with a rejected spec; the last good one stays in force")
	}
}

// TestReadAuditMatching keeps the last n matching entries across rotated
// files.
func TestReadAuditMatching(t *testing.T) {
	dir := t.TempDir()
	a, err := loop.OpenAudit(filepath.Join(dir, loop.AuditFile), 1000, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := a.Write(auditEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	if names, _ := filepath.Glob(filepath.Join(dir, loop.AuditFile+".*")); len(names) < 2 {
		t.Fatalf("rotated files %v, want the entries spread over several", names)
	}
	odd := func(e *loop.AuditEntry) bool { return strings.HasSuffix(e.Pass, "1") || strings.HasSuffix(e.Pass, "3") }
	got, skipped, err := loop.ReadAuditMatching(dir, 3, odd)
	if err != nil || skipped != 0 {
		t.Fatalf("ReadAuditMatching: %v, %d skipped", err, skipped)
	}
	var passes []string
	for _, e := range got {
		passes = append(passes, e.Pass)
	}
	if diff := cmp.Diff([]string{"p23", "p31", "p33"}, passes); diff != "" {
		t.Errorf("last 3 matching (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(auditEntry(33), got[2]); diff != "" {
		t.Errorf("newest matching entry (-want +got):\n%s", diff)
	}
}
