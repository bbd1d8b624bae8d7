package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/pandasync/pandasync/reconcile"
)

// The output formats of plan and show.
const (
	formatText     = "text"
	formatJSON     = "json"
	formatMarkdown = "markdown"
)

// outputFormat checks a -format value, with -json as its short form, and
// returns the format; empty means text.
func outputFormat(a *app, cmd, format string, jsonFlag bool) (string, error) {
	switch {
	case jsonFlag && format != "" && format != formatJSON:
		fmt.Fprintf(a.stderr, "%s: -json and -format %s disagree; -json is short for -format json\n", cmd, format)
		return "", errUsage
	case jsonFlag:
		return formatJSON, nil
	case format == "":
		return formatText, nil
	case format == formatText, format == formatJSON, format == formatMarkdown:
		return format, nil
	}
	fmt.Fprintf(a.stderr, "%s: -format %q: want text, json or markdown\n", cmd, format)
	return "", errUsage
}

// writePlan prints a plan in one of the output formats.
func (a *app) writePlan(p *reconcile.Plan, format string, mo markdownOptions, ro renderOptions) error {
	switch format {
	case formatJSON:
		return p.WriteJSON(a.stdout)
	case formatMarkdown:
		return renderMarkdown(a.stdout, p, mo)
	}
	renderPlanWith(a.stdout, p, a.paint, ro)
	return nil
}

// showArgs are the flags of `pandasync show`.
type showArgs struct {
	planFile string
	format   string
	planURL  string
	details  bool
}

func parseShowArgs(a *app, args []string) (showArgs, error) {
	var sa showArgs
	jsonFlag := false
	fs := a.flags("show", "[-format text|json|markdown] [-json] [-plan-url URL] [-details] PLANFILE")
	fs.StringVar(&sa.format, "format", "", "print the plan as `text` (the default), json, or markdown (a pull-request comment under 60,000 characters)")
	fs.BoolVar(&jsonFlag, "json", false, "short for -format json")
	fs.StringVar(&sa.planURL, "plan-url", "", "in the Markdown, link to `URL` as where the full plan is")
	fs.BoolVar(&sa.details, "details", false, fmt.Sprintf("in text, show every change with its fields; plans of more than %d changes otherwise show one line per object", detailedPlanMax))
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return sa, err
	}
	if len(rest) != 1 {
		fmt.Fprintln(a.stderr, "show: name exactly one plan file (made with pandasync plan -out FILE)")
		return sa, errUsage
	}
	sa.planFile = rest[0]
	if sa.format, err = outputFormat(a, "show", sa.format, jsonFlag); err != nil {
		return sa, err
	}
	return sa, nil
}

// show is `pandasync show PLANFILE`: it renders a saved plan without
// connecting to anything. A plan file whose content no longer matches its
// digest is refused, as apply refuses it.
func (a *app) show(_ context.Context, args []string) error {
	sa, err := parseShowArgs(a, args)
	if err != nil {
		return err
	}
	p, err := readPlanFile(sa.planFile)
	if err != nil {
		return err
	}
	return a.writePlan(p, sa.format, markdownOptions{PlanFile: sa.planFile, PlanURL: sa.planURL}, renderOptions{details: sa.details})
}

// parseInterspersed parses flags that may come before, between and after
// the positional arguments ("show plan.json -format markdown"), and
// returns the positional ones. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}

// checkDigest compares a plan's digest with the one that was reviewed,
// given with or without its "sha256:" prefix.
func checkDigest(p *reconcile.Plan, want string) error {
	w := strings.ToLower(strings.TrimSpace(want))
	if !strings.HasPrefix(w, "sha256:") {
		w = "sha256:" + w
	}
	hex := strings.TrimPrefix(w, "sha256:")
	if len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("-require-digest %q is not a SHA-256 digest (want sha256: and 64 hex digits, as the plan's Markdown and JSON show it)", want)
	}
	if p.Digest != w {
		return fmt.Errorf("the plan file's digest is %s, not the reviewed %s: this is not the plan that was reviewed; nothing was applied", p.Digest, w)
	}
	return nil
}
