package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLargePlan plans the 500-change fixture (testdata/large): the view
// starts with the summary and the counts per mapping, shows one line per
// object and collapses the 50 role-precedence notes into one; -details
// shows every field. The compact view is a golden file.
func TestLargePlan(t *testing.T) {
	pc := startPlanCase(t, filepath.Join("testdata", "large"))
	code, out, errOut := pc.run(t, "plan")
	if code != exitOK {
		t.Fatalf("plan: exit %d\n%s", code, errOut)
	}
	golden(t, filepath.Join("testdata", "large", "plan.txt"), []byte(out))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	const summary = "Plan: 500 to create, 0 to update, 0 to deactivate, 0 to reactivate."
	if lines[0] != summary {
		t.Errorf("first line = %q, want the summary %q", lines[0], summary)
	}
	if !strings.Contains(out, "  it-users   user       200") || !strings.Contains(out, "  people     record     250") {
		t.Errorf("no counts per mapping:\n%s", strings.Join(lines[:8], "\n"))
	}
	// One line per object, plus headers: far below the 11-12 lines per
	// change of the detailed view.
	if n := len(lines); n > 600 {
		t.Errorf("the plan takes %d lines, want at most 600 for 500 changes", n)
	}
	if strings.Count(out, "note:") != 1 || !strings.Contains(out, "50 people (user001@corp.example.com, user002@corp.example.com, user003@corp.example.com and 47 more) are in mappings") {
		t.Errorf("the 50 role-precedence notes are not one line:\n%s", out[strings.Index(out, "note:"):])
	}
	if n := strings.Count(out, "S-1-5-21-"); n != 0 {
		t.Errorf("the compact view prints %d SIDs; people are named by their email", n)
	}

	code, out, _ = pc.run(t, "plan", "-details")
	if code != exitOK {
		t.Fatalf("plan -details: exit %d", code)
	}
	if !strings.Contains(out, `      + role       = "Module Admin"`) || strings.Count(out, "will be created") != 500 {
		t.Errorf("plan -details does not show every change with its fields")
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  # ") && strings.Contains(l, "S-1-5-21-") {
			t.Fatalf("plan -details prints the SID in the header as well as in the block: %q", l)
		}
	}
	if n := strings.Count(out, "note:"); n != 1 || !strings.Contains(out, "user050@corp.example.com) are in mappings") {
		t.Errorf("plan -details: the notes are not one line listing every name")
	}
}
