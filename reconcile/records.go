package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// statusNone marks a record the AD sync does not manage (any more):
// pandasync leaves it alone.
const statusNone = "None"

// statusNames are the option names a mapping writes to its status field;
// field is empty when the mapping has no status field.
type statusNames struct {
	field, active, inactive string
}

// isSID reports whether s looks like a SID in text form, which is how
// pandasync recognises the records it manages.
func isSID(s string) bool {
	if !strings.HasPrefix(s, "S-1-") {
		return false
	}
	_, err := activedirectory.ParseSID(s)
	return err == nil
}

// useCollection takes what a collection mapping read: a name that did not
// resolve, or a read that failed, is a problem of the mapping, which then
// plans nothing (nil state).
func (pl *planner) useCollection(m spec.CollectionMapping, tc *targetCollection) *collectionState {
	name := m.Metadata.Name
	if tc.err != nil {
		pl.unresolved[name] = true
		if pr, ok := notFound(name, tc.err); ok {
			pl.problem(pr)
		} else {
			pl.problem(readFailed(name, tc.err))
		}
		return nil
	}
	if ps := fieldProblems(tc.col, m); len(ps) > 0 {
		pl.unresolved[name] = true
		for _, p := range ps {
			pl.problem(p)
		}
		return nil
	}
	return tc.st
}

// CheckFields verifies that every field a mapping writes exists, and that
// the status field offers the options the mapping writes. The error lists
// every problem.
func CheckFields(col *assetpanda.Collection, m spec.CollectionMapping) error {
	ps := fieldProblems(col, m)
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Message
		if p.Fix != "" {
			msgs[i] += " (" + p.Fix + ")"
		}
	}
	return fmt.Errorf("collection %q: %s", col.Name, strings.Join(msgs, "; "))
}

// fieldProblems lists the fields and options a mapping names that the
// collection lacks.
func fieldProblems(col *assetpanda.Collection, m spec.CollectionMapping) []Problem {
	var ps []Problem
	name := m.Metadata.Name
	check := func(field string) *assetpanda.Field {
		f, err := col.Field(field)
		if err != nil {
			pr, ok := notFound(name, err)
			if !ok {
				pr = Problem{Code: ProblemUnresolvedField, Mapping: name, Message: err.Error()}
			}
			ps = append(ps, pr)
			return nil
		}
		return f
	}
	check(m.Spec.Key.Field)
	for _, f := range m.Spec.Fields {
		check(f.Field)
	}
	if s := statusOf(m); s.field != "" {
		if f := check(s.field); f != nil && len(f.Options) > 0 {
			for _, want := range []string{s.active, s.inactive} {
				if !hasOption(f, want) {
					pr := Problem{Code: ProblemUnresolvedOption, Mapping: name,
						Message: fmt.Sprintf("field %q has no option %q (have: %s); this mapping plans nothing", f.Name, want, optionNames(f)),
						Fix:     "add the option in Asset Panda, or name an existing one in status.active / status.inactive"}
					if c := spec.Closest(want, optionList(f)); c != "" {
						pr.Fix = fmt.Sprintf("did you mean %q? ", c) + pr.Fix
					}
					ps = append(ps, pr)
				}
			}
		}
	}
	return ps
}

// noneChanged says that none of n conflicting objects is changed.
func noneChanged(n int) string {
	if n == 2 {
		return "neither is changed"
	}
	return "none of them is changed"
}

func hasOption(f *assetpanda.Field, name string) bool {
	for _, o := range f.Options {
		if strings.EqualFold(o.Name, name) {
			return true
		}
	}
	return false
}

func optionList(f *assetpanda.Field) []string {
	names := make([]string, len(f.Options))
	for i, o := range f.Options {
		names[i] = o.Name
	}
	return names
}

func optionNames(f *assetpanda.Field) string { return quoteAll(optionList(f), ", ") }

