package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// Status option names a status field must offer.
const (
	statusActive   = "Active"
	statusInactive = "Inactive"
	// statusNone marks a record the AD sync does not manage (any more):
	// pandasync leaves it alone.
	statusNone = "None"
)

// collectionState is what Asset Panda holds for one collection mapping.
type collectionState struct {
	col *assetpanda.Collection
	// byKey indexes the managed records (key field holds a SID) by key.
	byKey map[string]*assetpanda.Record
	// conflicts are keys held by more than one record.
	conflicts map[string]int
	status    statusNames
}

// statusNames are the option names a mapping writes to its status field;
// field is empty when the mapping has no status field.
type statusNames struct {
	field, active, inactive string
}

func mappingStatus(m spec.CollectionMapping) statusNames {
	s := m.Spec.Status
	if s == nil {
		return statusNames{}
	}
	n := statusNames{field: s.Field, active: s.Active, inactive: s.Inactive}
	if n.field == "" {
		n.field = "Integration Status AD"
	}
	if n.active == "" {
		n.active = statusActive
	}
	if n.inactive == "" {
		n.inactive = statusInactive
	}
	return n
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

// observeCollection resolves a mapping's collection and fields by name and
// reads its records.
func (pl *planner) observeCollection(ctx context.Context, tgt TargetReader, m spec.CollectionMapping) (*collectionState, error) {
	col, err := tgt.Collection(ctx, m.Spec.Account, m.Spec.Module, m.Spec.Collection)
	if err != nil {
		return nil, err
	}
	if err := CheckFields(col, m); err != nil {
		return nil, err
	}
	recs, err := tgt.Records(ctx, col)
	if err != nil {
		return nil, err
	}
	st := &collectionState{col: col, byKey: make(map[string]*assetpanda.Record, len(recs)), conflicts: map[string]int{}, status: mappingStatus(m)}
	for i := range recs {
		r := &recs[i]
		k := r.Fields[m.Spec.Key.Field]
		if !isSID(k) {
			continue
		}
		if _, dup := st.byKey[k]; dup {
			st.conflicts[k]++
			continue
		}
		st.byKey[k] = r
	}
	for k, n := range st.conflicts {
		st.conflicts[k] = n + 1
	}
	return st, nil
}

// CheckFields verifies that every field a mapping writes exists, and that
// the status field offers the options the mapping writes.
func CheckFields(col *assetpanda.Collection, m spec.CollectionMapping) error {
	var errs []string
	if _, err := col.Field(m.Spec.Key.Field); err != nil {
		errs = append(errs, err.Error())
	}
	for _, f := range m.Spec.Fields {
		if _, err := col.Field(f.Field); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if s := mappingStatus(m); s.field != "" {
		f, err := col.Field(s.field)
		if err != nil {
			errs = append(errs, err.Error())
		} else if len(f.Options) > 0 {
			for _, want := range []string{s.active, s.inactive} {
				if !hasOption(f, want) {
					errs = append(errs, fmt.Sprintf("field %q has no option %q (have: %s)", f.Name, want, optionNames(f)))
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("collection %q: %s", col.Name, strings.Join(errs, "; "))
	}
	return nil
}

func hasOption(f *assetpanda.Field, name string) bool {
	for _, o := range f.Options {
		if strings.EqualFold(o.Name, name) {
			return true
		}
	}
	return false
}

func optionNames(f *assetpanda.Field) string {
	var names []string
	for _, o := range f.Options {
		names = append(names, fmt.Sprintf("%q", o.Name))
	}
	return strings.Join(names, ", ")
}

// planRecords computes the record changes of one collection mapping.
func (pl *planner) planRecords(m spec.CollectionMapping, st *collectionState) {
	name := m.Spec.Key.Field
	mapping := m.Metadata.Name
	target := Target{Account: m.Spec.Account, Module: m.Spec.Module, Collection: m.Spec.Collection}
	keyAttr := keyAttribute(m.Spec.Key)
	status := st.status

	for k, n := range st.conflicts {
		pl.problem(mapping, k, "", "%d records in %q hold this key in field %q; resolve the duplicates by hand", n, m.Spec.Collection, name)
	}
	for _, r := range st.byKey {
		if status.field == "" || !strings.EqualFold(r.Fields[status.field], statusNone) {
			pl.managed[mapping]++
		}
	}

	ms, ok := pl.members(m.Spec.Group, nested(m.Spec.Nested))
	if !ok {
		pl.problem(mapping, "", m.Spec.Group, "group not found in AD; no record of this mapping is deactivated")
	}
	seen := make(map[string]bool, len(ms))
	for _, mb := range ms {
		key := attr(mb.u, keyAttr)
		if key == "" {
			pl.problem(mapping, "", mb.u.DN, "no %s attribute to key the record on; skipped", keyAttr)
			continue
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if st.conflicts[key] > 0 {
			continue
		}
		want := func(f spec.FieldMapping) string { return attr(mb.u, f.Attribute) }
		off, why := inactive(mb.u)
		label := personLabel(mb.u)
		rec := st.byKey[key]
		if rec == nil {
			if off {
				continue // a disabled member is never created
			}
			after := map[string]string{name: key}
			for _, f := range m.Spec.Fields {
				if v := want(f); v != "" {
					after[f.Field] = v
				}
			}
			if status.field != "" {
				after[status.field] = status.active
			}
			pl.add(Change{Mapping: mapping, Kind: KindRecord, Action: ActionCreate, Key: key, Target: target,
				After: after, Reason: memberReason(m.Spec.Group, mb.via), Name: label})
			continue
		}
		cur := rec.Fields
		if status.field != "" && strings.EqualFold(cur[status.field], statusNone) {
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
		for _, f := range m.Spec.Fields {
			if v := want(f); cur[f.Field] != v {
				set(f.Field, cur[f.Field], v)
				changed = append(changed, f.Field)
			}
		}
		action, reason := ActionUpdate, ""
		if len(changed) > 0 {
			reason = "AD differs in " + strings.Join(changed, ", ")
		}
		if status.field != "" {
			curStatus := cur[status.field]
			switch {
			case off && !strings.EqualFold(curStatus, status.inactive):
				if m.Spec.OnRemove == "ignore" {
					break
				}
				set(status.field, curStatus, status.inactive)
				action, reason = ActionDeactivate, why
			case !off && strings.EqualFold(curStatus, status.inactive):
				set(status.field, curStatus, status.active)
				action, reason = ActionReactivate, "back in AD: "+memberReason(m.Spec.Group, mb.via)
			case !off && !strings.EqualFold(curStatus, status.active):
				set(status.field, curStatus, status.active)
				if reason == "" {
					reason = memberReason(m.Spec.Group, mb.via)
				}
			}
		}
		if len(after) == 0 {
			continue
		}
		pl.add(Change{Mapping: mapping, Kind: KindRecord, Action: action, Key: key, Target: target,
			Before: before, After: after, Reason: reason, Name: label, ID: rec.ID})
	}

	// Managed records whose person is no longer wanted.
	if m.Spec.OnRemove == "ignore" {
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
	for _, key := range sortedKeys(st.byKey) {
		if seen[key] {
			continue
		}
		rec := st.byKey[key]
		cur := rec.Fields[status.field]
		if strings.EqualFold(cur, status.inactive) || strings.EqualFold(cur, statusNone) {
			continue
		}
		i := pl.add(Change{Mapping: mapping, Kind: KindRecord, Action: ActionDeactivate, Key: key, Target: target,
			Before: map[string]string{status.field: cur}, After: map[string]string{status.field: status.inactive},
			Reason: "no longer a member of " + m.Spec.Group, Name: recordLabel(rec, m), ID: rec.ID})
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

func recordLabel(r *assetpanda.Record, m spec.CollectionMapping) string {
	for _, f := range m.Spec.Fields {
		if strings.EqualFold(f.Attribute, "mail") || strings.EqualFold(f.Attribute, "userPrincipalName") {
			if v := r.Fields[f.Field]; v != "" {
				return v
			}
		}
	}
	return ""
}
