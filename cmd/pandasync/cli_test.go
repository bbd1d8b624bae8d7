package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cliRun is one run of the CLI for a golden transcript.
type cliRun struct {
	args  []string
	env   map[string]string
	stdin string
	tty   bool   // stdin and stdout are terminals (approval prompts; no colour: NO_COLOR)
	dir   string // working directory; "" keeps the test's
}

// runCLI runs the CLI once and returns its exit code and output.
func runCLI(t *testing.T, r cliRun) (int, string, string) {
	t.Helper()
	if r.dir != "" {
		// For this run only: the golden files are found from the
		// package's directory. The CLI tests do not run in parallel.
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chdir(r.dir); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.Chdir(wd); err != nil {
				t.Fatal(err)
			}
		}()
	}
	a, out, errb := testApp(r.env)
	a.stdin = strings.NewReader(r.stdin)
	a.stdinTTY, a.terminal, a.noColor = r.tty, r.tty, true
	code := a.run(context.Background(), r.args)
	return code, out.String(), errb.String()
}

// transcript renders a run as a golden file: the command line, stdout,
// stderr without JSON log lines (their times vary) and the exit code.
func transcript(args []string, code int, out, errOut string) string {
	var b strings.Builder
	b.WriteString("$ pandasync")
	for _, a := range args {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n" + out)
	if out != "" && !strings.HasSuffix(out, "\n") {
		b.WriteString("\n")
	}
	var errLines []string
	for _, l := range strings.Split(errOut, "\n") {
		if !strings.HasPrefix(l, "{") {
			errLines = append(errLines, l)
		}
	}
	if e := strings.TrimRight(strings.Join(errLines, "\n"), "\n"); e != "" {
		b.WriteString("--- stderr\n" + e + "\n")
	}
	b.WriteString("--- exit " + strconv.Itoa(code) + "\n")
	return b.String()
}

// scrubber replaces run-to-run details (temporary directories, sandbox
// addresses, the Go version) with stable names.
type scrubber []string // old, new pairs

func (s scrubber) scrub(text string) string {
	for i := 0; i+1 < len(s); i += 2 {
		if s[i] != "" {
			text = strings.ReplaceAll(text, s[i], s[i+1])
		}
	}
	// A plan's digest covers its id and time.
	return digestRE.ReplaceAllString(text, "sha256:…")
}

var digestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// cliGolden runs r and compares its transcript with testdata/cli/NAME.txt.
func cliGolden(t *testing.T, name string, r cliRun, s scrubber) (int, string, string) {
	t.Helper()
	code, out, errOut := runCLI(t, r)
	s = append(s, runtime.Version(), "GOVERSION", runtime.GOOS+"/"+runtime.GOARCH, "GOOS/GOARCH")
	golden(t, filepath.Join("testdata", "cli", name+".txt"), []byte(s.scrub(transcript(r.args, code, out, errOut))))
	return code, out, errOut
}

// TestCLIFlags covers the first-hour walls of flags and commands: global
// flags after the command, -version, close matches for typos, -log-level's
// values, help on stdout.
func TestCLIFlags(t *testing.T) {
	spec := filepath.Join("testdata", "cli", "spec")
	tests := map[string]cliRun{
		"global-flags-after-command": {args: []string{"validate", "-f", spec}},
		"global-flags-both-sides":    {args: []string{"-log-level", "warn", "validate", "-no-color", "-f", spec}},
		"version-flag":               {args: []string{"-version"}},
		"version-double-dash":        {args: []string{"--version"}},
		"version-v":                  {args: []string{"-v"}},
		"version-command":            {args: []string{"version"}},
		"unknown-command":            {args: []string{"pln"}},
		"unknown-command-far":        {args: []string{"frobnicate"}},
		"unknown-flag":               {args: []string{"plan", "-detials"}},
		"unknown-global-flag":        {args: []string{"-lgo-level", "debug", "plan"}},
		"log-level-invalid":          {args: []string{"-log-level", "verbose", "validate"}},
		"log-level-invalid-after":    {args: []string{"validate", "-log-level", "verbose"}},
		"no-command":                 {args: nil},
		"help":                       {args: []string{"-h"}},
		"help-plan":                  {args: []string{"help", "plan"}},
		"plan-h":                     {args: []string{"plan", "-h"}},
		"validate-stray-argument":    {args: []string{"validate", "specs"}},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) { cliGolden(t, name, r, nil) })
	}
}