// planRecords computes the record changes of one resolved collection
// mapping.
func (pl *planner) planRecords(m spec.CollectionMapping, st *collectionState) {
	keyField := m.Spec.Key.Field
	mapping := m.Metadata.Name
	target := Target{Account: m.Spec.Account, Module: m.Spec.Module, Collection: m.Spec.Collection}
	keyAttr := m.Spec.Key.Attribute
	status := st.status

	for _, k := range sortedKeys(st.conflicts) {
		ids := st.conflicts[k]
		pl.problem(Problem{Code: ProblemRecordConflict, Mapping: mapping, Key: k,
			Message: fmt.Sprintf("records %s in %q hold this key in field %q; %s", quoteAll(ids, " and "), m.Spec.Collection, keyField, noneChanged(len(ids))),
			Fix:     "merge or delete the duplicates in Asset Panda, or clear the key of all but one"})
	}
	statusI := -1
	if status.field != "" {
		statusI = st.index[status.field]
	}
	fieldI := make([]int, len(m.Spec.Fields))
	for j, f := range m.Spec.Fields {
		fieldI[j] = st.index[f.Field]
	}
	for _, r := range st.byKey {
		if statusI < 0 {
			pl.active[mapping]++
			continue
		}
		if s := st.get(r, statusI); !strings.EqualFold(s, status.inactive) && !strings.EqualFold(s, statusNone) {
			pl.active[mapping]++
		}
	}

	ms := pl.members(m.Spec.Group, m.Spec.IncludeNested())
	seen := make(map[string]bool, len(ms))
	missingKey := 0
	for _, mb := range ms {
		key := attr(mb.u, keyAttr)
		if key == "" {
			missingKey++
			pl.problem(Problem{Code: ProblemMemberNoKey, Mapping: mapping, Object: mb.u.DN,
				Message: fmt.Sprintf("no %s (absent, or not readable by the bind account) to key the record on; skipped, and deactivations are held back", keyAttr),
				Fix:     fmt.Sprintf("set %s on the account, or let the bind account read it", keyAttr)})
			continue
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if _, conflict := st.conflicts[key]; conflict {
			continue
		}
		want := func(f spec.FieldMapping) string { return attr(mb.u, f.Attribute) }
		off, why, code := inactive(mb.u)
		label := personLabel(mb.u)
		rec, have := st.byKey[key]
		if !have {
			if off {
				continue // a disabled member is never created
			}
			after := map[string]string{keyField: key}
			for _, f := range m.Spec.Fields {
				if v := want(f); v != "" {
					after[f.Field] = v
				}
			}
			if status.field != "" {
				after[status.field] = status.active
			}
			pl.add(Change{Mapping: mapping, Kind: KindRecord, Action: ActionCreate, Key: key, Target: target,
				After: after, Reason: memberReason(m.Spec.Group, mb.via), ReasonCode: ReasonMember, Name: label})
			continue
		}
		if statusI >= 0 && strings.EqualFold(st.get(rec, statusI), statusNone) {
			continue // marked as not managed by the AD sync
		}
		var before, after map[string]string
		set := func(field, was, now string) {
			if before == nil {
				before, after = map[string]string{}, map[string]string{}
			}
			before[field], after[field] = was, now
		}
		var changed []string
		for j, f := range m.Spec.Fields {
			if v, was := want(f), st.get(rec, fieldI[j]); was != v {
				set(f.Field, was, v)
				changed = append(changed, f.Field)
			}
		}
		action, reason, rc := ActionUpdate, "", ReasonCode("")
		if len(changed) > 0 {
			reason, rc = "AD differs in "+strings.Join(changed, ", "), ReasonADChanged
		}
		if statusI >= 0 {
			curStatus := st.get(rec, statusI)
			switch {
			case off && !strings.EqualFold(curStatus, status.inactive):
				if m.Spec.OnRemove == spec.OnRemoveIgnore {
					break
				}
				set(status.field, curStatus, status.inactive)
				action, reason, rc = ActionDeactivate, why, code
			case !off && strings.EqualFold(curStatus, status.inactive):
				set(status.field, curStatus, status.active)
				action, reason, rc = ActionReactivate, "back in AD: "+memberReason(m.Spec.Group, mb.via), ReasonBackInAD
			case !off && !strings.EqualFold(curStatus, status.active):
				set(status.field, curStatus, status.active)
				if reason == "" {
					reason, rc = memberReason(m.Spec.Group, mb.via), ReasonStatus
				}
			}
		}
		if len(after) == 0 {
			continue
		}
		pl.add(Change{Mapping: mapping, Kind: KindRecord, Action: action, Key: key, Target: target,
			Before: before, After: after, Reason: reason, ReasonCode: rc, Name: label, ID: rec.id()})
	}
	if missingKey > 0 {
		pl.mappingGuards[mapping] = append(pl.mappingGuards[mapping], guard{kind: GuardIncompleteRead, takes: takeDeactivate,
			detail: fmt.Sprintf("%d member(s) of %s have no readable %s, so their records cannot be told apart from leavers'", missingKey, m.Spec.Group, keyAttr),
			fix:    "see the problems of this mapping"})
	}

	// Managed records whose person is no longer wanted.
	if m.Spec.OnRemove == spec.OnRemoveIgnore {
		return
	}
	if status.field == "" {
		n := 0
		for key := range st.byKey {
			if !seen[key] {
				n++
			}
		}
		if n > 0 {
			pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf(
				"mapping %q: %d managed record(s) belong to people no longer in %s, but the mapping has no status field to mark them Inactive",
				mapping, n, m.Spec.Group))
		}
		return
	}
	var left []string
	for key := range st.byKey {
		if !seen[key] {
			left = append(left, key)
		}
	}
	slices.Sort(left)
	for _, key := range left {
		rec := st.byKey[key]
		cur := st.get(rec, statusI)
		if strings.EqualFold(cur, status.inactive) || strings.EqualFold(cur, statusNone) {
			continue
		}
		i := pl.add(Change{Mapping: mapping, Kind: KindRecord, Action: ActionDeactivate, Key: key, Target: target,
			Before: map[string]string{status.field: cur}, After: map[string]string{status.field: status.inactive},
			Reason: "no longer a member of " + m.Spec.Group, ReasonCode: ReasonLeftGroup, Name: recordLabel(st, rec, m), ID: rec.id()})
		pl.gone = append(pl.gone, i)
	}
}

// personLabel names a person for the human view.
func personLabel(u *activedirectory.User) string {
	if u.UPN != "" {
		return u.UPN
	}
	if u.SAMAccountName != "" {
		return u.SAMAccountName
	}
	return u.DN
}

func recordLabel(st *collectionState, r record, m spec.CollectionMapping) string {
	for _, f := range m.Spec.Fields {
		if strings.EqualFold(f.Attribute, "mail") || strings.EqualFold(f.Attribute, "userPrincipalName") {
			if v := st.field(r, f.Field); v != "" {
				return v
			}
		}
	}
	return ""
}
