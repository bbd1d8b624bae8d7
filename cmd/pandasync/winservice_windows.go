//go:build windows

package main

// The Windows calls behind `pandasync service` and `run` under the Service
// Control Manager. What they do is decided in winservice.go.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

const serviceSupported = true

// runAsService runs the command line as a service when the SCM started
// this process, and reports its exit code.
func runAsService(a *app, args []string) (handled bool, code int) {
	isService, err := svc.IsWindowsService()
	if err != nil || !isService {
		return false, 0
	}
	h := &windowsService{app: a, args: args}
	if err := svc.Run(defaultServiceName, h); err != nil {
		return true, exitError
	}
	return true, h.code
}

// windowsService is the svc.Handler around `pandasync run`.
type windowsService struct {
	app  *app
	args []string
	code int
}

func (h *windowsService) Execute(args []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	name := defaultServiceName
	if len(args) > 0 && args[0] != "" {
		name = args[0]
	}
	a := h.app
	a.stdout = io.Discard
	a.terminal, a.stdinTTY, a.logTTY = false, false, false
	if elog, err := eventlog.Open(name); err == nil {
		defer elog.Close()
		a.logHandler = func(l slog.Leveler) slog.Handler { return newEventLogHandler(elog, l) }
		a.stderr = eventLogStream{elog}
	}
	// The SCM starts services in System32; the service's own directory is
	// a better place for relative paths.
	if pd := os.Getenv("ProgramData"); pd != "" {
		_ = os.Chdir(pd + `\pandasync`)
	}

	var ctl serviceControl
	s <- toSvcStatus(ctl.starting())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- a.run(ctx, h.args) }()
	s <- toSvcStatus(ctl.started())

	tick := time.NewTicker(stopProgress)
	defer tick.Stop()
	for {
		select {
		case req := <-r:
			report, stop := ctl.request(fromSvcCmd(req.Cmd))
			if report != nil {
				s <- toSvcStatus(*report)
			}
			if stop {
				cancel()
			}
		case <-tick.C:
			if ctl.state == stateStopPending {
				s <- toSvcStatus(ctl.progress())
			}
		case code := <-done:
			h.code = code
			return ctl.exited(code)
		}
	}
}

func fromSvcCmd(c svc.Cmd) serviceRequest {
	switch c {
	case svc.Interrogate:
		return requestInterrogate
	case svc.Stop:
		return requestStop
	case svc.Shutdown:
		return requestShutdown
	case svc.PreShutdown:
		return requestPreShutdown
	}
	return requestOther
}

func toSvcStatus(st serviceStatus) svc.Status {
	out := svc.Status{CheckPoint: st.CheckPoint, WaitHint: uint32(st.WaitHint / time.Millisecond)}
	switch st.State {
	case stateStartPending:
		out.State = svc.StartPending
	case stateRunning:
		out.State = svc.Running
	case stateStopPending:
		out.State = svc.StopPending
	case stateStopped:
		out.State = svc.Stopped
	}
	if st.Accepts {
		out.Accepts = svc.AcceptStop | svc.AcceptShutdown | svc.AcceptPreShutdown
	}
	return out
}

func serviceHost() (exe, programData, cwd string, err error) {
	if exe, err = os.Executable(); err != nil {
		return "", "", "", fmt.Errorf("service install: %w", err)
	}
	if cwd, err = os.Getwd(); err != nil {
		return "", "", "", fmt.Errorf("service install: %w", err)
	}
	return exe, os.Getenv("ProgramData"), cwd, nil
}

func installService(cfg serviceConfig) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service install: connect to the Service Control Manager (run it from an elevated prompt): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(cfg.Name); err == nil {
		s.Close()
		return fmt.Errorf("service install: service %q exists already; remove it first with: pandasync service uninstall -name %s", cfg.Name, cfg.Name)
	}
	start := uint32(mgr.StartAutomatic)
	if !cfg.DelayedAutoStart {
		start = mgr.StartManual
	}
	account := cfg.Account
	if strings.EqualFold(account, "LocalSystem") {
		account = "" // NULL is LocalSystem
	}
	s, err := m.CreateService(cfg.Name, cfg.Exe, mgr.Config{
		DisplayName:      cfg.DisplayName,
		Description:      cfg.Description,
		StartType:        start,
		ErrorControl:     mgr.ErrorNormal,
		ServiceStartName: account,
		DelayedAutoStart: cfg.DelayedAutoStart,
		// A service SID, so that ACLs can name NT SERVICE\<name>.
		SidType: windows.SERVICE_SID_TYPE_UNRESTRICTED,
	}, cfg.Args...)
	if err != nil {
		return fmt.Errorf("service install: create service %q: %w", cfg.Name, err)
	}
	defer s.Close()
	rollback := func(err error) error {
		_ = s.Delete()
		return err
	}
	actions := make([]mgr.RecoveryAction, 0, len(cfg.Recovery))
	for _, d := range cfg.Recovery {
		actions = append(actions, mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: d})
	}
	if err := s.SetRecoveryActions(actions, uint32(cfg.RecoveryReset/time.Second)); err != nil {
		return rollback(fmt.Errorf("service install: recovery actions: %w", err))
	}
	// A run that exits with an error counts as a failure too, not only a
	// crash.
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return rollback(fmt.Errorf("service install: recovery on non-crash failures: %w", err))
	}
	if err := eventlog.InstallAsEventCreate(cfg.Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil &&
		!strings.Contains(err.Error(), "exists") {
		return rollback(fmt.Errorf("service install: Event Log source %q: %w", cfg.Name, err))
	}
	return nil
}

func uninstallService(name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service uninstall: connect to the Service Control Manager (run it from an elevated prompt): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("service uninstall: service %q: %w", name, err)
	}
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if _, err := s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return fmt.Errorf("service uninstall: stop %q: %w", name, err)
		}
		deadline := time.Now().Add(time.Minute)
		for st.State != svc.Stopped && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			if st, err = s.Query(); err != nil {
				break
			}
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("service uninstall: delete %q: %w", name, err)
	}
	if err := eventlog.Remove(name); err != nil {
		return fmt.Errorf("service uninstall: Event Log source %q: %w", name, err)
	}
	return nil
}
