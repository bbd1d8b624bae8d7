package spectest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/pandasync/pandasync/reconcile"
)

// Expected is the plan a case expects, as expected.yaml holds it:
//
//	changes:
//	- {mapping: it-users, kind: user, action: create, person: ada@corp.example.com}
//	- {mapping: people, kind: record, action: update, person: grace@corp.example.com, fields: {Title: Rear Admiral}}
//	blocked:
//	- {mapping: people, kind: record, action: deactivate, person: ken@corp.example.com, limit: maxDeactivationPercent}
//	problems:
//	- {mapping: people, code: member_no_key, object: "CN=Nomail,OU=People,DC=corp,DC=example,DC=com"}
//
// Every list is compared whole: a change, blocked change or problem the
// plan has and the file lacks fails the case, and so does one the file has
// and the plan lacks; a list left out expects none. Order does not matter.
type Expected struct {
	Changes  []ExpectedChange  `json:"changes"`
	Blocked  []ExpectedBlocked `json:"blocked"`
	Problems []ExpectedProblem `json:"problems"`
}

// ExpectedChange is a change as a case expects it.
type ExpectedChange struct {
	Mapping string `json:"mapping"`
	Kind    string `json:"kind"`   // user or record
	Action  string `json:"action"` // create, update, deactivate or reactivate
	// Person is the name the plan gives the object (a user's email, a
	// record's label), or its SID when it has none.
	Person string `json:"person"`
	// Fields, when given, are values the change writes, by Asset Panda
	// field name: only the fields listed are compared, and a field the
	// change does not write reads as Unchanged.
	Fields map[string]string `json:"fields,omitempty"`
}

// Unchanged stands, in the plan seen through a case's expectations, for a
// field the case lists and the change does not write.
const Unchanged = "(unchanged)"

// ExpectedBlocked is a blocked change and the limit or guard that stopped
// it.
type ExpectedBlocked struct {
	ExpectedChange
	Limit string `json:"limit"`
}

// ExpectedProblem is a problem of the plan.
type ExpectedProblem struct {
	Mapping string `json:"mapping,omitempty"`
	Code    string `json:"code"`
	// Object is the DN or key the problem concerns, if any.
	Object string `json:"object,omitempty"`
}

// ErrNoExpected is returned by ReadExpected for a case without
// expected.yaml.
var ErrNoExpected = errors.New("the case has no " + FileExpected + "; run pandasync test -update to write it from the plan")

// ReadExpected reads the case's expected.yaml.
func (c *Case) ReadExpected() (*Expected, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, FileExpected))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoExpected
	}
	if err != nil {
		return nil, err
	}
	var e Expected
	if err := yaml.UnmarshalStrict(b, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(c.Dir, FileExpected), err)
	}
	return &e, nil
}

// WriteExpected writes e as the case's expected.yaml.
func (c *Case) WriteExpected(e *Expected) error {
	return os.WriteFile(filepath.Join(c.Dir, FileExpected), e.Marshal(), 0o644)
}

// person is the name a case uses for a change's object.
func person(c reconcile.Change) string {
	if c.Name != "" {
		return c.Name
	}
	return c.Key
}

func (c ExpectedChange) id() string {
	return strings.Join([]string{c.Mapping, c.Kind, c.Action, c.Person}, "\x00")
}

// FromPlan sees a plan through a case's expectations: the changes,
// blocked changes and problems, with the fields of each change that like
// lists for it (none when like is nil or lists none).
func FromPlan(p *reconcile.Plan, like *Expected) *Expected {
	wantFields := map[string][]string{}
	if like != nil {
		add := func(c ExpectedChange) {
			for k := range c.Fields {
				wantFields[c.id()] = append(wantFields[c.id()], k)
			}
		}
		for _, c := range like.Changes {
			add(c)
		}
		for _, b := range like.Blocked {
			add(b.ExpectedChange)
		}
	}
	view := func(c reconcile.Change) ExpectedChange {
		e := ExpectedChange{Mapping: c.Mapping, Kind: string(c.Kind), Action: string(c.Action), Person: person(c)}
		for _, k := range wantFields[e.id()] {
			if e.Fields == nil {
				e.Fields = map[string]string{}
			}
			v, ok := c.After[k]
			if !ok {
				v = Unchanged
			}
			e.Fields[k] = v
		}
		return e
	}
	got := &Expected{}
	for _, c := range p.Changes {
		got.Changes = append(got.Changes, view(c))
	}
	for _, b := range p.Blocked {
		got.Blocked = append(got.Blocked, ExpectedBlocked{ExpectedChange: view(b.Change), Limit: b.Limit})
	}
	for _, e := range p.Errors {
		obj := e.Object
		if obj == "" {
			obj = e.Key
		}
		got.Problems = append(got.Problems, ExpectedProblem{Mapping: e.Mapping, Code: string(e.Code), Object: obj})
	}
	got.sort()
	return got
}

