package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
)

// liveLine is the read progress shown on a terminal's stderr while AD and
// Asset Panda are read: one line redrawn in place, cleared before the plan
// is printed. Both reads run at once, so it is safe for concurrent use.
type liveLine struct {
	mu      sync.Mutex
	w       io.Writer
	now     func() time.Time
	start   time.Time
	drawn   time.Time
	shown   bool
	stopped bool
	ad      activedirectory.ReadStats
	ap      assetpanda.ReadProgress
}

// redrawEvery throttles the redraws.
const redrawEvery = 100 * time.Millisecond

func newLiveLine(w io.Writer, now func() time.Time) *liveLine {
	return &liveLine{w: w, now: now, start: now()}
}

// directory records the AD read's progress.
func (l *liveLine) directory(st activedirectory.ReadStats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ad = st
	l.redraw(false)
}

// assetPanda records the Asset Panda read's progress.
func (l *liveLine) assetPanda(p assetpanda.ReadProgress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ap = p
	l.redraw(false)
}

// text is the line: "Reading… Active Directory: 12,000 entries (13 pages) ·
// Asset Panda: 4,000 records and users (4 pages) · 3s".
func (l *liveLine) text() string {
	return fmt.Sprintf("Reading… Active Directory: %s (%s) · Asset Panda: %s (%s) · %s",
		countComma(l.ad.Entries, "entry", "entries"), countComma(l.ad.Pages, "page", "pages"),
		countComma(l.ap.Objects, "object", "objects"), countComma(l.ap.Pages, "page", "pages"),
		l.now().Sub(l.start).Round(time.Second))
}

// redraw draws the line, at most every redrawEvery unless forced. The
// caller holds mu.
func (l *liveLine) redraw(force bool) {
	if l.stopped {
		return
	}
	now := l.now()
	if !force && l.shown && now.Sub(l.drawn) < redrawEvery {
		return
	}
	l.drawn, l.shown = now, true
	fmt.Fprintf(l.w, "\r\x1b[K%s", l.text())
}

// above writes p (whole log lines) above the progress line.
func (l *liveLine) above(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown && !l.stopped {
		fmt.Fprint(l.w, "\r\x1b[K")
	}
	n, err := l.w.Write(p)
	if l.shown && !l.stopped {
		l.redraw(true)
	}
	return n, err
}

// stop clears the line for good. It is safe on a nil line.
func (l *liveLine) stop() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown && !l.stopped {
		fmt.Fprint(l.w, "\r\x1b[K")
	}
	l.stopped = true
}

// logWriter is the log handler's output on a terminal: log lines go above
// the progress line, if one is shown.
type logWriter struct{ a *app }

func (w logWriter) Write(p []byte) (int, error) {
	if l := w.a.live; l != nil {
		return l.above(p)
	}
	return w.a.stderr.Write(p)
}

// countComma renders "1 entry" or "12,345 entries".
func countComma(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String() + " " + many
}
