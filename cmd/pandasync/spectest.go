package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/spectest"
)

// testArgs are the flags of `pandasync test`.
type testArgs struct {
	update bool
	dirs   []string
}

// defaultTestDir is where `pandasync test` looks for cases by default.
const defaultTestDir = "tests"

func parseTestArgs(a *app, args []string) (testArgs, error) {
	var ta testArgs
	fs := a.flags("test", "[-update] [DIR...]")
	fs.BoolVar(&ta.update, "update", false, "rewrite each case's expected.yaml from the plan it makes (the fields it lists are kept)")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return ta, err
	}
	ta.dirs = rest
	if len(ta.dirs) == 0 {
		ta.dirs = []string{defaultTestDir}
	}
	return ta, nil
}

// specTest is `pandasync test`: it runs the spec test cases under each DIR
// (default ./tests). Each case starts an embedded directory from its LDIF
// fixture and an Asset Panda emulator from its seed, plans with the real
// planner from its own spec or the spec set under test (-f), and compares
// the plan with its expected.yaml. It prints a diff per failing case and
// fails when any case fails.
func (a *app) specTest(ctx context.Context, args []string) error {
	ta, err := parseTestArgs(a, args)
	if err != nil {
		return err
	}
	dirs, err := spectest.Find(ta.dirs...)
	if err != nil {
		return fmt.Errorf("find test cases: %w", err)
	}
	if len(dirs) == 0 {
		return fmt.Errorf("no test cases under %s (a case is a directory holding directory.ldif, seed.json, expected.yaml or spec.yaml)", strings.Join(ta.dirs, ", "))
	}
	width := 0
	for _, d := range dirs {
		width = max(width, len(d))
	}
	failed := 0
	for _, dir := range dirs {
		res := a.runSpecCase(ctx, dir, ta.update)
		status := a.paint(colorGreen, "ok  ")
		switch {
		case res.err != nil || res.diff != "":
			status = a.paint(colorRed, "FAIL")
			failed++
		case res.updated:
			status = a.paint(colorYellow, "upd ")
		}
		fmt.Fprintf(a.stdout, "%s %-*s  %s\n", status, width, dir, res.summary)
		if res.err != nil {
			for _, line := range strings.Split(strings.TrimRight(res.err.Error(), "\n"), "\n") {
				fmt.Fprintf(a.stdout, "       %s\n", line)
			}
		}
		if res.diff != "" {
			fmt.Fprintf(a.stdout, "       %s differs from the plan (-want +got):\n", spectest.FileExpected)
			for _, line := range strings.Split(strings.TrimRight(res.diff, "\n"), "\n") {
				fmt.Fprintf(a.stdout, "       %s\n", a.paintDiff(line))
			}
		}
	}
	fmt.Fprintf(a.stdout, "\n%d of %s passed", len(dirs)-failed, count(len(dirs), "case"))
	if failed > 0 {
		fmt.Fprintf(a.stdout, "; %d failed.\n", failed)
		return errExit(exitError)
	}
	fmt.Fprintln(a.stdout, ".")
	return nil
}

func (a *app) paintDiff(line string) string {
	switch t := strings.TrimLeft(line, " "); {
	case strings.HasPrefix(t, "-"):
		return a.paint(colorRed, line)
	case strings.HasPrefix(t, "+"):
		return a.paint(colorGreen, line)
	}
	return line
}

// specCaseResult is the outcome of one case.
type specCaseResult struct {
	summary string // the plan's count line, or what went wrong
	diff    string // the differences from expected.yaml
	updated bool   // expected.yaml was rewritten
	err     error
}

// runSpecCase runs one case: the sandbox, the plan, the comparison.
func (a *app) runSpecCase(ctx context.Context, dir string, update bool) specCaseResult {
	c, err := spectest.Load(dir)
	if err != nil {
		return specCaseResult{summary: "the case does not load", err: err}
	}
	p, err := a.planSpecCase(ctx, c)
	if err != nil {
		return specCaseResult{summary: "no plan", err: err}
	}
	res := specCaseResult{summary: summaryLine(p.Summary)}
	want, err := c.ReadExpected()
	if err != nil && !(update && errors.Is(err, spectest.ErrNoExpected)) {
		res.err = err
		return res
	}
	got := spectest.FromPlan(p, want)
	if update {
		if want == nil || spectest.Diff(want, got) != "" {
			if err := c.WriteExpected(got); err != nil {
				res.err = err
				return res
			}
			res.updated = true
		}
		return res
	}
	res.diff = spectest.Diff(want, got)
	return res
}

// planSpecCase starts the case's sandbox and makes the plan with the real
// planner, connecting as plan would: through the spec's Connection, which
// points at the sandbox.
func (a *app) planSpecCase(ctx context.Context, c *spectest.Case) (*reconcile.Plan, error) {
	w, err := c.Start(a.specPaths())
	if err != nil {
		return nil, err
	}
	defer w.Close()
	opts, err := c.Options()
	if err != nil {
		return nil, err
	}
	ca := *a
	ca.lookupEnv = func(k string) (string, bool) {
		v, ok := w.Env[k]
		return v, ok
	}
	if a.logLevel > slog.LevelDebug {
		// The sandbox is on loopback without TLS; its warnings say nothing
		// about the spec under test. Errors are returned, not logged.
		ca.log = slog.New(slog.DiscardHandler)
	}
	dir, ap, err := ca.connect(w.Set)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return reconcile.MakePlan(ctx, w.Set, dir, ap, opts)
}
