package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestServiceControl(t *testing.T) {
	type step struct {
		req        serviceRequest
		wantReport *serviceStatus
		wantCancel bool
	}
	running := &serviceStatus{State: stateRunning, Accepts: true}
	stopping := func(cp uint32) *serviceStatus {
		return &serviceStatus{State: stateStopPending, CheckPoint: cp, WaitHint: stopWaitHint}
	}
	tests := map[string][]step{
		"interrogate while running": {{requestInterrogate, running, false}},
		"stop cancels the run once": {
			{requestStop, stopping(1), true},
			{requestInterrogate, stopping(1), false},
			{requestStop, stopping(1), false},
		},
		"shutdown is a stop":             {{requestShutdown, stopping(1), true}},
		"preshutdown is a stop":          {{requestPreShutdown, stopping(1), true}, {requestShutdown, stopping(1), false}},
		"pause and the rest are ignored": {{requestOther, nil, false}, {requestInterrogate, running, false}},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			var c serviceControl
			if got := c.starting(); got.State != stateStartPending || got.Accepts {
				t.Errorf("starting = %+v, want start pending, accepting nothing", got)
			}
			if diff := cmp.Diff(*running, c.started()); diff != "" {
				t.Errorf("started (-want +got):\n%s", diff)
			}
			for i, s := range steps {
				report, cancel := c.request(s.req)
				if diff := cmp.Diff(s.wantReport, report); diff != "" {
					t.Errorf("step %d: report (-want +got):\n%s", i, diff)
				}
				if cancel != s.wantCancel {
					t.Errorf("step %d: cancel = %v, want %v", i, cancel, s.wantCancel)
				}
			}
		})
	}
}

func TestServiceStopProgress(t *testing.T) {
	var c serviceControl
	c.starting()
	c.started()
	if got := c.progress(); got.State != stateRunning || got.CheckPoint != 0 {
		t.Errorf("progress while running = %+v, want running, no checkpoint", got)
	}
	c.request(requestStop)
	for want := uint32(2); want <= 4; want++ {
		if got := c.progress(); got.State != stateStopPending || got.CheckPoint != want || got.WaitHint != stopWaitHint {
			t.Errorf("progress = %+v, want stop pending, checkpoint %d", got, want)
		}
	}
}

func TestServiceExitCode(t *testing.T) {
	tests := []struct {
		code         int
		wantSpecific bool
		wantExit     uint32
	}{
		{exitOK, false, 0},   // a clean stop: no recovery
		{exitError, true, 1}, // run failed: the SCM restarts it
		{exitChanges, true, 2},
	}
	for _, tt := range tests {
		var c serviceControl
		c.started()
		specific, exit := c.exited(tt.code)
		if specific != tt.wantSpecific || exit != tt.wantExit || c.state != stateStopped {
			t.Errorf("exited(%d) = %v, %d, state %s; want %v, %d, stopped", tt.code, specific, exit, c.state, tt.wantSpecific, tt.wantExit)
		}
	}
}

func TestEventFor(t *testing.T) {
	tests := []struct {
		level   slog.Level
		want    eventType
		wantEID uint32
	}{
		{slog.LevelDebug, eventInformation, 1},
		{slog.LevelInfo, eventInformation, 1},
		{slog.LevelInfo + 2, eventInformation, 1},
		{slog.LevelWarn, eventWarning, 2},
		{slog.LevelError, eventError, 3},
		{slog.LevelError + 4, eventError, 3},
	}
	for _, tt := range tests {
		typ, eid := eventFor(tt.level)
		if typ != tt.want || eid != tt.wantEID {
			t.Errorf("eventFor(%s) = %d, %d; want %d, %d", tt.level, typ, eid, tt.want, tt.wantEID)
		}
	}
}

// fakeEventLog records entries as "TYPE EID: text".
type fakeEventLog struct{ entries []string }

func (f *fakeEventLog) add(typ string, eid uint32, msg string) error {
	f.entries = append(f.entries, fmt.Sprintf("%s %d: %s", typ, eid, msg))
	return nil
}
func (f *fakeEventLog) Info(eid uint32, msg string) error    { return f.add("info", eid, msg) }
func (f *fakeEventLog) Warning(eid uint32, msg string) error { return f.add("warning", eid, msg) }
func (f *fakeEventLog) Error(eid uint32, msg string) error   { return f.add("error", eid, msg) }

