//go:build unix

package loop_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pandasync/pandasync/reconcile/loop"
)

// TestStateFilesOwner: files root creates in a state directory owned by
// another user (systemd's DynamicUser) belong to that user, so that the
// service can open them after root ran `pandasync apply` there.
func TestStateFilesOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	const uid, gid = 61234, 61234
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	l, err := loop.AcquireLock(dir, loop.Holder{PID: os.Getpid(), Command: "pandasync apply"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	a, err := loop.OpenAudit(filepath.Join(dir, loop.AuditFile), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	for _, name := range []string{loop.LockFile, loop.AuditFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != uid || sys.Gid != gid {
			t.Errorf("%s is owned by %d:%d, want the directory's owner %d:%d", name, sys.Uid, sys.Gid, uid, gid)
		}
	}
}
