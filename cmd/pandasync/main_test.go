package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/examples"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testApp is an app with buffers for its streams and a fixed environment.
func testApp(env map[string]string) (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &app{
		stdin:  strings.NewReader(""),
		stdout: &out,
		stderr: &errb,
		lookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	}, &out, &errb
}

// run runs the CLI once and returns its exit code and output.
func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	a, out, errb := testApp(env)
	code := a.run(context.Background(), args)
	return code, out.String(), errb.String()
}

// demoSpecDir writes the demo spec to a temporary directory, pointed at
// the demo world's servers, as a user's spec directory would be.
func demoSpecDir(t *testing.T, w *demoWorld) string {
	t.Helper()
	b, err := examples.FS.ReadFile("demo/pandasync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "ldap://127.0.0.1:3389", w.ldapURL, 1)
	s = strings.Replace(s, "http://127.0.0.1:8080", w.apiURL, 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pandasync.yaml"), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newDemoWorld(t *testing.T) *demoWorld {
	t.Helper()
	a, _, _ := testApp(nil)
	a.log = a.newLogger()
	w, err := startDemoWorld(a)
	if err != nil {
		t.Fatalf("start demo world: %v", err)
	}
	t.Cleanup(w.Close)
	// The writers' state directory, as systemd would name it.
	w.env["STATE_DIRECTORY"] = t.TempDir()
	return w
}

func TestDemo(t *testing.T) {
	code, out, errOut := run(t, nil, "demo")
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"==> pandasync validate", "==> pandasync plan", "==> pandasync apply", "Apply complete:",
		"Plan: ", "No changes. Asset Panda matches Active Directory.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "No changes.") < strings.Index(out, "Apply complete:") {
		t.Errorf("the empty plan must come after the apply:\n%s", out)
	}
}

// TestPlanApplyFlow drives plan -out, apply FILE, a second apply of the
// same plan and a stale plan through the CLI.
func TestPlanApplyFlow(t *testing.T) {
	w := newDemoWorld(t)
	dir := demoSpecDir(t, w)
	planFile := filepath.Join(t.TempDir(), "plan.json")

	code, out, errOut := run(t, w.env, "-f", dir, "plan", "-out", planFile, "-detailed-exitcode")
	if code != exitChanges {
		t.Fatalf("plan exit %d, want %d\n%s\n%s", code, exitChanges, out, errOut)
	}
	b, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	var saved reconcile.Plan
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatalf("saved plan is not JSON: %v", err)
	}
	if saved.FormatVersion != "1" || !saved.HasChanges() {
		t.Fatalf("saved plan: version %q, %d changes", saved.FormatVersion, len(saved.Changes))
	}

	if code, out, errOut := run(t, w.env, "-f", dir, "apply", planFile); code != 0 {
		t.Fatalf("apply exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = run(t, w.env, "-f", dir, "apply", planFile)
	if code != exitError || !strings.Contains(errOut, "stale") || !strings.Contains(errOut, "Asset Panda changed") {
		t.Errorf("second apply of the same plan: exit %d, stderr %q; want a refusal as stale", code, errOut)
	}
	if code, out, _ := run(t, w.env, "-f", dir, "plan", "-detailed-exitcode"); code != exitOK {
		t.Errorf("plan after apply: exit %d, want 0\n%s", code, out)
	}

	// A plan made, then AD changes: apply refuses it.
	if err := w.dir.Replace("CN=Grace Hopper,OU=People,DC=corp,DC=example,DC=com", "title", "Rear Admiral"); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, w.env, "-f", dir, "plan", "-out", planFile); code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	if err := w.dir.Replace("CN=Grace Hopper,OU=People,DC=corp,DC=example,DC=com", "title", "Commodore"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run(t, w.env, "-f", dir, "apply", planFile)
	if code != exitError || !strings.Contains(errOut, "Active Directory changed") {
		t.Errorf("apply after AD changed: exit %d, stderr %q; want a refusal naming Active Directory", code, errOut)
	}
}

// TestApplyNeedsApproval refuses to apply without a terminal or
// -auto-approve.
func TestApplyNeedsApproval(t *testing.T) {
	w := newDemoWorld(t)
	dir := demoSpecDir(t, w)
	code, _, errOut := run(t, w.env, "-f", dir, "apply")
	if code != exitError || !strings.Contains(errOut, "-auto-approve") {
		t.Errorf("apply without approval: exit %d, stderr %q", code, errOut)
	}
	if n := w.emu.Stats(); n.Requests["POST /v3/groups/{id}/objects"] != 0 {
		t.Errorf("apply without approval wrote: %v", n.Requests)
	}
	if code, out, errOut := run(t, w.env, "-f", dir, "apply", "-auto-approve"); code != 0 {
		t.Errorf("apply -auto-approve: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestNoSecretsInOutput runs plan and apply with debug logging and a JSON
// plan, and looks for every secret in everything pandasync wrote (R26).
func TestNoSecretsInOutput(t *testing.T) {
	w := newDemoWorld(t)
	dir := demoSpecDir(t, w)
	planFile := filepath.Join(t.TempDir(), "plan.json")
	var all strings.Builder
	for _, args := range [][]string{
		{"-log-level", "debug", "-f", dir, "plan", "-json", "-out", planFile},
		{"-log-level", "debug", "-f", dir, "apply", planFile},
		{"-log-level", "debug", "-f", dir, "check"},
		{"-log-level", "debug", "-f", dir, "explain", "grace@corp.example.com"},
	} {
		_, out, errOut := run(t, w.env, args...)
		all.WriteString(out)
		all.WriteString(errOut)
	}
	b, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	all.Write(b)
	for _, k := range []string{"PANDASYNC_AD_PASSWORD", "PANDASYNC_AP_CLIENT_SECRET", "PANDASYNC_AP_PASSWORD"} {
		if secret := w.env[k]; strings.Contains(all.String(), secret) {
			t.Errorf("the value of %s appears in pandasync's output", k)
		}
	}
}

func TestCheck(t *testing.T) {
	w := newDemoWorld(t)
	dir := demoSpecDir(t, w)
	code, out, errOut := run(t, w.env, "-f", dir, "check")
	if code != 0 || !strings.Contains(out, "All checks passed.") {
		t.Errorf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	w.emu.SetPermissions(emulator.Permissions{Read: true, Write: true, CreateUsers: false})
	code, out, _ = run(t, w.env, "-f", dir, "check")
	if code != exitError || !strings.Contains(out, "user creation is not granted") {
		t.Errorf("check without user creation: exit %d\n%s", code, out)
	}
}

func TestExplain(t *testing.T) {
	w := newDemoWorld(t)
	dir := demoSpecDir(t, w)
	code, out, errOut := run(t, w.env, "-f", dir, "explain", "grace@corp.example.com")
	if code != 0 {
		t.Fatalf("explain: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"CN=Grace Hopper", "✓ user mapping it-users: member via CN=AP Users", "adopt"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("apiVersion: pandasync.dev/v1alpha1\nkind: UserMapping\nmetadata: {name: x}\nspec: {acount: Acme}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, nil, "-f", dir, "validate")
	if code != exitError || !strings.Contains(errOut, "bad.yaml") || !strings.Contains(errOut, "acount") {
		t.Errorf("validate: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestParsePlanArgs(t *testing.T) {
	tests := map[string]struct {
		args    []string
		want    planArgs
		wantErr bool
	}{
		"none":          {args: nil, want: planArgs{format: formatText}},
		"all":           {args: []string{"-out", "p.json", "-json", "-detailed-exitcode", "-mapping", "a", "-mapping", "b", "-allow-mass-deactivation"}, want: planArgs{out: "p.json", json: true, format: formatJSON, detailedExitCode: true, mappings: []string{"a", "b"}, overrides: []string{reconcile.OverrideDeactivations}}},
		"markdown":      {args: []string{"-format", "markdown", "-out", "p.json", "-plan-url", "https://ci.example.com/run/7"}, want: planArgs{out: "p.json", format: formatMarkdown, planURL: "https://ci.example.com/run/7"}},
		"format json":   {args: []string{"-format", "json"}, want: planArgs{json: true, format: formatJSON}},
		"json and json": {args: []string{"-json", "-format", "json"}, want: planArgs{json: true, format: formatJSON}},
		"json and text": {args: []string{"-json", "-format", "text"}, wantErr: true},
		"bad format":    {args: []string{"-format", "html"}, wantErr: true},
		"unknown":       {args: []string{"-nope"}, wantErr: true},
		"stray":         {args: []string{"extra"}, wantErr: true},
		"badvalue":      {args: []string{"-json=maybe"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, _, _ := testApp(nil)
			got, err := parsePlanArgs(a, tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(planArgs{})); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestParseApplyArgs(t *testing.T) {
	tests := map[string]struct {
		args    []string
		want    applyArgs
		wantErr bool
	}{
		"plan file":           {args: []string{"plan.json"}, want: applyArgs{planFile: "plan.json"}},
		"auto approve":        {args: []string{"-auto-approve", "-mapping", "people"}, want: applyArgs{autoApprove: true, mappings: []string{"people"}}},
		"two files":           {args: []string{"a", "b"}, wantErr: true},
		"mapping with a file": {args: []string{"-mapping", "x", "plan.json"}, wantErr: true},
		"digest before":       {args: []string{"-require-digest", "sha256:ab", "plan.json"}, want: applyArgs{planFile: "plan.json", requireDigest: "sha256:ab"}},
		"digest after":        {args: []string{"plan.json", "-require-digest", "sha256:ab"}, want: applyArgs{planFile: "plan.json", requireDigest: "sha256:ab"}},
		"digest, no file":     {args: []string{"-require-digest", "sha256:ab"}, wantErr: true},
		"file after --":       {args: []string{"--", "-plan.json"}, want: applyArgs{planFile: "-plan.json"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, _, _ := testApp(nil)
			got, err := parseApplyArgs(a, tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(applyArgs{})); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errOut := run(t, nil, "frobnicate")
	if code != exitError || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestParseInterspersed: flags may come around the positional arguments,
// and everything after "--" is positional, even after a positional.
func TestParseInterspersed(t *testing.T) {
	tests := map[string]struct {
		args []string
		want []string
	}{
		"flags around":         {args: []string{"a", "-json", "b"}, want: []string{"a", "b"}},
		"-- first":             {args: []string{"--", "-a", "-json"}, want: []string{"-a", "-json"}},
		"-- after a file":      {args: []string{"a", "--", "-b"}, want: []string{"a", "-b"}},
		"flag, file, --, dash": {args: []string{"-json", "a", "--", "-json"}, want: []string{"a", "-json"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, _, _ := testApp(nil)
			fs := a.flags("show", "")
			fs.Bool("json", false, "")
			got, err := parseInterspersed(fs, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
