package loop

import (
	"fmt"
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
		"named file's swap":   {fsnotify.Event{Name: "/srv/..data", Op: fsnotify.Create}, true},
		"configmap data dir":  {fsnotify.Event{Name: "/etc/pandasync.d/..2025_01_15_10_20_00.000000001", Op: fsnotify.Create}, false},
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

// configMap lays out dir as the kubelet mounts a ConfigMap: the files live
// in a timestamped directory, "..data" links to it, and each key is a
// symlink through "..data".
type configMap struct {
	t   *testing.T
	dir string
	n   int
}

func (c *configMap) write(files map[string]string) {
	c.t.Helper()
	c.n++
	ts := fmt.Sprintf("..2025_01_15_10_%02d_00.%09d", 20+c.n, c.n)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		c.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(c.dir, ts, name), []byte(content), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(c.dir, "..data"))
	// The kubelet's atomic update: link ..data_tmp to the new directory,
	// rename it over ..data, add the key links, remove the old directory.
	if err := os.Symlink(ts, filepath.Join(c.dir, "..data_tmp")); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(c.dir, "..data_tmp"), filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(c.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			c.t.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(c.dir, old)); err != nil {
			c.t.Fatal(err)
		}
	}
}

// TestWatcherConfigMap checks that updates of a mounted ConfigMap, made
// the kubelet's way, are seen again and again, whether the mount directory
// or one of its files is watched.
func TestWatcherConfigMap(t *testing.T) {
	for _, watchFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch file %v", watchFile), func(t *testing.T) {
			cm := &configMap{t: t, dir: t.TempDir()}
			cm.write(map[string]string{"pandasync.yaml": "v: 1\n"})
			path := cm.dir
			if watchFile {
				path = filepath.Join(cm.dir, "pandasync.yaml")
			}
			w, err := NewWatcher([]string{path}, 20*time.Millisecond, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			for i := 2; i <= 4; i++ {
				want := fmt.Sprintf("v: %d\n", i)
				cm.write(map[string]string{"pandasync.yaml": want})
				waitChange(t, w)
				got, err := os.ReadFile(filepath.Join(cm.dir, "pandasync.yaml"))
				if err != nil || string(got) != want {
					t.Fatalf("after update %d the file reads %q (%v), want %q", i, got, err, want)
				}
			}
			// A key added to the ConfigMap is seen too.
			if !watchFile {
				cm.write(map[string]string{"pandasync.yaml": "v: 5\n", "more.yaml": "m: 1\n"})
				waitChange(t, w)
			}
		})
	}
}