// TestCLIEmptyDirectory: with no spec where pandasync looks, it says
// where it looked and how to name one.
func TestCLIEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	s := scrubber{dir, "$TMP"}
	cliGolden(t, "empty-directory-default", cliRun{args: []string{"validate"}, dir: dir}, s)
	empty := t.TempDir()
	cliGolden(t, "empty-directory-named", cliRun{args: []string{"plan", "-f", empty}}, scrubber{empty, "$EMPTY"})
}

// TestCLIValidate: semantic errors carry file:line, counts are in the
// singular when they should be, typos of top-level fields name the field,
// a missing --- gets a hint, and -strict-env names missing secrets.
func TestCLIValidate(t *testing.T) {
	dir := filepath.Join("testdata", "cli")
	tests := map[string]cliRun{
		"validate-one-problem":   {args: []string{"-f", filepath.Join(dir, "invalid", "one-problem.yaml"), "validate"}},
		"validate-semantic":      {args: []string{"-f", filepath.Join(dir, "invalid", "semantic.yaml"), "validate"}},
		"validate-top-level":     {args: []string{"-f", filepath.Join(dir, "invalid", "top-level.yaml"), "validate"}},
		"validate-no-marker":     {args: []string{"-f", filepath.Join(dir, "invalid", "no-marker.yaml"), "validate"}},
		"validate-strict-env":    {args: []string{"-f", filepath.Join(dir, "spec"), "validate", "-strict-env"}, env: map[string]string{"PANDASYNC_AP_CLIENT_ID": "x"}},
		"validate-strict-env-ok": {args: []string{"-f", filepath.Join(dir, "spec"), "validate", "-strict-env"}, env: allSecrets()},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) { cliGolden(t, name, r, nil) })
	}
}

// allSecrets sets every variable testdata/cli/spec names.
func allSecrets() map[string]string {
	env := map[string]string{}
	for _, k := range []string{"PANDASYNC_AD_PASSWORD", "PANDASYNC_AP_CLIENT_ID", "PANDASYNC_AP_CLIENT_SECRET", "PANDASYNC_AP_EMAIL", "PANDASYNC_AP_PASSWORD"} {
		env[k] = "CANARY-" + k
	}
	return env
}

// TestCLIPlanAndApply covers the paths between plan and apply: the hint
// after plan -out keeps -f wherever it was given, an answer other than
// yes exits 1 without writing, and a missing plan file is read before
// anything connects.
func TestCLIPlanAndApply(t *testing.T) {
	pc := startPlanCase(t, filepath.Join("testdata", "plan", "first-load"))
	tmp := t.TempDir()
	s := scrubber{pc.spec, "$SPEC", tmp, "$TMP", pc.box.APIURL, "http://asset-panda.sandbox", pc.box.LDAPURL, "ldap://directory.sandbox"}
	planFile := filepath.Join(tmp, "first.plan")
	_, out, _ := cliGolden(t, "plan-out-hint", cliRun{args: []string{"-f", pc.spec, "plan", "-out", planFile}, env: pc.env}, s)
	if !strings.Contains(out, "pandasync -f "+pc.spec+" apply "+planFile) {
		t.Errorf("the hint after plan -out drops -f:\n%s", out)
	}
	_, out, _ = cliGolden(t, "plan-out-hint-f-after", cliRun{args: []string{"plan", "-out", planFile, "-f", pc.spec}, env: pc.env}, s)
	if !strings.Contains(out, "pandasync -f "+pc.spec+" apply "+planFile) {
		t.Errorf("the hint after plan -out drops a -f given after the command:\n%s", out)
	}

	writes := func() int {
		st := pc.box.Emulator.Stats().Requests
		return st["POST /v3/groups/{id}/objects"] + st["POST /v3/users/invite"]
	}
	code, _, _ := cliGolden(t, "apply-answer-no", cliRun{args: []string{"-f", pc.spec, "apply"}, env: pc.env, stdin: "no\n", tty: true}, s)
	if code != exitError || writes() != 0 {
		t.Errorf("apply answered no: exit %d, %d writes; want 1 and none", code, writes())
	}
	code, _, _ = cliGolden(t, "apply-answer-y", cliRun{args: []string{"-f", pc.spec, "apply"}, env: pc.env, stdin: "y\n", tty: true}, s)
	if code != exitError || writes() != 0 {
		t.Errorf("apply answered y: exit %d, %d writes; want 1 and none (only yes approves)", code, writes())
	}
	before := pc.box.Emulator.Stats().Total()
	cliGolden(t, "apply-missing-plan", cliRun{args: []string{"-f", pc.spec, "apply", filepath.Join(tmp, "nosuch.plan")}, env: pc.env}, s)
	if n := pc.box.Emulator.Stats().Total() - before; n != 0 {
		t.Errorf("apply of a missing plan sent %d requests", n)
	}
	// Flags after the plan file are flags.
	code, _, _ = cliGolden(t, "apply-plan-then-flags", cliRun{args: []string{"apply", planFile, "-f", pc.spec}, env: pc.env}, s)
	if code != exitOK || writes() == 0 {
		t.Errorf("apply PLANFILE -f SPEC: exit %d, %d writes", code, writes())
	}
}

