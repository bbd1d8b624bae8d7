package loop_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
)

func auditEntry(i int) loop.AuditEntry {
	return loop.AuditEntry{Time: t0.Add(time.Duration(i) * time.Second).UTC(), Pass: "p" + strconv.Itoa(i), Mapping: "people",
		Kind: "record", Action: "update", Key: fmt.Sprintf("S-1-5-21-1-2-3-%d", 1000+i), Name: "Person " + strconv.Itoa(i),
		Before: map[string]string{"Title": "Old"}, After: map[string]string{"Title": "New"}, Result: loop.ResultApplied}
}

// TestAuditRotation writes more than the size limit allows: the log is
// rotated into a bounded number of files, each within the limit, and
// ReadAudit returns the newest entries in order across them.
func TestAuditRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, loop.AuditFile)
	const maxSize, keep = 1000, 2
	a, err := loop.OpenAudit(path, maxSize, keep)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := a.Write(auditEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path, path + ".1", path + ".2"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("audit files (-want +got):\n%s", diff)
	}
	for _, n := range names {
		if st, err := os.Stat(n); err != nil || st.Size() > maxSize || st.Size() == 0 {
			t.Errorf("%s: size %d (err %v), want 1..%d bytes", n, st.Size(), err, maxSize)
		}
	}

	all, skipped, err := loop.ReadAudit(dir, 0)
	if err != nil || skipped != 0 {
		t.Fatalf("ReadAudit: %v, %d skipped", err, skipped)
	}
	if len(all) == 0 || len(all) >= 40 {
		t.Fatalf("ReadAudit kept %d of 40 entries, want the newest few", len(all))
	}
	first := 40 - len(all)
	for i, e := range all {
		if diff := cmp.Diff(auditEntry(first+i), e); diff != "" {
			t.Fatalf("entry %d (-want +got):\n%s", i, diff)
		}
	}
	last3, _, err := loop.ReadAudit(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]loop.AuditEntry{auditEntry(37), auditEntry(38), auditEntry(39)}, last3); diff != "" {
		t.Errorf("ReadAudit(3) (-want +got):\n%s", diff)
	}

	// A line cut short by a crash is skipped and counted.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2025-01-15T10:20:00Z","pass":"cut`)
	f.Close()
	got, skipped, err := loop.ReadAudit(dir, 1)
	if err != nil || skipped != 1 || len(got) != 1 || got[0].Pass != "p39" {
		t.Errorf("ReadAudit after a torn line = %v, %d skipped, %v; want p39 and 1 skipped", got, skipped, err)
	}
}

// TestAuditStopsWrites: when the audit log cannot be written (a full
// disk), the pass writes no further batch to Asset Panda.
func TestAuditStopsWrites(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full to fill the disk with")
	}
	a, err := loop.OpenAudit("/dev/full", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	ev := make(events, 1000)
	cfg := w.config(newFakeClock(t0), ev)
	cfg.Audit = a
	l, err := loop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := l.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != loop.OutcomeFailed || !strings.Contains(rep.Error, "audit log") || rep.Counts.NotAttempted == 0 {
		t.Fatalf("pass with a full disk: outcome %q counts %+v error %q, want failed naming the audit log, writes stopped", rep.Outcome, rep.Counts, rep.Error)
	}
	// One batch went out before the first entry failed; nothing after.
	if rep.Counts.Applied+rep.Counts.Failed > reconcile.WriteBatchSize || rep.Counts.Applied == 0 {
		t.Errorf("%d changes written, want the one batch in flight when the audit log failed", rep.Counts.Applied+rep.Counts.Failed)
	}
	// The next pass finds the log still failing before it writes anything.
	rep, err = l.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != loop.OutcomeFailed || rep.Counts.Applied+rep.Counts.Failed != 0 || rep.Counts.NotAttempted == 0 {
		t.Errorf("next pass with a full disk: outcome %q counts %+v, want failed with nothing written", rep.Outcome, rep.Counts)
	}
}

