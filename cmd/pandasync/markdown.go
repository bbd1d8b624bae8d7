package main

import (
	"fmt"
	"html"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pandasync/pandasync/reconcile"
)

// markdownLimit is the most bytes a Markdown plan takes: under GitHub's
// 65,536-character limit on a comment body, with room for a CI job to add a
// line of its own. Bytes are never fewer than characters, so the body is
// under the limit in either count.
const markdownLimit = 60000

// markdownMarker opens the hidden HTML comment that carries the plan's
// digest. A CI job finds its own earlier comment by it (to update that one
// comment rather than add another) and reads the digest that was reviewed
// from it.
const markdownMarker = "<!-- pandasync-plan"

// markdownOptions say where the full plan is, for the comment's footer,
// and how large the comment may be.
type markdownOptions struct {
	// PlanFile is the saved plan the Markdown was rendered from or saved
	// to; empty when there is none.
	PlanFile string
	// PlanURL links to where the full plan can be found, such as the CI
	// run that holds the plan file as an artifact.
	PlanURL string
	// Limit is the most bytes the Markdown may take; 0 means
	// markdownLimit.
	Limit int
}

// renderMarkdown writes a plan as a pull-request comment: a title and one
// count line; blocked changes, problems, deactivations, role changes and
// cleared fields first, under a warning; a table of the changes of each
// mapping, with the field-level differences in a <details> section per
// mapping; and a hidden marker with the plan's digest. It never writes
// more than o.Limit bytes: a plan too large for that keeps the counts and,
// in that order, every blocked change, problem and take-away and as many
// of the other changes as fit, lists how many it left out, drops the field
// details and says where the full plan is.
func renderMarkdown(w io.Writer, p *reconcile.Plan, o markdownOptions) error {
	_, err := io.WriteString(w, markdownPlan(p, o))
	return err
}

// markdownPlan is the comment renderMarkdown writes.
func markdownPlan(p *reconcile.Plan, o markdownOptions) string {
	limit := o.Limit
	if limit <= 0 {
		limit = markdownLimit
	}
	d := newMDDoc(p, o)
	if s := d.render(mdFull, nil); len(s) <= limit {
		return s
	}
	if s := d.render(mdNoDetails, nil); len(s) <= limit {
		return s
	}
	// Keep as many rows as fit, most important first. The estimate of a
	// row's cost is an upper bound, but the fixed parts (numbers in "and N
	// more") may shift by a few bytes: shrink the budget until it fits.
	budget := limit
	for range 8 {
		s := d.render(mdCompact, d.fit(budget-len(d.render(mdCompact, map[*mdTable]int{}))))
		if len(s) <= limit {
			return s
		}
		budget -= len(s) - limit + 64
	}
	// Even the headings of the sections do not fit (thousands of
	// mappings or limits): the counts, the warning and where the full plan
	// is.
	return d.minimal()
}

// mdMode is how much a rendering shows.
type mdMode int

const (
	mdFull      mdMode = iota // every row in full, with field details
	mdNoDetails               // every row in full, no field details
	mdCompact                 // short rows, as many as fit, no field details
)

// mdTable is a table of rows of one section, with the text that introduces
// it. Its rows are rendered in full or compact.
type mdTable struct {
	intro            string   // the text above the table ("" for none)
	header           string   // the header and delimiter rows
	compactHeader    string   // the same, for compact rows
	rows, compact    []string // one line each, with the newline
	moreNoun         string   // "changes", "problems"
	priority         int      // lower fills first
	skippedElsewhere int      // rows listed in another section, named under the table
	mappingColumn    bool     // a table of changes: the mapping is the first column
}

// newChangeTable makes a table of changes (see addChange), with a Mapping
// column first when the changes are of several mappings.
func newChangeTable(noun string, priority int, mappingColumn bool) *mdTable {
	full, compact := []string{"Change", "Person", "Fields", "Reason"}, []string{"Change", "Person", "Reason"}
	if mappingColumn {
		full, compact = append([]string{"Mapping"}, full...), append([]string{"Mapping"}, compact...)
	}
	return &mdTable{moreNoun: noun, priority: priority, mappingColumn: mappingColumn,
		header: mdHeader(full...), compactHeader: mdHeader(compact...)}
}

