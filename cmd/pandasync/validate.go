package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

func (a *app) validate(ctx context.Context, args []string) error {
	fs := a.flags("validate", "[-strict-env]")
	strictEnv := fs.Bool("strict-env", false, "also read every {env: NAME} and {file: PATH} value (the Connection's secrets, webhook URLs, the admin token) and report those that are missing or empty (never their values)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "validate: unexpected argument %q; name spec files and directories with -f\n", fs.Arg(0))
		return errUsage
	}
	set, err := a.loadSpec()
	if err != nil {
		return err
	}
	if *strictEnv {
		if ps := set.CheckReferences(a.resolver()); len(ps) > 0 {
			return fmt.Errorf("the spec is valid, but %s it reads from the environment or files cannot be read:\n%w", count(len(ps), "value"), ps)
		}
	}
	fmt.Fprintf(a.stdout, "%s %s: connection %q, %s, %s.\n",
		a.paint(colorGreen, "The spec is valid."), count(len(set.Files), "file"), set.Connection.Metadata.Name,
		count(len(set.UserMappings), "user mapping"), count(len(set.CollectionMappings), "collection mapping"))
	for _, m := range set.UserMappings {
		fmt.Fprintf(a.stdout, "  user mapping %s: members of %s%s → users of %s / %s with role %q (on remove: %s)\n",
			m.Metadata.Name, m.Spec.Group, nestedNote(m.Spec.Nested), m.Spec.Account, m.Spec.Module, m.Spec.Role, m.Spec.OnRemove)
	}
	for _, m := range set.CollectionMappings {
		status := "no status field"
		if m.Spec.Status != nil {
			status = fmt.Sprintf("status in %q", m.Spec.Status.Field)
		}
		fmt.Fprintf(a.stdout, "  collection mapping %s: members of %s%s → records of %s / %s / %s keyed by %q, %s, %s (on remove: %s)\n",
			m.Metadata.Name, m.Spec.Group, nestedNote(m.Spec.Nested), m.Spec.Account, m.Spec.Module, m.Spec.Collection,
			m.Spec.Key.Field, count(len(m.Spec.Fields), "field"), status, m.Spec.OnRemove)
	}
	p := set.Policy.Spec
	fmt.Fprintf(a.stdout, "  policy: every %s", shortDuration(p.PassSchedule().Every.Duration)) // run's passes
	if p.Schedule.Start != "" {
		fmt.Fprintf(a.stdout, " from %s", p.Schedule.Start)
	}
	l := p.Limits
	fmt.Fprintf(a.stdout, "; per mapping per run at most %s deactivations, %s role changes, %s field clears, %s creates",
		limitText(l.MaxDeactivations, l.MaxDeactivationPercent), limitText(l.MaxRoleChanges, l.MaxRoleChangePercent),
		limitText(l.MaxFieldClears, l.MaxFieldClearPercent), limitText(l.MaxCreates, l.MaxCreatePercent))
	if p.Suspend {
		fmt.Fprint(a.stdout, "; SUSPENDED (plans only, never writes)")
	}
	fmt.Fprintln(a.stdout)
	if !*strictEnv {
		fmt.Fprintf(a.stdout, "%s\n", a.paint(colorDim, "Secrets, groups and Asset Panda names are not checked here: 'pandasync validate -strict-env' reads the secrets, 'pandasync check' connects and checks every name."))
	} else {
		fmt.Fprintf(a.stdout, "%s\n", a.paint(colorDim, "Every secret can be read. 'pandasync check' connects and checks every name."))
	}
	return nil
}

// shortDuration formats whole hours and minutes without zero units: "1h",
// "90m" → "1h30m".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// limitText renders a count and percentage limit: "500 / 20%", "any".
func limitText(count, percent int) string {
	c, p := "any number", ""
	if count > 0 {
		c = fmt.Sprint(count)
	}
	if percent > 0 {
		p = fmt.Sprintf(" (%d%%)", percent)
	}
	if count <= 0 && percent > 0 {
		c = ""
		p = fmt.Sprintf("%d%%", percent)
	}
	return c + p
}

func nestedNote(n *bool) string {
	if n != nil && !*n {
		return " (direct members only)"
	}
	return " (nested)"
}