func TestLockExcludes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	h := loop.Holder{PID: 4242, Host: "host1", Command: "pandasync run", Since: t0.UTC()}
	l, err := loop.AcquireLock(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	_, err = loop.AcquireLock(dir, loop.Holder{PID: 1, Host: "host1", Command: "pandasync apply", Since: t0})
	var le *loop.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second AcquireLock = %v, want a LockedError", err)
	}
	if diff := cmp.Diff(h, le.Holder); diff != "" {
		t.Errorf("holder (-want +got):\n%s", diff)
	}
	for _, want := range []string{"pid 4242", "host1", "pandasync run", "2025-01-15T"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := loop.AcquireLock(dir, h)
	if err != nil {
		t.Fatalf("AcquireLock after Release: %v", err)
	}
	l2.Release()
}

// TestLockHolderProcess is not a test: TestLockDiesWithProcess runs the
// test binary with it to hold a lock in another process.
func TestLockHolderProcess(t *testing.T) {
	dir := os.Getenv("PANDASYNC_LOCK_HOLDER_DIR")
	if dir == "" {
		t.Skip("helper process for TestLockDiesWithProcess")
	}
	if _, err := loop.AcquireLock(dir, loop.Holder{PID: os.Getpid(), Host: "helper-host", Command: "lock holder", Since: time.Now()}); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// TestLockDiesWithProcess holds the lock in another process: this one is
// refused with that process named, and gets the lock once it is killed,
// without anyone cleaning up.
func TestLockDiesWithProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolderProcess$")
	cmd.Env = append(os.Environ(), "PANDASYNC_LOCK_HOLDER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper said %q (%v), want locked", line, err)
	}
	_, err = loop.AcquireLock(dir, loop.Holder{PID: os.Getpid(), Host: "here", Command: "test"})
	var le *loop.LockedError
	if !errors.As(err, &le) || le.Holder.PID != cmd.Process.Pid || le.Holder.Command != "lock holder" {
		t.Fatalf("AcquireLock while the helper holds it = %v, want a LockedError naming pid %d", err, cmd.Process.Pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := loop.AcquireLock(dir, loop.Holder{PID: os.Getpid(), Host: "here", Command: "test"})
	if err != nil {
		t.Fatalf("AcquireLock after the holder was killed: %v", err)
	}
	l.Release()
}

func TestHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), loop.HistoryFile)
	h, err := loop.OpenHistory(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := h.Add(&loop.PassReport{ID: fmt.Sprintf("pass-%d", i), Outcome: loop.OutcomeNoChanges, StartedAt: t0.UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(h *loop.History) []string {
		var out []string
		for _, p := range h.Passes() {
			out = append(out, p.ID)
		}
		return out
	}
	want := []string{"pass-9", "pass-8", "pass-7"}
	if diff := cmp.Diff(want, ids(h)); diff != "" {
		t.Errorf("passes (-want +got):\n%s", diff)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n > 6 {
		t.Errorf("the history file holds %d lines, want at most twice the 3 kept", n)
	}
	// A torn last line (a crash while appending) is ignored on reopening.
	os.WriteFile(path, append(data, `{"id":"torn`...), 0o600)
	h2, err := loop.OpenHistory(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, ids(h2)); diff != "" {
		t.Errorf("passes after reopening (-want +got):\n%s", diff)
	}
	if p := h2.Pass("pass-8"); p == nil || p.Outcome != loop.OutcomeNoChanges {
		t.Errorf("Pass(pass-8) = %+v", p)
	}
	if h2.Pass("pass-1") != nil {
		t.Error("Pass(pass-1) found a pass the history no longer keeps")
	}
}

func TestDefaultStateDir(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	got, err := loop.DefaultStateDir(env("STATE_DIRECTORY", "/var/lib/pandasync:/var/lib/other", "HOME", "/home/x"))
	if err != nil || got != "/var/lib/pandasync" {
		t.Errorf("under systemd: %q %v, want the first STATE_DIRECTORY entry", got, err)
	}
	if os.Geteuid() == 0 {
		got, _ = loop.DefaultStateDir(env("HOME", "/root"))
		if got != "/var/lib/pandasync" {
			t.Errorf("for root: %q, want /var/lib/pandasync", got)
		}
		return
	}
	got, _ = loop.DefaultStateDir(env("XDG_STATE_HOME", "/home/x/.state", "HOME", "/home/x"))
	if got != "/home/x/.state/pandasync" {
		t.Errorf("with XDG_STATE_HOME: %q", got)
	}
	got, _ = loop.DefaultStateDir(env("HOME", "/home/x"))
	if got != "/home/x/.local/state/pandasync" {
		t.Errorf("for a user: %q", got)
	}
}