// TestCLIExplain: a typo is "no such person" with close matches and exit
// 1; a disabled account says why it is never created; someone in no
// mapped group is shown as such; mappings are named by their kind.
func TestCLIExplain(t *testing.T) {
	w := newDemoWorld(t)
	dir := demoSpecDir(t, w)
	s := scrubber{dir, "$SPEC"}
	tests := map[string]struct {
		who  string
		code int
	}{
		"explain-typo":          {who: "margret", code: exitError},
		"explain-nobody":        {who: "zzyzx", code: exitError},
		"explain-disabled":      {who: "ken", code: exitOK},
		"explain-no-group":      {who: "tim@corp.example.com", code: exitOK},
		"explain-member":        {who: "margaret", code: exitOK},
		"explain-domain-user":   {who: `CORP\linus`, code: exitOK},
		"explain-mixed-case":    {who: "Katherine", code: exitOK},
		"explain-sid-of-nobody": {who: "S-1-5-21-1004336348-1177238915-682003330-9999", code: exitError},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, _ := cliGolden(t, name, cliRun{args: []string{"-f", dir, "explain", tt.who}, env: w.env}, s)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
		})
	}
}

// TestCLIInit writes the starter set, which validates as written and says
// what to run next, and refuses to overwrite it.
func TestCLIInit(t *testing.T) {
	dir := t.TempDir()
	s := scrubber{dir, "$TMP"}
	cliGolden(t, "init-default", cliRun{args: []string{"init"}, dir: dir}, s)
	cliGolden(t, "init-validate", cliRun{args: []string{"validate"}, dir: dir}, s)
	code, _, _ := cliGolden(t, "init-again", cliRun{args: []string{"init"}, dir: dir}, s)
	if code != exitError {
		t.Errorf("init over an existing set: exit %d, want 1", code)
	}
	other := filepath.Join(dir, "specs")
	cliGolden(t, "init-dir", cliRun{args: []string{"init", other}}, s)
	if code, out, errOut := run(t, nil, "-f", other, "validate"); code != exitOK {
		t.Errorf("the starter set written to a directory is not valid: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCLICompletion: the scripts, and what __complete answers for
// commands, flags, -mapping (from the spec), -log-level and plan files.
func TestCLICompletion(t *testing.T) {
	for _, sh := range shells {
		t.Run(sh, func(t *testing.T) { cliGolden(t, "completion-"+sh, cliRun{args: []string{"completion", sh}}, nil) })
	}
	cliGolden(t, "completion-unknown-shell", cliRun{args: []string{"completion", "tcsh"}}, nil)

	dir := t.TempDir()
	for _, f := range []string{"a.plan", "b.json", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "specs"), 0o755); err != nil {
		t.Fatal(err)
	}
	demo, err := filepath.Abs(filepath.Join("..", "..", "examples", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string][]string{
		"commands":       {"1", "p"},
		"all-commands":   {"1"},
		"plan-flags":     {"2", "plan", "-d"},
		"global-flags":   {"1", "-"},
		"mapping-values": {"5", "-f", demo, "plan", "-mapping"},
		"mapping-prefix": {"5", "plan", "-f", demo, "-mapping", "it-"},
		"log-levels":     {"2", "-log-level"},
		"apply-files":    {"2", "apply"},
		"spec-paths":     {"2", "-f"},
		"help-commands":  {"2", "help", "ex"},
		"shells":         {"2", "completion"},
		"unknown-cmd":    {"2", "frob", ""},
	}
	for name, words := range tests {
		t.Run(name, func(t *testing.T) {
			cliGolden(t, "complete-"+name, cliRun{args: append([]string{completeCommand}, words...), dir: dir}, scrubber{demo, "$DEMO"})
		})
	}
}

// TestCLICheckAPI runs check -api against the emulator, whose replies have
// every assumed shape, and against a variant whose replies differ.
func TestCLICheckAPI(t *testing.T) {
	pc := startPlanCase(t, filepath.Join("testdata", "plan", "in-sync"))
	s := scrubber{pc.spec, "$SPEC", pc.box.APIURL, "http://asset-panda.sandbox"}
	code, _, _ := cliGolden(t, "check-api", cliRun{args: []string{"-f", pc.spec, "check", "-api"}, env: pc.env}, s)
	if code != exitOK {
		t.Errorf("check -api against the emulator: exit %d", code)
	}
	if n := pc.box.Directory.Stats().Binds; n != 0 {
		t.Errorf("check -api bound to the directory %d time(s)", n)
	}

	// The variant: the roles come in an envelope, the users list without
	// its total.
	variant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		pc.box.Emulator.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		switch r.URL.Path {
		case "/v3/roles":
			body = append(append([]byte(`{"roles":`), body...), '}')
		case "/v3/users":
			w.Header().Del("X-Total-Count")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	defer variant.Close()
	conn, err := os.ReadFile(filepath.Join(pc.spec, "00-connection.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vdir := t.TempDir()
	for name, b := range map[string][]byte{
		"00-connection.yaml": bytes.Replace(conn, []byte(pc.box.APIURL), []byte(variant.URL), 1),
		"10-spec.yaml":       caseSpec(t, filepath.Join("testdata", "plan", "in-sync")),
	} {
		if err := os.WriteFile(filepath.Join(vdir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = append(s, vdir, "$VARIANT", variant.URL, "http://asset-panda.variant")
	code, out, _ := cliGolden(t, "check-api-variant", cliRun{args: []string{"-f", vdir, "check", "-api"}, env: pc.env}, s)
	if code != exitError {
		t.Errorf("check -api against the variant: exit %d, want 1", code)
	}
	assertNoSecrets(t, pc.env, out)
}

// TestCLIDemoServe runs demo -serve: it writes demo.d and demo.env, prints
// how to continue, and serves the state before any apply, so the printed
// command plans the demo's changes; apply can then be run by hand.
func TestCLIDemoServe(t *testing.T) {
	goldenDir, err := filepath.Abs(filepath.Join("testdata", "cli"))
	if err != nil {
		t.Fatal(err)
	}
	// A relative -dir, as a user would type it, keeps the printed
	// commands the same from run to run.
	base := t.TempDir()
	t.Chdir(base)
	dir := filepath.Join(base, "try")
	a, _, errb := testApp(nil)
	out := &syncBuffer{}
	a.stdout, a.noColor = out, true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	args := []string{"demo", "-serve", "-dir", "try", "-ldap-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"}
	go func() { done <- a.run(ctx, args) }()
	env := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Serving until interrupted") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("demo -serve did not start:\n%s\n%s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(dir, "demo.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok && !strings.HasPrefix(l, "#") {
			env[k] = v
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "demo.env")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("demo.env: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	spec := filepath.Join(dir, "demo.d")
	code, planOut, errOut := run(t, env, "-f", spec, "plan", "-detailed-exitcode")
	if code != exitChanges || !strings.Contains(planOut, "Plan: 10 to create, 2 to update") {
		t.Errorf("the printed plan command: exit %d, want 2 and the demo's changes\n%s\n%s", code, planOut, errOut)
	}
	if code, out, errOut := run(t, env, "-f", spec, "apply", "-auto-approve"); code != exitOK {
		t.Errorf("apply by hand: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := run(t, env, "-f", spec, "plan", "-detailed-exitcode"); code != exitOK {
		t.Errorf("plan after apply: exit %d, want 0", code)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("demo -serve stopped with exit %d", code)
	}
	text := out.String()
	ldap, api := between(text, "embedded Active Directory at ", " and"), between(text, "Asset Panda emulator at ", ",")
	s := scrubber{ldap, "ldap://127.0.0.1:PORT", api, "http://127.0.0.1:PORT"}
	golden(t, filepath.Join(goldenDir, "demo-serve.txt"), []byte(s.scrub(transcript(args, exitOK, text, ""))))
	conn, err := os.ReadFile(filepath.Join(spec, "00-connection.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join(goldenDir, "demo-serve-connection.yaml"), []byte(s.scrub(string(conn))))
}

// between returns the text after start and before the next end.
func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}