func (e *Expected) sort() {
	slices.SortStableFunc(e.Changes, func(a, b ExpectedChange) int { return cmp.Compare(a.sortKey(), b.sortKey()) })
	slices.SortStableFunc(e.Blocked, func(a, b ExpectedBlocked) int {
		return cmp.Or(cmp.Compare(a.sortKey(), b.sortKey()), cmp.Compare(a.Limit, b.Limit))
	})
	slices.SortStableFunc(e.Problems, func(a, b ExpectedProblem) int {
		return cmp.Or(cmp.Compare(a.Mapping, b.Mapping), cmp.Compare(a.Code, b.Code), cmp.Compare(a.Object, b.Object))
	})
}

func (c ExpectedChange) sortKey() string {
	return strings.Join([]string{c.Mapping, c.Kind, c.Person, c.Action}, "\x00")
}

// Diff compares what a case expects with the plan seen through it, and
// returns the differing entries of expected.yaml by section, "-" for what
// the case expects and "+" for what the plan has, or "" when they agree.
func Diff(want, got *Expected) string {
	w := Expected{Changes: slices.Clone(want.Changes), Blocked: slices.Clone(want.Blocked), Problems: slices.Clone(want.Problems)}
	w.sort()
	wl, gl := w.sections(), got.sections()
	var b strings.Builder
	for _, sec := range []string{"changes", "blocked", "problems"} {
		var out []string
		wi, gi := wl[sec], gl[sec]
		i, j := 0, 0
		for i < len(wi) || j < len(gi) {
			switch {
			case j == len(gi) || (i < len(wi) && wi[i].key < gi[j].key):
				out = append(out, "-"+strings.TrimPrefix(wi[i].line, "-"))
				i++
			case i == len(wi) || gi[j].key < wi[i].key:
				out = append(out, "+"+strings.TrimPrefix(gi[j].line, "-"))
				j++
			default:
				if wi[i].line != gi[j].line {
					out = append(out, "-"+strings.TrimPrefix(wi[i].line, "-"), "+"+strings.TrimPrefix(gi[j].line, "-"))
				}
				i++
				j++
			}
		}
		if len(out) > 0 {
			b.WriteString("  " + sec + ":\n")
			for _, l := range out {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
}

type keyedLine struct{ key, line string }

// sections renders each list as one line per entry, keyed for the merge
// in Diff.
func (e *Expected) sections() map[string][]keyedLine {
	m := map[string][]keyedLine{}
	for _, c := range e.Changes {
		m["changes"] = append(m["changes"], keyedLine{c.sortKey(), "- " + c.flow("")})
	}
	for _, b := range e.Blocked {
		m["blocked"] = append(m["blocked"], keyedLine{b.sortKey() + "\x00" + b.Limit, "- " + b.flow(b.Limit)})
	}
	for _, p := range e.Problems {
		m["problems"] = append(m["problems"], keyedLine{p.Mapping + "\x00" + p.Code + "\x00" + p.Object, "- " + p.flow()})
	}
	return m
}

// Marshal renders e as expected.yaml: one line per entry, in a stable
// order, so that a diff of the file shows one line per change.
func (e *Expected) Marshal() []byte {
	c := *e
	c.sort()
	var b bytes.Buffer
	b.WriteString("# The plan this case expects; `pandasync test -update` rewrites this file from the plan.\n")
	b.WriteString("# person is the user's email or the record's label; fields, when listed, are compared.\n")
	secs := c.sections()
	for _, sec := range []string{"changes", "blocked", "problems"} {
		if len(secs[sec]) == 0 {
			b.WriteString(sec + ": []\n")
			continue
		}
		b.WriteString(sec + ":\n")
		for _, l := range secs[sec] {
			b.WriteString(l.line + "\n")
		}
	}
	return b.Bytes()
}

func (c ExpectedChange) flow(limit string) string {
	parts := []string{"mapping: " + scalar(c.Mapping), "kind: " + scalar(c.Kind), "action: " + scalar(c.Action), "person: " + scalar(c.Person)}
	if limit != "" {
		parts = append(parts, "limit: "+scalar(limit))
	}
	if len(c.Fields) > 0 {
		keys := make([]string, 0, len(c.Fields))
		for k := range c.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var fs []string
		for _, k := range keys {
			fs = append(fs, scalar(k)+": "+scalar(c.Fields[k]))
		}
		parts = append(parts, "fields: {"+strings.Join(fs, ", ")+"}")
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (p ExpectedProblem) flow() string {
	var parts []string
	if p.Mapping != "" {
		parts = append(parts, "mapping: "+scalar(p.Mapping))
	}
	parts = append(parts, "code: "+scalar(p.Code))
	if p.Object != "" {
		parts = append(parts, "object: "+scalar(p.Object))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// plainScalar matches strings YAML reads back as the same string when
// written bare inside a flow mapping.
var plainScalar = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9 ._@/+=()'-]*[A-Za-z0-9._@/+)'-]$|^[A-Za-z]$`)

// scalar writes s as a YAML scalar in a flow mapping: bare when that
// reads back as the same string, else double-quoted.
func scalar(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~":
		return quote(s)
	}
	if plainScalar.MatchString(s) && !strings.Contains(s, " #") && !strings.Contains(s, ": ") {
		return s
	}
	return quote(s)
}

func quote(s string) string {
	b, _ := json.Marshal(s) // a JSON string is a YAML double-quoted scalar
	return string(b)
}
