package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile/loop"
)

// TestMain lets the tests run this test binary as the pandasync command
// itself, as a real process they can signal.
func TestMain(m *testing.M) {
	if os.Getenv("PANDASYNC_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startPandasync runs `pandasync args...` as a process with env.
func startPandasync(t *testing.T, env map[string]string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"PANDASYNC_TEST_MAIN=1", "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out
}

// waitFor polls until ok holds; the deadline only stops a hung test.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exitCode waits for the process and returns its exit code.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the process did not exit")
	}
	return cmd.ProcessState.ExitCode()
}

// TestOneWriter runs `pandasync run` as a real process: while it runs, a
// second `run` and an `apply` are refused at once, exit 1, naming it; after
// SIGTERM it exits 0 and releases the lock.
func TestOneWriter(t *testing.T) {
	w := newDemoWorld(t)
	dir := runSpecDir(t, w)
	stateDir := w.env["STATE_DIRECTORY"]
	cmd, out := startPandasync(t, w.env, "-f", dir, "run", "-listen", "", "-state-dir", stateDir)
	waitFor(t, "the start-up pass", func() bool { return strings.Contains(out.String(), `"msg":"pass finished"`) })

	holder := fmt.Sprintf("in use by pid %d", cmd.Process.Pid)
	for _, args := range [][]string{{"run", "-once"}, {"run", "-listen", ""}, {"apply", "-auto-approve"}} {
		code, stdout, stderr := run(t, w.env, append([]string{"-f", dir}, args...)...)
		if code != exitError || !strings.Contains(stderr, holder) || !strings.Contains(stderr, "(pandasync run) since ") {
			t.Errorf("%v while run holds the lock: exit %d, want 1 naming the holder (%s)\nstdout:\n%s\nstderr:\n%s", args, code, holder, stdout, stderr)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("run exited %d after SIGTERM, want 0\n%s", code, out.String())
	}
	if code, stdout, stderr := run(t, w.env, "-f", dir, "run", "-once"); code != exitOK {
		t.Errorf("run -once after run stopped: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestSIGTERMDuringBulkWrite sends SIGTERM to a real `pandasync run` while
// its bulk create is held in flight by the emulator's latency fault: the
// batch completes, nothing further is written, the process exits 0, and
// the next run writes exactly the rest, with no duplicate.
func TestSIGTERMDuringBulkWrite(t *testing.T) {
	w := newDemoWorld(t)
	dir := runSpecDir(t, w)
	const bulkCreate = "POST /v3/groups/{id}/objects"
	w.emu.Fault(emulator.Fault{Route: bulkCreate, Kind: emulator.FaultLatency, Delay: time.Second})
	records, users := w.counts(t)
	cmd, out := startPandasync(t, w.env, "-f", dir, "run", "-listen", "", "-state-dir", w.env["STATE_DIRECTORY"])
	waitFor(t, "the bulk create", func() bool { return w.emu.Stats().Requests[bulkCreate] > 0 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Fatalf("run exited %d after SIGTERM, want 0\n%s", code, out.String())
	}
	logs := out.String()
	for _, want := range []string{`"msg":"stopping: the write batch in flight completes, no further write starts"`, `"msg":"pass stopped"`, `"outcome":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %s:\n%s", want, logs)
		}
	}
	r2, u2 := w.counts(t)
	if r2 <= records || u2 != users || w.emu.Stats().Requests[bulkCreate] != 1 {
		t.Errorf("after SIGTERM: %d records (had %d), %d users (had %d), %d bulk creates; want the batch written, no user, one bulk create",
			r2, records, u2, users, w.emu.Stats().Requests[bulkCreate])
	}

	w.emu.ClearFaults()
	code, stdout, stderr := run(t, w.env, "-f", dir, "run", "-once")
	if code != exitChanges || !strings.Contains(stdout, " 0 failed.") {
		t.Fatalf("run -once after the stop: exit %d, want 2 with nothing failed\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "+ record") || strings.Contains(stdout, "create record") {
		t.Errorf("the records written before SIGTERM are planned again:\n%s", stdout)
	}
	if code, stdout, _ := run(t, w.env, "-f", dir, "run", "-once"); code != exitOK {
		t.Errorf("third pass: exit %d, want 0\n%s", code, stdout)
	}
	state := w.state(t)
	seen := map[string]int{}
	for _, r := range state.records {
		seen[r]++
	}
	for _, u := range state.users {
		seen["user "+u]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%d objects for %s", n, k)
		}
	}
}

// emulatorState is the keys of the records pandasync manages and the user
// emails the emulator holds.
type emulatorState struct {
	records []string
	users   []string
}

func (w *demoWorld) state(t *testing.T) emulatorState {
	t.Helper()
	resp, err := http.Get(w.apiURL + "/_emulator/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seed emulator.Seed
	if err := json.NewDecoder(resp.Body).Decode(&seed); err != nil {
		t.Fatal(err)
	}
	var st emulatorState
	for _, a := range seed.Accounts {
		for _, m := range a.Modules {
			for _, c := range m.Collections {
				for _, r := range c.Records {
					if sid := r.Fields["AD SID"]; sid != "" {
						st.records = append(st.records, c.Name+" "+sid)
					}
				}
			}
		}
	}
	for _, u := range seed.Users {
		st.users = append(st.users, strings.ToLower(u.Email))
	}
	return st
}

func (w *demoWorld) counts(t *testing.T) (records, users int) {
	st := w.state(t)
	return len(st.records), len(st.users)
}

// TestHistoryCommand reads the audit trail a pass left: the last entries,
// human-readable or as JSON lines.
func TestHistoryCommand(t *testing.T) {
	w := newDemoWorld(t)
	dir := runSpecDir(t, w)
	if code, _, errOut := run(t, w.env, "history"); code != exitOK {
		t.Fatalf("history of an empty state directory: exit %d %s", code, errOut)
	}
	if code, out, errOut := run(t, w.env, "-f", dir, "run", "-once"); code != exitChanges {
		t.Fatalf("run -once: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := run(t, w.env, "history", "-json", "-n", "0")
	if code != exitOK {
		t.Fatalf("history -json: exit %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		var e loop.AuditEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Result != loop.ResultApplied || e.Pass == "" || e.Mapping == "" {
			t.Errorf("history -json line %q (%v), want an applied audit entry", l, err)
		}
	}
	code, out, _ = run(t, w.env, "history", "-n", "2")
	if code != exitOK || strings.Count(out, "  applied  ") != 2 {
		t.Errorf("history -n 2: exit %d, want two entries:\n%s", code, out)
	}
	if !strings.Contains(out, " → ") && !strings.Contains(out, ": \"") {
		t.Errorf("history shows no field values:\n%s", out)
	}
	if code, _, _ := run(t, w.env, "history", "-n", "-1"); code != exitError {
		t.Errorf("history -n -1: exit %d, want 1", code)
	}
	if len(lines) < 3 {
		t.Errorf("the pass wrote %d audit entries, want the demo's changes", len(lines))
	}
}

// TestServeRemoteListener: an admin listener other hosts can reach needs an
// admin token; with one, POST /sync needs it too.
func TestServeRemoteListener(t *testing.T) {
	w := newDemoWorld(t)
	dir := runSpecDir(t, w)
	a, _, _ := testApp(w.env)
	a.paths = []string{dir}
	a.log = a.newLogger()
	st, err := a.openState("", "pandasync run", true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ra := runArgs{listen: "0.0.0.0:0", passTimeout: time.Minute, maxBackoff: time.Minute, shutdownTimeout: time.Minute}
	err = a.serve(context.Background(), ra, st, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "spec.admin.token") {
		t.Fatalf("serve on 0.0.0.0 without a token = %v, want a refusal naming spec.admin.token", err)
	}

	path := filepath.Join(dir, "pandasync.yaml")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, "  admin: {token: {env: PANDASYNC_ADMIN_TOKEN}}\n"...), 0o600)
	w.env["PANDASYNC_ADMIN_TOKEN"] = "tok-3f9a"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, ra, st, nil, func(addr string) { addrs <- addr }) }()
	var port string
	select {
	case addr := <-addrs:
		_, port, _ = net.SplitHostPort(addr)
	case err := <-done:
		t.Fatalf("serve with a token: %v", err)
	}
	base := "http://127.0.0.1:" + port
	post := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/sync", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitStatus(t, base, func(st loop.Status) bool { return st.Spec.Valid })
	if code := post(""); code != http.StatusUnauthorized {
		t.Errorf("POST /sync without the token = %d, want 401", code)
	}
	if code := post("tok-3f9a"); code != http.StatusAccepted {
		t.Errorf("POST /sync with the token = %d, want 202", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve = %v", err)
	}
}

// TestServiceUnitSecurity rates examples/pandasync.service with
// systemd-analyze security, offline, and requires the "OK" band.
func TestServiceUnitSecurity(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	b, err := os.ReadFile(filepath.FromSlash("../../examples/pandasync.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "pandasync.service")
	if err := os.WriteFile(unit, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", unit).CombinedOutput()
	if err != nil {
		t.Skipf("systemd-analyze security --offline cannot rate units here: %v\n%s", err, out)
	}
	var level float64
	var rating string
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "Overall exposure level for pandasync.service:"); i >= 0 {
			fmt.Sscanf(line[i+len("Overall exposure level for pandasync.service:"):], "%g %s", &level, &rating)
		}
	}
	if rating != "OK" || level > 2 {
		t.Errorf("systemd-analyze security rates the unit %.1f %q, want OK (at most 2.0)\n%s", level, rating, out)
	}
}
