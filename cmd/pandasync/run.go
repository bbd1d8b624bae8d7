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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/reconcile/loop/ui"
	"github.com/pandasync/pandasync/spec"
)

// runArgs are the flags of `pandasync run`.
type runArgs struct {
	once            bool
	listen          string
	passTimeout     time.Duration
	maxBackoff      time.Duration
	shutdownTimeout time.Duration
	stateDir        string
	git             gitArgs
	// gitSpec follows -git; nil when the spec comes from -f.
	gitSpec *gitSpec
	leader  leaderArgs
}

// defaultListen is the admin listener's default address: loopback only.
const defaultListen = "127.0.0.1:9090"

// stateDirUsage documents -state-dir for run and apply.
const stateDirUsage = "state directory `DIR` holding the writer lock, the audit log and the pass history " +
	"(default $STATE_DIRECTORY under systemd; /var/lib/pandasync for root, else $XDG_STATE_HOME/pandasync " +
	"or ~/.local/state/pandasync; %ProgramData%\\pandasync on Windows)"

func parseRunArgs(a *app, args []string) (runArgs, error) {
	ra := runArgs{}
	fs := a.flags("run", "[-once] [-listen ADDR] [-state-dir DIR] [-pass-timeout D] [-max-backoff D] [-shutdown-timeout D] "+gitUsage+"\n"+
		"         [-leader-elect [-lease-namespace NS] [-lease-name NAME] [-kubeconfig FILE] [-lease-duration D] [-renew-deadline D] [-retry-period D]]")
	fs.BoolVar(&ra.once, "once", false, "run a single pass and exit: 0 nothing to do, 2 changes applied (or planned while suspended), 1 any error, failed or blocked change, or problem; for cron and CI")
	fs.StringVar(&ra.listen, "listen", defaultListen, "`ADDR` of the admin listener serving /healthz, /readyz, /metrics, /status and POST /sync; empty disables it")
	fs.StringVar(&ra.stateDir, "state-dir", "", stateDirUsage)
	fs.DurationVar(&ra.passTimeout, "pass-timeout", loop.DefaultPassTimeout, "cancel a pass that runs longer than `DURATION`")
	fs.DurationVar(&ra.maxBackoff, "max-backoff", loop.DefaultBackoffMax, "longest wait, `DURATION`, before retrying a failed pass")
	fs.DurationVar(&ra.shutdownTimeout, "shutdown-timeout", loop.DefaultShutdownTimeout, "on SIGTERM, how long, `DURATION`, the write batch in flight may take before the pass is cancelled")
	addGitFlags(fs, &ra.git)
	ra.leader.register(fs)
	if err := parse(fs, args); err != nil {
		return ra, err
	}
	if err := ra.leader.check(a, fs, ra.once); err != nil {
		return ra, err
	}
	if err := ra.git.check(a); err != nil {
		return ra, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "run: unexpected argument %q\n", fs.Arg(0))
		return ra, errUsage
	}
	if ra.passTimeout <= 0 || ra.maxBackoff <= 0 || ra.shutdownTimeout <= 0 {
		fmt.Fprintln(a.stderr, "run: -pass-timeout, -max-backoff and -shutdown-timeout must be positive")
		return ra, errUsage
	}
	return ra, nil
}