// addChange adds a change's rows: in full with its fields and reason, and
// compact with its reason code.
func (t *mdTable) addChange(c reconcile.Change) {
	full := []string{mdAction(c), mdPerson(c, true), mdFieldsCell(c), mdText(c.Reason)}
	compact := []string{mdAction(c), mdPerson(c, false), mdCode(string(c.ReasonCode))}
	if t.mappingColumn {
		full, compact = append([]string{mdCode(c.Mapping)}, full...), append([]string{mdCode(c.Mapping)}, compact...)
	}
	t.rows = append(t.rows, mdRow(full...))
	t.compact = append(t.compact, mdRow(compact...))
}

// mdHeader is a table's header and delimiter rows.
func mdHeader(cols ...string) string {
	return mdRow(cols...) + "|" + strings.Repeat("---|", len(cols)) + "\n"
}

// mdRow is one table row of cells already escaped.
func mdRow(cells ...string) string {
	return "| " + strings.Join(cells, " | ") + " |\n"
}

// cost is what showing row i adds in compact mode: the row, and the header
// with the first row.
func (t *mdTable) cost(i int) int {
	c := len(t.compact[i])
	if i == 0 {
		c += len(t.compactHeader)
	}
	return c
}

func (t *mdTable) write(b *strings.Builder, mode mdMode, keep map[*mdTable]int) {
	rows, header := t.rows, t.header
	if mode == mdCompact {
		rows, header = t.compact, t.compactHeader
	}
	n := len(rows)
	if keep != nil {
		n = min(keep[t], n)
	}
	if t.intro != "" {
		b.WriteString(t.intro)
	}
	if n > 0 {
		b.WriteString(header)
		for _, r := range rows[:n] {
			b.WriteString(r)
		}
	}
	if more := len(rows) - n; more > 0 {
		if n > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "…and %d more %s, left out to fit one comment.\n", more, plural(more, t.moreNoun))
	}
	if t.skippedElsewhere > 0 {
		if n > 0 || len(rows) > n {
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "%s of this mapping %s listed above, under the warning.\n",
			capitalize(count(t.skippedElsewhere, "other change")), isAre(t.skippedElsewhere))
	}
	b.WriteString("\n")
}

// mdMapping is one mapping's part of the plan.
type mdMapping struct {
	name    string
	target  string
	summary reconcile.Summary
	table   *mdTable
	details string // the field-level differences, a ```diff block
	changes int
}

// mdDoc is a plan laid out for Markdown.
type mdDoc struct {
	p        *reconcile.Plan
	o        markdownOptions
	head     string     // marker, title, count line, warning
	blocked  []*mdTable // one per limit or guard that stopped changes
	problems *mdTable
	taken    *mdTable
	mappings []*mdMapping
	notes    string
	footer   string
}

