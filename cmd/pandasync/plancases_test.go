package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pandasync/pandasync/providers/sandbox"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/spectest"
)

// TestPlanCases runs the planner's fixture cases: one folder per case
// under testdata/plan, each holding a spec (spec.yaml, mappings and
// policy), a directory fixture (directory.ldif) and an Asset Panda seed
// (seed.json) — any of them missing is taken from testdata/plan/_base —
// plus, optionally, the plan command's extra arguments (args, one line),
// environment overrides (env, NAME=VALUE lines) and emulator faults
// (faults.json, a list of emulator.Fault): the case format of
// reconcile/spectest, which loads them. The case runs `plan
// -detailed-exitcode` and `plan -json` through the CLI against a sandbox
// (the embedded directory and the emulator) and compares them with the
// golden plan.txt (the output, the error lines and the exit code) and
// plan.json (ids, times and digests blanked). go test -update rewrites the
// goldens.
func TestPlanCases(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "plan", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		if strings.HasPrefix(name, "_") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) { runPlanCase(t, dir) })
	}
	if n == 0 {
		t.Fatal("no fixture cases found under testdata/plan")
	}
}

// caseSpec returns a case's spec.yaml, or the base's.
func caseSpec(t *testing.T, dir string) []byte {
	t.Helper()
	c, err := spectest.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := c.Spec[spectest.FileSpec]
	if !ok {
		t.Fatalf("case %s has no %s", dir, spectest.FileSpec)
	}
	return b
}

// planCase is a fixture case started in a sandbox.
type planCase struct {
	box  *sandbox.Sandbox
	spec string // directory holding the case's spec and the sandbox's Connection
	env  map[string]string
	args []string
}

