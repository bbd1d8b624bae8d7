package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/pandasync/pandasync/reconcile"
)

// painter colours a string for a terminal, or returns it unchanged.
type painter func(color, s string) string

func plain(_, s string) string { return s }

func actionColor(a reconcile.Action) string {
	switch a {
	case reconcile.ActionCreate:
		return colorGreen
	case reconcile.ActionUpdate:
		return colorYellow
	case reconcile.ActionDeactivate:
		return colorRed
	case reconcile.ActionReactivate:
		return colorCyan
	}
	return ""
}

func verb(a reconcile.Action) string {
	switch a {
	case reconcile.ActionCreate:
		return "created"
	case reconcile.ActionUpdate:
		return "updated"
	case reconcile.ActionDeactivate:
		return "deactivated"
	case reconcile.ActionReactivate:
		return "reactivated"
	}
	return string(a)
}

func targetString(t reconcile.Target) string {
	s := t.Account + " / " + t.Module
	if t.Collection != "" {
		s += " / " + t.Collection
	}
	return s
}

// renderPlan writes the human view of a plan, in the manner of Terraform:
// one block per change with its field-level differences and reason, then
// the blocked changes, the problems and a summary line.
func renderPlan(w io.Writer, p *reconcile.Plan, paint painter) {
	if len(p.Changes) > 0 {
		fmt.Fprintf(w, "pandasync will perform the following actions:\n\n")
	}
	for _, c := range p.Changes {
		renderChange(w, c, paint, "")
	}
	if len(p.Blocked) > 0 {
		fmt.Fprintf(w, "%s\n\n", paint(colorRed+";"+colorBold, fmt.Sprintf("Warning: %s blocked by a safety limit or guard (never applied):", count(len(p.Blocked), "change"))))
		byReason := map[string][]reconcile.Blocked{}
		var order []string
		for _, b := range p.Blocked {
			k := b.Mapping + "\x00" + b.Limit + "\x00" + b.Detail
			if _, ok := byReason[k]; !ok {
				order = append(order, k)
			}
			byReason[k] = append(byReason[k], b)
		}
		for _, k := range order {
			bs := byReason[k]
			fmt.Fprintf(w, "  mapping %s: %s: %s\n", bs[0].Mapping, bs[0].Limit, bs[0].Detail)
			if bs[0].Fix != "" {
				fmt.Fprintf(w, "    %s\n", paint(colorDim, "to proceed: "+bs[0].Fix))
			}
			for _, b := range bs {
				fmt.Fprintf(w, "    %s %s %s%s %s\n", paint(colorDim, b.Action.Symbol()), b.Kind, label(b.Change), blockedFields(b), paint(colorDim, "("+b.Reason+")"))
			}
		}
		fmt.Fprintln(w)
	}
	if len(p.Errors) > 0 {
		fmt.Fprintf(w, "%s\n", paint(colorRed+";"+colorBold, fmt.Sprintf("%s (what they concern is left as it is until fixed):", capitalize(count(len(p.Errors), "problem")))))
		for _, e := range p.Errors {
			fmt.Fprintf(w, "  ! %s\n", e)
			if e.Fix != "" {
				fmt.Fprintf(w, "      %s\n", paint(colorDim, "fix: "+e.Fix))
			}
		}
		fmt.Fprintln(w)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "%s %s\n", paint(colorDim, "note:"), n)
	}
	if len(p.Notes) > 0 {
		fmt.Fprintln(w)
	}
	if p.Suspended {
		fmt.Fprintf(w, "%s\n", paint(colorYellow, "The SyncPolicy suspends writes: this plan cannot be applied."))
	}
	if len(p.Overrides) > 0 {
		var flags []string
		for _, o := range p.Overrides {
			flags = append(flags, reconcile.OverrideFlag(o))
		}
		fmt.Fprintf(w, "%s\n", paint(colorYellow, "Limits lifted for this plan only: "+strings.Join(flags, ", ")))
	}
	if p.InSync() {
		if p.Selected {
			fmt.Fprintf(w, "%s Asset Panda matches Active Directory for mapping(s) %s.\n", paint(colorGreen+";"+colorBold, "No changes."), strings.Join(p.Mappings, ", "))
			return
		}
		fmt.Fprintf(w, "%s Asset Panda matches Active Directory.\n", paint(colorGreen+";"+colorBold, "No changes."))
		return
	}
	fmt.Fprintf(w, "%s %s.\n", paint(colorBold, "Plan:"), summaryLine(p.Summary))
}

// summaryLine is the plan's count line without its "Plan:" label:
// "2 to create, 1 to update, 0 to deactivate, 0 to reactivate; 4 blocked,
// 1 problem".
func summaryLine(s reconcile.Summary) string {
	line := fmt.Sprintf("%d to create, %d to update, %d to deactivate, %d to reactivate", s.Create, s.Update, s.Deactivate, s.Reactivate)
	if s.Blocked > 0 || s.Problems > 0 {
		line += fmt.Sprintf("; %d blocked, %s", s.Blocked, count(s.Problems, "problem"))
	}
	return line
}

// count renders "1 problem" or "3 problems".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// blockedFields names the fields of a partly blocked update: " [role]".
func blockedFields(b reconcile.Blocked) string {
	if b.Action != reconcile.ActionUpdate || len(b.After) == 0 {
		return ""
	}
	var parts []string
	for _, k := range sortedKeys(b.After) {
		parts = append(parts, fmt.Sprintf("%s %q → %q", k, b.Before[k], b.After[k]))
	}
	return " [" + strings.Join(parts, ", ") + "]"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func label(c reconcile.Change) string {
	if c.Name != "" && c.Name != c.Key {
		return fmt.Sprintf("%s (%s)", c.Name, c.Key)
	}
	return c.Key
}

// renderChange writes one change block.
func renderChange(w io.Writer, c reconcile.Change, paint painter, indent string) {
	col := actionColor(c.Action)
	fmt.Fprintf(w, "%s  %s %s %s will be %s\n", indent, paint(colorBold, "#"), c.Kind, label(c), verb(c.Action))
	fmt.Fprintf(w, "%s    %s\n", indent, paint(colorDim, fmt.Sprintf("mapping %s → %s", c.Mapping, targetString(c.Target))))
	if c.Reason != "" {
		fmt.Fprintf(w, "%s    %s\n", indent, paint(colorDim, "reason: "+c.Reason))
	}
	fmt.Fprintf(w, "%s  %s %s %s {\n", indent, paint(col, c.Action.Symbol()), c.Kind, strconv.Quote(c.Key))
	names := map[string]bool{}
	for k := range c.After {
		names[k] = true
	}
	for k := range c.Before {
		names[k] = true
	}
	keys := make([]string, 0, len(names))
	width := 0
	for k := range names {
		keys = append(keys, k)
		width = max(width, len(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		pad := strings.Repeat(" ", width-len(k))
		after, inAfter := c.After[k]
		before, inBefore := c.Before[k]
		switch {
		case c.Before == nil || !inBefore:
			fmt.Fprintf(w, "%s      %s %s%s = %s\n", indent, paint(colorGreen, "+"), k, pad, strconv.Quote(after))
		case !inAfter:
			fmt.Fprintf(w, "%s      %s %s%s = %s\n", indent, paint(colorRed, "-"), k, pad, strconv.Quote(before))
		default:
			fmt.Fprintf(w, "%s      %s %s%s = %s → %s\n", indent, paint(colorYellow, "~"), k, pad, strconv.Quote(before), strconv.Quote(after))
		}
	}
	fmt.Fprintf(w, "%s    }\n\n", indent)
}
