package main

import (
	"context"
	"fmt"
)

func (a *app) validate(ctx context.Context, args []string) error {
	fs := a.flags("validate", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	set, err := a.loadSpec()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s %d file(s): connection %q, %d user mapping(s), %d collection mapping(s).\n",
		a.paint(colorGreen, "The spec is valid."), len(set.Files), set.Connection.Metadata.Name, len(set.UserMappings), len(set.CollectionMappings))
	for _, m := range set.UserMappings {
		fmt.Fprintf(a.stdout, "  user mapping %s: members of %s%s → users of %s / %s with role %q (on remove: %s)\n",
			m.Metadata.Name, m.Spec.Group, nestedNote(m.Spec.Nested), m.Spec.Account, m.Spec.Module, m.Spec.Role, m.Spec.OnRemove)
	}
	for _, m := range set.CollectionMappings {
		status := "no status field"
		if m.Spec.Status != nil {
			status = fmt.Sprintf("status in %q", m.Spec.Status.Field)
		}
		fmt.Fprintf(a.stdout, "  collection mapping %s: members of %s%s → records of %s / %s / %s keyed by %q, %d field(s), %s (on remove: %s)\n",
			m.Metadata.Name, m.Spec.Group, nestedNote(m.Spec.Nested), m.Spec.Account, m.Spec.Module, m.Spec.Collection,
			m.Spec.Key.Field, len(m.Spec.Fields), status, m.Spec.OnRemove)
	}
	p := set.Policy.Spec
	fmt.Fprintf(a.stdout, "  policy: every %s", p.Schedule.Every.Duration)
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
	return nil
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