func newMDDoc(p *reconcile.Plan, o markdownOptions) *mdDoc {
	d := &mdDoc{p: p, o: o}
	var h strings.Builder
	fmt.Fprintf(&h, "%s digest=%q -->\n", markdownMarker, p.Digest)
	title := "pandasync plan"
	if p.Selected {
		title += " for " + strings.Join(quoteEach(p.Mappings), ", ")
	}
	fmt.Fprintf(&h, "## %s\n\n", mdText(title))
	if p.InSync() {
		h.WriteString("**No changes.** Asset Panda matches Active Directory.\n\n")
	} else {
		fmt.Fprintf(&h, "**Plan: %s.**\n\n", summaryLine(p.Summary))
	}

	taken := takenAway(p.Changes)
	var warn []string
	if n := len(p.Blocked); n > 0 {
		warn = append(warn, count(n, "change")+" blocked by a safety limit or guard, never applied")
	}
	if n := len(p.Errors); n > 0 {
		warn = append(warn, count(n, "problem")+" to fix; what "+itThey(n)+" concern"+sIfOne(n)+" is left as it is")
	}
	var deact, roles, clears int
	for _, c := range taken {
		switch {
		case c.Action == reconcile.ActionDeactivate:
			deact++
		case c.TakesAway().Role:
			roles++
		default:
			clears++
		}
	}
	var take []string
	if deact > 0 {
		take = append(take, count(deact, "deactivation"))
	}
	if roles > 0 {
		take = append(take, count(roles, "role change"))
	}
	if clears > 0 {
		take = append(take, count(clears, "change")+" clearing a field that had a value")
	}
	if len(take) > 0 {
		warn = append(warn, "this plan takes something away: "+strings.Join(take, ", "))
	}
	if p.Suspended {
		warn = append(warn, "the SyncPolicy suspends writes: this plan cannot be applied")
	}
	if len(p.Overrides) > 0 {
		var flags []string
		for _, ov := range p.Overrides {
			flags = append(flags, "`"+reconcile.OverrideFlag(ov)+"`")
		}
		warn = append(warn, "limits lifted for this plan only: "+strings.Join(flags, ", "))
	} else if p.LimitsOverridden {
		warn = append(warn, "every limit is lifted for this plan only")
	}
	if len(warn) > 0 {
		h.WriteString("> [!WARNING]\n> **Review these first:**\n")
		for _, s := range warn {
			fmt.Fprintf(&h, "> - %s.\n", s)
		}
		h.WriteString("\n")
	}
	d.head = h.String()

	d.blocked = blockedTables(p.Blocked)
	d.problems = problemTable(p.Errors)
	d.taken = takenTable(taken)
	d.mappings = mappingParts(p, taken)
	if len(p.Notes) > 0 {
		var nb strings.Builder
		fmt.Fprintf(&nb, "<details><summary>%s</summary>\n\n", count(len(p.Notes), "note"))
		for _, n := range p.Notes {
			fmt.Fprintf(&nb, "- %s\n", mdText(n))
		}
		nb.WriteString("\n</details>\n\n")
		d.notes = nb.String()
	}
	d.footer = d.footerText()
	return d
}

// tables lists the tables in the order they fill when space is short.
func (d *mdDoc) tables() []*mdTable {
	ts := append([]*mdTable{}, d.blocked...)
	for _, t := range []*mdTable{d.problems, d.taken} {
		if t != nil {
			ts = append(ts, t)
		}
	}
	for _, m := range d.mappings {
		ts = append(ts, m.table)
	}
	return ts
}

// fit chooses how many rows of each table to show in compact mode within
// budget bytes: the tables of lower priority fill first, in order, and the
// mappings' tables share what is left row by row, so every mapping shows
// some of its changes.
func (d *mdDoc) fit(budget int) map[*mdTable]int {
	keep := map[*mdTable]int{}
	ts := d.tables()
	byPriority := map[int][]*mdTable{}
	var prios []int
	for _, t := range ts {
		if _, ok := byPriority[t.priority]; !ok {
			prios = append(prios, t.priority)
		}
		byPriority[t.priority] = append(byPriority[t.priority], t)
	}
	sort.Ints(prios)
	for _, pr := range prios {
		group := byPriority[pr]
		if pr < mdPriorityOthers {
			for _, t := range group {
				for keep[t] < len(t.compact) && t.cost(keep[t]) <= budget {
					budget -= t.cost(keep[t])
					keep[t]++
				}
			}
			continue
		}
		for progress := true; progress; {
			progress = false
			for _, t := range group {
				if keep[t] < len(t.compact) && t.cost(keep[t]) <= budget {
					budget -= t.cost(keep[t])
					keep[t]++
					progress = true
				}
			}
		}
	}
	return keep
}

// The fill order of the tables.
const (
	mdPriorityBlocked = iota
	mdPriorityProblems
	mdPriorityTaken
	mdPriorityOthers
)

