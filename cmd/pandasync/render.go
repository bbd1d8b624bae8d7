package main

import (
	"fmt"
	"io"
	"slices"
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

// detailedPlanMax is the largest plan shown with its field-level details
// unless -details asks for them: a larger plan starts with its counts per
// mapping and shows one line per object.
const detailedPlanMax = 20

// renderOptions tune the human view of a plan.
type renderOptions struct {
	// details shows every change with its fields, whatever the plan's size.
	details bool
}

// renderPlan writes the human view of a plan with the default options.
func renderPlan(w io.Writer, p *reconcile.Plan, paint painter) {
	renderPlanWith(w, p, paint, renderOptions{})
}

// renderPlanWith writes the human view of a plan, in the manner of
// Terraform: the changes, then the blocked changes, the problems, the
// notes and a summary line. A small plan (or -details) shows one block per
// change with its field-level differences and reason; a large one starts
// with the summary and the counts per mapping and shows one line per
// object, grouped by mapping, action and reason.
func renderPlanWith(w io.Writer, p *reconcile.Plan, paint painter, o renderOptions) {
	detailed := o.details || len(p.Changes) <= detailedPlanMax
	if !detailed {
		fmt.Fprintf(w, "%s %s.\n\n", paint(colorBold, "Plan:"), summaryLine(p.Summary))
		renderCounts(w, p)
		fmt.Fprintf(w, "pandasync will perform the following actions (%s; one line each, fields with -details):\n\n", count(len(p.Changes), "change"))
		renderCompact(w, p.Changes, paint)
	} else if len(p.Changes) > 0 {
		fmt.Fprintf(w, "pandasync will perform the following actions:\n\n")
		for _, c := range p.Changes {
			renderChange(w, c, paint, "")
		}
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
	notes := collapseNotes(p.Notes, o.details)
	for _, n := range notes {
		fmt.Fprintf(w, "%s %s\n", paint(colorDim, "note:"), n)
	}
	if len(notes) > 0 {
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
			fmt.Fprintf(w, "%s Asset Panda matches Active Directory for %s %s.\n", paint(colorGreen+";"+colorBold, "No changes."), plural(len(p.Mappings), "mapping"), strings.Join(p.Mappings, ", "))
			return
		}
		fmt.Fprintf(w, "%s Asset Panda matches Active Directory.\n", paint(colorGreen+";"+colorBold, "No changes."))
		return
	}
	fmt.Fprintf(w, "%s %s.\n", paint(colorBold, "Plan:"), summaryLine(p.Summary))
}

// mappingCounts are one mapping's changes and blocked changes by action.
type mappingCounts struct {
	mapping string
	kind    reconcile.Kind
	n       map[reconcile.Action]int
	blocked int
}

// renderCounts writes a table of the changes per mapping and action.
func renderCounts(w io.Writer, p *reconcile.Plan) {
	var rows []*mappingCounts
	by := map[string]*mappingCounts{}
	row := func(c reconcile.Change) *mappingCounts {
		r, ok := by[c.Mapping]
		if !ok {
			r = &mappingCounts{mapping: c.Mapping, kind: c.Kind, n: map[reconcile.Action]int{}}
			by[c.Mapping] = r
			rows = append(rows, r)
		}
		return r
	}
	for _, c := range p.Changes {
		row(c).n[c.Action]++
	}
	for _, b := range p.Blocked {
		row(b.Change).blocked++
	}
	width := len("mapping")
	for _, r := range rows {
		width = max(width, len(r.mapping))
	}
	cell := func(n int) string {
		if n == 0 {
			return "-"
		}
		return strconv.Itoa(n)
	}
	fmt.Fprintf(w, "  %-*s  %-6s  %6s  %6s  %10s  %10s  %7s\n", width, "mapping", "kind", "create", "update", "deactivate", "reactivate", "blocked")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %-6s  %6s  %6s  %10s  %10s  %7s\n", width, r.mapping, r.kind,
			cell(r.n[reconcile.ActionCreate]), cell(r.n[reconcile.ActionUpdate]), cell(r.n[reconcile.ActionDeactivate]),
			cell(r.n[reconcile.ActionReactivate]), cell(r.blocked))
	}
	fmt.Fprintln(w)
}

