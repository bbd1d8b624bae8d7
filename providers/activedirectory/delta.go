package activedirectory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Change tracking: ReadChanges reads what changed since a Watermark instead
// of the whole directory, and says when it cannot, in which case it reads
// everything. See the README section "Change tracking" for what is seen
// when; in short:
//
//   - A changed user (any attribute, a rename or a move inside BaseDN,
//     disable, re-enable) has a new uSNChanged and is re-read on its own.
//   - Membership lives on the group: adding or removing a member, at any
//     depth, changes that group's uSNChanged, and every mapped group whose
//     closure holds it is recomputed in full (its member lists re-read).
//     Its members are read again unless the caller's current view (have)
//     already holds them: their own changes are in the changed users.
//   - A deleted object leaves no trace in its groups' uSNChanged (measured
//     on Samba 4.17); it is seen only as a tombstone, which needs List
//     Contents and Read Property on CN=Deleted Objects. Without that right
//     deletions wait for the next full read.
//   - Constructed attributes and anything derived from them do not move
//     uSNChanged and are refreshed by full reads only. Account expiry is
//     derived from accountExpires and the clock; Apply re-evaluates it.
//   - A member moved out of BaseDN, or that the bind account can no longer
//     read, is not returned by the change search: it stays as it was until
//     the next full read (which lists the latter as unresolved).

// Change tracking methods (Config.ChangeTracking).
const (
	// ChangeTrackingUSN polls uSNChanged ranges against the DC's
	// highestCommittedUSN. It works on any BaseDN with read rights only.
	ChangeTrackingUSN = "usn"
	// ChangeTrackingDirSync detects changes with the DirSync control
	// (1.2.840.113556.1.4.841) and its object-security flag, so a plain
	// account may use it, then re-reads what changed. It needs BaseDN to be
	// a naming context; where it cannot serve, the USN method is used.
	ChangeTrackingDirSync = "dirsync"
)

// watermarkFormat is the version of the Watermark encoding.
const watermarkFormat = 1

// Watermark says how far a read got, on which domain controller, for which
// query. It is a plain value meant to be stored as JSON (the runtime keeps
// it in its state directory); nothing in it is a secret. The zero value
// means "no watermark".
type Watermark struct {
	Format       int    `json:"format"`
	Method       string `json:"method"`        // ChangeTrackingUSN or ChangeTrackingDirSync
	Server       string `json:"server"`        // dnsHostName of the DC that answered
	InvocationID string `json:"invocation_id"` // that DC's invocationId; a restore changes it
	BaseDN       string `json:"base_dn"`
	// USN is the DC's highestCommittedUSN read before the read that made
	// this watermark: every later change has a larger uSNChanged.
	USN    int64  `json:"usn"`
	Cookie []byte `json:"cookie,omitempty"` // DirSync cookie (Method dirsync)
	Query  string `json:"query"`            // digest of the Query (groups, nesting, attributes)
	// NoMemberOf records that the server answered no memberOf search, so
	// changes cannot be attributed to groups: every read is a full read.
	NoMemberOf bool             `json:"no_member_of,omitempty"`
	Groups     []WatermarkGroup `json:"groups"`
}

// IsZero reports whether w is the zero Watermark.
func (w Watermark) IsZero() bool { return w.Format == 0 }

// WatermarkGroup is what a watermark remembers of one mapped group: the
// groups of its closure, so that a change to any of them is recognised
// (by GUID, which survives renames, or by DN).
type WatermarkGroup struct {
	DN      string         `json:"dn"`      // as in the GroupQuery
	Closure []ClosureGroup `json:"closure"` // visiting order, the mapped group first; empty if it did not exist
}

// ClosureGroup is one group of a mapped group's closure.
type ClosureGroup struct {
	GUID   string `json:"guid,omitempty"` // objectGUID; empty if not readable
	DN     string `json:"dn"`             // as the server returned it
	Parent int    `json:"parent"`         // index of the group it was reached from; -1 for the mapped group
}