func TestEventLogHandler(t *testing.T) {
	var el fakeEventLog
	log := slog.New(newEventLogHandler(&el, slog.LevelInfo))
	log.Debug("not enabled")
	log.Info("pandasync run started", "spec", []string{`C:\ProgramData\pandasync\pandasync.d`})
	pass := log.With("pass", "b7c1").WithGroup("summary")
	pass.Warn("pass finished with problems", "create", 2, "blocked", 1)
	log.Error("admin listener stopped", "error", "listen tcp 127.0.0.1:9090: bind: address in use")
	want := []string{
		"info 1: pandasync run started\r\nspec=[C:\\ProgramData\\pandasync\\pandasync.d]",
		"warning 2: pass finished with problems\r\npass=b7c1 summary.create=2 summary.blocked=1",
		`error 3: admin listener stopped` + "\r\n" + `error="listen tcp 127.0.0.1:9090: bind: address in use"`,
	}
	if diff := cmp.Diff(want, el.entries); diff != "" {
		t.Errorf("event log entries (-want +got):\n%s", diff)
	}

	el.entries = nil
	slog.New(newEventLogHandler(&el, slog.LevelInfo)).Info(strings.Repeat("x", maxEventText+10))
	if n := len([]rune(strings.TrimPrefix(el.entries[0], "info 1: "))); n > maxEventText {
		t.Errorf("an entry of %d characters, want at most %d", n, maxEventText)
	}
}