func (d *mdDoc) render(mode mdMode, keep map[*mdTable]int) string {
	var b strings.Builder
	b.WriteString(d.head)
	if mode == mdCompact {
		b.WriteString("> [!NOTE]\n> This plan is too large for one comment: it shows the counts, then the blocked changes, problems and what is taken away, then as many of the other changes as fit, without field details. " +
			d.whereFull() + "\n\n")
	}
	if len(d.blocked) > 0 {
		fmt.Fprintf(&b, "### Blocked: %s, never applied\n\n", count(len(d.p.Blocked), "change"))
		for _, t := range d.blocked {
			t.write(&b, mode, keep)
		}
	}
	if d.problems != nil {
		fmt.Fprintf(&b, "### %s\n\n", capitalize(count(len(d.p.Errors), "problem")))
		d.problems.write(&b, mode, keep)
	}
	if d.taken != nil {
		fmt.Fprintf(&b, "### Taken away: %s\n\n", count(len(d.taken.rows), "change"))
		d.taken.write(&b, mode, keep)
	}
	if len(d.mappings) > 0 {
		b.WriteString("### Changes by mapping\n\n")
		b.WriteString("| Mapping | Target | Create | Update | Deactivate | Reactivate | Blocked |\n|---|---|--:|--:|--:|--:|--:|\n")
		for _, m := range d.mappings {
			s := m.summary
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d |\n", mdCode(m.name), mdText(m.target), s.Create, s.Update, s.Deactivate, s.Reactivate, s.Blocked)
		}
		b.WriteString("\n")
		for _, m := range d.mappings {
			if m.changes == 0 {
				continue
			}
			fmt.Fprintf(&b, "#### %s → %s\n\n", mdCode(m.name), mdText(m.target))
			m.table.write(&b, mode, keep)
			if mode == mdFull && m.details != "" {
				fmt.Fprintf(&b, "<details><summary>Field changes of %s (%d)</summary>\n\n%s\n</details>\n\n", html.EscapeString(m.name), m.changes, m.details)
			}
		}
	}
	if mode == mdFull {
		b.WriteString(d.notes)
	}
	b.WriteString(d.footer)
	return b.String()
}

// minimal is the smallest rendering: the head, a note and the footer.
func (d *mdDoc) minimal() string {
	return d.head + "> [!NOTE]\n> This plan is too large to show here. " + d.whereFull() + "\n\n" + d.footer
}

// whereFull says where the full plan is.
func (d *mdDoc) whereFull() string {
	var where []string
	if d.o.PlanFile != "" {
		where = append(where, "`pandasync show "+shellQuote(d.o.PlanFile)+"`")
	}
	if d.o.PlanURL != "" {
		where = append(where, "[the CI run]("+mdURL(d.o.PlanURL)+")")
	}
	if len(where) == 0 {
		return "The full plan: run `pandasync plan` with the same spec."
	}
	return "The full plan: " + strings.Join(where, ", or ") + "."
}

func (d *mdDoc) footerText() string {
	var b strings.Builder
	b.WriteString("---\n\n")
	fmt.Fprintf(&b, "Plan digest `%s`", d.p.Digest)
	if d.o.PlanFile != "" && d.p.HasChanges() {
		fmt.Fprintf(&b, "; apply exactly this plan with `pandasync apply -require-digest %s %s`", d.p.Digest, shellQuote(d.o.PlanFile))
	}
	b.WriteString(".")
	if !d.p.InSync() {
		b.WriteString(" " + d.whereFull())
	}
	b.WriteString("\n")
	return b.String()
}

// takenAway returns the changes that take something away from a person,
// as the planner's limits count them (reconcile.Change.TakesAway).
func takenAway(cs []reconcile.Change) []reconcile.Change {
	var out []reconcile.Change
	for _, c := range cs {
		if c.TakesAway().Any() {
			out = append(out, c)
		}
	}
	return out
}

func blockedTables(bs []reconcile.Blocked) []*mdTable {
	var ts []*mdTable
	index := map[string]*mdTable{}
	for _, bl := range bs {
		k := bl.Mapping + "\x00" + bl.Limit + "\x00" + bl.Detail
		t := index[k]
		if t == nil {
			intro := fmt.Sprintf("**%s: %s**: %s\n", mdCode(bl.Mapping), mdText(bl.Limit), mdText(bl.Detail))
			if bl.Fix != "" {
				intro += "To proceed: " + mdText(bl.Fix) + "\n"
			}
			t = newChangeTable("blocked change", mdPriorityBlocked, false)
			t.intro = intro + "\n"
			index[k] = t
			ts = append(ts, t)
		}
		t.addChange(bl.Change)
	}
	return ts
}

