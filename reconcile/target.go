package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// TargetState is what a plan read from Asset Panda, as far as the spec's
// mappings need it: per collection mapping its collection and managed
// records (or why they could not be read), per user mapping its role (or
// why it did not resolve), and the users. Plans are made from it
// (PlanFrom). pandasync run keeps one between passes and folds in what
// changed (Refresh, RefreshUsers) instead of reading everything again.
//
// Records are kept compactly: only the fields the mapping reads (key,
// mapped fields, status), in one string per record.
//
// A TargetState belongs to the spec set it was read for; it is not safe
// for concurrent use.
type TargetState struct {
	cols  []*targetCollection // per set.CollectionMappings, in order
	roles []roleResult        // per set.UserMappings, in order
	// users were read (some role resolved and the read worked); usersErr
	// is why the read failed (not terminal).
	users     []assetpanda.User
	usersRead bool
	usersErr  error
}

// targetCollection is what one collection mapping read.
type targetCollection struct {
	// err is why the collection or its records could not be read (not
	// terminal); the mapping then plans nothing.
	err error
	col *assetpanda.Collection
	// st is nil when err is set or the collection lacks a field the
	// mapping names (the records were not read).
	st *collectionState
}

// roleResult is the outcome of resolving a user mapping's role.
type roleResult struct {
	role *assetpanda.Role
	err  error
}

// recordScanner is implemented by targets that can hand over a collection
// record by record (*assetpanda.Client does), so that the whole collection
// is never held in its full form.
type recordScanner interface {
	ScanRecords(ctx context.Context, col *assetpanda.Collection, fn func(assetpanda.Record) error) (served time.Time, err error)
}

// ReadTarget reads what the spec's mappings need from Asset Panda: each
// collection mapping's collection (by name) and its records, each user
// mapping's role, and the users. A name that does not resolve or a read
// that fails is kept, for the plan to report as the mapping's problem; only
// an error retrying cannot fix (refused credentials, a missing permission)
// is returned.
func ReadTarget(ctx context.Context, set *spec.Set, tgt TargetReader) (*TargetState, error) {
	ts := &TargetState{}
	for _, m := range set.CollectionMappings {
		tc, err := readCollection(ctx, tgt, m)
		if err != nil {
			return nil, err
		}
		ts.cols = append(ts.cols, tc)
	}
	if len(set.UserMappings) == 0 {
		return ts, nil
	}
	resolved := false
	for _, m := range set.UserMappings {
		r, err := tgt.Role(ctx, m.Spec.Account, m.Spec.Module, m.Spec.Role)
		if err != nil && isTerminal(err) {
			return nil, err
		}
		ts.roles = append(ts.roles, roleResult{role: r, err: err})
		resolved = resolved || err == nil
	}
	if !resolved {
		return ts, nil
	}
	if err := ts.readUsers(ctx, tgt); err != nil {
		return nil, err
	}
	return ts, nil
}

// readUsers reads all users; only a terminal error is returned.
func (ts *TargetState) readUsers(ctx context.Context, tgt TargetReader) error {
	users, err := tgt.Users(ctx)
	switch {
	case err != nil && isTerminal(err):
		return err
	case err != nil:
		ts.users, ts.usersRead, ts.usersErr = nil, false, err
	default:
		ts.users, ts.usersRead, ts.usersErr = users, true, nil
	}
	return nil
}

// readCollection resolves a mapping's collection and reads its records;
// only a terminal error is returned.
func readCollection(ctx context.Context, tgt TargetReader, m spec.CollectionMapping) (*targetCollection, error) {
	col, err := tgt.Collection(ctx, m.Spec.Account, m.Spec.Module, m.Spec.Collection)
	if err != nil {
		if isTerminal(err) {
			return nil, err
		}
		return &targetCollection{err: err}, nil
	}
	tc := &targetCollection{col: col}
	if len(fieldProblems(col, m)) > 0 {
		return tc, nil // the mapping plans nothing; its problems say why
	}
	st, err := readRecords(ctx, tgt, col, m)
	if err != nil {
		if isTerminal(err) {
			return nil, err
		}
		tc.err = err
		return tc, nil
	}
	tc.st = st
	return tc, nil
}

// readRecords reads a collection's records into a new state.
func readRecords(ctx context.Context, tgt TargetReader, col *assetpanda.Collection, m spec.CollectionMapping) (*collectionState, error) {
	st := newCollectionState(col, m)
	st.readAt = time.Now()
	if sc, ok := tgt.(recordScanner); ok {
		served, err := sc.ScanRecords(ctx, col, func(r assetpanda.Record) error { st.add(r); return nil })
		if err != nil {
			return nil, err
		}
		st.servedAt = served
		return st, nil
	}
	recs, err := tgt.Records(ctx, col)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		st.add(r)
	}
	return st, nil
}

