package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/spec"
)

// runArgs are the flags of `pandasync run`.
type runArgs struct {
	once        bool
	listen      string
	passTimeout time.Duration
	maxBackoff  time.Duration
}

// defaultListen is the admin listener's default address: loopback only.
const defaultListen = "127.0.0.1:9090"

func parseRunArgs(a *app, args []string) (runArgs, error) {
	ra := runArgs{}
	fs := a.flags("run", "[-once] [-listen ADDR] [-pass-timeout DURATION] [-max-backoff DURATION]")
	fs.BoolVar(&ra.once, "once", false, "run a single pass and exit: 0 no changes, 2 changes applied (or planned while suspended), 1 error; for cron and CI")
	fs.StringVar(&ra.listen, "listen", defaultListen, "`ADDR` of the admin listener serving /healthz, /readyz, /metrics, /status and POST /sync; empty disables it")
	fs.DurationVar(&ra.passTimeout, "pass-timeout", reconcile.DefaultPassTimeout, "cancel a pass that runs longer than `DURATION`")
	fs.DurationVar(&ra.maxBackoff, "max-backoff", reconcile.DefaultBackoffMax, "longest wait, `DURATION`, before retrying a failed pass")
	if err := parse(fs, args); err != nil {
		return ra, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "run: unexpected argument %q\n", fs.Arg(0))
		return ra, errUsage
	}
	if ra.passTimeout <= 0 || ra.maxBackoff <= 0 {
		fmt.Fprintln(a.stderr, "run: -pass-timeout and -max-backoff must be positive")
		return ra, errUsage
	}
	return ra, nil
}

// runLoop is `pandasync run`: reconcile continuously until SIGTERM or
// SIGINT (which cancel ctx), passing on SIGHUP; or, with -once, one pass.
func (a *app) runLoop(ctx context.Context, args []string) error {
	ra, err := parseRunArgs(a, args)
	if err != nil {
		return err
	}
	if ra.once {
		return a.runOnce(ctx, ra)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return a.serve(ctx, ra, hup, nil)
}

// newLoop builds the reconcile loop over the spec paths and the providers
// the spec's Connection describes.
func (a *app) newLoop(ra runArgs, watch bool) (*reconcile.Loop, error) {
	cfg := reconcile.LoopConfig{
		Load:        a.loadSpec,
		Connect:     a.loopProviders,
		PassTimeout: ra.passTimeout,
		BackoffMax:  ra.maxBackoff,
		Logger:      a.log,
	}
	if watch {
		cfg.WatchPaths = a.specPaths()
	}
	return reconcile.NewLoop(cfg)
}

// loopProviders connects both sides for one pass, logging with the pass's
// logger. A Connection that cannot
// be resolved (a missing secret, a refused setting) is terminal: the loop
// waits for a spec change or SIGHUP instead of retrying.
func (a *app) loopProviders(ctx context.Context, set *spec.Set, log *slog.Logger) (*reconcile.Providers, error) {
	pass := *a // the providers log with the pass's logger
	pass.log = log
	dir, ap, err := pass.connect(set)
	if err != nil {
		return nil, reconcile.Terminal(err)
	}
	return reconcile.NewProviders(dir, ap), nil
}

// runOnce runs a single pass, prints its plan and outcome, and exits with
// the plan's code.
func (a *app) runOnce(ctx context.Context, ra runArgs) error {
	loop, err := a.newLoop(ra, false)
	if err != nil {
		return err
	}
	rep, err := loop.Once(ctx)
	if err != nil {
		return err
	}
	if rep.Plan != nil {
		renderPlan(a.stdout, rep.Plan, a.paint)
	}
	if rep.Applied+rep.Failed > 0 {
		fmt.Fprintf(a.stdout, "\n%s %d applied, %d failed.\n", a.paint(colorBold, "Apply complete:"), rep.Applied, rep.Failed)
		// The plan's own problems were shown with it; the rest failed to
		// apply.
		failed := rep.Problems
		if rep.Plan != nil && len(rep.Plan.Errors) <= len(failed) {
			failed = failed[len(rep.Plan.Errors):]
		}
		for _, p := range failed {
			fmt.Fprintf(a.stdout, "  %s %s\n", a.paint(colorRed, "✗"), p)
		}
	}
	code := rep.ExitCode()
	switch {
	case rep.Err != nil:
		return rep.Err
	case code == exitError:
		return fmt.Errorf("the pass finished with %d problem(s); the next pass retries them", len(rep.Problems))
	case code != exitOK:
		return errExit(code)
	}
	return nil
}

// serve runs the loop and the admin listener until ctx is done. Each
// value on hup asks for a pass (and a spec reload). started, when set,
// hears the admin listener's address.
func (a *app) serve(ctx context.Context, ra runArgs, hup <-chan os.Signal, started func(addr string)) error {
	loop, err := a.newLoop(ra, true)
	if err != nil {
		return err
	}
	var srv *http.Server
	serveDone := make(chan struct{})
	if ra.listen != "" {
		ln, err := net.Listen("tcp", ra.listen)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		srv = &http.Server{
			Handler:           loop.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		}
		go func() {
			defer close(serveDone)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("admin listener stopped", "error", err)
			}
		}()
		a.log.Info("admin listener started", "url", "http://"+ln.Addr().String(),
			"endpoints", "/healthz /readyz /metrics /status POST /sync")
		if ip, ok := ln.Addr().(*net.TCPAddr); ok && !ip.IP.IsLoopback() {
			a.log.Warn("the admin listener is reachable from other hosts and has no authentication; anyone who reaches it can read /status and start passes", "listen", ra.listen)
		}
		if started != nil {
			started(ln.Addr().String())
		}
	} else {
		close(serveDone)
	}

	stopSignals := make(chan struct{})
	signalsDone := make(chan struct{})
	go func() {
		defer close(signalsDone)
		for {
			select {
			case <-hup:
				a.log.Info("SIGHUP: reloading the spec and running a pass")
				loop.Trigger("SIGHUP")
			case <-stopSignals:
				return
			}
		}
	}()

	a.log.Info("pandasync run started", "spec", a.specPaths(), "pass_timeout", ra.passTimeout.String())
	err = loop.Run(ctx)
	close(stopSignals)
	<-signalsDone
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if serr := srv.Shutdown(sctx); serr != nil {
			srv.Close()
		}
		cancel()
	}
	<-serveDone
	if err != nil {
		return err
	}
	a.log.Info("pandasync run stopped")
	return nil
}
