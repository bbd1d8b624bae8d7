package loop

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Holder says which process holds the state directory's lock.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// String describes the holder: "pid 4242 on host1 (pandasync run) since
// 2025-01-15T10:20:00Z".
func (h Holder) String() string {
	if h.PID == 0 {
		return "another process (it has not written its name yet)"
	}
	s := fmt.Sprintf("pid %d on %s", h.PID, h.Host)
	if h.Command != "" {
		s += " (" + h.Command + ")"
	}
	if !h.Since.IsZero() {
		s += " since " + h.Since.UTC().Format(time.RFC3339)
	}
	return s
}

// LockedError is returned by AcquireLock when another process holds the
// lock.
type LockedError struct {
	Dir    string
	Holder Holder
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("state directory %s is in use by %s: only one pandasync may write at a time", e.Dir, e.Holder)
}

// Terminal reports that retrying at once cannot help.
func (e *LockedError) Terminal() bool { return true }

// Lock is the state directory's writer lock: an OS file lock on
// STATE_DIR/lock (flock on Unix, LockFileEx on Windows), which the kernel
// releases when the process ends, however it ends, so a crash never
// leaves it stale. The file records the holder.
//
// It excludes writers on this host that use the same state directory. It
// does not cover other hosts, nor two state directories on one host, nor a
// state directory on a network file system that does not honour the lock:
// for several replicas, use leader election.
type Lock struct {
	f    *os.File
	path string
}

// AcquireLock takes the lock of the state directory dir, creating the
// directory if needed, and records h as the holder. It fails at once with a
// *LockedError naming the holder when another process has it.
func AcquireLock(dir string, h Holder) (*Lock, error) {
	if err := MakeStateDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	matchOwner(f, dir)
	ok, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		holder, _ := ReadHolder(dir) // unreadable: named as unknown
		f.Close()
		return nil, &LockedError{Dir: dir, Holder: holder}
	}
	b, err := json.Marshal(h)
	if err == nil {
		if err = f.Truncate(0); err == nil {
			if _, err = f.WriteAt(append(b, '\n'), 0); err == nil {
				err = f.Sync()
			}
		}
	}
	if err != nil {
		unlock(f)
		f.Close()
		return nil, fmt.Errorf("lock %s: record the holder: %w", path, err)
	}
	return &Lock{f: f, path: path}, nil
}

// ReadHolder reads who holds, or last held, the lock of dir.
func ReadHolder(dir string) (Holder, error) {
	var h Holder
	b, err := os.ReadFile(filepath.Join(dir, LockFile))
	if err != nil {
		return h, err
	}
	if len(b) == 0 {
		return h, errors.New("the lock file names no holder")
	}
	err = json.Unmarshal(b, &h)
	return h, err
}

// Release gives the lock up. The file stays, naming its last holder.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