// Resolved reports whether every name the mappings use resolved in Asset
// Panda and every read worked. When it does not, pandasync run reads Asset
// Panda in full again on the next pass rather than folding changes into a
// state that lacks a mapping.
func (ts *TargetState) Resolved(set *spec.Set) bool {
	for i, tc := range ts.cols {
		if tc.err != nil || tc.st == nil || len(fieldProblems(tc.col, set.CollectionMappings[i])) > 0 {
			return false
		}
	}
	for _, r := range ts.roles {
		if r.err != nil {
			return false
		}
	}
	return ts.usersErr == nil
}

// ModifiedRecordsReader is what Refresh needs from Asset Panda.
// *assetpanda.Client implements it.
type ModifiedRecordsReader interface {
	TargetReader
	// RecordsModifiedSince reads the records whose updated_at is at or
	// after since, archived included, completely or not at all; served is
	// the server's time when it answered (zero when unknown).
	RecordsModifiedSince(ctx context.Context, col *assetpanda.Collection, since time.Time) (recs []assetpanda.Record, served time.Time, err error)
}

// Where a change probe starts. It goes by the server's clock: the Date of
// the reply to the previous read's first page, less ModifiedMargin, for
// differences between the clock of the API's front end and the one that
// stamps updated_at. The clock of this host does not matter (a skewed host
// misses nothing). A server that sends no Date makes it go by this host's
// clock at the start of the previous read, less ModifiedOverlap.
const (
	ModifiedMargin  = time.Minute
	ModifiedOverlap = 5 * time.Minute
)

// Refresh folds into the state the records of each collection modified in
// Asset Panda since it was read (one search per collection while fewer
// than a page changed): edits made in Asset Panda, and pandasync's own
// writes. changed reports whether anything the plan looks at differs. A
// collection whose fold meets a key held by two records (a conflict
// appearing or going away) is read again in full, since the state keeps no
// data of conflicting records. Collections that could not be read are
// left alone (Resolved is false; the caller reads everything again). A
// failed probe leaves its collection as it was; a failed full read of a
// collection leaves it unread.
//
// Refresh sees no record deleted from Asset Panda: a plan that writes to
// one fails for that record in apply (it is gone), and the caller then
// reads Asset Panda in full again.
func (ts *TargetState) Refresh(ctx context.Context, set *spec.Set, tgt ModifiedRecordsReader) (changed bool, err error) {
	for i, tc := range ts.cols {
		if tc.st == nil {
			continue
		}
		m := set.CollectionMappings[i]
		st := tc.st
		start := time.Now()
		recs, served, err := tgt.RecordsModifiedSince(ctx, tc.col, st.since())
		if err != nil {
			return changed, fmt.Errorf("collection %q: %w", m.Spec.Collection, err)
		}
		ch, full := st.fold(recs)
		if full {
			fresh, err := readRecords(ctx, tgt, tc.col, m)
			if err != nil {
				// The fold may have taken some records before it stopped:
				// the collection is unread now (Resolved is false).
				tc.st, tc.err = nil, err
				return true, fmt.Errorf("collection %q: %w", m.Spec.Collection, err)
			}
			tc.st, ch = fresh, true
		} else {
			st.servedAt, st.readAt = served, start
		}
		changed = changed || ch
	}
	return changed, nil
}

// RefreshUsers reads the users again (there is no filter for modified
// users) and reports whether they differ from the ones held. pandasync
// run calls it after a pass that wrote users.
func (ts *TargetState) RefreshUsers(ctx context.Context, tgt TargetReader) (changed bool, err error) {
	if !ts.usersRead {
		return false, nil
	}
	users, err := tgt.Users(ctx)
	if err != nil {
		return false, err
	}
	changed = !slices.EqualFunc(ts.users, users, sameUser)
	ts.users = users
	return changed, nil
}

func sameUser(a, b assetpanda.User) bool {
	return a.ID == b.ID && a.Email == b.Email && a.FirstName == b.FirstName && a.LastName == b.LastName &&
		a.Active == b.Active && a.ADSID == b.ADSID && slices.Equal(a.Roles, b.Roles)
}

// collectionState is what Asset Panda holds for one collection mapping.
type collectionState struct {
	col *assetpanda.Collection
	// fields are the fields a record keeps (key, mapped fields, status),
	// index their position, and order lists the positions by field name.
	fields []string
	index  map[string]int
	order  []int
	key    int // index of the key field
	// byKey indexes the managed records (key field holds a SID) by key;
	// keys held by more than one record are in conflicts instead, which
	// lists their ids.
	byKey     map[string]record
	conflicts map[string][]string
	status    statusNames
	// byID maps the id of every managed record (conflicts included) to its
	// key; built on the first fold.
	byID map[string]string
	// servedAt is the server's time when it answered the first page of
	// the last read (full or probe); readAt is when that read started by
	// this host's clock, for servers that send no Date.
	servedAt time.Time
	readAt   time.Time
	buf      []byte
}

