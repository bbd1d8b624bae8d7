package loop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/pandasync/pandasync/reconcile"
)

// Audit rotation defaults: audit.jsonl is rotated when a line would take it
// past DefaultAuditMaxSize, keeping DefaultAuditKeep rotated files
// (audit.jsonl.1 is the newest), so the trail never takes more than about
// (keep+1) × max size.
const (
	DefaultAuditMaxSize = 10 << 20
	DefaultAuditKeep    = 5
)

// AuditEntry is one attempted write, one JSON object per line of
// STATE_DIR/audit.jsonl. Before and After hold only the fields the change
// touches, never a secret.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Pass is the id of the pass that wrote, or "apply" for pandasync apply.
	Pass     string            `json:"pass"`
	Revision string            `json:"revision,omitempty"`
	Dirty    bool              `json:"dirty,omitempty"`
	Mapping  string            `json:"mapping"`
	Kind     string            `json:"kind"`
	Action   string            `json:"action"`
	Key      string            `json:"key"`
	Name     string            `json:"name,omitempty"`
	Before   map[string]string `json:"before"`
	After    map[string]string `json:"after"`
	// Result is "applied" or "failed"; Error says why it failed.
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// NewAuditEntry makes the entry of an attempted change; err is nil when it
// was applied.
func NewAuditEntry(now time.Time, pass string, rev Revision, c reconcile.Change, err error) AuditEntry {
	e := AuditEntry{Time: now.UTC(), Pass: pass, Revision: rev.String(), Dirty: rev.Dirty,
		Mapping: c.Mapping, Kind: string(c.Kind), Action: string(c.Action), Key: c.Key, Name: c.Name,
		Before: c.Before, After: c.After, Result: ResultApplied}
	if err != nil {
		e.Result, e.Error = ResultFailed, err.Error()
	}
	return e
}

// Audit appends entries to an audit file, rotating it by size. Its methods
// may be called from several goroutines. After a write fails it refuses
// further entries (Err) until Retry finds the file writable again, so that
// a caller can stop writing to Asset Panda rather than write without a
// trail: the batch in flight when the log failed is the only one that may
// lack entries (its changes are still logged one line each).
type Audit struct {
	path    string
	maxSize int64
	keep    int

	mu   sync.Mutex
	f    *os.File
	size int64
	err  error
}

// OpenAudit opens (creating it if needed) the audit file path for
// appending. maxSize ≤ 0 and keep ≤ 0 take the defaults.
func OpenAudit(path string, maxSize int64, keep int) (*Audit, error) {
	if maxSize <= 0 {
		maxSize = DefaultAuditMaxSize
	}
	if keep <= 0 {
		keep = DefaultAuditKeep
	}
	a := &Audit{path: path, maxSize: maxSize, keep: keep}
	if err := a.open(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Audit) open() error {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	matchOwner(f, filepath.Dir(a.path))
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	a.f, a.size = f, st.Size()
	return nil
}

// Write appends one entry.
func (a *Audit) Write(e AuditEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit entry: %w", err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	if a.size > 0 && a.size+int64(len(line)) > a.maxSize {
		if err := a.rotate(); err != nil {
			a.err = err
			return err
		}
	}
	n, err := a.f.Write(line)
	a.size += int64(n)
	if err != nil {
		a.err = fmt.Errorf("audit log: %w", err)
		return a.err
	}
	return nil
}

