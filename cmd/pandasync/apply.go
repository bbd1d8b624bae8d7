package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// applyArgs are the flags of `pandasync apply`.
type applyArgs struct {
	planFile      string
	requireDigest string // the reviewed plan's digest; empty means any
	autoApprove   bool
	mappings      []string
	overrides     []string // reconcile.Override* names
	stateDir      string
}

func parseApplyArgs(a *app, args []string) (applyArgs, error) {
	var aa applyArgs
	fs := a.flags("apply", "[-auto-approve] [-mapping NAME]... "+overrideUsage+" [-state-dir DIR] [-require-digest SHA] [PLANFILE]")
	fs.BoolVar(&aa.autoApprove, "auto-approve", false, "apply without asking for confirmation")
	fs.StringVar(&aa.requireDigest, "require-digest", "", "refuse PLANFILE unless its digest is `SHA` (sha256:…, as the reviewed plan's Markdown or JSON shows it): apply only the plan that was reviewed")
	fs.Var((*stringsFlag)(&aa.mappings), "mapping", "apply only the changes of mapping `NAME` (repeatable; not with PLANFILE)")
	of := addOverrideFlags(fs, "this one run (not with PLANFILE)")
	fs.StringVar(&aa.stateDir, "state-dir", "", stateDirUsage)
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return aa, err
	}
	aa.overrides = of.list()
	switch len(rest) {
	case 0:
		if aa.requireDigest != "" {
			fmt.Fprintln(a.stderr, "apply: -require-digest needs the PLANFILE that was reviewed")
			return aa, errUsage
		}
	case 1:
		aa.planFile = rest[0]
		if len(aa.mappings) > 0 || len(aa.overrides) > 0 {
			fmt.Fprintln(a.stderr, "apply: -mapping and the -allow-mass-* overrides belong to the plan; a saved plan is applied as it was made")
			return aa, errUsage
		}
	default:
		fmt.Fprintln(a.stderr, "apply: at most one plan file")
		return aa, errUsage
	}
	return aa, nil
}

func (a *app) apply(ctx context.Context, args []string) error {
	aa, err := parseApplyArgs(a, args)
	if err != nil {
		return err
	}
	var saved *reconcile.Plan
	if aa.planFile != "" {
		// Read the file before connecting to anything.
		saved, err = readPlanFile(aa.planFile)
		if err != nil {
			return err
		}
		if aa.requireDigest != "" {
			if err := checkDigest(saved, aa.requireDigest); err != nil {
				return fmt.Errorf("apply %s: %w", aa.planFile, err)
			}
		}
	}
	// One writer at a time: a running `pandasync run` holds the lock.
	st, err := a.openState(aa.stateDir, "pandasync apply", false)
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.Close()
	set, dir, ap := s.set, s.dir, s.ap

	// p is applied; outcome decides how the apply ends.
	var p, outcome *reconcile.Plan
	if saved != nil {
		// The saved plan is applied as it was reviewed, but only when a
		// fresh plan makes exactly its changes; what the fresh plan blocks
		// or cannot resolve now (outside those changes) decides the exit.
		fresh, err := reconcile.Recheck(ctx, saved, set, dir, ap)
		a.readDone()
		if err != nil {
			return err
		}
		p, outcome = saved, fresh
	} else {
		p, err = reconcile.MakePlan(ctx, set, dir, ap, reconcile.Options{Mappings: aa.mappings, Overrides: aa.overrides})
		a.readDone()
		if err != nil {
			return err
		}
		outcome = p
		renderPlan(a.stdout, p, a.paint)
		if !p.HasChanges() {
			return planOutcome(p, nil)
		}
		if aa.autoApprove {
			fmt.Fprintln(a.stdout)
		} else {
			ok, err := a.confirm()
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintln(a.stdout, "Apply cancelled.")
				return errExit(exitError)
			}
		}
	}
	rev, err := a.revision(set)
	if err != nil {
		a.log.Warn("the spec's git revision cannot be read", "error", err)
	}
	res, err := a.applyAudited(ctx, p, set, ap, st.audit, rev)
	if err != nil {
		return err
	}
	return planOutcome(outcome, res)
}

// planOutcome is the error an apply ends with: nil only when everything
// planned was applied and nothing was blocked or failed.
func planOutcome(p *reconcile.Plan, res *reconcile.ApplyResult) error {
	var parts []string
	if res != nil && res.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d changes failed", res.Failed, res.Applied+res.Failed))
	}
	if n := len(p.Blocked); n > 0 {
		parts = append(parts, fmt.Sprintf("%s blocked", count(n, "change")))
	}
	if n := len(p.Errors); n > 0 {
		parts = append(parts, fmt.Sprintf("%s to fix", count(n, "problem")))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s; the next plan shows what is left", strings.Join(parts, ", "))
}