// record is a managed record as the planner keeps it: its id, then the
// values of the state's fields, each prefixed with its length, in one
// string.
type record struct {
	text     string
	archived bool
}

// value returns value i of the record: 0 is the id, i+1 field i.
func (r record) value(i int) string {
	s := r.text
	for j := 0; ; j++ {
		n, w := 0, 0
		for shift := 0; w < len(s); shift += 7 {
			b := s[w]
			w++
			n |= int(b&0x7f) << shift
			if b < 0x80 {
				break
			}
		}
		if j == i {
			return s[w : w+n]
		}
		s = s[w+n:]
	}
}

func (r record) id() string { return r.value(0) }

func appendValue(b []byte, v string) []byte {
	n := uint(len(v))
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	b = append(b, byte(n))
	return append(b, v...)
}

func newCollectionState(col *assetpanda.Collection, m spec.CollectionMapping) *collectionState {
	st := &collectionState{col: col, byKey: map[string]record{}, conflicts: map[string][]string{}, status: statusOf(m), index: map[string]int{}}
	add := func(f string) {
		if _, ok := st.index[f]; ok || f == "" {
			return
		}
		st.index[f] = len(st.fields)
		st.fields = append(st.fields, f)
	}
	add(m.Spec.Key.Field)
	for _, f := range m.Spec.Fields {
		add(f.Field)
	}
	add(st.status.field)
	st.key = st.index[m.Spec.Key.Field]
	st.order = make([]int, len(st.fields))
	for i := range st.order {
		st.order[i] = i
	}
	slices.SortFunc(st.order, func(a, b int) int { return strings.Compare(st.fields[a], st.fields[b]) })
	return st
}

// get returns the value of a field of the state (by index) of r.
func (st *collectionState) get(r record, i int) string { return r.value(i + 1) }

// field returns the value of the named field of r, "" for a field the
// state does not keep.
func (st *collectionState) field(r record, name string) string {
	i, ok := st.index[name]
	if !ok {
		return ""
	}
	return st.get(r, i)
}

// compact turns a record into the state's form.
func (st *collectionState) compact(r assetpanda.Record) record {
	b := appendValue(st.buf[:0], r.ID)
	for _, f := range st.fields {
		b = appendValue(b, r.Fields[f])
	}
	st.buf = b
	return record{text: string(b), archived: r.Archived}
}

// add takes a record of a full read: a managed record (its key holds a
// SID) is kept, a key held twice becomes a conflict.
func (st *collectionState) add(r assetpanda.Record) {
	k := r.Fields[st.fields[st.key]]
	if !isSID(k) {
		return
	}
	if ids, dup := st.conflicts[k]; dup {
		st.conflicts[k] = append(ids, r.ID)
		return
	}
	if first, dup := st.byKey[k]; dup {
		st.conflicts[k] = []string{first.id(), r.ID}
		delete(st.byKey, k)
		return
	}
	rec := st.compact(r)
	st.byKey[rec.value(st.key+1)] = rec // the key shares the record's string
}

// since is where the next change probe starts.
func (st *collectionState) since() time.Time {
	if !st.servedAt.IsZero() {
		return st.servedAt.Add(-ModifiedMargin)
	}
	return st.readAt.Add(-ModifiedOverlap)
}

// fold takes records modified since the last read. It reports whether the
// state changed, and full when it cannot fold them (a conflict appears or
// goes away) and the collection must be read again.
func (st *collectionState) fold(recs []assetpanda.Record) (changed, full bool) {
	if len(recs) == 0 {
		return false, false
	}
	if st.byID == nil {
		st.byID = make(map[string]string, len(st.byKey))
		for k, r := range st.byKey {
			st.byID[r.id()] = k
		}
		for k, ids := range st.conflicts {
			for _, id := range ids {
				st.byID[id] = k
			}
		}
	}
	for _, r := range recs {
		k := r.Fields[st.fields[st.key]]
		managed := isSID(k)
		old, known := st.byID[r.ID]
		if known {
			if _, c := st.conflicts[old]; c {
				return changed, true
			}
		}
		if managed && (!known || old != k) {
			if _, c := st.conflicts[k]; c {
				return changed, true
			}
			if _, taken := st.byKey[k]; taken {
				return changed, true // a second record with this key
			}
		}
		switch {
		case known && !managed:
			delete(st.byKey, old)
			delete(st.byID, r.ID)
			changed = true
		case !managed:
			// not managed before or now
		default:
			if known && old != k {
				delete(st.byKey, old)
			}
			rec := st.compact(r)
			if prev, ok := st.byKey[k]; !ok || prev != rec {
				changed = true
			}
			st.byKey[rec.value(st.key+1)] = rec
			st.byID[r.ID] = k
		}
	}
	return changed, false
}
