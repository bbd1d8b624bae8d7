package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/spec"
)

// planArgs are the flags of `pandasync plan`.
type planArgs struct {
	out              string
	json             bool   // -json, short for -format json
	format           string // "text", "json" or "markdown"; see outputFormat
	planURL          string // where the full plan is, for the Markdown
	detailedExitCode bool
	details          bool
	mappings         []string
	overrides        []string // reconcile.Override* names
}

// overrideFlags are the one-time overrides of the limits, shared by plan
// and apply.
type overrideFlags map[string]*bool

// overrideUsage is the flags' part of a usage line.
const overrideUsage = "[-allow-mass-deactivation] [-allow-mass-role-change] [-allow-mass-field-clear] [-allow-mass-create]"

func addOverrideFlags(fs *flag.FlagSet, what string) overrideFlags {
	o := overrideFlags{}
	help := map[string]string{
		reconcile.OverrideDeactivations: "lift the deactivation limits (and the empty-group guard on deactivations) for " + what + ", when a mass change is real",
		reconcile.OverrideRoleChanges:   "lift the role-change limits (and the empty-group guard on role changes) for " + what,
		reconcile.OverrideFieldClears:   "lift the limits on clearing fields that have a value for " + what,
		reconcile.OverrideCreates:       "lift the limits on creates for " + what,
	}
	for _, name := range reconcile.Overrides() {
		o[name] = fs.Bool(strings.TrimPrefix(reconcile.OverrideFlag(name), "-"), false, help[name])
	}
	return o
}

// list returns the overrides that are set.
func (o overrideFlags) list() []string {
	var out []string
	for _, name := range reconcile.Overrides() {
		if b := o[name]; b != nil && *b {
			out = append(out, name)
		}
	}
	return out
}

func parsePlanArgs(a *app, args []string) (planArgs, error) {
	var pa planArgs
	fs := a.flags("plan", "[-out FILE] [-format text|json|markdown] [-json] [-plan-url URL] [-details] [-detailed-exitcode] [-mapping NAME]... "+overrideUsage)
	fs.StringVar(&pa.out, "out", "", "save the plan to `FILE` for `pandasync apply FILE`")
	fs.BoolVar(&pa.json, "json", false, "print the plan as JSON (format_version 1); short for -format json")
	fs.StringVar(&pa.format, "format", "", "print the plan as `text` (the default), json, or markdown (a pull-request comment under 60,000 characters)")
	fs.StringVar(&pa.planURL, "plan-url", "", "in the Markdown, link to `URL` as where the full plan is (such as the CI run holding the plan file)")
	fs.BoolVar(&pa.details, "details", false, fmt.Sprintf("show every change with its fields; plans of more than %d changes otherwise show one line per object", detailedPlanMax))
	fs.BoolVar(&pa.detailedExitCode, "detailed-exitcode", false, "exit 0 when in sync (no changes, nothing blocked, no problems), 1 on any error or problem, 2 when there are changes or blocked changes")
	fs.Var((*stringsFlag)(&pa.mappings), "mapping", "show only the changes of mapping `NAME` (repeatable); the plan is still made from the whole spec")
	of := addOverrideFlags(fs, "this one plan")
	if err := parse(fs, args); err != nil {
		return pa, err
	}
	pa.overrides = of.list()
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "plan: unexpected argument %q\n", fs.Arg(0))
		return pa, errUsage
	}
	f, err := outputFormat(a, "plan", pa.format, pa.json)
	if err != nil {
		return pa, err
	}
	pa.format, pa.json = f, f == formatJSON
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
	p, err := reconcile.MakePlan(ctx, s.set, s.dir, s.ap, reconcile.Options{Mappings: pa.mappings, Overrides: pa.overrides})
	a.readDone()
	if err != nil {
		return err
	}
	a.recordRevision(p, s.set)
	return a.showPlan(p, pa)
}

// recordRevision records in the plan's prior the git revision of the spec
// files, when they are in a git work tree, and seals the plan again. A
// revision that cannot be read is logged and left out: it explains the
// plan, it does not decide it.
func (a *app) recordRevision(p *reconcile.Plan, set *spec.Set) {
	rev, err := a.revision(set)
	if err != nil {
		a.log.Warn("could not read the git revision of the spec", "error", err)
		return
	}
	if rev.Commit == "" {
		return
	}
	p.Prior.Revision, p.Prior.Dirty = rev.String(), rev.Dirty
	p.Seal()
}

// showPlan prints and saves a plan and picks the exit code: 1 when the
// plan has problems; with -detailed-exitcode, 2 when it has changes or
// blocked changes, 0 only when in sync.
func (a *app) showPlan(p *reconcile.Plan, pa planArgs) error {
	if err := a.writePlan(p, pa.format, markdownOptions{PlanFile: pa.out, PlanURL: pa.planURL}, renderOptions{details: pa.details}); err != nil {
		return err
	}
	if pa.out != "" {
		if err := savePlan(pa.out, p); err != nil {
			return err
		}
		if pa.format == formatText {
			fmt.Fprintf(a.stdout, "\nSaved the plan to %s (digest %s). To apply exactly this plan, run:\n    pandasync %sapply %s\n",
				pa.out, p.Digest, a.globalFlags(), shellQuote(pa.out))
		}
	}
	switch {
	case len(p.Errors) > 0:
		return errExit(exitError)
	case pa.detailedExitCode && (p.HasChanges() || len(p.Blocked) > 0):
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