// startPlanCase loads a case with the engine `pandasync test` uses and
// starts its sandbox, then writes its spec next to the sandbox's
// Connection for the CLI to read.
func startPlanCase(t *testing.T, dir string) *planCase {
	t.Helper()
	c, err := spectest.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	specDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(specDir, "00-connection.yaml"), w.Box.ConnectionYAML("sandbox"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, ok := c.Spec[spectest.FileSpec]
	if !ok {
		t.Fatalf("case %s has no %s", dir, spectest.FileSpec)
	}
	if err := os.WriteFile(filepath.Join(specDir, "10-spec.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &planCase{box: w.Box, spec: specDir, env: w.Env, args: c.Args}
}

// run runs a command of the CLI against the case's sandbox and spec.
func (pc *planCase) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return run(t, pc.env, append([]string{"-f", pc.spec}, args...)...)
}

// scrub replaces the sandbox's random addresses in output.
func (pc *planCase) scrub(s string) string {
	s = strings.ReplaceAll(s, pc.box.APIURL, "http://asset-panda.sandbox")
	return strings.ReplaceAll(s, pc.box.LDAPURL, "ldap://directory.sandbox")
}

func runPlanCase(t *testing.T, dir string) {
	pc := startPlanCase(t, dir)

	code, out, errOut := pc.run(t, append([]string{"plan", "-detailed-exitcode"}, pc.args...)...)
	var text strings.Builder
	text.WriteString(out)
	for _, line := range strings.Split(errOut, "\n") {
		if line != "" && !strings.HasPrefix(line, "{") { // JSON log lines vary; the error does not
			text.WriteString("stderr: " + line + "\n")
		}
	}
	text.WriteString("exit: " + strconv.Itoa(code) + "\n")
	golden(t, filepath.Join(dir, "plan.txt"), []byte(pc.scrub(text.String())))

	code, out, errOut = pc.run(t, append([]string{"plan", "-json"}, pc.args...)...)
	if out == "" {
		if code == 0 {
			t.Fatalf("plan -json printed nothing and exited 0; stderr:\n%s", errOut)
		}
		return // the plan failed as a whole; plan.txt holds the error
	}
	golden(t, filepath.Join(dir, "plan.json"), []byte(pc.scrub(normalizePlanJSON(t, out))))
}

// normalizePlanJSON blanks what differs from run to run: the plan's id,
// time and digest, and the digests of what it was computed from.
func normalizePlanJSON(t *testing.T, s string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("plan -json is not JSON: %v\n%s", err, s)
	}
	for _, k := range []string{"id", "created_at", "digest"} {
		if _, ok := m[k]; ok {
			m[k] = "…"
		}
	}
	m["prior"] = "…"
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestSavedPlanIsSealed covers defect 8: a saved plan edited by hand is
// never applied. A file whose content no longer matches its digest is
// refused before anything is read; one re-sealed after the edit is
// re-planned, and refused because the fresh plan blocks what the file
// moved into its changes. Limits are checked again at apply time.
func TestSavedPlanIsSealed(t *testing.T) {
	pc := startPlanCase(t, filepath.Join("testdata", "plan", "blocked-not-green"))
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if code, out, errOut := pc.run(t, "plan", "-out", planFile); code != exitOK {
		t.Fatalf("plan -out: exit %d\n%s\n%s", code, out, errOut)
	}
	saved, err := readPlanFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.Blocked) != 4 || len(saved.Changes) != 0 {
		t.Fatalf("saved plan: %d changes, %d blocked; want 0 and 4", len(saved.Changes), len(saved.Blocked))
	}
	// Move the blocked deactivations into the changes.
	edited := *saved
	for _, b := range saved.Blocked {
		edited.Changes = append(edited.Changes, b.Change)
	}
	edited.Blocked = []reconcile.Blocked{}
	edited.Summary.Deactivate, edited.Summary.Blocked = 4, 0
	write := func(p *reconcile.Plan) {
		t.Helper()
		var b bytes.Buffer
		if err := p.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(planFile, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writesBefore := pc.box.Emulator.Stats().Requests["PUT /v3/groups/{id}/objects"]

	write(&edited) // digest not updated
	code, _, errOut := pc.run(t, "apply", planFile)
	if code != exitError || !strings.Contains(errOut, "modified after it was made") {
		t.Errorf("apply of an edited plan: exit %d, stderr %q; want a refusal naming the edit", code, errOut)
	}

	edited.Seal() // an edit that also forged the digest
	write(&edited)
	code, _, errOut = pc.run(t, "apply", planFile)
	if code != exitError || !strings.Contains(errOut, "stale") || !strings.Contains(errOut, "4 planned change(s) a fresh plan would not make") {
		t.Errorf("apply of a re-sealed edited plan: exit %d, stderr %q; want a refusal as stale", code, errOut)
	}
	if n := pc.box.Emulator.Stats().Requests["PUT /v3/groups/{id}/objects"] - writesBefore; n != 0 {
		t.Errorf("refused plans wrote %d bulk update(s)", n)
	}

	// A plan made with the override, applied after the spec tightened a
	// limit the override does not lift: the fresh plan blocks, apply refuses.
	pc2 := startPlanCase(t, filepath.Join("testdata", "plan", "role-change-limit"))
	if err := os.WriteFile(filepath.Join(pc2.spec, "10-spec.yaml"),
		[]byte(strings.Replace(string(caseSpec(t, filepath.Join("testdata", "plan", "role-change-limit"))), "maxRoleChanges: 1", "maxRoleChanges: 5", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := pc2.run(t, "plan", "-out", planFile); code != exitOK {
		t.Fatalf("plan -out: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(pc2.spec, "10-spec.yaml"), caseSpec(t, filepath.Join("testdata", "plan", "role-change-limit")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = pc2.run(t, "apply", planFile)
	if code != exitError || !strings.Contains(errOut, "the spec changed since the plan was made") {
		t.Errorf("apply after the limit tightened: exit %d, stderr %q; want a refusal", code, errOut)
	}
	if n := pc2.box.Emulator.Stats().Requests["PUT /v3/users/{id}"]; n != 0 {
		t.Errorf("the refused plan wrote %d user update(s)", n)
	}
}

// TestApplyReadsThePlanFirst: a plan file that cannot be read is refused
// before anything connects.
func TestApplyReadsThePlanFirst(t *testing.T) {
	pc := startPlanCase(t, filepath.Join("testdata", "plan", "in-sync"))
	before := pc.box.Emulator.Stats().Total()
	code, _, errOut := pc.run(t, "apply", filepath.Join(t.TempDir(), "nosuch.plan"))
	if code != exitError || !strings.Contains(errOut, "nosuch.plan") {
		t.Errorf("apply nosuch.plan: exit %d, stderr %q", code, errOut)
	}
	if n := pc.box.Emulator.Stats().Total() - before; n != 0 || pc.box.Directory.Stats().Binds != 0 {
		t.Errorf("apply of a missing plan made %d API request(s) and %d bind(s)", n, pc.box.Directory.Stats().Binds)
	}
}

// TestCheckReportsWhatPlanWouldNotResolve: check reports the problems
// that make a mapping unresolved, with the closest existing names, the same
// way plan does (defects 1 and 4).
func TestCheckReportsWhatPlanWouldNotResolve(t *testing.T) {
	for _, c := range []struct{ dir, want string }{
		{"typo-module", `did you mean "IT Assets"?`},
		{"typo-role", `did you mean "Module Admin"?`},
		{"attribute-typo", `did you mean "title"?`},
	} {
		t.Run(c.dir, func(t *testing.T) {
			pc := startPlanCase(t, filepath.Join("testdata", "plan", c.dir))
			code, out, _ := pc.run(t, "check")
			if code != exitError || !strings.Contains(out, c.want) || strings.Contains(out, "All checks passed") {
				t.Errorf("check: exit %d, want 1 and %q in:\n%s", code, c.want, out)
			}
		})
	}
	pc := startPlanCase(t, filepath.Join("testdata", "plan", "in-sync"))
	if code, out, _ := pc.run(t, "check"); code != exitOK || !strings.Contains(out, "All checks passed") {
		t.Errorf("check of a resolving spec: exit %d\n%s", code, out)
	}
}

// TestRunOnceIsNeverGreenWhenBlocked: run -once exits 0 only when there is
// nothing to do, and 1 while anything is blocked or a problem (defects 3
// and 5); blocked changes are never applied.
func TestRunOnceIsNeverGreenWhenBlocked(t *testing.T) {
	for _, c := range []struct {
		dir  string
		want int
	}{
		{"in-sync", exitOK},
		{"blocked-not-green", exitError},
		{"typo-role", exitError},
		{"wrong-credentials", exitError},
		{"disabled", exitChanges},
	} {
		t.Run(c.dir, func(t *testing.T) {
			pc := startPlanCase(t, filepath.Join("testdata", "plan", c.dir))
			code, out, errOut := pc.run(t, "run", "-once", "-state-dir", t.TempDir())
			if code != c.want {
				t.Errorf("run -once: exit %d, want %d\n%s\n%s", code, c.want, out, errOut)
			}
			if strings.Contains(out, "No changes") && c.want != exitOK {
				t.Errorf("run -once says No changes:\n%s", out)
			}
			writes := 0
			for route, n := range pc.box.Emulator.Stats().Requests {
				if strings.HasPrefix(route, "PUT ") || route == "POST /v3/groups/{id}/objects" || route == "POST /v3/users/invite" {
					writes += n
				}
			}
			if c.want == exitError && writes != 0 {
				t.Errorf("%d write(s) made; the blocked or failed pass must write nothing here", writes)
			}
		})
	}
}

// TestApplySavedPlanReportsTheFreshPlan: a saved plan whose changes a
// fresh plan still makes is applied, but the apply's outcome is the fresh
// plan's: a problem or a blocked change that appeared since the plan was
// made is never reported as success (exit 0).
func TestApplySavedPlanReportsTheFreshPlan(t *testing.T) {
	dir := filepath.Join("testdata", "plan", "disabled")
	pc := startPlanCase(t, dir)
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if code, out, errOut := pc.run(t, "plan", "-out", planFile); code != exitOK {
		t.Fatalf("plan -out: exit %d\n%s\n%s", code, out, errOut)
	}
	// A mapping added since, that does not resolve and plans nothing: the
	// saved changes are still what a fresh plan does.
	broken := string(caseSpec(t, dir)) + `---
apiVersion: pandasync.dev/v1alpha1
kind: CollectionMapping
metadata: {name: laptops}
spec:
  account: Acme
  module: IT Assets
  collection: Laptopz
  group: CN=Staff,OU=Groups,DC=corp,DC=example,DC=com
  key: {field: AD SID}
  fields:
    - {field: Email, attribute: mail}
`
	if err := os.WriteFile(filepath.Join(pc.spec, "10-spec.yaml"), []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := pc.run(t, "apply", planFile, "-state-dir", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "1 problem to fix") {
		t.Errorf("apply of a saved plan while a fresh plan has a problem: exit %d, want 1 naming the problem\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "2 applied, 0 failed") {
		t.Errorf("the saved plan's changes were not applied:\n%s", out)
	}
}

// TestApplySavedPlanUnderAGuard: a saved plan's deactivations are refused
// when, by apply time, a user mapping of the module no longer resolves: the
// fresh plan blocks them (unresolvedMappingGuard), so the file is stale and
// nothing is written.
func TestApplySavedPlanUnderAGuard(t *testing.T) {
	dir := filepath.Join("testdata", "plan", "disabled")
	pc := startPlanCase(t, dir)
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if code, out, errOut := pc.run(t, "plan", "-out", planFile); code != exitOK {
		t.Fatalf("plan -out: exit %d\n%s\n%s", code, out, errOut)
	}
	saved, err := readPlanFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Summary.Deactivate != 2 {
		t.Fatalf("saved plan: %+v; want 2 deactivations", saved.Summary)
	}
	typo := strings.Replace(string(caseSpec(t, dir)), "role: Module Admin", "role: Module Admn", 1)
	if err := os.WriteFile(filepath.Join(pc.spec, "10-spec.yaml"), []byte(typo), 0o600); err != nil {
		t.Fatal(err)
	}
	before := pc.box.Emulator.Stats().Requests
	code, _, errOut := pc.run(t, "apply", planFile, "-state-dir", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "stale") || !strings.Contains(errOut, "deactivate user") {
		t.Errorf("apply after a user mapping stopped resolving: exit %d, stderr %q; want a refusal as stale", code, errOut)
	}
	for route, n := range pc.box.Emulator.Stats().Requests {
		write := strings.HasPrefix(route, "PUT ") || route == "POST /v3/groups/{id}/objects" || route == "POST /v3/users/invite"
		if write && n != before[route] {
			t.Errorf("the refused plan wrote: %s %d time(s)", route, n-before[route])
		}
	}
}
