package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile/gitsource/gittest"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/reconcile/spectest"
)

// gitWorld is the production example's sandbox and a git repository
// holding its spec, pointed at the sandbox.
type gitWorld struct {
	box    *spectest.World
	remote *gittest.Remote
	files  map[string]string // the spec as committed, by path in the repository
}

func newGitWorld(t testing.TB) *gitWorld {
	t.Helper()
	c, err := spectest.Load(filepath.Join(productionTests, "in-sync"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Start([]string{productionSpec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	files := map[string]string{"pandasync.d/00-connection.yaml": string(w.Box.ConnectionYAML("sandbox"))}
	for _, name := range []string{"10-users.yaml", "20-collections.yaml", "90-policy.yaml"} {
		b, err := os.ReadFile(filepath.Join(productionSpec, name))
		if err != nil {
			t.Fatal(err)
		}
		files["pandasync.d/"+name] = string(b)
	}
	gw := &gitWorld{box: w, remote: gittest.New(t), files: files}
	gw.remote.CommitAndPush(t, files)
	return gw
}

// edit changes one spec file and pushes the commit.
func (gw *gitWorld) edit(t testing.TB, name, old, new string) string {
	t.Helper()
	path := "pandasync.d/" + name
	if !strings.Contains(gw.files[path], old) {
		t.Fatalf("%s lacks %q", name, old)
	}
	gw.files[path] = strings.Replace(gw.files[path], old, new, 1)
	return gw.remote.CommitAndPush(t, map[string]string{path: gw.files[path]})
}

// users returns the emulator's users by email.
func (gw *gitWorld) users() map[string]emulator.SeedUser {
	m := map[string]emulator.SeedUser{}
	for _, u := range gw.box.Box.Emulator.State().Users {
		m[u.Email] = u
	}
	return m
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startRunGit starts `pandasync run -git` in the background and returns
// the admin listener's address and a function that stops it and returns
// its exit code.
func startRunGit(t testing.TB, gw *gitWorld, stateDir string, interval time.Duration) (string, func() int) {
	t.Helper()
	addr := freeAddr(t)
	a, _, _ := testApp(gw.box.Env)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- a.run(ctx, []string{"-log-level", "error", "run", "-git", gw.remote.URL, "-git-path", "pandasync.d", "-git-allow-http",
			"-git-interval", interval.String(), "-state-dir", stateDir, "-listen", addr})
	}()
	stop := func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("run did not stop")
			return -1
		}
	}
	t.Cleanup(func() { cancel() })
	return addr, stop
}

// status reads the loop's /status, or returns nil while it does not answer.
func status(addr string) *loop.Status {
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st loop.Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}

// eventually waits for cond, failing the test after a generous deadline:
// the deadline is a bound on a hang, not a measure of speed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunFromGit runs `pandasync run -git` over smart HTTP against the
// production example's sandbox: a commit that widens it-users to All
// Staff becomes a pass that creates the new users, recorded with its
// revision in /status and the audit trail; a commit whose spec does not
// load is reported as the spec's problems while the last good revision
// stays in force; the fix is taken up; a restart serves the last good
// revision while the remote is gone.
func TestRunFromGit(t *testing.T) {
	gw := newGitWorld(t)
	stateDir := t.TempDir()
	addr, stop := startRunGit(t, gw, stateDir, 50*time.Millisecond)

	eventually(t, "the start-up pass", func() bool {
		st := status(addr)
		return st != nil && st.Passes > 0 && st.LastPass != nil && st.LastPass.Outcome == loop.OutcomeNoChanges
	})
	if _, ok := gw.users()["bob@corp.example.com"]; ok {
		t.Fatal("bob has a user before the spec gives him one")
	}

	c2 := gw.edit(t, "10-users.yaml", "group: CN=AP Users,OU=Groups", "group: CN=All Staff,OU=Groups")
	eventually(t, "the pass of the new revision", func() bool {
		st := status(addr)
		return st != nil && st.LastPass != nil && st.LastPass.Revision == "main@sha1:"+c2
	})
	eventually(t, "bob's user", func() bool { _, ok := gw.users()["bob@corp.example.com"]; return ok })
	if st := status(addr); st.Spec.Revision != "main@sha1:"+c2 || !st.Spec.Valid {
		t.Errorf("/status spec: %+v", st.Spec)
	}
	audit := readAudit(t, filepath.Join(stateDir, loop.AuditFile))
	var created int
	for _, e := range audit {
		if e.Action == "create" && e.Kind == "user" {
			created++
			if e.Revision != "main@sha1:"+c2 {
				t.Errorf("audit entry %s %s has revision %q, want main@sha1:%s", e.Action, e.Name, e.Revision, c2)
			}
		}
	}
	if created != 5 { // bob, grace, heidi, judy, liam
		t.Errorf("%d users created, want 5:\n%+v", created, audit)
	}

	bad := gw.edit(t, "10-users.yaml", "role: Collaborator", "rol: Collaborator")
	eventually(t, "the rejected revision in /status", func() bool {
		st := status(addr)
		return st != nil && !st.Spec.Valid && len(st.Spec.Problems) > 1 &&
			strings.Contains(st.Spec.Problems[0], "main@sha1:"+bad+" is rejected; main@sha1:"+c2+" stays in force")
	})
	if st := status(addr); !strings.Contains(strings.Join(st.Spec.Problems, "\n"), "rol") || st.Spec.Revision != "main@sha1:"+c2 {
		t.Errorf("/status after a bad commit: %+v", st.Spec)
	}

	c4 := gw.edit(t, "10-users.yaml", "rol: Collaborator", "role: Collaborator")
	eventually(t, "the fix", func() bool {
		st := status(addr)
		return st != nil && st.Spec.Valid && st.Spec.Revision == "main@sha1:"+c4
	})
	if code := stop(); code != exitOK {
		t.Errorf("run exited %d", code)
	}

	// The remote goes away; a restart plans from the last good checkout.
	gw.remote.Server.Close()
	addr, stop = startRunGit(t, gw, stateDir, time.Hour)
	eventually(t, "a pass after the restart", func() bool {
		st := status(addr)
		return st != nil && st.Passes > 0 && st.LastPass != nil // Passes: this process's, not the history's
	})
	if st := status(addr); st.LastPass.Revision != "main@sha1:"+c4 || !st.Spec.Valid {
		t.Errorf("after a restart without the remote: last pass %s, spec %+v", st.LastPass.Revision, st.Spec)
	}
	stop()
}

// TestRunOnceFromGit: run -once -git plans from the newest revision, and
// fails when the repository cannot be fetched and nothing was checked out.
func TestRunOnceFromGit(t *testing.T) {
	gw := newGitWorld(t)
	c2 := gw.edit(t, "10-users.yaml", "group: CN=AP Users,OU=Groups", "group: CN=All Staff,OU=Groups")
	stateDir := t.TempDir()
	code, out, errOut := run(t, gw.box.Env, "run", "-once", "-git", gw.remote.URL, "-git-path", "pandasync.d", "-git-allow-http", "-state-dir", stateDir)
	if code != exitChanges || !strings.Contains(out, "5 to create") {
		t.Fatalf("run -once -git: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, e := range readAudit(t, filepath.Join(stateDir, loop.AuditFile)) {
		if e.Revision != "main@sha1:"+c2 {
			t.Errorf("audit revision %q, want main@sha1:%s", e.Revision, c2)
		}
	}
	code, _, errOut = run(t, gw.box.Env, "run", "-once", "-git", "http://127.0.0.1:1/none.git", "-git-allow-http", "-state-dir", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "none.git") {
		t.Errorf("run -once -git of an unreachable remote: exit %d, %q", code, errOut)
	}
	// Credentials in the URL are in no log line or error.
	withToken := strings.Replace(gw.remote.URL, "http://", "http://tok3n@", 1)
	code, out, errOut = run(t, gw.box.Env, "run", "-once", "-git", withToken, "-git-path", "pandasync.d", "-git-allow-http", "-state-dir", t.TempDir())
	if code != exitOK || !strings.Contains(errOut, "spec repository fetched") || strings.Contains(out+errOut, "tok3n") { // the first run made the changes
		t.Errorf("run -once -git with a token in the URL: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = run(t, gw.box.Env, "run", "-once", "-git", "http://bot:s3cret@127.0.0.1:1/none.git", "-git-allow-http", "-state-dir", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "none.git") || strings.Contains(out+errOut, "s3cret") {
		t.Errorf("run -once -git of an unreachable remote with a password in the URL: exit %d, %q", code, errOut)
	}
	code, _, errOut = run(t, gw.box.Env, "-f", productionSpec, "run", "-once", "-git", gw.remote.URL, "-state-dir", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "-git and -f") {
		t.Errorf("run -git with -f: exit %d, %q", code, errOut)
	}
	code, _, errOut = run(t, gw.box.Env, "run", "-once", "-git", gw.remote.URL, "-state-dir", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "no TLS") {
		t.Errorf("run -git http:// without -git-allow-http: exit %d, %q", code, errOut)
	}
	code, _, errOut = run(t, gw.box.Env, "run", "-once", "-git", "https://git.corp.example.com/specs.git", "-git-password", "hunter2", "-state-dir", t.TempDir())
	if code != exitError || !strings.Contains(errOut, "never the secret itself") || strings.Contains(errOut, "hunter2") {
		t.Errorf("run -git-password with a literal: exit %d, %q", code, errOut)
	}
}

func readAudit(t testing.TB, path string) []loop.AuditEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []loop.AuditEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e loop.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// BenchmarkGitCommitToAssetPanda10s measures, with `run -git-interval
// 10s` over smart HTTP on loopback, how long a pushed commit takes to reach
// Asset Panda: the wait for the next poll, the fetch, the pass and its
// writes. Each iteration pushes a commit that changes the role of
// it-users' six users, at a different point of the interval, and waits
// until the emulator holds the new role. Run it with -benchtime=Nx; it
// reports the mean and the longest latency.
func BenchmarkGitCommitToAssetPanda10s(b *testing.B) {
	gw := newGitWorld(b)
	addr, stop := startRunGit(b, gw, b.TempDir(), 10*time.Second)
	defer stop()
	eventually(b, "the start-up pass", func() bool {
		st := status(addr)
		return st != nil && st.Passes > 0
	})
	roles := []string{"Collaborator", "Module Admin"}
	var total, longest time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		time.Sleep(time.Duration(i%5) * 1900 * time.Millisecond)
		from, to := roles[i%2], roles[(i+1)%2]
		pushed := time.Now()
		gw.edit(b, "10-users.yaml", "role: "+from+"\n  group: CN=AP Users", "role: "+to+"\n  group: CN=AP Users")
		eventually(b, "the new role in Asset Panda", func() bool {
			u := gw.users()["dave@corp.example.com"]
			return len(u.Roles) == 1 && u.Roles[0].Role == to
		})
		d := time.Since(pushed)
		total += d
		longest = max(longest, d)
		n++
	}
	b.ReportMetric((total / time.Duration(n)).Seconds(), "s-mean/commit")
	b.ReportMetric(longest.Seconds(), "s-max/commit")
}

// TestRunOnceFromGitRejected: run -once -git, when the newest revision is
// rejected, plans from the last good one but never exits green: the
// revision that was meant to be in force is not.
func TestRunOnceFromGitRejected(t *testing.T) {
	gw := newGitWorld(t)
	stateDir := t.TempDir()
	args := []string{"run", "-once", "-git", gw.remote.URL, "-git-path", "pandasync.d", "-git-allow-http", "-state-dir", stateDir}
	if code, out, errOut := run(t, gw.box.Env, args...); code != exitOK {
		t.Fatalf("run -once -git: exit %d\n%s\n%s", code, out, errOut)
	}
	bad := gw.edit(t, "10-users.yaml", "role: Collaborator", "rol: Collaborator")
	code, out, errOut := run(t, gw.box.Env, args...)
	if code != exitError || !strings.Contains(errOut, "main@sha1:"+bad+" is rejected") {
		t.Errorf("run -once -git with the newest revision rejected: exit %d, want 1 naming the revision\n%s\n%s", code, out, errOut)
	}
}