func problemTable(ps []reconcile.Problem) *mdTable {
	if len(ps) == 0 {
		return nil
	}
	t := &mdTable{moreNoun: "problem", priority: mdPriorityProblems,
		header:        mdHeader("Mapping", "Object", "Problem", "Fix"),
		compactHeader: mdHeader("Mapping", "Object", "Problem")}
	for _, e := range ps {
		obj := e.Object
		if obj == "" {
			obj = e.Key
		}
		objCell := ""
		if obj != "" {
			objCell = mdCode(obj)
		}
		mapping := ""
		if e.Mapping != "" {
			mapping = mdCode(e.Mapping)
		}
		t.rows = append(t.rows, mdRow(mapping, objCell, mdText(e.Message), mdText(e.Fix)))
		t.compact = append(t.compact, mdRow(mapping, objCell, mdCode(string(e.Code))))
	}
	return t
}

func takenTable(cs []reconcile.Change) *mdTable {
	if len(cs) == 0 {
		return nil
	}
	t := newChangeTable("change", mdPriorityTaken, true)
	for _, c := range cs {
		t.addChange(c)
	}
	return t
}

// mappingParts groups the plan by mapping, in the plan's order of mappings
// (then in order of first appearance), listing in each table the changes
// not already listed under the warning.
func mappingParts(p *reconcile.Plan, taken []reconcile.Change) []*mdMapping {
	isTaken := map[changeKey]bool{}
	for _, c := range taken {
		isTaken[keyOf(c)] = true
	}
	byName := map[string]*mdMapping{}
	var out []*mdMapping
	get := func(name string, tgt reconcile.Target) *mdMapping {
		m := byName[name]
		if m == nil {
			m = &mdMapping{name: name, target: targetString(tgt), table: newChangeTable("change", mdPriorityOthers, false)}
			byName[name] = m
			out = append(out, m)
		}
		return m
	}
	details := map[string]*strings.Builder{}
	for _, c := range p.Changes {
		m := get(c.Mapping, c.Target)
		m.changes++
		switch c.Action {
		case reconcile.ActionCreate:
			m.summary.Create++
		case reconcile.ActionUpdate:
			m.summary.Update++
		case reconcile.ActionDeactivate:
			m.summary.Deactivate++
		case reconcile.ActionReactivate:
			m.summary.Reactivate++
		}
		if isTaken[keyOf(c)] {
			m.table.skippedElsewhere++
		} else {
			m.table.addChange(c)
		}
		db := details[c.Mapping]
		if db == nil {
			db = &strings.Builder{}
			details[c.Mapping] = db
		}
		writeDiffChange(db, c)
	}
	for _, bl := range p.Blocked {
		get(bl.Mapping, bl.Target).summary.Blocked++
	}
	for _, m := range out {
		if db := details[m.name]; db != nil {
			m.details = fence(db.String(), "diff")
		}
	}
	rank := func(name string) int {
		if i := slices.Index(p.Mappings, name); i >= 0 {
			return i
		}
		return len(p.Mappings)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].name) < rank(out[j].name) })
	return out
}

// changeKey identifies a change within a plan.
type changeKey struct {
	mapping, key string
	kind         reconcile.Kind
	action       reconcile.Action
	target       reconcile.Target
}

func keyOf(c reconcile.Change) changeKey {
	return changeKey{c.Mapping, c.Key, c.Kind, c.Action, c.Target}
}

