package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pandasync/pandasync/reconcile"
)

// planArgs are the flags of `pandasync plan`.
type planArgs struct {
	out              string
	json             bool
	detailedExitCode bool
	mappings         []string
	override         bool
}

func parsePlanArgs(a *app, args []string) (planArgs, error) {
	var pa planArgs
	fs := a.flags("plan", "[-out FILE] [-json] [-detailed-exitcode] [-mapping NAME]... [-allow-mass-deactivation]")
	fs.StringVar(&pa.out, "out", "", "save the plan to `FILE` for `pandasync apply FILE`")
	fs.BoolVar(&pa.json, "json", false, "print the plan as JSON (format_version 1)")
	fs.BoolVar(&pa.detailedExitCode, "detailed-exitcode", false, "exit 0 when there are no changes, 1 on error, 2 when there are changes")
	fs.Var((*stringsFlag)(&pa.mappings), "mapping", "plan only the mapping `NAME` (repeatable)")
	fs.BoolVar(&pa.override, "allow-mass-deactivation", false, "lift the deactivation limits for this one plan, when a mass change is real")
	if err := parse(fs, args); err != nil {
		return pa, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "plan: unexpected argument %q\n", fs.Arg(0))
		return pa, errUsage
	}
	return pa, nil
}

func (a *app) plan(ctx context.Context, args []string) error {
	pa, err := parsePlanArgs(a, args)
	if err != nil {
		return err
	}
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.Close()
	p, err := reconcile.MakePlan(ctx, s.set, s.dir, s.ap, reconcile.Options{Mappings: pa.mappings, OverrideLimits: pa.override})
	if err != nil {
		return err
	}
	return a.showPlan(p, pa)
}

// showPlan prints and saves a plan and picks the exit code.
func (a *app) showPlan(p *reconcile.Plan, pa planArgs) error {
	if pa.json {
		if err := p.WriteJSON(a.stdout); err != nil {
			return err
		}
	} else {
		renderPlan(a.stdout, p, a.paint)
	}
	if pa.out != "" {
		if err := savePlan(pa.out, p); err != nil {
			return err
		}
		if !pa.json {
			fmt.Fprintf(a.stdout, "\nSaved the plan to %s. To apply exactly this plan, run:\n    pandasync apply %s\n", pa.out, pa.out)
		}
	}
	if pa.detailedExitCode && p.HasChanges() {
		return errExit(exitChanges)
	}
	return nil
}

// savePlan writes the plan atomically, readable by its owner only: it
// names people and their attributes.
func savePlan(path string, p *reconcile.Plan) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pandasync-plan-*")
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := p.WriteJSON(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("save plan: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	return nil
}