// renderCompact writes one line per change, grouped by mapping and action
// (a header each) and, within them, by reason (stated once).
func renderCompact(w io.Writer, changes []reconcile.Change, paint painter) {
	for i := 0; i < len(changes); {
		j := i
		for j < len(changes) && changes[j].Mapping == changes[i].Mapping && changes[j].Action == changes[i].Action {
			j++
		}
		group := changes[i:j]
		c := group[0]
		fmt.Fprintf(w, "  %s %s → %s: %s\n", paint(actionColor(c.Action), c.Action.Symbol()), paint(colorBold, c.Mapping), targetString(c.Target),
			count(len(group), string(c.Kind))+" to "+string(c.Action))
		var reasons []string
		byReason := map[string][]reconcile.Change{}
		for _, c := range group {
			if _, ok := byReason[c.Reason]; !ok {
				reasons = append(reasons, c.Reason)
			}
			byReason[c.Reason] = append(byReason[c.Reason], c)
		}
		for _, r := range reasons {
			if r != "" {
				fmt.Fprintf(w, "    %s\n", paint(colorDim, "reason: "+r))
			}
			for _, c := range byReason[r] {
				fmt.Fprintf(w, "      %s %s%s\n", paint(actionColor(c.Action), c.Action.Symbol()), shortLabel(c), changedFields(c))
			}
		}
		fmt.Fprintln(w)
		i = j
	}
}

// shortLabel names an object by its name, or its key when it has none.
func shortLabel(c reconcile.Change) string {
	if c.Name != "" {
		return c.Name
	}
	return c.Key
}

// changedFields lists the fields an update changes: " (Email, Title)".
func changedFields(c reconcile.Change) string {
	if c.Action != reconcile.ActionUpdate || len(c.After) == 0 {
		return ""
	}
	return " (" + strings.Join(sortedKeys(c.After), ", ") + ")"
}

// collapseNotes merges notes that say the same about different people
// ("a@x is in mappings …", "b@x is in mappings …") into one line with a
// count: "2 people (a@x, b@x) are in mappings …". Without all, at most a
// few names are listed.
func collapseNotes(notes []string, all bool) []string {
	const shownNames = 3
	var order []string
	subjects := map[string][]string{}
	for _, n := range notes {
		subject, rest, ok := strings.Cut(n, " ")
		if !ok || !strings.Contains(subject, "@") {
			subject, rest = "", n
		}
		if _, seen := subjects[rest]; !seen {
			order = append(order, rest)
		}
		subjects[rest] = append(subjects[rest], subject)
	}
	var out []string
	for _, rest := range order {
		who := subjects[rest]
		if len(who) == 1 {
			if who[0] == "" {
				out = append(out, rest)
			} else {
				out = append(out, who[0]+" "+rest)
			}
			continue
		}
		if who[0] == "" {
			out = append(out, fmt.Sprintf("%s (%d times)", rest, len(who)))
			continue
		}
		names := slices.Clone(who)
		slices.Sort(names)
		more := ""
		if !all && len(names) > shownNames {
			names, more = names[:shownNames], fmt.Sprintf(" and %d more", len(who)-shownNames)
		}
		verb, ok := strings.CutPrefix(rest, "is ")
		if ok {
			verb = "are " + verb
		} else {
			verb = rest
		}
		out = append(out, fmt.Sprintf("%d people (%s%s) %s", len(who), strings.Join(names, ", "), more, verb))
	}
	return out
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

// plural renders "problem" or "problems".
func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
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

// renderChange writes one change block. The header names the object,
// the block its key, so that a SID is printed once.
func renderChange(w io.Writer, c reconcile.Change, paint painter, indent string) {
	col := actionColor(c.Action)
	fmt.Fprintf(w, "%s  %s %s %s will be %s\n", indent, paint(colorBold, "#"), c.Kind, shortLabel(c), verb(c.Action))
	fmt.Fprintf(w, "%s    %s\n", indent, paint(colorDim, fmt.Sprintf("mapping %s → %s", c.Mapping, targetString(c.Target))))
	if c.Reason != "" {
		fmt.Fprintf(w, "%s    %s\n", indent, paint(colorDim, "reason: "+c.Reason))
	}
	if c.Name != "" && c.Name != c.Key {
		fmt.Fprintf(w, "%s  %s %s %s {\n", indent, paint(col, c.Action.Symbol()), c.Kind, strconv.Quote(c.Key))
	} else {
		fmt.Fprintf(w, "%s  %s %s {\n", indent, paint(col, c.Action.Symbol()), c.Kind)
	}
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
