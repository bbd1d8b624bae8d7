package loop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// DefaultHistorySize is how many passes the history keeps.
const DefaultHistorySize = 100

// History is the bounded record of recent passes, newest last, kept across
// restarts in STATE_DIR/passes.jsonl (one PassReport per line) when it has
// a file. The file is rewritten with the newest passes only when it holds
// twice as many as kept, so appending stays cheap.
type History struct {
	path string // empty: memory only
	max  int

	mu     sync.Mutex
	passes []*PassReport
	lines  int // lines in the file
}

// OpenHistory loads the history file path (missing is empty) and keeps the
// last max passes (DefaultHistorySize when max ≤ 0). An empty path keeps the
// history in memory only.
func OpenHistory(path string, max int) (*History, error) {
	if max <= 0 {
		max = DefaultHistorySize
	}
	h := &History{path: path, max: max}
	if path == "" {
		return h, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pass history: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		h.lines++
		var r PassReport
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.ID == "" {
			continue // a line cut short by a crash
		}
		h.passes = append(h.passes, &r)
	}
	if len(h.passes) > max {
		h.passes = h.passes[len(h.passes)-max:]
	}
	return h, nil
}

// Add records a finished pass; the error says it could not be persisted
// (it is kept in memory all the same).
func (h *History) Add(r *PassReport) error {
	r = r.clone()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.passes = append(h.passes, r)
	if len(h.passes) > h.max {
		h.passes = append(h.passes[:0:0], h.passes[len(h.passes)-h.max:]...)
	}
	if h.path == "" {
		return nil
	}
	if h.lines >= 2*h.max {
		return h.rewrite()
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("pass history: %w", err)
	}
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("pass history: %w", err)
	}
	matchOwner(f, filepath.Dir(h.path))
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pass history: %w", err)
	}
	h.lines++
	return nil
}

// rewrite replaces the file with the passes kept, atomically.
func (h *History) rewrite() error {
	var buf bytes.Buffer
	for _, r := range h.passes {
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("pass history: %w", err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	tmp := h.path + ".tmp"
	if err := writeFileSync(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("pass history: %w", err)
	}
	if err := os.Rename(tmp, h.path); err != nil {
		return fmt.Errorf("pass history: %w", err)
	}
	h.lines = len(h.passes)
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	matchOwner(f, filepath.Dir(path))
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Passes returns copies of the recorded passes, newest first.
func (h *History) Passes() []*PassReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*PassReport, 0, len(h.passes))
	for i := len(h.passes) - 1; i >= 0; i-- {
		out = append(out, h.passes[i].clone())
	}
	return out
}

// Pass returns a copy of the pass with the id, or nil.
func (h *History) Pass(id string) *PassReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.passes) - 1; i >= 0; i-- {
		if h.passes[i].ID == id {
			return h.passes[i].clone()
		}
	}
	return nil
}

// Last returns a copy of the newest pass, or nil.
func (h *History) Last() *PassReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.passes) == 0 {
		return nil
	}
	return h.passes[len(h.passes)-1].clone()
}