// closure describes a walk's groups for a watermark.
func (w *walk) closure(groups map[string]*groupEntry) []ClosureGroup {
	idx := make(map[string]int, len(w.order))
	out := make([]ClosureGroup, len(w.order))
	for i, n := range w.order {
		idx[n] = i
		g := groups[n]
		out[i] = ClosureGroup{GUID: g.guid, DN: g.dn, Parent: -1}
		if p := w.parent[n]; p != "" {
			out[i].Parent = idx[p]
		}
	}
	return out
}

// Delta is the answer of ReadChanges: either a full read (Full) or what
// changed since the watermark it was given. Apply folds it into the
// caller's current Result.
type Delta struct {
	// Full is set when a full read was done instead of a delta, for the
	// reason in FullReason; Result then holds it, and nothing below but
	// Watermark, Stats and Time is set. A full read reports no deletions:
	// who is gone is for the caller to decide from the complete Result, with
	// its usual guards, never from a watermark that was missing or refused.
	Full       bool
	FullReason string
	Result     *Result

	// Groups are the mapped groups whose closure changed (a member added
	// or removed at any depth, a nested group renamed or deleted), keyed as
	// in the query, recomputed completely.
	Groups map[string]*Group
	// Members are users found, through a change of their own, to be
	// members of mapped groups that were not recomputed: an account that
	// became readable, for instance. Keyed by the query's group DN.
	Members map[string][]Membership
	// Users are the users read: changed users that are members of a mapped
	// group, and members of recomputed groups that the caller's view did
	// not hold. Keyed by normalized DN.
	Users map[string]*User
	// Deleted lists the tombstones seen (users and groups), when the
	// account may read CN=Deleted Objects.
	Deleted []Deleted

	Watermark Watermark // pass to the next ReadChanges
	Stats     ReadStats // work done, identity probes included
	Time      time.Time // when the read ran (Apply re-evaluates account expiry with it)
}

// Membership says that a user (normalized DN) is a member of a mapped
// group through the chain Via (see Group.Via).
type Membership struct {
	DN  string
	Via []string
}

// Deleted is a tombstone.
type Deleted struct {
	GUID            string // objectGUID, canonical form
	SID             string // objectSid, "" if the tombstone does not keep it
	DN              string // the tombstone's DN (in CN=Deleted Objects)
	LastKnownParent string
}

// dcIdentity is what the probes learn about the DC that answers.
type dcIdentity struct {
	host         string
	invocationID string
	usn          int64 // -1: not reported
	namingCtxs   []string
	dirSync      bool // DirSync is in supportedControl
}

// identity reads the rootDSE and the invocationId of the DC's NTDS
// Settings object (two searches, one entry each, counted as probes).
func (r *Reader) identity(ctx context.Context, conn asyncSearcher, st *ReadStats) (dcIdentity, error) {
	id := dcIdentity{usn: -1}
	before := st.Searches
	defer func() { st.Probes += st.Searches - before }()
	root, err := r.baseRead(ctx, conn, "", []string{attrHighestCommitted, "dnsHostName", "dsServiceName", "namingContexts", "supportedControl"}, st)
	if err != nil {
		return id, fmt.Errorf("reading rootDSE: %w", err)
	}
	if root == nil {
		return id, errors.New("the server returned no rootDSE")
	}
	if v := root.GetEqualFoldAttributeValue(attrHighestCommitted); v != "" {
		if id.usn, err = strconv.ParseInt(v, 10, 64); err != nil {
			return id, fmt.Errorf("rootDSE highestCommittedUSN %q: %w", v, err)
		}
	}
	id.host = root.GetEqualFoldAttributeValue("dnsHostName")
	id.namingCtxs = root.GetEqualFoldAttributeValues("namingContexts")
	id.dirSync = slices.Contains(root.GetEqualFoldAttributeValues("supportedControl"), ldap.ControlTypeDirSync)
	if svc := root.GetEqualFoldAttributeValue("dsServiceName"); svc != "" {
		e, err := r.baseRead(ctx, conn, svc, []string{"invocationId"}, st)
		if err != nil {
			return id, fmt.Errorf("reading the DC's invocationId: %w", err)
		}
		if e != nil {
			if b := e.GetEqualFoldRawAttributeValue("invocationId"); len(b) > 0 {
				if id.invocationID, err = FormatGUID(b); err != nil {
					return id, fmt.Errorf("the DC's invocationId: %w", err)
				}
			}
		}
	}
	return id, nil
}