// rotate renames audit.jsonl to audit.jsonl.1, shifting older files up and
// dropping the one past keep, and opens a new file.
func (a *Audit) rotate() error {
	if err := a.f.Close(); err != nil {
		return fmt.Errorf("audit log: rotate: %w", err)
	}
	a.f = nil
	if err := os.Remove(rotated(a.path, a.keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit log: rotate: %w", err)
	}
	for i := a.keep - 1; i >= 1; i-- {
		if err := os.Rename(rotated(a.path, i), rotated(a.path, i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit log: rotate: %w", err)
		}
	}
	if err := os.Rename(a.path, rotated(a.path, 1)); err != nil {
		return fmt.Errorf("audit log: rotate: %w", err)
	}
	return a.open()
}

func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

// Err is the error that stopped the audit log, if any.
func (a *Audit) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Retry, after a failure, reopens the audit file and probes it with an
// empty line (which readers skip), and reports whether the log works. It
// does nothing while the log works.
func (a *Audit) Retry() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		return nil
	}
	if a.f != nil {
		a.f.Close()
		a.f = nil
	}
	if err := a.open(); err != nil {
		a.err = err
		return err
	}
	if _, err := a.f.Write([]byte{'\n'}); err != nil {
		a.err = fmt.Errorf("audit log: %w", err)
		return a.err
	}
	a.size++
	a.err = nil
	return nil
}

// Sync flushes the file to disk; the loop calls it after every pass.
func (a *Audit) Sync() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return a.err
	}
	return a.f.Sync()
}

// Close syncs and closes the file.
func (a *Audit) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Sync()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	a.f = nil
	return err
}

// ReadAudit returns the last n entries (all when n ≤ 0) of the audit trail
// in dir, oldest first, reading the rotated files as far as needed. A line
// that does not parse (such as one cut short by a crash) is skipped and
// counted in skipped.
func ReadAudit(dir string, n int) (entries []AuditEntry, skipped int, err error) {
	return ReadAuditMatching(dir, n, nil)
}

// ReadAuditMatching is ReadAudit keeping only the entries for which keep
// (nil: all) returns true: the last n of those.
func ReadAuditMatching(dir string, n int, keep func(*AuditEntry) bool) (entries []AuditEntry, skipped int, err error) {
	path := filepath.Join(dir, AuditFile)
	var chunks [][]AuditEntry // newest file first
	total := 0
	for i := 0; ; i++ {
		name := path
		if i > 0 {
			name = rotated(path, i)
		}
		data, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			if i == 0 {
				continue // rotated just now, or never written: look further
			}
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read the audit log: %w", err)
		}
		var es []AuditEntry
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			var e AuditEntry
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				skipped++
				continue
			}
			if keep != nil && !keep(&e) {
				continue
			}
			es = append(es, e)
		}
		chunks = append(chunks, es)
		total += len(es)
		if n > 0 && total >= n {
			break
		}
	}
	for i := len(chunks) - 1; i >= 0; i-- {
		entries = append(entries, chunks[i]...)
	}
	if n > 0 && len(entries) > n {
		entries = entries[len(entries)-n:]
	}
	return entries, skipped, nil
}

// AuditObserver is a reconcile.Observer that writes one audit entry per
// attempted change (not for changes never attempted) and passes every call
// on to Next. Use Gate as the apply's gate, so that writing stops when the
// audit log cannot be written.
type AuditObserver struct {
	Audit    *Audit
	Pass     string // the pass id, or "apply"
	Revision Revision
	Next     reconcile.Observer // may be nil
	Now      func() time.Time   // nil means time.Now
}

// Started passes the call on.
func (o *AuditObserver) Started(total int) {
	if o.Next != nil {
		o.Next.Started(total)
	}
}

// Done writes the change's entry and passes the call on. A failed write
// shows in Gate.
func (o *AuditObserver) Done(c reconcile.Change, err error) {
	if !errors.Is(err, reconcile.ErrNotAttempted) {
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		_ = o.Audit.Write(NewAuditEntry(now(), o.Pass, o.Revision, c, err)) // sticky: Gate reports it
	}
	if o.Next != nil {
		o.Next.Done(c, err)
	}
}

// Gate refuses further writes once the audit log has failed.
func (o *AuditObserver) Gate(context.Context) error {
	if err := o.Audit.Err(); err != nil {
		return fmt.Errorf("the audit log cannot be written, so nothing more is written to Asset Panda: %w", err)
	}
	return nil
}
