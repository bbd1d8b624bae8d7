package ui

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
)

// funcs are the templates' helpers. None of them returns markup: every
// value they produce is escaped by html/template.
func funcs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.Local().Format("2006-01-02 15:04:05 MST")
		},
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return relative(now().Sub(t))
		},
		"duration": func(sec float64) string {
			d := time.Duration(sec * float64(time.Second))
			switch {
			case d < time.Second:
				return d.Round(time.Millisecond).String()
			case d < time.Minute:
				return d.Round(100 * time.Millisecond).String()
			}
			return d.Round(time.Second).String()
		},
		"symbol":    func(a reconcile.Action) string { return a.Symbol() },
		"passURL":   passURL,
		"personURL": personURL,
		"fields":    fieldRows,
		"join":      strings.Join,
		"plural":    plural,
		"path": func(m reconcile.Membership) string {
			if len(m.Via) <= 1 {
				return m.Group
			}
			return m.Group + " → " + strings.Join(m.Via[1:], " → ")
		},
		"stateClass":   stateClass,
		"outcomeClass": outcomeClass,
	}
}

func relative(d time.Duration) string {
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		s = fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func passURL(id string) string { return "/passes/" + url.PathEscape(id) }

// personURL links to the People page for an object key (a SID) or a name.
func personURL(q string) string { return "/explain?q=" + url.QueryEscape(q) }

// stateClass is the CSS class of a loop state: ok, warn or bad.
func stateClass(s loop.State) string {
	switch s {
	case loop.StateIdle, loop.StateRunning:
		return "ok"
	case loop.StateBackoff, loop.StateStarting:
		return "warn"
	}
	return "bad"
}

func outcomeClass(o loop.Outcome) string {
	switch {
	case o.Green():
		return "ok"
	case o == loop.OutcomeProblems, o == loop.OutcomeStopped:
		return "warn"
	case o == "":
		return "warn"
	}
	return "bad"
}

// fieldRow is one field of a change: before → after.
type fieldRow struct {
	Field, Before, After string
	HadBefore, Cleared   bool
}

func fieldRows(before, after map[string]string) []fieldRow {
	names := make([]string, 0, len(after)+len(before))
	for k := range after {
		names = append(names, k)
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	rows := make([]fieldRow, len(names))
	for i, n := range names {
		b, had := before[n]
		rows[i] = fieldRow{Field: n, Before: b, After: after[n], HadBefore: had, Cleared: had && b != "" && after[n] == ""}
	}
	return rows
}

// blockedGroup is the blocked changes of one mapping and limit, with what
// approves them.
type blockedGroup struct {
	Mapping, Limit, Detail, Fix string
	// Commands approve them once, when Flag is set.
	Flag     string
	Commands []string
	Changes  []reconcile.Blocked
	More     int
}

const maxShown = 20

func groupBlocked(bs []reconcile.Blocked, specPaths []string, stateDir string) []blockedGroup {
	var out []blockedGroup
	idx := map[string]int{}
	for _, b := range bs {
		k := b.Mapping + "\x00" + b.Limit + "\x00" + b.Detail
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			g := blockedGroup{Mapping: b.Mapping, Limit: b.Limit, Detail: b.Detail, Fix: b.Fix, Flag: b.OverrideFlag()}
			if g.Flag != "" {
				g.Commands = approveCommands(specPaths, stateDir, b.Mapping, g.Flag)
			}
			out = append(out, g)
		}
		if len(out[i].Changes) < maxShown {
			out[i].Changes = append(out[i].Changes, b)
		} else {
			out[i].More++
		}
	}
	return out
}

// specPaths are the -f paths the commands the pages show use: run's, or
// else the files of the spec set in force (a checkout of -git).
func (h *handler) specPaths() []string {
	if len(h.opts.SpecPaths) > 0 {
		return h.opts.SpecPaths
	}
	if set := h.src.Spec(); set != nil {
		return set.Files
	}
	return nil
}

// approveCommands are the commands that apply a mapping's blocked changes
// once: a plan made with the override, reviewed, then applied. apply takes
// the state directory's writer lock, which this run holds.
func approveCommands(specPaths []string, stateDir, mapping, flag string) []string {
	global := "pandasync"
	for _, p := range specPaths {
		global += " -f " + shellQuote(p)
	}
	plan := fmt.Sprintf("%s plan -mapping %s %s -out approve.plan", global, shellQuote(mapping), flag)
	apply := global + " apply"
	if stateDir != "" {
		apply += " -state-dir " + shellQuote(stateDir)
	}
	return []string{plan, apply + " approve.plan"}
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// problemGroups sorts a pass's problems into what the overview shows.
type problemGroups struct {
	Unresolved, Conflicts, Other []reconcile.Problem
}

func sortProblems(ps []reconcile.Problem) problemGroups {
	var g problemGroups
	for _, p := range ps {
		c := string(p.Code)
		switch {
		case strings.HasPrefix(c, "unresolved_"):
			g.Unresolved = append(g.Unresolved, p)
		case strings.HasPrefix(c, "conflict_") || p.Code == reconcile.ProblemEmailTaken:
			g.Conflicts = append(g.Conflicts, p)
		default:
			g.Other = append(g.Other, p)
		}
	}
	return g
}

// mappingRow is one row of the overview's mapping table.
type mappingRow struct {
	Name, Kind, Target, Role, Group string
	Nested                          bool
	// Scope is the latest pass's view of it; nil before one was planned.
	Scope  *loop.MappingReport
	SeenIn string // the pass id Scope is from
	SeenAt time.Time
	// Last is the newest pass that applied or failed changes of it.
	Last     *loop.MappingReport
	LastPass string
	LastAt   time.Time
}

type overviewPage struct {
	Status   loop.Status
	Synced   bool
	Needs    bool
	Blocked  []blockedGroup
	Problems problemGroups
	Failed   []loop.ChangeResult
	// LastFailed is set when the last pass failed as a whole.
	LastFailed bool
	Mappings   []mappingRow
	Recent     []recentChange
}

// recentChange is an applied change and the pass it is from.
type recentChange struct {
	loop.ChangeResult
	Pass string
	At   time.Time
}

func (h *handler) overview(w http.ResponseWriter, r *http.Request, v *viewer) {
	st := h.src.Status()
	passes := h.src.History().Passes()
	pg := overviewPage{Status: st, Synced: r.URL.Query().Get("sync") == "requested"}
	if lp := st.LastPass; lp != nil {
		pg.Blocked = groupBlocked(lp.Blocked, h.specPaths(), st.StateDir)
		pg.Problems = sortProblems(lp.Problems)
		pg.Failed = lp.Failed
		pg.LastFailed = lp.Outcome == loop.OutcomeFailed
	}
	pg.Needs = !st.Spec.Valid || pg.LastFailed || len(pg.Blocked) > 0 || len(pg.Problems.Unresolved)+len(pg.Problems.Conflicts)+len(pg.Problems.Other) > 0 || len(pg.Failed) > 0
	pg.Mappings = mappingRows(h.src, passes)
	for _, p := range passes {
		for i := len(p.Changes) - 1; i >= 0 && len(pg.Recent) < 10; i-- {
			pg.Recent = append(pg.Recent, recentChange{ChangeResult: p.Changes[i], Pass: p.ID, At: p.FinishedAt})
		}
		if len(pg.Recent) >= 10 {
			break
		}
	}
	h.render(w, r, http.StatusOK, "overview", layout{Title: "Overview", Nav: "overview", Viewer: v, State: st.State, Refresh: h.refresh(), Page: pg})
}

// mappingRows lists the mappings of the spec in force (else those of the
// latest pass), each with its latest scope and last changes.
func mappingRows(src Source, passes []*loop.PassReport) []mappingRow {
	var rows []mappingRow
	if set := src.Spec(); set != nil {
		for _, m := range set.UserMappings {
			rows = append(rows, mappingRow{Name: m.Metadata.Name, Kind: string(reconcile.KindUser), Target: m.Spec.Account + " / " + m.Spec.Module,
				Role: m.Spec.Role, Group: m.Spec.Group, Nested: m.Spec.IncludeNested()})
		}
		for _, m := range set.CollectionMappings {
			rows = append(rows, mappingRow{Name: m.Metadata.Name, Kind: string(reconcile.KindRecord),
				Target: m.Spec.Account + " / " + m.Spec.Module + " / " + m.Spec.Collection, Group: m.Spec.Group, Nested: m.Spec.IncludeNested()})
		}
	} else {
		for _, p := range passes {
			if len(p.Mappings) == 0 {
				continue
			}
			for _, m := range p.Mappings {
				t := m.Target.Account + " / " + m.Target.Module
				if m.Target.Collection != "" {
					t += " / " + m.Target.Collection
				}
				rows = append(rows, mappingRow{Name: m.Mapping, Kind: string(m.Kind), Target: t, Role: m.Role, Group: m.Group, Nested: m.Nested})
			}
			break
		}
	}
	for i := range rows {
		row := &rows[i]
		for _, p := range passes {
			for j := range p.Mappings {
				m := &p.Mappings[j]
				if m.Mapping != row.Name {
					continue
				}
				if row.Scope == nil {
					row.Scope, row.SeenIn, row.SeenAt = m, p.ID, p.FinishedAt
				}
				if row.Last == nil && (m.Applied.Total() > 0 || m.Failed > 0) {
					row.Last, row.LastPass, row.LastAt = m, p.ID, p.FinishedAt
				}
			}
			if row.Scope != nil && row.Last != nil {
				break
			}
		}
	}
	return rows
}

type passesPage struct {
	Passes   []*loop.PassReport
	Total    int
	Outcome  string
	Mapping  string
	Outcomes []loop.Outcome
	Names    []string
}

// concerns reports whether a pass did anything to, or found anything
// wrong with, a mapping.
func concerns(p *loop.PassReport, mapping string) bool {
	for _, m := range p.Mappings {
		if m.Mapping == mapping {
			return m.Applied.Total()+m.Failed+m.Blocked+m.Problems > 0
		}
	}
	for _, c := range p.Changes {
		if c.Mapping == mapping {
			return true
		}
	}
	for _, c := range p.Failed {
		if c.Mapping == mapping {
			return true
		}
	}
	for _, b := range p.Blocked {
		if b.Mapping == mapping {
			return true
		}
	}
	for _, e := range p.Problems {
		if e.Mapping == mapping {
			return true
		}
	}
	return false
}

func (h *handler) passes(w http.ResponseWriter, r *http.Request, v *viewer) {
	all := h.src.History().Passes()
	q := r.URL.Query()
	pg := passesPage{Total: len(all), Outcome: q.Get("outcome"), Mapping: q.Get("mapping"), Outcomes: loop.Outcomes}
	names := map[string]bool{}
	for _, p := range all {
		for _, m := range p.Mappings {
			names[m.Mapping] = true
		}
		if pg.Outcome != "" && string(p.Outcome) != pg.Outcome {
			continue
		}
		if pg.Mapping != "" && !concerns(p, pg.Mapping) {
			continue
		}
		pg.Passes = append(pg.Passes, p)
	}
	if set := h.src.Spec(); set != nil {
		for _, n := range set.MappingNames() {
			names[n] = true
		}
	}
	for n := range names {
		pg.Names = append(pg.Names, n)
	}
	sort.Strings(pg.Names)
	h.render(w, r, http.StatusOK, "passes", layout{Title: "Passes", Nav: "passes", Viewer: v, State: h.src.Status().State, Refresh: h.refresh(), Page: pg})
}

type passPage struct {
	P        *loop.PassReport
	Mapping  string
	Changes  []loop.ChangeResult
	Failed   []loop.ChangeResult
	Blocked  []blockedGroup
	Problems []reconcile.Problem
	Mappings []loop.MappingReport
}

func (h *handler) pass(w http.ResponseWriter, r *http.Request, v *viewer) {
	id := r.PathValue("id")
	p := h.src.History().Pass(id)
	if p == nil {
		h.render(w, r, http.StatusNotFound, "message", layout{Title: "No such pass", Nav: "passes", Viewer: v, State: h.src.Status().State,
			Page: struct{ Title, Text string }{"No such pass", "The history holds no pass " + id + ". It keeps the most recent passes only."}})
		return
	}
	mapping := r.URL.Query().Get("mapping")
	keep := func(m string) bool { return mapping == "" || m == mapping }
	pg := passPage{P: p, Mapping: mapping}
	for _, c := range p.Changes {
		if keep(c.Mapping) {
			pg.Changes = append(pg.Changes, c)
		}
	}
	for _, c := range p.Failed {
		if keep(c.Mapping) {
			pg.Failed = append(pg.Failed, c)
		}
	}
	var bs []reconcile.Blocked
	for _, b := range p.Blocked {
		if keep(b.Mapping) {
			bs = append(bs, b)
		}
	}
	pg.Blocked = groupBlocked(bs, h.specPaths(), h.src.Status().StateDir)
	for _, e := range p.Problems {
		if keep(e.Mapping) {
			pg.Problems = append(pg.Problems, e)
		}
	}
	for _, m := range p.Mappings {
		if keep(m.Mapping) {
			pg.Mappings = append(pg.Mappings, m)
		}
	}
	h.render(w, r, http.StatusOK, "pass", layout{Title: "Pass " + p.ID, Nav: "passes", Viewer: v, State: h.src.Status().State, Page: pg})
}

type explainPage struct {
	Q         string
	Ex        *Explained
	Error     string
	RetryAt   time.Time
	Off       bool
	Audit     []loop.AuditEntry
	AuditNote string
	Key       string
}

// maxAudit bounds the audit history shown for one person.
const maxAudit = 50

func (h *handler) explain(w http.ResponseWriter, r *http.Request, v *viewer) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	pg := explainPage{Q: q, Off: h.opts.Explainer == nil}
	status := http.StatusOK
	if q != "" && h.opts.Explainer != nil {
		ex, err := h.opts.Explainer.Explain(r.Context(), q)
		var rl *RateLimitedError
		switch {
		case errors.As(err, &rl):
			status = http.StatusTooManyRequests
			w.Header().Set("Retry-After", fmt.Sprint(max(int(time.Until(rl.RetryAt).Seconds())+1, 1)))
			pg.RetryAt = rl.RetryAt
		case err != nil:
			status = http.StatusBadGateway
			pg.Error = err.Error()
		default:
			pg.Ex = ex
		}
	}
	if q != "" {
		pg.Key = q
		if pg.Ex != nil && pg.Ex.Person != nil {
			pg.Key = pg.Ex.Person.SID
		}
		pg.Audit, pg.AuditNote = h.auditFor(pg.Key, q)
	}
	h.render(w, r, status, "explain", layout{Title: "People", Nav: "explain", Viewer: v, State: h.src.Status().State, Page: pg})
}

// auditFor reads the newest audit entries of an object: by its key (a
// SID), or by name or key when the question names no member.
func (h *handler) auditFor(key, q string) ([]loop.AuditEntry, string) {
	if h.opts.StateDir == "" {
		return nil, "this instance has no state directory"
	}
	es, skipped, err := loop.ReadAuditMatching(h.opts.StateDir, maxAudit, func(e *loop.AuditEntry) bool {
		return strings.EqualFold(e.Key, key) || strings.EqualFold(e.Key, q) || strings.EqualFold(e.Name, q)
	})
	if err != nil {
		h.log.Warn("status page: the audit log cannot be read", "error", err)
		return nil, "the audit log cannot be read (see the logs)"
	}
	slices.Reverse(es)
	note := ""
	if skipped > 0 {
		note = plural(skipped, "line") + " of the audit log could not be read"
	}
	return es, note
}
