package main

// `pandasync service install|uninstall` and `pandasync run` as a Windows
// service. What the Service Control Manager asks and what pandasync does
// about it, the Event Log's event types and the installed configuration are
// decided here, in code without build tags, so that the tests run on every
// platform; winservice_windows.go only makes the Windows calls.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// defaultServiceName is the service's name, and its Event Log source.
const defaultServiceName = "pandasync"

// errNotWindows is what `service` says on other systems.
var errNotWindows = errors.New("pandasync service: Windows services exist only on Windows; on Linux use examples/pandasync.service (systemd)")

// serviceRequest is a control request of the Service Control Manager.
type serviceRequest int

const (
	requestInterrogate serviceRequest = iota
	requestStop
	requestShutdown
	requestPreShutdown
	requestOther // pause, parameter change and the rest: not accepted
)

// serviceState is the state pandasync reports to the SCM.
type serviceState int

const (
	stateStartPending serviceState = iota
	stateRunning
	stateStopPending
	stateStopped
)

func (s serviceState) String() string {
	return [...]string{"start pending", "running", "stop pending", "stopped"}[s]
}

// serviceStatus is one status report to the SCM.
type serviceStatus struct {
	State serviceState
	// Accepts: the service takes Stop, Shutdown and PreShutdown. Only while
	// running.
	Accepts bool
	// CheckPoint grows while a stop is pending, so that the SCM sees
	// progress; WaitHint is how long until the next report.
	CheckPoint uint32
	WaitHint   time.Duration
}

// Timing of a stop: the run drains its write batch (bounded by its own
// -shutdown-timeout); the SCM hears progress every stopProgress.
const (
	startWaitHint = 30 * time.Second
	stopWaitHint  = 10 * time.Second
	stopProgress  = 2 * time.Second
)

// serviceControl maps the SCM's requests to what `pandasync run` does: the
// first Stop, Shutdown or PreShutdown cancels the run's context (a graceful
// stop); the service reports stop-pending with progress until run returns,
// then stopped with run's exit code.
type serviceControl struct {
	state      serviceState
	checkPoint uint32
	stopAsked  bool
}

// starting is the first report, before run starts.
func (c *serviceControl) starting() serviceStatus {
	c.state = stateStartPending
	return serviceStatus{State: stateStartPending, WaitHint: startWaitHint}
}

// started is the report once run is under way.
func (c *serviceControl) started() serviceStatus {
	c.state = stateRunning
	return c.current()
}

func (c *serviceControl) current() serviceStatus {
	st := serviceStatus{State: c.state, Accepts: c.state == stateRunning}
	if c.state == stateStopPending {
		st.CheckPoint, st.WaitHint = c.checkPoint, stopWaitHint
	}
	return st
}

// request handles one SCM request: the status to report (nil: none) and
// whether to cancel the run now.
func (c *serviceControl) request(r serviceRequest) (report *serviceStatus, cancelRun bool) {
	switch r {
	case requestInterrogate:
		st := c.current()
		return &st, false
	case requestStop, requestShutdown, requestPreShutdown:
		if c.stopAsked || c.state == stateStopped {
			st := c.current()
			return &st, false
		}
		c.stopAsked = true
		c.state = stateStopPending
		c.checkPoint = 1
		st := c.current()
		return &st, true
	}
	return nil, false
}

// progress is the periodic report while a stop is pending.
func (c *serviceControl) progress() serviceStatus {
	if c.state == stateStopPending {
		c.checkPoint++
	}
	return c.current()
}

// exited is the service's exit code once run returned with code; the
// service then reports stopped. A run that fails (any code but 0), whether
// stopped or not, is a service-specific error, so that the SCM's recovery
// actions restart it; a run that ends with 0 is a clean stop.
func (c *serviceControl) exited(code int) (svcSpecific bool, exitCode uint32) {
	c.state = stateStopped
	if code == 0 {
		return false, 0
	}
	return true, uint32(code)
}

// eventType is a Windows Event Log entry type.
type eventType int

const (
	eventInformation eventType = iota
	eventWarning
	eventError
)

// Event IDs: one per type, in the 1-1000 range that EventCreate.exe, the
// message file of the installed source, formats as plain text.
const (
	eventIDInformation = 1
	eventIDWarning     = 2
	eventIDError       = 3
)

// eventFor maps a slog level to the Event Log's type and event ID. Debug
// goes to Information; there is no lower type.
func eventFor(l slog.Level) (eventType, uint32) {
	switch {
	case l >= slog.LevelError:
		return eventError, eventIDError
	case l >= slog.LevelWarn:
		return eventWarning, eventIDWarning
	}
	return eventInformation, eventIDInformation
}

