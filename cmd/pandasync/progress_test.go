package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
)

// TestLiveLine draws the read progress in place, at most every 100 ms,
// keeps log lines above it and clears it when stopped.
func TestLiveLine(t *testing.T) {
	var w bytes.Buffer
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	l := newLiveLine(&w, func() time.Time { return now })
	l.directory(activedirectory.ReadStats{Entries: 1000, Pages: 1})
	now = now.Add(50 * time.Millisecond)
	l.assetPanda(assetpanda.ReadProgress{Pages: 1, Objects: 1000}) // too soon: not drawn
	now = now.Add(3 * time.Second)
	l.directory(activedirectory.ReadStats{Entries: 12345, Pages: 13})
	l.above([]byte("a log line\n"))
	l.stop()
	l.directory(activedirectory.ReadStats{Entries: 20000, Pages: 20}) // after stop: not drawn
	want := "\r\x1b[KReading… Active Directory: 1,000 entries (1 page) · Asset Panda: 0 objects (0 pages) · 0s" +
		"\r\x1b[KReading… Active Directory: 12,345 entries (13 pages) · Asset Panda: 1,000 objects (1 page) · 3s" +
		"\r\x1b[Ka log line\n" +
		"\r\x1b[KReading… Active Directory: 12,345 entries (13 pages) · Asset Panda: 1,000 objects (1 page) · 3s" +
		"\r\x1b[K"
	if diff := cmp.Diff(want, w.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var none *liveLine
	none.stop() // safe on nil
}

// TestPlanShowsReadProgress: on a terminal, plan shows the live line on
// stderr while it reads and clears it; elsewhere it writes none.
func TestPlanShowsReadProgress(t *testing.T) {
	pc := startPlanCase(t, filepath.Join("testdata", "large"))
	for _, tty := range []bool{true, false} {
		a, out, errb := testApp(pc.env)
		a.logTTY = tty
		a.log = a.newLogger()
		if code := a.run(context.Background(), []string{"-f", pc.spec, "plan"}); code != exitOK {
			t.Fatalf("plan: exit %d\n%s", code, errb.String())
		}
		stderr := errb.String()
		// The reads are faster here than the redraw interval: the first
		// page draws the line, later ones within 100 ms do not.
		shown := strings.Contains(stderr, "\r\x1b[KReading… Active Directory: ") && strings.Contains(stderr, " entries (")
		if tty != shown {
			t.Errorf("terminal %v: progress shown %v; stderr %q", tty, shown, stderr)
		}
		if tty && !strings.HasSuffix(stderr, "\r\x1b[K") && !strings.Contains(stderr, "\r\x1b[K\n") {
			t.Errorf("the progress line is not cleared: %q", stderr[max(0, len(stderr)-200):])
		}
		if strings.Contains(out.String(), "Reading…") {
			t.Error("progress went to stdout")
		}
	}
}

// TestNoColor: colour only on a terminal, never with -no-color (before or
// after the command) or NO_COLOR.
func TestNoColor(t *testing.T) {
	spec := filepath.Join("testdata", "cli", "spec")
	tests := map[string]struct {
		args    []string
		noColor bool // NO_COLOR set
		want    bool
	}{
		"terminal":            {args: []string{"-f", spec, "validate"}, want: true},
		"-no-color":           {args: []string{"-no-color", "-f", spec, "validate"}},
		"-no-color after":     {args: []string{"-f", spec, "validate", "-no-color"}},
		"NO_COLOR":            {args: []string{"-f", spec, "validate"}, noColor: true},
		"-no-color=false":     {args: []string{"-no-color=false", "-f", spec, "validate"}, want: true},
		"error on a terminal": {args: []string{"-f", "nosuch", "validate"}, want: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			a, out, errb := testApp(nil)
			a.terminal, a.logTTY, a.noColor = true, true, tt.noColor
			a.run(context.Background(), tt.args)
			got := strings.Contains(out.String()+errb.String(), "\x1b[")
			if got != tt.want {
				t.Errorf("colour %v, want %v:\n%q", got, tt.want, out.String()+errb.String())
			}
		})
	}
}