// runLoop is `pandasync run`: reconcile continuously until SIGTERM or
// SIGINT (which cancel ctx and stop it gracefully), passing on SIGHUP; or,
// with -once, one pass.
func (a *app) runLoop(ctx context.Context, args []string) error {
	ra, err := parseRunArgs(a, args)
	if err != nil {
		return err
	}
	command := "pandasync run"
	if ra.once {
		command += " -once"
	}
	st, err := a.openState(ra.stateDir, command, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if ra.git.url != "" {
		if ra.gitSpec, err = a.newGitSpec(ra.git, st.dir); err != nil {
			return err
		}
		if err := ra.gitSpec.first(ctx, a); err != nil && ra.once {
			return err
		} else if err != nil {
			a.log.Error("the spec repository cannot be fetched and nothing was checked out before; no pass runs until a fetch works",
				"error", err, "url", ra.gitSpec.url)
		}
	}
	if ra.once {
		return a.runOnce(ctx, ra, st)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return a.serve(ctx, ra, st, hup, nil)
}

// state is the state directory a writer holds: its lock, the audit log
// and, for run, the pass history.
type state struct {
	dir     string
	lock    *loop.Lock
	audit   *loop.Audit
	history *loop.History
}

// openState takes the lock of the state directory (-state-dir, or the
// platform's default) and opens the audit log, and with history the pass
// history. A second writer fails here, naming the holder.
func (a *app) openState(flagDir, command string, history bool) (*state, error) {
	dir, err := a.stateDirOf(flagDir)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	lock, err := loop.AcquireLock(dir, loop.Holder{PID: os.Getpid(), Host: host, Command: command, Since: time.Now()})
	if err != nil {
		return nil, err
	}
	st := &state{dir: dir, lock: lock}
	st.audit, err = loop.OpenAudit(filepath.Join(dir, loop.AuditFile), 0, 0)
	if err == nil && history {
		st.history, err = loop.OpenHistory(filepath.Join(dir, loop.HistoryFile), 0)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	a.log.Debug("state directory locked", "state_dir", dir, "command", command)
	return st, nil
}

// Close closes the audit log and releases the lock.
func (s *state) Close() {
	if s.audit != nil {
		s.audit.Close()
	}
	s.lock.Release()
}

// revision reads the git revision of the spec files, if they are in git.
func (a *app) revision(set *spec.Set) (loop.Revision, error) {
	return loop.ReadRevision(a.specPaths(), set.Files)
}

// newLoop builds the reconcile loop over the spec paths and the providers
// the spec's Connection describes. With an election, only the leader runs
// passes and its writes are fenced.
func (a *app) newLoop(ra runArgs, st *state, watch bool, election *electorBinding) (*loop.Loop, error) {
	cfg := loop.Config{
		Load:            a.loadSpec,
		Reconciler:      &loop.Syncer{Connect: a.loopProviders, StateDir: st.dir},
		Revision:        a.revision,
		PassTimeout:     ra.passTimeout,
		BackoffMax:      ra.maxBackoff,
		ShutdownTimeout: ra.shutdownTimeout,
		Audit:           st.audit,
		History:         st.history,
		StateDir:        st.dir,
		Resolver:        a.resolver(),
		Logger:          a.log,
	}
	if watch {
		cfg.WatchPaths = a.specPaths()
	}
	if gs := ra.gitSpec; gs != nil {
		cfg.Load, cfg.Revision, cfg.WatchPaths = gs.load, gs.revision, nil
	}
	if election != nil {
		cfg.Leadership = election.elector
		cfg.Gate, cfg.WriteWithin = election.elector.Fence, election.elector.WriteWithin
	}
	return loop.New(cfg)
}

// loopProviders connects both sides for one pass, logging with the pass's
// logger. A Connection that cannot be resolved (a missing secret, a refused
// setting) is terminal: the loop waits for a spec change or SIGHUP instead
// of retrying.
func (a *app) loopProviders(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
	dir, ap, err := a.newProviders(set, log, func(dcfg *activedirectory.Config, _ *assetpanda.Config) {
		if set.Policy.Spec.ChangeTracking.Method == spec.ChangeTrackingDirSync {
			dcfg.ChangeTracking = activedirectory.ChangeTrackingDirSync
		}
	})
	if err != nil {
		return nil, loop.Terminal(err)
	}
	return loop.NewProviders(dir, ap), nil
}

// runOnce runs a single pass, prints its plan and what was applied, and
// exits with its code. The pass's own failure, failed changes and plan
// problems are logged once by the loop or shown once in the plan, never
// printed again here.
func (a *app) runOnce(ctx context.Context, ra runArgs, st *state) error {
	l, err := a.newLoop(ra, st, false, nil)
	if err != nil {
		return err
	}
	rep, err := l.Once(ctx)
	if err != nil {
		return err // the spec cannot be loaded: reported once, by main
	}
	if rep.Plan != nil {
		renderPlan(a.stdout, rep.Plan, a.paint)
	}
	c := rep.Counts
	if c.Applied+c.Failed+c.NotAttempted > 0 {
		fmt.Fprintf(a.stdout, "\n%s %d applied, %d failed", a.paint(colorBold, "Apply complete:"), c.Applied, c.Failed)
		if c.NotAttempted > 0 {
			fmt.Fprintf(a.stdout, ", %d not attempted (pandasync was stopping)", c.NotAttempted)
		}
		fmt.Fprintln(a.stdout, ".")
	}
	if gs := ra.gitSpec; gs != nil {
		// The pass planned from the last good revision: the newest one,
		// meant to be in force, is not.
		if name, reason := gs.src.Rejection(); reason != nil {
			cur := ""
			if rev, ok := gs.src.Current(); ok {
				cur = rev.String()
			}
			return rejected(name, cur, reason)
		}
	}
	if code := onceExitCode(rep); code != exitOK {
		return errExit(code)
	}
	return nil
}

// onceExitCode maps a pass to the exit code of `run -once`: 0 nothing to
// do, 2 changes applied (or planned while writes are suspended), 1 a failed
// or stopped pass, or one that finished with failed or blocked changes or
// problems.
func onceExitCode(rep *loop.PassReport) int {
	switch rep.Outcome {
	case loop.OutcomeNoChanges:
		return exitOK
	case loop.OutcomeSuccess:
		return exitChanges
	case loop.OutcomeSuspended:
		if rep.Plan != nil && rep.Plan.HasChanges() {
			return exitChanges
		}
		return exitOK
	}
	return exitError
}

// serve runs the loop and the admin listener until ctx is done, then stops
// gracefully. Each value on hup asks for a pass (and a spec reload).
// started, when set, hears the admin listener's address.
func (a *app) serve(ctx context.Context, ra runArgs, st *state, hup <-chan os.Signal, started func(addr string)) error {
	var election *electorBinding
	if ra.leader.elect {
		var err error
		if election, err = a.newElector(ra.leader); err != nil {
			return err
		}
	}
	l, err := a.newLoop(ra, st, true, election)
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
		remote := !isLoopback(ln.Addr())
		if remote {
			if err := a.checkAdminToken(ra.listen); err != nil {
				ln.Close()
				return err
			}
		}
		adminOpts := loop.AdminOptions{RequireToken: remote}
		var specPaths []string // with -git: the files of the checkout in force
		if ra.gitSpec == nil {
			specPaths = a.specPaths()
		}
		handler, err := ui.New(ui.Options{
			Source:       l,
			Admin:        l.Handler(adminOpts),
			AdminOptions: adminOpts,
			Explainer:    &ui.PlanExplainer{Source: l, Connect: a.loopProviders, Logger: a.log},
			StateDir:     st.dir,
			SpecPaths:    specPaths,
			Logger:       a.log,
		})
		if err != nil {
			ln.Close()
			return err
		}
		srv = &http.Server{
			Handler:           handler,
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
			"endpoints", "/ (status page) /healthz /readyz /metrics /status POST /sync", "token_required", remote)
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
				l.Trigger("SIGHUP")
			case <-stopSignals:
				return
			}
		}
	}()

	specFrom := any(a.specPaths())
	if gs := ra.gitSpec; gs != nil {
		specFrom = gs.url
		gctx, stopGit := context.WithCancel(ctx)
		gitDone := make(chan struct{})
		go func() { defer close(gitDone); gs.follow(gctx, l) }()
		defer func() { stopGit(); <-gitDone }()
		if _, reason := gs.src.Rejection(); reason != nil {
			l.Trigger("rejected git revision") // the reload after start-up reports it
		}
	}
	a.log.Info("pandasync run started", "spec", specFrom, "state_dir", st.dir, "pass_timeout", ra.passTimeout.String(),
		"shutdown_timeout", ra.shutdownTimeout.String())
	loopDone := make(chan struct{})
	electionDone := make(chan struct{})
	if election != nil {
		election.bind(l, ctx.Done(), loopDone)
		es := election.elector.Status()
		a.log.Info("leader election started: this replica plans and writes only while it holds the lease",
			"lease", es.Lease, "identity", es.Identity)
		go func() {
			defer close(electionDone)
			_ = election.elector.Run(ctx) // returns nil once ctx is done
		}()
	} else {
		close(electionDone)
	}
	err = l.Run(ctx)
	close(loopDone)
	// The elector releases the Lease once the loop has stopped writing.
	<-electionDone
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

// isLoopback reports whether a listener's address is reachable from this
// host only.
func isLoopback(addr net.Addr) bool {
	ip, ok := addr.(*net.TCPAddr)
	return ok && ip.IP.IsLoopback()
}

// checkAdminToken refuses to serve the admin listener to other hosts
// without an admin token. When the spec cannot be loaded now, the loop
// reports that; the listener then refuses every request that changes
// something until a spec with a token is in force.
func (a *app) checkAdminToken(listen string) error {
	set, err := a.loadSpec()
	if err != nil {
		return nil
	}
	if set.Policy.Spec.Admin.Token.IsZero() {
		return fmt.Errorf("the admin listener %s is reachable from other hosts: set the SyncPolicy's spec.admin.token "+
			"({env: NAME} or {file: PATH}), or listen on loopback (-listen %s)", listen, defaultListen)
	}
	if _, err := a.resolver().Resolve(set.Policy.Spec.Admin.Token); err != nil {
		return fmt.Errorf("the admin listener %s is reachable from other hosts and spec.admin.token cannot be read: %w", listen, err)
	}
	return nil
}

// stateDirOf is the state directory a command uses: the flag, or the
// platform's default.
func (a *app) stateDirOf(flagDir string) (string, error) {
	if flagDir != "" {
		return flagDir, nil
	}
	dir, err := loop.DefaultStateDir(a.lookupEnv)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(dir), nil
}