// eventWriter is what the handler needs from an Event Log source;
// *eventlog.Log has it.
type eventWriter interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// maxEventText is ReportEvent's limit on one string, in characters.
const maxEventText = 31839

// eventLogHandler is a slog.Handler that writes each record as one Event
// Log entry: the message on the first line, then its attributes as
// key=value pairs. The Event Log keeps the time and the level itself.
type eventLogHandler struct {
	w     eventWriter
	level slog.Leveler
	mu    *sync.Mutex   // one entry at a time; shared by derived handlers
	ops   []handlerStep // WithAttrs and WithGroup calls, in order
}

type handlerStep struct {
	group string
	attrs []slog.Attr
}

func newEventLogHandler(w eventWriter, level slog.Leveler) *eventLogHandler {
	return &eventLogHandler{w: w, level: level, mu: &sync.Mutex{}}
}

func (h *eventLogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *eventLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(handlerStep{attrs: attrs})
}

func (h *eventLogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(handlerStep{group: name})
}

func (h *eventLogHandler) with(s handlerStep) *eventLogHandler {
	h2 := *h
	h2.ops = append(append([]handlerStep(nil), h.ops...), s)
	return &h2
}

func (h *eventLogHandler) Handle(ctx context.Context, r slog.Record) error {
	var buf bytes.Buffer
	var th slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug - 100, // h decided already
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	for _, s := range h.ops {
		if s.group != "" {
			th = th.WithGroup(s.group)
		} else {
			th = th.WithAttrs(s.attrs)
		}
	}
	if err := th.Handle(ctx, r); err != nil {
		return err
	}
	text := r.Message
	if attrs := strings.TrimSpace(buf.String()); attrs != "" {
		text += "\r\n" + attrs
	}
	if len(text) > maxEventText {
		text = text[:maxEventText-1] + "…"
	}
	typ, eid := eventFor(r.Level)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch typ {
	case eventError:
		return h.w.Error(eid, text)
	case eventWarning:
		return h.w.Warning(eid, text)
	}
	return h.w.Info(eid, text)
}

// eventLogStream is an io.Writer for the service's stderr: each write is an
// Error entry, so that the final error `run` prints reaches the Event Log.
type eventLogStream struct{ w eventWriter }

func (s eventLogStream) Write(p []byte) (int, error) {
	text := strings.TrimSpace(string(p))
	if text == "" {
		return len(p), nil
	}
	if len(text) > maxEventText {
		text = text[:maxEventText-1] + "…"
	}
	if err := s.w.Error(eventIDError, text); err != nil {
		return 0, err
	}
	return len(p), nil
}

// serviceConfig is what `service install` registers.
type serviceConfig struct {
	Name        string
	DisplayName string
	Description string
	Exe         string   // absolute path of pandasync.exe
	Args        []string // after the executable: global flags, "run", run flags
	Account     string   // the account it runs as
	// DelayedAutoStart starts it automatically, after the other automatic
	// services (the network and DNS are up by then).
	DelayedAutoStart bool
	// Recovery: restart after each delay in turn on the first, second and
	// later failures; the failure count resets after RecoveryReset without
	// a failure.
	Recovery      []time.Duration
	RecoveryReset time.Duration
}

// serviceArgs are the flags of `service install|uninstall`.
type serviceArgs struct {
	action      string // install or uninstall
	name        string
	displayName string
	account     string
	manual      bool
	runArgs     []string // after --: flags of `run`
}