// namingContext returns the naming context holding dn, or "".
func (id dcIdentity) namingContext(dn string) string {
	n := NormalizeDN(dn)
	best := ""
	for _, nc := range id.namingCtxs {
		c := NormalizeDN(nc)
		if (n == c || strings.HasSuffix(n, ","+c)) && len(c) > len(NormalizeDN(best)) {
			best = nc
		}
	}
	return best
}

// queryDigest identifies what a watermark was made for: BaseDN, the
// groups with their nesting, and the attributes.
func queryDigest(baseDN string, q Query) string {
	h := sha256.New()
	fmt.Fprintf(h, "base %s\n", NormalizeDN(baseDN))
	for _, g := range q.Groups {
		fmt.Fprintf(h, "group %s %t\n", NormalizeDN(g.DN), g.Nested)
	}
	attrs := make([]string, len(q.Attributes))
	for i, a := range q.Attributes {
		attrs[i] = strings.ToLower(a)
	}
	slices.Sort(attrs)
	for _, a := range slices.Compact(attrs) {
		fmt.Fprintf(h, "attr %s\n", a)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// method is the change tracking method the configuration asks for.
func (r *Reader) method() string {
	if r.cfg.ChangeTracking == "" {
		return ChangeTrackingUSN
	}
	return r.cfg.ChangeTracking
}

// fullReason says why wm cannot serve a delta for q on the DC id, or "".
func (r *Reader) fullReason(wm Watermark, id dcIdentity, q Query) string {
	switch {
	case id.usn < 0:
		return "the server does not report highestCommittedUSN"
	case id.invocationID == "" || id.host == "":
		return "the server does not report its dnsHostName and invocationId"
	case wm.IsZero():
		return "no watermark"
	case wm.Format != watermarkFormat:
		return fmt.Sprintf("watermark format %d is not %d", wm.Format, watermarkFormat)
	case wm.NoMemberOf:
		return "the server does not maintain memberOf"
	case wm.Method != r.method() && !(wm.Method == ChangeTrackingUSN && r.method() == ChangeTrackingDirSync):
		// A reader configured for DirSync also continues a uSNChanged
		// watermark: that is its fallback where DirSync cannot serve.
		return fmt.Sprintf("change tracking method changed from %s to %s", wm.Method, r.method())
	case wm.Query != queryDigest(r.cfg.BaseDN, q):
		return "the query (base DN, groups or attributes) changed"
	case !strings.EqualFold(wm.Server, id.host):
		return fmt.Sprintf("a different domain controller answers (%s; the watermark is from %s)", id.host, wm.Server)
	case wm.InvocationID != id.invocationID:
		return fmt.Sprintf("the invocationId of %s changed from %s to %s (restored from a backup?)", id.host, wm.InvocationID, id.invocationID)
	case wm.USN > id.usn:
		return fmt.Sprintf("the watermark's USN %d is ahead of the DC's highestCommittedUSN %d", wm.USN, id.usn)
	}
	return ""
}

// ReadChanges reads what changed since wm for q, or everything when a
// delta cannot be trusted: no watermark, another query or method, a
// different DC or a new invocationId (a restore), a watermark ahead of the
// DC's highestCommittedUSN, a refused DirSync cookie, a recomputed group
// holding a nested group that memberOf does not show, another object at a
// DN of have. Delta.Full and
// Delta.FullReason say which happened. The caller forces a full read (the
// spec changed, the periodic full interval) by passing the zero Watermark.
//
// have is the caller's current view, the Result of the last full read with
// every later delta applied (nil when it has none): members of recomputed
// groups that it already holds are not read again. Passing a view older
// than wm loses changes.
//
// Delta.Stats counts the work, so that callers can assert it: with no
// change it is three searches (rootDSE, the DC's NTDS Settings, the
// changes; a fourth for tombstones when BaseDN is not a naming context) and
// no entry beyond the two probes. The error is an *Error.
func (r *Reader) ReadChanges(ctx context.Context, q Query, wm Watermark, have *Result) (*Delta, error) {
	if err := validQuery(q); err != nil {
		return nil, invalid(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var d *Delta
	err := r.withConn(ctx, func(conn *ldap.Conn) error {
		var err error
		d, err = r.readChanges(ctx, conn, q, wm, have)
		return err
	})
	if err != nil {
		return nil, classify(fmt.Errorf("reading directory changes: %w", err))
	}
	return d, nil
}

// validQuery checks group DNs and attribute names, as Read does.
func validQuery(q Query) error {
	for _, g := range q.Groups {
		if _, err := ldap.ParseDN(g.DN); err != nil {
			return fmt.Errorf("group %q is not a valid DN: %w", g.DN, err)
		}
	}
	for _, a := range q.Attributes {
		if !validAttr(a) {
			return fmt.Errorf("attribute name %q is not valid", a)
		}
	}
	return nil
}

func (r *Reader) readChanges(ctx context.Context, conn asyncSearcher, q Query, wm Watermark, have *Result) (*Delta, error) {
	d := &Delta{Time: r.now()}
	id, err := r.identity(ctx, conn, &d.Stats)
	if err != nil {
		return nil, err
	}
	if reason := r.fullReason(wm, id, q); reason != "" {
		return r.fullRead(ctx, conn, q, id, reason, d)
	}
	var ch *changes
	if wm.Method == ChangeTrackingDirSync {
		ch, err = r.dirSyncChanges(ctx, q, wm, id, &d.Stats)
		if errors.Is(err, errCookieRefused) {
			return r.fullRead(ctx, conn, q, id, err.Error(), d)
		}
	} else {
		ch, err = r.usnChanges(ctx, q, wm, id, &d.Stats)
	}
	if err != nil {
		return nil, err
	}
	if err := r.applyChanges(ctx, conn, q, wm, id, have, ch, d); err != nil {
		if errors.Is(err, errNeedFullRead) {
			return r.fullRead(ctx, conn, q, id, err.Error(), &Delta{Time: d.Time, Stats: d.Stats})
		}
		return nil, err
	}
	return d, nil
}

// errNeedFullRead means a delta met what only a full read resolves (a
// nested group that memberOf does not show, another object at a DN of the
// caller's view): ReadChanges reads in full.
var errNeedFullRead = errors.New("a full read is needed")

// fullRead reads everything and makes a watermark for it. The DirSync
// cookie is taken before the read, so that no change made during the read
// is lost (some are seen twice, which is harmless).
func (r *Reader) fullRead(ctx context.Context, conn asyncSearcher, q Query, id dcIdentity, reason string, d *Delta) (*Delta, error) {
	d.Full, d.FullReason = true, reason
	wm := Watermark{Format: watermarkFormat, Method: r.method(), Server: id.host, InvocationID: id.invocationID,
		BaseDN: r.cfg.BaseDN, USN: id.usn, Query: queryDigest(r.cfg.BaseDN, q)}
	if wm.Method == ChangeTrackingDirSync {
		cookie, err := r.dirSyncStart(ctx, id, &d.Stats)
		switch {
		case err == nil:
			wm.Cookie = cookie
		case errors.Is(err, errDirSyncUnavailable):
			r.log.Info("DirSync cannot serve this base; tracking changes with uSNChanged", "reason", err)
			wm.Method = ChangeTrackingUSN
		default:
			return nil, err
		}
	}
	res, err := r.read(ctx, conn, q)
	if err != nil {
		return nil, err
	}
	d.Result = res
	d.Stats.add(res.Stats)
	wm.NoMemberOf = res.noMemberOf
	for _, g := range q.Groups {
		wm.Groups = append(wm.Groups, WatermarkGroup{DN: g.DN, Closure: res.closures[g.DN]})
	}
	if id.usn < 0 || id.invocationID == "" || id.host == "" {
		wm = Watermark{} // the server cannot serve deltas: the next read is full again
	}
	d.Watermark = wm
	return d, nil
}

// add adds the counts of o to s.
func (s *ReadStats) add(o ReadStats) {
	s.Searches += o.Searches
	s.Pages += o.Pages
	s.Entries += o.Entries
	s.RangeRequests += o.RangeRequests
	s.GroupsRead += o.GroupsRead
	s.MemberReads += o.MemberReads
	s.Probes += o.Probes
}

// changes is what the change search found.
type changes struct {
	users   map[string]*changedUser // by normalized DN
	groups  []changedObject         // changed group objects
	deleted []Deleted
	cookie  []byte // DirSync: the cookie after these changes
}

type changedUser struct {
	user     *User           // nil for a computer account
	memberOf map[string]bool // normalized DNs of its groups
}

type changedObject struct {
	guid, dn string
}

// geFilter is attr>=value (value a decimal number, needing no escape).
type geFilter struct {
	attr  string
	value int64
}

func (g geFilter) appendTo(sb *strings.Builder) {
	sb.WriteByte('(')
	sb.WriteString(g.attr)
	sb.WriteString(">=")
	sb.WriteString(strconv.FormatInt(g.value, 10))
	sb.WriteByte(')')
}

// changeAttrs are the attributes the change search reads.
func changeAttrs(q Query) []string {
	return append(userAttrs(q.Attributes), "objectClass", "memberOf", "isDeleted", "lastKnownParent")
}

// usnChanges reads every user and group of BaseDN whose uSNChanged is
// above the watermark, and the tombstones of the same range: one paged
// search with the show-deleted control (tombstones live under the naming
// context, so a BaseDN below it needs a second search for them).
func (r *Reader) usnChanges(ctx context.Context, q Query, wm Watermark, id dcIdentity, st *ReadStats) (*changes, error) {
	ch := &changes{users: map[string]*changedUser{}}
	dec := newUserDecoder(newAttrTable(q.Attributes), r.now())
	var norm []byte
	collect := func(e rawEntry) error { return ch.add(e, dec, &norm) }
	kind := or(eq("objectClass", "user"), eq("objectClass", "group"))
	f := and(geFilter{"uSNChanged", wm.USN + 1}, kind)
	showDeleted := ldap.NewControlMicrosoftShowDeleted() // not critical: servers without it ignore it
	if err := r.pagedSearchRaw(ctx, r.cfg.BaseDN, ldap.ScopeWholeSubtree, f, changeAttrs(q), st, collect, showDeleted); err != nil {
		return nil, fmt.Errorf("reading changes: %w", err)
	}
	nc := id.namingContext(r.cfg.BaseDN)
	if nc != "" && NormalizeDN(nc) != NormalizeDN(r.cfg.BaseDN) {
		tf := and(eq("isDeleted", "TRUE"), geFilter{"uSNChanged", wm.USN + 1}, kind)
		err := r.pagedSearchRaw(ctx, "CN=Deleted Objects,"+nc, ldap.ScopeSingleLevel, tf, changeAttrs(q), st, collect, showDeleted)
		if err != nil && !ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchObject, ldap.LDAPResultInsufficientAccessRights) {
			return nil, fmt.Errorf("reading tombstones: %w", err)
		}
	}
	return ch, nil
}

// add classifies one changed entry.
func (ch *changes) add(e rawEntry, dec *userDecoder, norm *[]byte) error {
	var isUser, isGroup, deleted bool
	var guid, sid, parent string
	memberOf := map[string]bool{}
	err := e.each(func(name, vals []byte) error {
		// A malformed value fails the read; an empty value set is absent.
		val, err := firstValue(vals)
		if err != nil {
			return err
		}
		switch strings.ToLower(string(name)) {
		case "objectclass":
			for v := vals; len(v) > 0; {
				val, rest, err := nextValue(v)
				if err != nil {
					return err
				}
				v = rest
				isUser = isUser || bytes.EqualFold(val, []byte("user"))
				isGroup = isGroup || bytes.EqualFold(val, []byte("group"))
			}
		case "isdeleted":
			deleted = bytes.EqualFold(val, []byte("TRUE"))
		case "objectguid":
			if val != nil {
				if guid, err = FormatGUID(val); err != nil {
					return fmt.Errorf("%s: objectGUID: %w", e.dn, err)
				}
			}
		case "objectsid":
			if val != nil {
				if sid, err = FormatSID(val); err != nil {
					return fmt.Errorf("%s: objectSid: %w", e.dn, err)
				}
			}
		case "lastknownparent":
			parent = string(val)
		case "memberof":
			for v := vals; len(v) > 0; {
				val, rest, err := nextValue(v)
				if err != nil {
					return err
				}
				v = rest
				memberOf[NormalizeDN(string(val))] = true
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case deleted:
		ch.deleted = append(ch.deleted, Deleted{GUID: guid, SID: sid, DN: string(e.dn), LastKnownParent: parent})
	case isGroup:
		ch.groups = append(ch.groups, changedObject{guid: guid, dn: string(e.dn)})
	case isUser:
		*norm = appendNormalizedDN((*norm)[:0], e.dn)
		u, err := dec.decode(e)
		if err != nil {
			return err
		}
		ch.users[string(*norm)] = &changedUser{user: u, memberOf: memberOf}
	}
	return nil
}

// applyChanges turns the changes into the delta: which mapped groups to
// recompute, the recomputation, the memberships of changed users in the
// other groups, and the next watermark.
func (r *Reader) applyChanges(ctx context.Context, conn asyncSearcher, q Query, wm Watermark, id dcIdentity, have *Result, ch *changes, d *Delta) error {
	closures := map[string][]ClosureGroup{}
	for _, g := range wm.Groups {
		closures[g.DN] = g.Closure
	}
	changedGUIDs, changedDNs := map[string]bool{}, map[string]bool{}
	for _, g := range ch.groups {
		changedGUIDs[g.guid] = g.guid != ""
		changedDNs[NormalizeDN(g.dn)] = true
	}
	for _, t := range ch.deleted {
		if t.GUID != "" {
			changedGUIDs[t.GUID] = true
		}
	}
	var recompute []GroupQuery
	for _, gq := range q.Groups {
		hit := changedDNs[NormalizeDN(gq.DN)]
		for _, c := range closures[gq.DN] {
			hit = hit || c.GUID != "" && changedGUIDs[c.GUID] || changedDNs[NormalizeDN(c.DN)]
		}
		if hit {
			recompute = append(recompute, gq)
		}
	}

	d.Users = map[string]*User{}
	d.Groups = map[string]*Group{}
	d.Members = map[string][]Membership{}
	d.Deleted = ch.deleted
	if len(recompute) > 0 {
		rc, err := r.recompute(ctx, conn, recompute, q.Attributes, have, ch, &d.Stats)
		if err != nil {
			return err
		}
		for _, gq := range recompute {
			d.Groups[gq.DN] = rc.groups[gq.DN]
			closures[gq.DN] = rc.closures[gq.DN]
		}
		maps.Copy(d.Users, rc.users)
	}

	// Changed users in the groups that were not recomputed: a user is a
	// member when one of its groups is in the closure; its direct container
	// is the first such group in visiting order, as in a full read.
	for n, cu := range ch.users {
		if cu.user == nil {
			continue
		}
		member := false
		for _, g := range d.Groups {
			if _, found := slices.BinarySearch(g.Members, n); found {
				member = true
			}
		}
		for _, gq := range q.Groups {
			if _, done := d.Groups[gq.DN]; done {
				continue
			}
			c := closures[gq.DN]
			for i, cg := range c {
				if cu.memberOf[NormalizeDN(cg.DN)] {
					d.Members[gq.DN] = append(d.Members[gq.DN], Membership{DN: n, Via: chainOf(c, i)})
					member = true
					break
				}
			}
		}
		if member {
			d.Users[n] = cu.user
		}
	}
	for _, ms := range d.Members {
		slices.SortFunc(ms, func(a, b Membership) int { return strings.Compare(a.DN, b.DN) })
	}
	// Another object at a DN the view holds (the one there was deleted or
	// moved away unseen): Apply would give it the memberships of the one
	// it replaces, which only a full read sorts out.
	if have != nil {
		for n, u := range d.Users {
			if prev := have.Users[n]; prev != nil && prev.GUID != "" && u.GUID != "" && prev.GUID != u.GUID {
				return fmt.Errorf("another object (objectGUID %s) now has the DN %s: %w", u.GUID, u.DN, errNeedFullRead)
			}
		}
	}

	next := wm
	next.USN, next.Groups = id.usn, nil
	if wm.Method == ChangeTrackingDirSync {
		next.Cookie = ch.cookie
	}
	for _, gq := range q.Groups {
		next.Groups = append(next.Groups, WatermarkGroup{DN: gq.DN, Closure: closures[gq.DN]})
	}
	d.Watermark = next
	return nil
}

// chainOf is the Via chain (display DNs) from the mapped group down to
// closure group i.
func chainOf(c []ClosureGroup, i int) []string {
	var chain []string
	for ; i >= 0; i = c[i].Parent {
		chain = append(chain, c[i].DN)
	}
	slices.Reverse(chain)
	return slices.Clip(chain)
}

// recomputed is the outcome of recomputing some mapped groups.
type recomputed struct {
	groups   map[string]*Group
	closures map[string][]ClosureGroup
	users    map[string]*User // members read (or taken from the changes)
}

// recompute reads the closures of some mapped groups again with read's own
// walk (readWith in delta mode: nested groups found through memberOf, the
// changed users and the caller's view taken as they are, only the other
// members read), so that a recomputed group is what a full read makes of it.
func (r *Reader) recompute(ctx context.Context, conn asyncSearcher, gqs []GroupQuery, attributes []string, have *Result, ch *changes, st *ReadStats) (*recomputed, error) {
	opts := readOpts{delta: true, changed: make(map[string]*User, len(ch.users)), fresh: map[string]*User{}}
	for n, cu := range ch.users {
		opts.changed[n] = cu.user
	}
	if have != nil {
		opts.known = func(n string) (*User, bool) {
			u, ok := have.Users[n]
			return u, ok
		}
	}
	res, err := r.readWith(ctx, conn, Query{Groups: gqs, Attributes: attributes}, opts)
	if err != nil {
		return nil, err
	}
	st.add(res.Stats)
	return &recomputed{groups: res.Groups, closures: res.closures, users: opts.fresh}, nil
}

// Apply folds d into res, which must be the view d was read against (the
// full read the watermark came from, with every later delta applied). A
// full Delta replaces res. Afterwards res is what a full read at the time
// of d would have returned, except for Stats and for what the package
// documentation says only a full read sees (constructed attributes;
// deletions the account could not see as tombstones). It reports whether
// res changed: a delta whose users, groups and memberships are all as res
// holds them (a user touched in an attribute the query does not read)
// changes nothing.
func (res *Result) Apply(d *Delta) (changed bool) {
	if d.Full {
		*res = *d.Result
		return true
	}
	// Work in proportion to the delta, except for the expiry check below:
	// an empty delta allocates nothing.
	shrunk := len(d.Groups) > 0 // members may have left
	if len(d.Users) > 0 || len(d.Deleted) > 0 {
		byGUID := res.guidIndex()
		// rename moves a user from one normalized DN to another in every
		// group; to "" removes it.
		rename := func(old, n string) {
			for _, g := range res.Groups {
				via, ok := g.Via[old]
				if !ok {
					continue
				}
				delete(g.Via, old)
				g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == old })
				if n != "" {
					g.Via[n] = via
					g.Members = insertSorted(g.Members, n)
				}
			}
			if u := res.Users[old]; u != nil {
				delete(byGUID, u.GUID)
			}
			delete(res.Users, old)
			shrunk, changed = true, true
		}
		for _, t := range d.Deleted {
			if n, ok := byGUID[t.GUID]; ok && t.GUID != "" {
				rename(n, "")
			}
		}
		for n, u := range d.Users {
			if old, ok := byGUID[u.GUID]; ok && u.GUID != "" && old != n {
				rename(old, n)
			}
			prev := res.Users[n]
			if prev != nil && prev.GUID != u.GUID {
				delete(byGUID, prev.GUID)
			}
			if prev == nil || !prev.same(u) {
				changed = true
			}
			res.Users[n] = u
			if u.GUID != "" {
				byGUID[u.GUID] = n
			}
		}
	}
	for gdn, ms := range d.Members {
		g := res.Groups[gdn]
		if g == nil {
			continue
		}
		for _, m := range ms {
			if via, ok := g.Via[m.DN]; !ok {
				g.Members = insertSorted(g.Members, m.DN)
				changed = true
			} else if !slices.Equal(via, m.Via) {
				changed = true
			}
			g.Via[m.DN] = m.Via
			n := len(g.Unresolved)
			g.Unresolved = slices.DeleteFunc(g.Unresolved, func(u Unresolved) bool { return NormalizeDN(u.DN) == m.DN })
			changed = changed || len(g.Unresolved) != n
		}
	}
	for gdn, g := range d.Groups {
		if old := res.Groups[gdn]; old == nil || !old.same(g) {
			changed = true
		}
	}
	maps.Copy(res.Groups, d.Groups)

	// Users in no group any more are not part of a read.
	if shrunk {
		keep := map[string]bool{}
		for _, g := range res.Groups {
			for _, m := range g.Members {
				keep[m] = true
			}
		}
		maps.DeleteFunc(res.Users, func(n string, u *User) bool {
			if keep[n] {
				return false
			}
			if res.byGUID[u.GUID] == n {
				delete(res.byGUID, u.GUID)
			}
			return true
		})
	}
	// Expiry follows the clock, not uSNChanged.
	for n, u := range res.Users {
		if !u.Expires.IsZero() && u.Expired != u.Expires.Before(d.Time) {
			c := *u
			c.Expired = !c.Expired
			res.Users[n] = &c
			changed = true
		}
	}
	if d.Watermark.USN > 0 {
		res.HighestUSN = strconv.FormatInt(d.Watermark.USN, 10)
	}
	if len(d.Groups) > 0 {
		res.closures = make(map[string][]ClosureGroup, len(d.Watermark.Groups))
		for _, g := range d.Watermark.Groups {
			res.closures[g.DN] = g.Closure
		}
	}
	return changed
}

// guidIndex returns the index of Users by GUID that Apply keeps, building
// it when it is missing or no longer matches Users in size.
func (res *Result) guidIndex() map[string]string {
	if res.byGUID == nil || len(res.byGUID) != countGUIDs(res.Users) {
		res.byGUID = make(map[string]string, len(res.Users))
		for n, u := range res.Users {
			if u.GUID != "" {
				res.byGUID[u.GUID] = n
			}
		}
	}
	return res.byGUID
}

func countGUIDs(users map[string]*User) int {
	n := 0
	for _, u := range users {
		if u.GUID != "" {
			n++
		}
	}
	return n
}

func insertSorted(s []string, v string) []string {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	return slices.Insert(s, i, v)
}

// same reports whether two users hold the same values.
func (u *User) same(o *User) bool {
	if u.DN != o.DN || u.SID != o.SID || u.GUID != o.GUID || u.SAMAccountName != o.SAMAccountName || u.UPN != o.UPN ||
		u.Disabled != o.Disabled || u.Expired != o.Expired || !u.Expires.Equal(o.Expires) {
		return false
	}
	ua, oa := u.Attrs(), o.Attrs()
	return maps.EqualFunc(ua, oa, slices.Equal)
}

// same reports whether two results of one mapped group are equal.
func (g *Group) same(o *Group) bool {
	return g.DN == o.DN && g.Exists == o.Exists && slices.Equal(g.Members, o.Members) &&
		maps.EqualFunc(g.Via, o.Via, slices.Equal) &&
		slices.EqualFunc(g.Unresolved, o.Unresolved, func(a, b Unresolved) bool {
			return a.DN == b.DN && a.Reason == b.Reason && slices.Equal(a.Via, b.Via)
		})
}
