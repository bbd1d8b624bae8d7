package loop

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchWait bounds waits for the watcher; a deadline for a hung test, not
// an assertion about speed.
const watchWait = 10 * time.Second

func saveAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitChange(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case <-w.Changes():
	case <-time.After(watchWait):
		t.Fatal("no change signalled")
	}
}

// TestWatcherDirectory checks that saves to spec files in a watched
// directory are signalled, including atomic saves, new files and removals,
// and that Close returns.
func TestWatcherDirectory(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "10-users.yaml")
	if err := os.WriteFile(spec, []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher([]string{dir}, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	saveAtomically(t, spec, "a: 2\n")
	waitChange(t, w)
	if err := os.WriteFile(filepath.Join(dir, "20-more.yml"), []byte("b: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitChange(t, w)
	if err := os.Remove(spec); err != nil {
		t.Fatal(err)
	}
	waitChange(t, w)
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestWatcherFile checks that a spec file named on its own is watched
// through its directory, so an atomic save is seen.
func TestWatcherFile(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "pandasync.yaml")
	if err := os.WriteFile(spec, []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher([]string{spec}, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 3 {
		saveAtomically(t, spec, "a: "+string(rune('2'+i))+"\n")
		waitChange(t, w)
	}
}

func TestWatcherMissingPath(t *testing.T) {
	if _, err := NewWatcher([]string{filepath.Join(t.TempDir(), "nope")}, 0, nil); err == nil {
		t.Error("NewWatcher of a missing path succeeded, want an error")
	}
}

// TestWatcherRelevant checks which events count as a spec change.
func TestWatcherRelevant(t *testing.T) {
	w := &Watcher{files: map[string]map[string]bool{
		"/etc/pandasync.d": nil,
		"/srv":             {"pandasync.yaml": true},
	}}
	tests := map[string]struct {
		ev   fsnotify.Event
		want bool
	}{
		"yaml write":          {fsnotify.Event{Name: "/etc/pandasync.d/10-users.yaml", Op: fsnotify.Write}, true},
		"yml create":          {fsnotify.Event{Name: "/etc/pandasync.d/policy.YML", Op: fsnotify.Create}, true},
		"yaml removed":        {fsnotify.Event{Name: "/etc/pandasync.d/10-users.yaml", Op: fsnotify.Remove}, true},
		"yaml renamed away":   {fsnotify.Event{Name: "/etc/pandasync.d/10-users.yaml", Op: fsnotify.Rename}, true},
		"kubernetes swap":     {fsnotify.Event{Name: "/etc/pandasync.d/..data", Op: fsnotify.Create}, true},
		"chmod only":          {fsnotify.Event{Name: "/etc/pandasync.d/10-users.yaml", Op: fsnotify.Chmod}, false},
		"editor temp file":    {fsnotify.Event{Name: "/etc/pandasync.d/.10-users.yaml.swp", Op: fsnotify.Write}, false},
		"backup file":         {fsnotify.Event{Name: "/etc/pandasync.d/10-users.yaml~", Op: fsnotify.Create}, false},
		"emacs lock":          {fsnotify.Event{Name: "/etc/pandasync.d/#10-users.yaml#", Op: fsnotify.Create}, false},
		"not yaml":            {fsnotify.Event{Name: "/etc/pandasync.d/README.md", Op: fsnotify.Write}, false},
		"named file":          {fsnotify.Event{Name: "/srv/pandasync.yaml", Op: fsnotify.Create}, true},
		"other file":          {fsnotify.Event{Name: "/srv/other.yaml", Op: fsnotify.Write}, false},
		"unwatched directory": {fsnotify.Event{Name: "/tmp/pandasync.yaml", Op: fsnotify.Write}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := w.relevant(tc.ev); got != tc.want {
				t.Errorf("relevant(%v) = %v, want %v", tc.ev, got, tc.want)
			}
		})
	}
}