// writeDiffChange writes one change for a ```diff block: the object, then
// its fields, removed values with "-" and new ones with "+".
func writeDiffChange(b *strings.Builder, c reconcile.Change) {
	mark := map[reconcile.Action]string{reconcile.ActionCreate: "+", reconcile.ActionUpdate: "!", reconcile.ActionDeactivate: "-", reconcile.ActionReactivate: "+"}[c.Action]
	fmt.Fprintf(b, "%s %s %s %s\n", mark, c.Action, c.Kind, oneLine(label(c)))
	for _, k := range fieldNames(c) {
		before, inBefore := c.Before[k]
		after, inAfter := c.After[k]
		if c.Before != nil && inBefore {
			fmt.Fprintf(b, "-     %s = %s\n", oneLine(k), strconv.Quote(before))
		}
		if inAfter {
			fmt.Fprintf(b, "+     %s = %s\n", oneLine(k), strconv.Quote(after))
		}
	}
	b.WriteString("\n")
}

// fieldNames lists the fields a change touches, sorted.
func fieldNames(c reconcile.Change) []string { return unionKeys(c.Before, c.After) }

// unionKeys lists the keys of before and after, sorted.
func unionKeys(before, after map[string]string) []string {
	names := map[string]string{}
	for k := range before {
		names[k] = ""
	}
	for k := range after {
		names[k] = ""
	}
	return sortedKeys(names)
}

// mdAction is the action cell: "`-` deactivate user".
func mdAction(c reconcile.Change) string {
	return "`" + c.Action.Symbol() + "` " + string(c.Action) + " " + string(c.Kind)
}

// mdPerson is the person cell: the name in code, with the SID after it in
// full rows.
func mdPerson(c reconcile.Change, withKey bool) string {
	if c.Name == "" || c.Name == c.Key {
		return mdCode(c.Key)
	}
	if withKey {
		return mdCode(c.Name) + " <sub>" + mdCode(c.Key) + "</sub>"
	}
	return mdCode(c.Name)
}

// mdFieldsCell lists the fields of an update, "Title: `a` → `b`", or how
// many fields a create sets.
func mdFieldsCell(c reconcile.Change) string {
	if c.Before == nil {
		return count(len(c.After), "field")
	}
	var parts []string
	for _, k := range fieldNames(c) {
		before, after := c.Before[k], c.After[k]
		parts = append(parts, mdText(k)+": "+mdValue(before)+" → "+mdValue(after))
	}
	return strings.Join(parts, "<br>")
}

func mdValue(s string) string {
	if s == "" {
		return "*empty*"
	}
	return mdCode(s)
}

// mdCode renders s as inline code safe inside a table cell: one line, pipes
// escaped, fenced with more backticks than s holds in a row.
func mdCode(s string) string {
	s = oneLine(s)
	longest := longestBacktickRun(s)
	s = strings.ReplaceAll(s, "|", `\|`)
	tick := strings.Repeat("`", longest+1)
	if longest > 0 || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") {
		return tick + " " + s + " " + tick
	}
	return tick + s + tick
}

// mdText escapes s as Markdown text for a table cell or a line: one line,
// with Markdown and HTML punctuation escaped and a zero-width space after
// an "@" that would mention a GitHub user or team.
func mdText(s string) string {
	s = oneLine(s)
	var b strings.Builder
	prev := ' '
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '|', '#', '~', '!':
			b.WriteRune('\\')
			b.WriteRune(r)
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '@':
			b.WriteRune(r)
			if !isWordRune(prev) {
				b.WriteRune('\u200b')
			}
		default:
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

func isWordRune(r rune) bool {
	return r == '_' || r == '-' || r == '.' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
}

// mdURL makes a link target safe: no spaces, parentheses or angle brackets.
func mdURL(s string) string {
	r := strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E", "\n", "", "\r", "")
	return r.Replace(s)
}

// fence wraps s in a fenced code block longer than any backtick run in it.
func fence(s, lang string) string {
	f := strings.Repeat("`", max(3, longestBacktickRun(s)+1))
	return f + lang + "\n" + strings.TrimRight(s, "\n") + "\n" + f + "\n"
}

// longestBacktickRun is the most backticks s holds in a row.
func longestBacktickRun(s string) int {
	run, longest := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// oneLine replaces line breaks and other control characters with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

func quoteEach(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func itThey(n int) string {
	if n == 1 {
		return "it"
	}
	return "they"
}

func sIfOne(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}
