package reconcile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// A mapping is resolved when every name it uses exists: account, module,
// role or collection, fields and status options in Asset Panda; its group
// and every attribute it maps in AD. An unresolved mapping plans nothing
// and is a problem. Because role precedence ties the user mappings of a
// module together, an unresolved user mapping also guards its module: no
// user there is deactivated or has their role changed. When even the
// module is unknown (a typo in the account or module name), every user
// is guarded, since the mapping may have been meant for any module.

// notFound turns a lookup error into a problem when it says a name does
// not exist; ok is false for any other error.
func notFound(mapping string, err error) (Problem, bool) {
	var nf *assetpanda.NotFoundError
	if !errors.As(err, &nf) {
		return Problem{}, false
	}
	code := ProblemUnresolvedField
	switch nf.Kind {
	case "account":
		code = ProblemUnresolvedAccount
	case "module":
		code = ProblemUnresolvedModule
	case "role":
		code = ProblemUnresolvedRole
	case "collection":
		code = ProblemUnresolvedCollection
	case "option":
		code = ProblemUnresolvedOption
	}
	fix := fmt.Sprintf("correct the %s name in the spec", nf.Kind)
	if c := spec.Closest(nf.Name, nf.Have); c != "" {
		fix = fmt.Sprintf("did you mean %q? correct the %s name in the spec", c, nf.Kind)
	}
	return Problem{Code: code, Mapping: mapping, Message: nf.Error() + "; this mapping plans nothing", Fix: fix}, true
}

// readFailed is the problem of an Asset Panda read that failed for a
// mapping; the mapping plans nothing.
func readFailed(mapping string, err error) Problem {
	return Problem{Code: ProblemReadFailed, Mapping: mapping,
		Message: fmt.Sprintf("%v; this mapping plans nothing", err),
		Fix:     "fix what the error says; the next plan reads again"}
}

// resolveDirectory checks, for every mapping, that its group exists and
// that the attributes it maps are in the directory schema, and records
// the members the read could not resolve. It marks unresolved mappings and
// sets the guards for incomplete reads.
func (pl *planner) resolveDirectory() {
	for _, m := range pl.set.UserMappings {
		name := m.Metadata.Name
		mk := moduleOf(m.Spec.Account, m.Spec.Module)
		if !pl.resolveGroupAndAttrs(name, m.Spec.Group, userAttributes(m)) {
			pl.unresolved[name] = true
			pl.moduleGuards[mk] = append(pl.moduleGuards[mk], guard{kind: GuardUnresolvedMapping, takes: takeDeactivate | takeRole,
				detail: fmt.Sprintf("user mapping %q of this module does not resolve", name),
				fix:    fmt.Sprintf("fix the problems of mapping %q", name)})
			continue
		}
		if n := pl.unreadableMembers(name, m.Spec.Group, m.Spec.IncludeNested()); n > 0 {
			pl.moduleGuards[mk] = append(pl.moduleGuards[mk], guard{kind: GuardIncompleteRead, takes: takeDeactivate | takeRole,
				detail: fmt.Sprintf("%d member(s) of %s (mapping %q) could not be read", n, m.Spec.Group, name),
				fix:    "let the bind account read those members, or widen baseDN; see the problems"})
		}
	}
	for _, m := range pl.set.CollectionMappings {
		name := m.Metadata.Name
		if !pl.resolveGroupAndAttrs(name, m.Spec.Group, collectionAttributes(m)) {
			pl.unresolved[name] = true
			continue
		}
		if n := pl.unreadableMembers(name, m.Spec.Group, m.Spec.IncludeNested()); n > 0 {
			pl.mappingGuards[name] = append(pl.mappingGuards[name], guard{kind: GuardIncompleteRead, takes: takeDeactivate,
				detail: fmt.Sprintf("%d member(s) of %s could not be read", n, m.Spec.Group),
				fix:    "let the bind account read those members, or widen baseDN; see the problems"})
		}
	}
}

// resolveGroupAndAttrs reports whether a mapping's group exists and its
// attributes are in the schema, recording a problem for each that is not.
func (pl *planner) resolveGroupAndAttrs(mapping, group string, attrs []string) bool {
	ok := true
	if g := pl.res.Groups[group]; g == nil || !g.Exists {
		ok = false
		pl.problem(Problem{Code: ProblemUnresolvedGroup, Mapping: mapping, Object: group,
			Message: "group not found in AD (or not readable by the bind account); this mapping plans nothing",
			Fix:     "correct the group DN in the spec, or let the bind account read it"})
	}
	schema := pl.res.Schema
	for i, a := range attrs {
		if a == "" {
			continue
		}
		if schema == nil {
			ok = false
			pl.problem(Problem{Code: ProblemUnresolvedAttribute, Mapping: mapping, Object: a,
				Message: "the directory read carried no schema, so the attribute cannot be checked; this mapping plans nothing"})
			continue
		}
		if schema.HasAttribute(a) || slicesIndexFold(attrs[:i], a) {
			continue
		}
		ok = false
		fix := "correct the attribute name in the spec"
		if s := schema.Suggest(a); len(s) > 0 {
			fix = fmt.Sprintf("did you mean %s? correct the attribute name in the spec", quoteAll(s, " or "))
		}
		pl.problem(Problem{Code: ProblemUnresolvedAttribute, Mapping: mapping, Object: a,
			Message: fmt.Sprintf("attribute %q is not in the directory schema; this mapping plans nothing", a), Fix: fix})
	}
	return ok
}

func slicesIndexFold(s []string, v string) bool {
	for _, x := range s {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// unreadableMembers records a problem for each member of a mapping's group
// that the read could not resolve and returns how many there are.
func (pl *planner) unreadableMembers(mapping, group string, isNested bool) int {
	g := pl.res.Groups[group]
	n := 0
	for _, u := range g.Unresolved {
		if !isNested && len(u.Via) > 1 {
			continue
		}
		n++
		pr := Problem{Code: ProblemMemberUnreadable, Mapping: mapping, Object: u.DN,
			Message: "listed as a member of " + group + " but not returned by the directory: the bind account cannot read it; its deactivations are held back",
			Fix:     "grant the bind account read access to this object"}
		if u.Reason == activedirectory.UnresolvedOutsideBase {
			pr.Code = ProblemMemberOutsideBase
			pr.Message = "a member of " + group + " outside baseDN, so it was not read; deactivations are held back"
			pr.Fix = "widen baseDN to include it, or remove it from the group"
		}
		if len(u.Via) > 1 {
			pr.Message += " (via " + strings.Join(u.Via[1:], " → ") + ")"
		}
		pl.problem(pr)
	}
	return n
}

func quoteAll(names []string, sep string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, sep)
}

// statusOf returns the status field names of a collection mapping; field is
// empty when the mapping has none. Load fills in the defaults.
func statusOf(m spec.CollectionMapping) statusNames {
	if m.Spec.Status == nil {
		return statusNames{}
	}
	return statusNames{field: m.Spec.Status.Field, active: m.Spec.Status.Active, inactive: m.Spec.Status.Inactive}
}
