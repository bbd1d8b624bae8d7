package loop

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher watches spec files and directories and signals, debounced and
// coalesced, that the spec may have changed.
//
// It watches directories, never single files: editors save atomically by
// writing a temporary file and renaming it over the old one, which a watch
// on the file itself would lose. For a directory it reacts to spec files
// (*.yaml, *.yml; not hidden, not editor backups); for a file it reacts to
// that name in its parent directory; for both, to Kubernetes' atomic swap
// of a mounted ConfigMap's "..data" symlink. One goroutine owns the
// debounce timer.
type Watcher struct {
	fsw      *fsnotify.Watcher
	out      chan struct{}
	debounce time.Duration
	log      *slog.Logger
	// files maps a watched directory to the file names that matter in
	// it; nil means every spec file name.
	files map[string]map[string]bool

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewWatcher starts watching paths (spec files or directories). debounce
// ≤ 0 means DefaultDebounce; log nil means discard.
func NewWatcher(paths []string, debounce time.Duration, log *slog.Logger) (*Watcher, error) {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	files := map[string]map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		if st.IsDir() {
			files[abs] = nil
			continue
		}
		dir, name := filepath.Split(abs)
		dir = filepath.Clean(dir)
		names, seen := files[dir]
		if seen && names == nil {
			continue // the whole directory is watched already
		}
		if names == nil {
			names = map[string]bool{}
			files[dir] = names
		}
		names[name] = true
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch spec: %w", err)
	}
	for dir := range files {
		if err := fsw.Add(dir); err != nil {
			fsw.Close()
			return nil, fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{fsw: fsw, out: make(chan struct{}, 1), debounce: debounce, log: log, files: files,
		cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w, nil
}

// Changes delivers one value after the watched files settle following any
// number of changes. A change made while an earlier one is undelivered is
// merged into it.
func (w *Watcher) Changes() <-chan struct{} { return w.out }

// Close stops watching and waits for the watcher's goroutine to end.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		w.cancel()
		<-w.done
		w.closeErr = w.fsw.Close()
	})
	return w.closeErr
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if !w.relevant(ev) {
				continue
			}
			w.log.Debug("spec file event", "file", ev.Name, "op", ev.Op.String())
			if timer == nil {
				timer = time.NewTimer(w.debounce)
			} else {
				timer.Reset(w.debounce)
			}
			fire = timer.C
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("watching the spec files", "error", err)
		case <-fire:
			fire = nil
			select {
			case w.out <- struct{}{}:
			default: // a signal is pending already
			}
		}
	}
}

// relevant reports whether an event may change the spec set.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	dir, name := filepath.Split(ev.Name)
	names, ok := w.files[filepath.Clean(dir)]
	if !ok {
		return false
	}
	if name == "..data" {
		// Kubernetes swapped a mounted ConfigMap's files, which are
		// symlinks through ..data, whether a directory or a file was named.
		return true
	}
	if names != nil {
		return names[name]
	}
	return isSpecFile(name)
}

// isSpecFile is spec.Load's rule for the files of a directory: *.yaml or
// *.yml, not hidden, not an editor's backup, lock or swap file.
func isSpecFile(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") ||
		strings.HasSuffix(name, "~") || strings.HasSuffix(name, ".swp") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}