func parseServiceArgs(a *app, args []string) (serviceArgs, error) {
	sa := serviceArgs{}
	fs := a.flags("service", "install|uninstall [-name NAME] [-display-name TEXT] [-account ACCOUNT] [-manual] [-- RUN FLAGS]")
	fs.StringVar(&sa.name, "name", defaultServiceName, "service `NAME`, also its Event Log source")
	fs.StringVar(&sa.displayName, "display-name", "pandasync (Active Directory to Asset Panda)", "display `TEXT` in services.msc (install)")
	fs.StringVar(&sa.account, "account", `NT SERVICE\`+defaultServiceName, "`ACCOUNT` the service runs as (install): a virtual account (default), LocalSystem, NT AUTHORITY\\LocalService, or a group managed service account DOMAIN\\name$")
	fs.BoolVar(&sa.manual, "manual", false, "start the service by hand instead of automatically (delayed) at boot (install)")
	if err := parse(fs, args); err != nil {
		return sa, err
	}
	rest := fs.Args()
	if len(rest) == 0 || (rest[0] != "install" && rest[0] != "uninstall") {
		fmt.Fprintf(a.stderr, "pandasync service: want install or uninstall\nRun 'pandasync service -h' for its flags.\n")
		return sa, errUsage
	}
	sa.action, sa.runArgs = rest[0], rest[1:]
	if sa.action == "uninstall" {
		var stray string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "name" && !isGlobalFlag(f.Name) {
				stray = f.Name
			}
		})
		switch {
		case len(sa.runArgs) > 0:
			fmt.Fprintf(a.stderr, "pandasync service uninstall: unexpected argument %q\n", sa.runArgs[0])
			return sa, errUsage
		case stray != "":
			fmt.Fprintf(a.stderr, "pandasync service uninstall: -%s is for install\n", stray)
			return sa, errUsage
		}
	}
	if sa.name == "" || strings.ContainsAny(sa.name, `/\`) {
		fmt.Fprintf(a.stderr, "pandasync service: -name %q: want a name without slashes\n", sa.name)
		return sa, errUsage
	}
	return sa, nil
}

// windowsAbs makes a path absolute the way Windows does, whatever the host:
// a path with a drive letter or a UNC path is kept, anything else is taken
// relative to cwd.
func windowsAbs(p, cwd string) string {
	isAbs := (len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')) || strings.HasPrefix(p, `\\`)
	if isAbs {
		return p
	}
	return strings.TrimRight(cwd, `\/`) + `\` + strings.TrimLeft(strings.ReplaceAll(p, "/", `\`), `\`)
}

// planServiceInstall computes the service's configuration from the global
// flags already parsed into a, the service flags, the executable's path and
// the values of %ProgramData% and the current directory.
func planServiceInstall(a *app, sa serviceArgs, exe, programData, cwd string) (serviceConfig, error) {
	if programData == "" {
		programData = `C:\ProgramData`
	}
	// Check the run flags now rather than when the service starts.
	paths := a.paths
	ra, err := parseRunArgs(a, sa.runArgs)
	switch {
	case err != nil:
		return serviceConfig{}, fmt.Errorf("service install: the flags after -- are not valid for run: %w", err)
	case ra.once:
		return serviceConfig{}, errors.New("service install: a service runs continuously; -once is for cron and CI")
	case len(a.paths) != len(paths):
		return serviceConfig{}, errors.New("service install: give -f before --, so that its paths are made absolute for the service")
	}
	from := ra.git.url // -git takes the spec from a repository, never with -f
	if from == "" {
		if len(paths) == 0 {
			paths = []string{programData + `\pandasync\pandasync.d`}
		}
		from = strings.Join(paths, ", ")
	}
	var args []string
	for _, p := range paths {
		// The SCM starts services in %SystemRoot%\System32: every path must
		// be absolute.
		args = append(args, "-f", windowsAbs(p, cwd))
	}
	if a.logLevel != slog.LevelInfo {
		args = append(args, "-log-level", strings.ToLower(a.logLevel.String()))
	}
	args = append(args, "run")
	args = append(args, sa.runArgs...)
	return serviceConfig{
		Name:             sa.name,
		DisplayName:      sa.displayName,
		Description:      "Keeps Asset Panda users and records in step with Active Directory groups, as the spec in " + from + " declares.",
		Exe:              filepath.Clean(exe),
		Args:             args,
		Account:          sa.account,
		DelayedAutoStart: !sa.manual,
		Recovery:         []time.Duration{10 * time.Second, 30 * time.Second, 2 * time.Minute},
		RecoveryReset:    24 * time.Hour,
	}, nil
}

// service is `pandasync service install|uninstall`.
func (a *app) service(ctx context.Context, args []string) error {
	sa, err := parseServiceArgs(a, args)
	if err != nil {
		return err
	}
	if !serviceSupported {
		return errNotWindows
	}
	if sa.action == "uninstall" {
		if err := uninstallService(sa.name); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "Service %q and its Event Log source removed.\n", sa.name)
		return nil
	}
	exe, programData, cwd, err := serviceHost()
	if err != nil {
		return err
	}
	cfg, err := planServiceInstall(a, sa, exe, programData, cwd)
	if err != nil {
		return err
	}
	if err := installService(cfg); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Service %q installed: %s %s\nRuns as %s, starts %s, restarts on failure. Start it with: Start-Service %s\n",
		cfg.Name, cfg.Exe, strings.Join(cfg.Args, " "), cfg.Account, map[bool]string{true: "automatically (delayed)", false: "by hand"}[cfg.DelayedAutoStart], cfg.Name)
	return nil
}