// applyPlan applies a plan, showing progress. The error is non-nil only
// when the apply as a whole could not run.
func (a *app) applyPlan(ctx context.Context, p *reconcile.Plan, set *spec.Set, tgt reconcile.TargetWriter) (*reconcile.ApplyResult, error) {
	return a.applyAudited(ctx, p, set, tgt, nil, loop.Revision{})
}

// applyAudited is applyPlan that, with an audit log, writes every attempted
// change to it as pass "apply" and stops writing if the log fails.
func (a *app) applyAudited(ctx context.Context, p *reconcile.Plan, set *spec.Set, tgt reconcile.TargetWriter, audit *loop.Audit, rev loop.Revision) (*reconcile.ApplyResult, error) {
	if !p.HasChanges() {
		fmt.Fprintln(a.stdout, "No changes to apply.")
		return &reconcile.ApplyResult{}, nil
	}
	obs := newProgress(a.stdout, a.terminal, a.paint)
	opts := reconcile.ApplyOptions{Observer: obs}
	if audit != nil {
		ao := &loop.AuditObserver{Audit: audit, Pass: "apply", Revision: rev, Next: obs}
		opts = reconcile.ApplyOptions{Observer: ao, Gate: ao.Gate}
	}
	res, err := reconcile.ApplyWith(ctx, p, set, tgt, opts)
	obs.finish()
	if err != nil && res == nil {
		return nil, err
	}
	fmt.Fprintf(a.stdout, "\n%s %d applied, %d failed.\n", a.paint(colorBold, "Apply complete:"), res.Applied, res.Failed)
	if err != nil {
		return nil, err
	}
	return res, nil
}

func readPlanFile(path string) (*reconcile.Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	defer f.Close()
	p, err := reconcile.ReadPlan(f)
	if err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	return p, nil
}

// confirm asks for approval on the terminal.
func (a *app) confirm() (bool, error) {
	if !a.stdinTTY {
		return false, errors.New("no terminal to confirm on: save a plan with `pandasync plan -out FILE` and apply that, or pass -auto-approve")
	}
	fmt.Fprintf(a.stdout, "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ")
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read confirmation: %w", err)
	}
	fmt.Fprintln(a.stdout)
	return strings.TrimSpace(line) == "yes", nil
}

// progress reports apply's progress: a bar on a terminal, otherwise one
// line per failure and a line per tenth of the work.
type progress struct {
	w        io.Writer
	terminal bool
	paint    painter
	total    int
	done     int
	failed   int
	shown    int
}

func newProgress(w io.Writer, terminal bool, paint painter) *progress {
	return &progress{w: w, terminal: terminal, paint: paint}
}

func (p *progress) Started(total int) {
	p.total = total
	fmt.Fprintf(p.w, "Applying %s...\n", count(total, "change"))
}

func (p *progress) Done(c reconcile.Change, err error) {
	p.done++
	if err != nil {
		p.failed++
		if p.terminal {
			fmt.Fprint(p.w, "\r\x1b[K")
		}
		fmt.Fprintf(p.w, "  %s %s %s %s: %v\n", p.paint(colorRed, "✗"), c.Action, c.Kind, label(c), err)
	} else if p.total <= 20 {
		if p.terminal {
			fmt.Fprint(p.w, "\r\x1b[K")
		}
		fmt.Fprintf(p.w, "  %s %s %s %s\n", p.paint(actionColor(c.Action), c.Action.Symbol()), c.Kind, label(c), verb(c.Action))
	}
	if p.total <= 20 {
		return
	}
	if p.terminal {
		const width = 30
		filled := p.done * width / p.total
		fmt.Fprintf(p.w, "\r\x1b[K  [%s%s] %d/%d", strings.Repeat("█", filled), strings.Repeat("░", width-filled), p.done, p.total)
		return
	}
	if tenth := p.done * 10 / p.total; tenth > p.shown {
		p.shown = tenth
		fmt.Fprintf(p.w, "  %d/%d done (%d failed)\n", p.done, p.total, p.failed)
	}
}

func (p *progress) finish() {
	if p.terminal && p.total > 20 {
		fmt.Fprintln(p.w)
	}
}
