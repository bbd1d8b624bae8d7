package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	productionSpec  = filepath.Join("..", "..", "examples", "production")
	productionTests = filepath.Join(productionSpec, "tests")
)

// TestProductionSpecTests runs the example spec's test cases (a joiner, a
// leaver, a mover and a blocked mass change) as CI would: pandasync test
// against the spec set under test, with no AD and no Asset Panda.
func TestProductionSpecTests(t *testing.T) {
	code, out, errOut := run(t, nil, "-f", productionSpec, "test", productionTests)
	if code != exitOK {
		t.Fatalf("pandasync test: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, c := range []string{"joiner", "leaver", "mover", "mass-change-blocked", "in-sync"} {
		if !strings.Contains(out, "ok   "+filepath.Join(productionTests, c)+" ") {
			t.Errorf("case %s did not pass:\n%s", c, out)
		}
	}
	if !strings.Contains(out, "5 of 5 cases passed.") {
		t.Errorf("summary:\n%s", out)
	}
	if errOut != "" {
		t.Errorf("pandasync test wrote to stderr:\n%s", errOut)
	}
}

// TestSpecTestFails: an edit to a case's LDIF fixture, to the spec under
// test or to the expectations fails that case with a diff and exit 1;
// -update rewrites the expectations from the plan, keeping the fields they
// list; a case with no expected.yaml fails until -update writes it.
func TestSpecTestFails(t *testing.T) {
	root := t.TempDir()
	tests := filepath.Join(root, "tests")
	if err := os.CopyFS(tests, os.DirFS(productionTests)); err != nil {
		t.Fatal(err)
	}
	specDir := filepath.Join(root, "spec")
	if err := os.CopyFS(specDir, os.DirFS(productionSpec)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(specDir, "tests")); err != nil {
		t.Fatal(err)
	}
	edit := func(path, old, new string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			t.Fatalf("%s lacks %q", path, old)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Someone edits the mover's fixture: her title in AD is now different.
	edit(filepath.Join(tests, "mover", "directory.ldif"), "title: IT Administrator", "title: IT Admin")
	code, out, _ := run(t, nil, "-f", specDir, "test", tests)
	wantDiff := `FAIL ` + filepath.Join(tests, "mover")
	if code != exitError || !strings.Contains(out, wantDiff) ||
		!strings.Contains(out, "- {mapping: people, kind: record, action: update, person: erin@corp.example.com, fields: {Department: IT, Title: IT Administrator}}\n") ||
		!strings.Contains(out, "+ {mapping: people, kind: record, action: update, person: erin@corp.example.com, fields: {Department: IT, Title: IT Admin}}\n") ||
		!strings.Contains(out, "4 of 5 cases passed; 1 failed.") {
		t.Errorf("after an LDIF edit: exit %d\n%s", code, out)
	}

	// -update takes the plan as the new expectation, with the same fields.
	code, out, _ = run(t, nil, "-f", specDir, "test", "-update", tests)
	if code != exitOK || !strings.Contains(out, "upd  "+filepath.Join(tests, "mover")) {
		t.Errorf("test -update: exit %d\n%s", code, out)
	}
	b, err := os.ReadFile(filepath.Join(tests, "mover", "expected.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "fields: {Department: IT, Title: IT Admin}}") {
		t.Errorf("expected.yaml after -update:\n%s", b)
	}
	if code, out, _ := run(t, nil, "-f", specDir, "test", tests); code != exitOK {
		t.Errorf("after -update: exit %d\n%s", code, out)
	}

	// A spec change: the policy's percent limit is raised, and the mass
	// change is no longer blocked. The case that pins it fails.
	edit(filepath.Join(specDir, "90-policy.yaml"), "maxDeactivationPercent: 10", "maxDeactivationPercent: 50")
	code, out, _ = run(t, nil, "-f", specDir, "test", filepath.Join(tests, "mass-change-blocked"))
	if code != exitError || !strings.Contains(out, "  blocked:\n") || !strings.Contains(out, "+ {mapping: people, kind: record, action: deactivate, person: bob@corp.example.com}") {
		t.Errorf("after the limit was raised: exit %d\n%s", code, out)
	}

	// A case without expectations fails, and -update writes them.
	if err := os.Remove(filepath.Join(tests, "joiner", "expected.yaml")); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run(t, nil, "-f", specDir, "test", filepath.Join(tests, "joiner"))
	if code != exitError || !strings.Contains(out, "pandasync test -update") {
		t.Errorf("a case without expected.yaml: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, nil, "-f", specDir, "test", "-update", filepath.Join(tests, "joiner")); code != exitOK {
		t.Errorf("test -update of a new case: exit %d\n%s", code, out)
	}
	if code, out, _ := run(t, nil, "-f", specDir, "test", filepath.Join(tests, "joiner")); code != exitOK {
		t.Errorf("the new case after -update: exit %d\n%s", code, out)
	}

	// An invalid spec under test fails every case that uses it.
	edit(filepath.Join(specDir, "10-users.yaml"), "role: Collaborator", "rol: Collaborator")
	code, out, _ = run(t, nil, "-f", specDir, "test", filepath.Join(tests, "joiner"))
	if code != exitError || !strings.Contains(out, "does not load") || !strings.Contains(out, "rol") {
		t.Errorf("an invalid spec: exit %d\n%s", code, out)
	}

	// No cases at all is a failure, not a pass.
	code, _, errOut := run(t, nil, "-f", specDir, "test", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "no test cases") {
		t.Errorf("no cases: exit %d, %q", code, errOut)
	}
}
