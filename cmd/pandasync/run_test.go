package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/reconcile/gitsource"
	"github.com/pandasync/pandasync/reconcile/leader"
	"github.com/pandasync/pandasync/reconcile/loop"
)

func TestParseRunArgs(t *testing.T) {
	defaults := runArgs{listen: defaultListen, passTimeout: loop.DefaultPassTimeout, maxBackoff: loop.DefaultBackoffMax, shutdownTimeout: loop.DefaultShutdownTimeout,
		git:    gitArgs{interval: gitsource.DefaultInterval},
		leader: leaderArgs{name: defaultLeaseName, leaseDuration: leader.DefaultLeaseDuration, renewDeadline: leader.DefaultRenewDeadline, retryPeriod: leader.DefaultRetryPeriod}}
	with := func(f func(*runArgs)) runArgs {
		ra := defaults
		f(&ra)
		return ra
	}
	tests := map[string]struct {
		args    []string
		want    runArgs
		wantErr bool
	}{
		"defaults":    {nil, defaults, false},
		"once":        {[]string{"-once"}, with(func(ra *runArgs) { ra.once = true }), false},
		"no listener": {[]string{"-listen", ""}, with(func(ra *runArgs) { ra.listen = "" }), false},
		"state dir":   {[]string{"-state-dir", "/srv/pandasync"}, with(func(ra *runArgs) { ra.stateDir = "/srv/pandasync" }), false},
		"tuned": {[]string{"-listen", "127.0.0.1:9191", "-pass-timeout", "30m", "-max-backoff", "1m", "-shutdown-timeout", "10s"},
			with(func(ra *runArgs) {
				ra.listen, ra.passTimeout, ra.maxBackoff, ra.shutdownTimeout = "127.0.0.1:9191", 30*time.Minute, time.Minute, 10*time.Second
			}), false},
		"git": {[]string{"-git", "https://git.corp.example.com/specs.git", "-git-ref", "main", "-git-path", "pandasync.d", "-git-interval", "10s",
			"-git-verify", "keys.asc", "-git-username", "bot", "-git-password", "{env: GIT_TOKEN}"},
			with(func(ra *runArgs) {
				ra.git = gitArgs{url: "https://git.corp.example.com/specs.git", ref: "main", path: "pandasync.d", interval: 10 * time.Second,
					verify: "keys.asc", username: "bot", password: "{env: GIT_TOKEN}"}
			}), false},
		"git flag without -git": {[]string{"-git-ref", "main"}, runArgs{}, true},
		"zero git interval":     {[]string{"-git", "https://x/y.git", "-git-interval", "0s"}, runArgs{}, true},
		"leader election": {[]string{"-leader-elect", "-lease-namespace", "it", "-lease-name", "ps", "-kubeconfig", "/k", "-lease-duration", "60s", "-renew-deadline", "40s", "-retry-period", "15s"},
			with(func(ra *runArgs) {
				ra.leader = leaderArgs{elect: true, namespace: "it", name: "ps", kubeconfig: "/k", leaseDuration: time.Minute, renewDeadline: 40 * time.Second, retryPeriod: 15 * time.Second}
			}), false},
		"lease flag without -leader-elect": {[]string{"-lease-name", "ps"}, runArgs{}, true},
		"kubeconfig without -leader-elect": {[]string{"-kubeconfig", "/k"}, runArgs{}, true},
		"leader election and once":         {[]string{"-once", "-leader-elect"}, runArgs{}, true},
		"zero shutdown":                    {[]string{"-shutdown-timeout", "0s"}, runArgs{}, true},
		"zero timeout":                     {[]string{"-pass-timeout", "0s"}, runArgs{}, true},
		"stray argument":                   {[]string{"now"}, runArgs{}, true},
		"unknown flag":                     {[]string{"-forever"}, runArgs{}, true},
		"negative backof":                  {[]string{"-max-backoff", "-1s"}, runArgs{}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, _, _ := testApp(nil)
			got, err := parseRunArgs(a, tc.args)
			if tc.wantErr {
				if err == nil {
					t.Errorf("parseRunArgs(%q) = %+v, want an error", tc.args, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRunArgs(%q): %v", tc.args, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(runArgs{}, gitArgs{}, leaderArgs{})); diff != "" {
				t.Errorf("parseRunArgs(%q) (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}

// runSpecDir is the demo spec pointed at the world, scheduled to start at
// once.
func runSpecDir(t *testing.T, w *demoWorld) string {
	t.Helper()
	dir := demoSpecDir(t, w)
	path := filepath.Join(dir, "pandasync.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `schedule: {start: "02:00", every: 1h}`, "schedule: {every: 1h}", 1)
	if s == string(b) {
		t.Fatal("the demo spec's schedule is not the one this test rewrites")
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// assertNoSecrets fails when any secret of env appears in the output.
func assertNoSecrets(t *testing.T, env map[string]string, outputs ...string) {
	t.Helper()
	for _, k := range []string{"PANDASYNC_AD_PASSWORD", "PANDASYNC_AP_CLIENT_SECRET", "PANDASYNC_AP_PASSWORD"} {
		for _, out := range outputs {
			if v := env[k]; v != "" && strings.Contains(out, v) {
				t.Errorf("the value of %s appears in the output", k)
			}
		}
	}
}

// TestRunOnce checks `run -once`: a pass that applies changes exits 2, the
// next one exits 0.
func TestRunOnce(t *testing.T) {
	w := newDemoWorld(t)
	dir := runSpecDir(t, w)
	code, out, errOut := run(t, w.env, "-log-level", "debug", "-f", dir, "run", "-once")
	if code != exitChanges || !strings.Contains(out, "Plan: ") || !strings.Contains(out, "Apply complete:") || !strings.Contains(out, " 0 failed.") {
		t.Fatalf("first run -once: exit %d, want %d with the plan and the apply\nstdout:\n%s\nstderr:\n%s", code, exitChanges, out, errOut)
	}
	assertNoSecrets(t, w.env, out, errOut)
	code, out, errOut = run(t, w.env, "-f", dir, "run", "-once")
	if code != exitOK || !strings.Contains(out, "No changes.") {
		t.Errorf("second run -once: exit %d, want 0 and no changes\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// A missing secret is an error, exit 1, naming the variable only.
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	delete(env, "PANDASYNC_AP_PASSWORD")
	code, out, errOut = run(t, env, "-f", dir, "run", "-once")
	if code != exitError || strings.Count(out+errOut, "PANDASYNC_AP_PASSWORD") != 1 {
		t.Errorf("run -once without a secret: exit %d, want 1 naming the variable once\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, never := range []string{"waiting", "retry", "next_run"} {
		if strings.Contains(errOut, never) {
			t.Errorf("run -once promises %q, but nothing waits:\n%s", never, errOut)
		}
	}

	// A mapping with a problem: the rest is in sync, but the pass is not
	// green (exit 1), and the problem is shown once.
	typo := `apiVersion: pandasync.dev/v1alpha1
kind: CollectionMapping
metadata: {name: typo}
spec:
  account: Acme
  module: IT Assets
  collection: Peeple
  group: CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com
  key: {field: AD SID}
`
	if err := os.WriteFile(filepath.Join(dir, "typo.yaml"), []byte(typo), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t, w.env, "-f", dir, "run", "-once")
	if code != exitError || strings.Count(out+errOut, "Peeple") != 1 {
		t.Errorf("run -once with a problem: exit %d, want 1 showing the problem once\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestRunServe runs the service: the first pass at once, a pass on SIGHUP,
// the admin endpoints, a clean stop, and a pass id on every pass log line.
func TestRunServe(t *testing.T) {
	w := newDemoWorld(t)
	dir := runSpecDir(t, w)
	a, out, errb := testApp(w.env)
	a.paths = []string{dir}
	a.logLevel.UnmarshalText([]byte("debug"))
	a.log = a.newLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	ra := runArgs{listen: "127.0.0.1:0", passTimeout: time.Minute, maxBackoff: time.Minute, shutdownTimeout: time.Minute}
	st, err := a.openState(w.env["STATE_DIRECTORY"], "pandasync run", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	go func() { done <- a.serve(ctx, ra, st, hup, func(addr string) { addrs <- addr }) }()
	var base string
	select {
	case addr := <-addrs:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the admin listener did not start")
	}

	status := waitStatus(t, base, func(st loop.Status) bool { return st.Passes >= 1 })
	if status.LastPass.Outcome != loop.OutcomeSuccess || status.LastPass.Reason != loop.ReasonStartup {
		t.Errorf("first pass: %+v, want a successful start-up pass", status.LastPass)
	}
	if code, _ := httpGet(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d after the first pass, want 200", code)
	}

	hup <- syscall.SIGHUP
	status = waitStatus(t, base, func(st loop.Status) bool { return st.Passes >= 2 })
	if status.LastPass.Reason != "SIGHUP" || status.LastPass.Outcome != loop.OutcomeNoChanges {
		t.Errorf("pass after SIGHUP: %+v, want one without changes", status.LastPass)
	}
	// The status page is served on the same listener, explain included:
	// it plans read-only with the same providers as a pass.
	for path, want := range map[string]string{
		"/":                               "Nothing needs a person",
		"/passes":                         status.LastPass.ID,
		"/passes/" + status.LastPass.ID:   "no_changes",
		"/explain?q=ada@corp.example.com": "CN=Lovelace\\, Ada",
	} {
		code, body := httpGet(t, base+path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, want 200 with %q:\n%s", path, code, want, body)
		}
	}
	_, metrics := httpGet(t, base+"/metrics")
	for _, want := range []string{`pandasync_passes_total{outcome="success"} 1`, `pandasync_passes_total{outcome="no_changes"} 1`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after cancel")
	}

	logs := errb.String()
	assertNoSecrets(t, w.env, out.String(), logs)
	ids := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		if c := rec["component"]; c == "activedirectory" || c == "assetpanda" {
			if id, _ := rec["pass"].(string); id == "" {
				t.Errorf("provider log line without a pass id: %s", sc.Text())
			}
		}
		switch rec["msg"] {
		case "pass started", "pass finished":
			id, _ := rec["pass"].(string)
			if id == "" {
				t.Errorf("log line without a pass id: %s", sc.Text())
			}
			ids[id]++
		}
	}
	if len(ids) != 2 {
		t.Errorf("pass ids in the logs: %v, want 2 passes, each with its own id", ids)
	}
	for id, n := range ids {
		if n != 2 {
			t.Errorf("pass %s has %d start/finish lines, want 2", id, n)
		}
	}
}

// waitStatus polls /status until ok holds; the deadline only stops a hung
// test.
func waitStatus(t *testing.T, base string, ok func(loop.Status) bool) loop.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := httpGet(t, base+"/status")
		var st loop.Status
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("/status: %v\n%s", err, body)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status never got there: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServiceUnit keeps examples/pandasync.service in step with the
// command line and hardened.
func TestServiceUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash("../../examples/pandasync.service"))
	if err != nil {
		t.Fatal(err)
	}
	directives := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("not a directive: %q", line)
			continue
		}
		directives[k] = append(directives[k], v)
	}
	for k, want := range map[string]string{
		"DynamicUser":    "yes",
		"ProtectSystem":  "strict",
		"Restart":        "on-failure",
		"ExecReload":     "/bin/kill -HUP $MAINPID",
		"KillSignal":     "SIGTERM",
		"StateDirectory": "pandasync",
	} {
		if got := directives[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(directives["EnvironmentFile"]) == 0 {
		t.Error("no EnvironmentFile for the secrets")
	}
	exec := strings.Fields(directives["ExecStart"][0])
	i := slices.Index(exec, "run")
	if i < 0 {
		t.Fatalf("ExecStart %q does not run `pandasync run`", exec)
	}
	a, _, errb := testApp(nil)
	ra, err := parseRunArgs(a, exec[i+1:])
	if err != nil {
		t.Fatalf("ExecStart run flags %q: %v %s", exec[i+1:], err, errb)
	}
	if ra.once || ra.listen != defaultListen || ra.stateDir != "" {
		t.Errorf("ExecStart runs %+v, want the service on the default loopback listener with $STATE_DIRECTORY", ra)
	}
	// systemd stops the unit with SIGKILL after TimeoutStopSec: leave the
	// shutdown timeout room.
	stop, err := time.ParseDuration(directives["TimeoutStopSec"][0])
	if err != nil || stop <= ra.shutdownTimeout {
		t.Errorf("TimeoutStopSec %q, want more than the shutdown timeout %s", directives["TimeoutStopSec"], ra.shutdownTimeout)
	}
}
