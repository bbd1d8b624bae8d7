// Command pandasync keeps Asset Panda in step with Microsoft Active
// Directory, declaratively: desired state lives in YAML spec files, `plan`
// shows what would change and why, `apply` does exactly that plan, and `run`
// reconciles continuously.
//
// Usage:
//
//	pandasync [-f PATH]... [-log-level LEVEL] COMMAND [flags]
//
// Commands: validate, check, plan, apply, show, run, history, explain, demo,
// emulator, healthcheck, service, version. `pandasync help COMMAND`
// describes one.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	_, noColor := os.LookupEnv("NO_COLOR")
	a := &app{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		lookupEnv: os.LookupEnv,
		terminal:  term.IsTerminal(int(os.Stdout.Fd())),
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		logTTY:    term.IsTerminal(int(os.Stderr.Fd())),
		noColor:   noColor,
	}
	// Started by the Windows Service Control Manager: run as a service,
	// stopped by the SCM rather than by signals.
	if handled, code := runAsService(a, os.Args[1:]); handled {
		os.Exit(code)
	}
	// SIGTERM or SIGINT cancels ctx: run stops gracefully, letting the
	// write batch in flight complete. The handlers are then dropped, so a
	// second signal ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