func TestEventLogStream(t *testing.T) {
	var el fakeEventLog
	w := eventLogStream{&el}
	fmt.Fprintf(w, "Error: the spec is not valid\n")
	fmt.Fprintf(w, "\n")
	if diff := cmp.Diff([]string{"error 3: Error: the spec is not valid"}, el.entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestPlanServiceInstall(t *testing.T) {
	const exe = `C:\Program Files\pandasync\pandasync.exe`
	recovery := []time.Duration{10 * time.Second, 30 * time.Second, 2 * time.Minute}
	tests := map[string]struct {
		paths    []string   // global -f
		level    slog.Level // global -log-level
		args     []string   // after "service"
		wantArgs []string
		check    func(t *testing.T, c serviceConfig)
		wantErr  string
	}{
		"defaults": {
			args:     []string{"install"},
			wantArgs: []string{"-f", `D:\Data\pandasync\pandasync.d`, "run"},
			check: func(t *testing.T, c serviceConfig) {
				want := serviceConfig{
					Name: "pandasync", DisplayName: "pandasync (Active Directory to Asset Panda)",
					Description: `Keeps Asset Panda users and records in step with Active Directory groups, as the spec in D:\Data\pandasync\pandasync.d declares.`,
					Exe:         exe, Args: []string{"-f", `D:\Data\pandasync\pandasync.d`, "run"},
					Account: `NT SERVICE\pandasync`, DelayedAutoStart: true, Recovery: recovery, RecoveryReset: 24 * time.Hour,
				}
				if diff := cmp.Diff(want, c); diff != "" {
					t.Errorf("config (-want +got):\n%s", diff)
				}
			},
		},
		"spec paths made absolute, run flags kept": {
			paths:    []string{`specs`, `E:\shared\people.yaml`},
			level:    slog.LevelDebug,
			args:     []string{"install", "-name", "pandasync-eu", "-account", `CORP\svc-pandasync$`, "-manual", "--", "-listen", "127.0.0.1:9191", "-max-backoff", "10m"},
			wantArgs: []string{"-f", `C:\Admin\specs`, "-f", `E:\shared\people.yaml`, "-log-level", "debug", "run", "-listen", "127.0.0.1:9191", "-max-backoff", "10m"},
			check: func(t *testing.T, c serviceConfig) {
				if c.Name != "pandasync-eu" || c.Account != `CORP\svc-pandasync$` || c.DelayedAutoStart {
					t.Errorf("config = %+v, want name pandasync-eu, the gMSA, manual start", c)
				}
			},
		},
		"once is not a service":      {args: []string{"install", "--", "-once"}, wantErr: "runs continuously"},
		"bad run flag":               {args: []string{"install", "--", "-listen-on", "x"}, wantErr: "not valid for run"},
		"uninstall takes no args":    {args: []string{"uninstall", "--", "x"}, wantErr: "usage"},
		"uninstall takes only -name": {args: []string{"uninstall", "-manual"}, wantErr: "usage"},
		"run flags after the action": {
			args:     []string{"install", "-manual", "--", "-shutdown-timeout", "1m"},
			wantArgs: []string{"-f", `D:\Data\pandasync\pandasync.d`, "run", "-shutdown-timeout", "1m"},
		},
		"spec from git, no default -f": {
			args:     []string{"install", "--", "-git", "https://git.corp.example.com/it/spec.git"},
			wantArgs: []string{"run", "-git", "https://git.corp.example.com/it/spec.git"},
			check: func(t *testing.T, c serviceConfig) {
				if !strings.Contains(c.Description, "https://git.corp.example.com/it/spec.git") {
					t.Errorf("description %q does not name the repository", c.Description)
				}
			},
		},
		"git and -f":              {paths: []string{`specs`}, args: []string{"install", "--", "-git", "https://git.corp.example.com/it/spec.git"}, wantErr: "not valid for run"},
		"-f after --":             {args: []string{"install", "--", "-f", "specs"}, wantErr: "give -f before --"},
		"once=true is not either": {args: []string{"install", "--", "-once=true"}, wantErr: "runs continuously"},
		"no action":               {args: nil, wantErr: "usage"},
		"bad name":                {args: []string{"install", "-name", `a\b`}, wantErr: "usage"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			a, _, _ := testApp(nil)
			a.paths, a.logLevel = tt.paths, tt.level
			sa, err := parseServiceArgs(a, tt.args)
			var c serviceConfig
			if err == nil {
				c, err = planServiceInstall(a, sa, exe, `D:\Data`, `C:\Admin`)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantArgs, c.Args); diff != "" {
				t.Errorf("service arguments (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestWindowsAbs(t *testing.T) {
	tests := map[string]string{
		`C:\specs`:            `C:\specs`,
		`c:/specs`:            `c:/specs`,
		`\\fs01\it\pandasync`: `\\fs01\it\pandasync`,
		`specs`:               `C:\Admin\specs`,
		`sub/dir`:             `C:\Admin\sub\dir`,
	}
	for in, want := range tests {
		if got := windowsAbs(in, `C:\Admin\`); got != want {
			t.Errorf("windowsAbs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServiceOnlyOnWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("this checks the message other systems print")
	}
	for _, args := range [][]string{{"service", "install"}, {"service", "uninstall"}, {"service", "install", "-name", "pandasync-eu", "--", "-listen", "127.0.0.1:9191"}} {
		code, _, stderr := run(t, nil, args...)
		if code != exitError || !strings.Contains(stderr, "only on Windows") {
			t.Errorf("pandasync %s: exit %d, stderr %q; want 1 and \"only on Windows\"", strings.Join(args, " "), code, stderr)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			fmt.Fprintln(w, "ok")
		case "/readyz":
			http.Error(w, "not ready: waiting_for_spec", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tests := []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{[]string{"healthcheck", "-url", srv.URL + "/healthz"}, exitOK, "/healthz: ok", ""},
		{[]string{"healthcheck", "-url", srv.URL + "/readyz"}, exitError, "", "503 Service Unavailable: not ready: waiting_for_spec"},
		{[]string{"healthcheck", "-url", "ftp://x/healthz"}, exitError, "", "want an http:// or https:// URL"},
		{[]string{"healthcheck", "-url", "http://127.0.0.1:1/healthz", "-timeout", "2s"}, exitError, "", "connection refused"},
	}
	for _, tt := range tests {
		code, stdout, stderr := run(t, nil, tt.args...)
		if code != tt.wantCode || !strings.Contains(stdout, tt.wantStdout) || !strings.Contains(stderr, tt.wantStderr) {
			t.Errorf("pandasync %s: exit %d, stdout %q, stderr %q; want %d, %q, %q",
				strings.Join(tt.args, " "), code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
		}
	}
}
