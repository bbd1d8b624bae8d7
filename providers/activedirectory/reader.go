package activedirectory

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// MaxNestingDepth is the deepest group nesting Read follows below a mapped
// group; deeper nesting is an error rather than a silently shorter answer.
const MaxNestingDepth = 32

// groupsPerFilter caps the memberOf (or objectSid) assertions per filter.
const groupsPerFilter = 100

// userAccountControl bits.
const (
	uacDisabled          = 0x2
	uacWorkstationTrust  = 0x1000
	uacServerTrust       = 0x2000
	attrObjectSID        = "objectSid"
	attrObjectGUID       = "objectGUID"
	attrUAC              = "userAccountControl"
	attrSAMAccountName   = "sAMAccountName"
	attrUPN              = "userPrincipalName"
	attrAccountExpires   = "accountExpires"
	attrHighestCommitted = "highestCommittedUSN"
)

// userAttrs returns the attributes read for every user plus extra.
func userAttrs(extra []string) []string {
	return append([]string{attrObjectSID, attrObjectGUID, attrUAC, attrSAMAccountName, attrUPN, attrAccountExpires}, extra...)
}

// isBinaryAttr reports attributes (lower-case names) whose values are
// binary even when they happen to be valid UTF-8; User.Attr returns them
// base64-encoded (objectSid, objectGUID and sIDHistory as text).
func isBinaryAttr(lowerName string) bool {
	switch lowerName {
	case "thumbnailphoto", "jpegphoto", "usercertificate", "usersmimecertificate", "msexchmailboxguid",
		"msds-consistencyguid", "mailboxguid", "logonhours", "ntsecuritydescriptor", "tokengroups",
		"terminalserver", "usercert", "objectsid", "objectguid", "sidhistory":
		return true
	}
	return false
}

// Reader reads users and group memberships from the directory. It holds one
// connection, dialed lazily, and serializes its operations on it. It is safe
// for concurrent use.
type Reader struct {
	cfg       Config
	endpoints []endpoint
	tlsBase   *tls.Config
	log       *slog.Logger
	now       func() time.Time
	rangeStep int       // >0: always ask member;range explicitly in steps of this size (tests)
	afterPage func(int) // called after each page with more to come (tests)

	mu   sync.Mutex
	conn *ldap.Conn
	lim  *limitConn
	mux  *muxConn // carries the bulk searches past go-ldap's decoder
	url  string
}

// New validates cfg and returns a Reader. It does not connect. A simple bind
// over cleartext ldap:// is refused unless cfg.AllowCleartextBind is set.
func New(cfg Config) (*Reader, error) {
	eps, tc, err := cfg.prepare()
	if err != nil {
		return nil, invalid(err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.AllowCleartextBind && !cfg.StartTLS {
		for _, ep := range eps {
			if !ep.tls {
				log.Warn("INSECURE: the bind password will be sent in cleartext (allowCleartextBind is set)", "url", ep.raw)
			}
		}
	}
	if cfg.InsecureSkipVerify {
		log.Warn("INSECURE: TLS certificate verification is disabled (insecureSkipVerify is set)")
	}
	return &Reader{cfg: cfg, endpoints: eps, tlsBase: tc, log: log, now: time.Now}, nil
}

// String describes the reader without its password.
func (r *Reader) String() string { return "activedirectory.Reader{" + r.cfg.String() + "}" }

// GoString is String.
func (r *Reader) GoString() string { return r.String() }

// LogValue renders the reader's configuration for slog, password redacted.
func (r *Reader) LogValue() slog.Value { return r.cfg.LogValue() }

// Close closes the connection, if any. The Reader reconnects if used again.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropConn()
	return nil
}

// Ping connects, binds, reads the rootDSE and checks that BaseDN exists.
// Its error is an *Error.
func (r *Reader) Ping(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return classify(r.withConn(ctx, func(conn *ldap.Conn) error {
		var st ReadStats
		if _, err := r.baseRead(ctx, conn, "", []string{attrHighestCommitted}, &st); err != nil {
			return fmt.Errorf("reading rootDSE: %w", err)
		}
		e, err := r.baseRead(ctx, conn, r.cfg.BaseDN, []string{"1.1"}, &st)
		if err != nil {
			return err
		}
		if e == nil {
			return invalid(fmt.Errorf("baseDN %s does not exist or is not visible to %s", r.cfg.BaseDN, r.cfg.BindDN))
		}
		return nil
	}))
}

// Query says which groups to resolve and which user attributes to read.
type Query struct {
	Groups []GroupQuery
	// Attributes are extra user attributes (e.g. mail, givenName, sn,
	// department); objectSid, objectGUID, userAccountControl,
	// sAMAccountName, userPrincipalName and accountExpires are always read.
	Attributes []string
}

// GroupQuery names one mapped group.
type GroupQuery struct {
	DN     string // group DN as written in the spec
	Nested bool   // include members of nested groups, transitively
}

// Result is a complete, consistent read. Read never returns a partial one:
// what it could not read is either a failed Read or, for members, listed in
// Group.Unresolved.
type Result struct {
	Groups     map[string]*Group // keyed by the DN exactly as given in the GroupQuery
	Users      map[string]*User  // keyed by normalized DN (see NormalizeDN)
	Stats      ReadStats         // work done
	HighestUSN string            // rootDSE highestCommittedUSN read before the read; "" if unavailable
	Server     string            // URL of the server that answered (USN watermarks are per server)
	// Schema holds the attribute types the directory defines, read once per
	// Read from the subschema entry on the same connection. Read fails when
	// it cannot be read, so it is never nil in a Result from Read.
	Schema *Schema

	closures   map[string][]ClosureGroup // per GroupQuery DN, for change tracking (delta.go)
	noMemberOf bool                      // the server answered no memberOf search (fallback used)
	byGUID     map[string]string         // user GUID -> key of Users, kept by Apply (delta.go)
}

// Group is the resolved membership of one mapped group.
type Group struct {
	DN      string // as given in the GroupQuery
	Exists  bool   // false when the group DN is not found (error-worthy for callers)
	Members []string
	// Members are the normalized DNs of user members (transitive if Nested),
	// sorted and deduplicated; each is a key of Result.Users.
	// Via maps a member DN to the chain of group DNs (display form) from the
	// mapped group down to the group that directly contains the member; a
	// chain of length 1 means a direct member. Chains are shortest paths;
	// members of one group share its chain, so callers must not modify it.
	Via map[string][]string
	// Unresolved lists the members (transitively when Nested) that the read
	// could not resolve to a user account, sorted by normalized DN. Members
	// that are readable but are not user accounts (contacts, foreign
	// security principals, computers, non-nested groups) are not listed. A
	// nested group the bind account cannot read is itself listed: its
	// members are unknown.
	Unresolved []Unresolved
}

// Unresolved is a member of a mapped group that the read could not resolve.
type Unresolved struct {
	DN     string           // display form, as the group lists it
	Reason UnresolvedReason // why it is unresolved
	Via    []string         // group chain from the mapped group, like Group.Via
}

// UnresolvedReason says why a member is unresolved.
type UnresolvedReason string

// Reasons for an unresolved member.
const (
	// UnresolvedUnreadable: listed as a member but the directory returned
	// nothing for it: the bind account cannot read it (or, rarely, it no
	// longer exists).
	UnresolvedUnreadable UnresolvedReason = "unreadable"
	// UnresolvedOutsideBase: outside baseDN, so never read.
	UnresolvedOutsideBase UnresolvedReason = "outside_base"
)

// Explanation says in plain words why a member with this reason is
// unresolved and how to fix it.
func (r UnresolvedReason) Explanation() string {
	switch r {
	case UnresolvedUnreadable:
		return "the directory returned nothing for it: the bind account cannot read it (or it no longer exists); " +
			"grant the bind account read access to it, or remove it from the group"
	case UnresolvedOutsideBase:
		return "it is outside baseDN, so it was not read; widen baseDN to include it, or remove it from the group"
	}
	return "it could not be resolved (" + string(r) + ")"
}

// Explanation is u.Reason.Explanation.
func (u Unresolved) Explanation() string { return u.Reason.Explanation() }

// String renders the member, how it is reached and the explanation.
func (u Unresolved) String() string {
	via := ""
	if len(u.Via) > 1 {
		via = " (via " + strings.Join(u.Via[1:], " > ") + ")"
	}
	return u.DN + via + ": " + u.Explanation()
}

// User is one user account.
type User struct {
	DN             string // display form
	SID            string // S-1-5-21-...
	GUID           string // canonical 8-4-4-4-12 lower-case
	SAMAccountName string
	UPN            string
	Disabled       bool      // userAccountControl & 0x2
	Expired        bool      // accountExpires in the past (0 and 0x7FFFFFFFFFFFFFFF = never)
	Expires        time.Time // accountExpires; zero means never

	// The requested attributes' values, as spans of text (which also
	// holds the strings above), ordered by their attribute's index in
	// table. One table serves every user of a read, so a user costs a few
	// bytes per value, not a map or a slice per attribute.
	table *attrTable
	text  string
	vals  []valSpan
}

// valSpan is one value of a requested attribute: the attribute's index in
// the user's table and where the value lies in the user's text.
type valSpan struct {
	attr       uint16
	start, end uint32
}

// values returns the spans of attribute i.
func (u *User) values(i int) []valSpan {
	lo, _ := slices.BinarySearchFunc(u.vals, i, func(v valSpan, i int) int { return int(v.attr) - i })
	hi := lo
	for hi < len(u.vals) && int(u.vals[hi].attr) == i {
		hi++
	}
	return u.vals[lo:hi]
}

// attrIndex is the index of a requested attribute in the user's table.
func (u *User) attrIndex(name string) (int, bool) {
	if u.table == nil {
		return 0, false
	}
	i, ok := u.table.index[name]
	if !ok {
		i, ok = u.table.index[strings.ToLower(name)]
	}
	return i, ok
}

// attrTable names the extra attributes of one read (Query.Attributes,
// deduplicated case-insensitively) and indexes them by lower-case name and
// by the name as given, so that the usual lookup needs no lower-casing.
type attrTable struct {
	names []string
	index map[string]int
}

func newAttrTable(attrs []string) *attrTable {
	t := &attrTable{index: make(map[string]int, len(attrs))}
	for _, a := range attrs {
		l := strings.ToLower(a)
		if _, dup := t.index[l]; dup {
			continue
		}
		t.index[l] = len(t.names)
		t.names = append(t.names, a)
	}
	for i, a := range t.names {
		if _, ok := t.index[a]; !ok {
			t.index[a] = i
		}
	}
	return t
}

// Attr returns the values of a requested attribute (the name is matched
// case-insensitively): objectSid, objectGUID and sIDHistory as text, other
// binary values base64. It returns nil for an attribute the user lacks or
// the read did not request.
func (u *User) Attr(name string) []string {
	i, ok := u.attrIndex(name)
	if !ok {
		return nil
	}
	vs := u.values(i)
	if len(vs) == 0 {
		return nil
	}
	out := make([]string, len(vs))
	for j, v := range vs {
		out[j] = u.text[v.start:v.end]
	}
	return out
}

// AttrText returns the values of a requested attribute as one string,
// joined with sep when there are several, "" when there is none. A single
// value costs no allocation, so it suits hot paths.
func (u *User) AttrText(name, sep string) string {
	i, ok := u.attrIndex(name)
	if !ok {
		return ""
	}
	vs := u.values(i)
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return u.text[vs[0].start:vs[0].end]
	}
	var b strings.Builder
	for j, v := range vs {
		if j > 0 {
			b.WriteString(sep)
		}
		b.WriteString(u.text[v.start:v.end])
	}
	return b.String()
}

// RangeAttrs calls fn for each requested attribute the user has, in the
// order the query named them.
func (u *User) RangeAttrs(fn func(name string, values []string)) {
	if u.table == nil {
		return
	}
	for i := 0; i < len(u.vals); {
		a := int(u.vals[i].attr)
		vs := u.values(a)
		out := make([]string, len(vs))
		for j, v := range vs {
			out[j] = u.text[v.start:v.end]
		}
		fn(u.table.names[a], out)
		i += len(vs)
	}
}

// WithAttrs returns a copy of u whose requested attributes are attrs, for
// fakes and tests that build users without a directory.
func (u User) WithAttrs(attrs map[string][]string) *User {
	names := slices.Sorted(maps.Keys(attrs))
	u.table = newAttrTable(names)
	u.setValues(func(i int) []string { return attrs[u.table.names[i]] })
	return &u
}

// setValues stores the values of each table attribute (nil: absent) in
// the user's text and spans.
func (u *User) setValues(values func(i int) []string) {
	var b []byte
	u.vals = nil
	for i := range u.table.names {
		for _, v := range values(i) {
			start := len(b)
			b = append(b, v...)
			u.vals = append(u.vals, valSpan{attr: uint16(i), start: uint32(start), end: uint32(len(b))})
		}
	}
	u.text = string(b)
}

// Attrs returns the requested attributes the user has, keyed by the name
// the query gave, or nil when it has none. It builds a new map; prefer Attr
// on hot paths.
func (u *User) Attrs() map[string][]string {
	var m map[string][]string
	u.RangeAttrs(func(name string, values []string) {
		if m == nil {
			m = map[string][]string{}
		}
		m[name] = values
	})
	return m
}

// validAttr reports whether s is a plain attribute description.
func validAttr(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ';') {
			return false
		}
	}
	return true
}

// Read resolves each group's user members (transitively when Nested) and
// reads their attributes. Any failure, on any page, fails the whole read;
// the error is an *Error.
func (r *Reader) Read(ctx context.Context, q Query) (*Result, error) {
	for _, g := range q.Groups {
		if _, err := ldap.ParseDN(g.DN); err != nil {
			return nil, invalid(fmt.Errorf("group %q is not a valid DN: %w", g.DN, err))
		}
	}
	for _, a := range q.Attributes {
		if !validAttr(a) {
			return nil, invalid(fmt.Errorf("attribute name %q is not valid", a))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var res *Result
	err := r.withConn(ctx, func(conn *ldap.Conn) error {
		var err error
		res, err = r.read(ctx, conn, q)
		return err
	})
	if err != nil {
		return nil, classify(fmt.Errorf("reading the directory: %w", err))
	}
	return res, nil
}

// walk is the breadth-first expansion of one mapped group.
type walk struct {
	root   string            // normalized DN of the mapped group
	parent map[string]string // group norm -> parent group norm ("" for root)
	direct map[string]string // candidate member norm -> norm of the group directly containing it (first in BFS)
	order  []string          // groups in visiting order, the root first
}

// candidate is a member a read may resolve to a user.
type candidate struct {
	norm string // normalized DN
	dn   string // as the group lists it
}

// readOpts tailor read to the recomputation of some mapped groups in a
// delta (see delta.go); the zero value is a full read.
type readOpts struct {
	// delta: skip the rootDSE and the schema, find nested groups level by
	// level through memberOf instead of listing every group of BaseDN, and
	// do not fall back to reading containers (change tracking needs
	// memberOf anyway).
	delta bool
	// known returns a user of the caller's current view; members it holds
	// are not read again. nil reads every member.
	known func(norm string) (*User, bool)
	// changed are the users the change search read, by normalized DN (a
	// nil User: a computer account); they are taken as they are.
	changed map[string]*User
	// fresh, when set, receives every member user read or taken from
	// changed (not those from known).
	fresh map[string]*User
}

// dnBatchMax is the most unknown members of recomputed groups that a delta
// reads by DN (100 per search); above it they are read through memberOf,
// as a full read does.
const dnBatchMax = 1000

func (r *Reader) read(ctx context.Context, conn asyncSearcher, q Query) (*Result, error) {
	return r.readWith(ctx, conn, q, readOpts{})
}

// readWith is read, or with opts a delta's recomputation of q's groups.
func (r *Reader) readWith(ctx context.Context, conn asyncSearcher, q Query, opts readOpts) (*Result, error) {
	res := &Result{Groups: map[string]*Group{}, Users: map[string]*User{}, Server: r.url}
	st := &res.Stats
	if !opts.delta {
		root, err := r.baseRead(ctx, conn, "", []string{attrHighestCommitted, attrSubschemaSubentry}, st)
		if err != nil {
			return nil, fmt.Errorf("reading rootDSE: %w", err)
		}
		if root != nil {
			res.HighestUSN = root.GetEqualFoldAttributeValue(attrHighestCommitted)
		}
		if res.Schema, err = r.readSchema(ctx, conn, root, st); err != nil {
			return nil, fmt.Errorf("reading the schema: %w", err)
		}
	}
	baseNorm := NormalizeDN(r.cfg.BaseDN)

	// Which DNs are groups (only needed to expand nesting): all groups of
	// BaseDN, or in a delta the groups that are members of the groups of
	// each level, found through memberOf (entries only for nested groups).
	isGroup := map[string]bool{}
	probed := map[string]bool{}
	var nestedIn func(level []string, groups map[string]*groupEntry) error
	if opts.delta {
		nestedIn = func(level []string, groups map[string]*groupEntry) error {
			var ask []string
			for _, gn := range level {
				if !probed[gn] {
					probed[gn] = true
					ask = append(ask, groups[gn].dn)
				}
			}
			for chunk := range slices.Chunk(ask, groupsPerFilter) {
				ors := make([]filter, len(chunk))
				for i, dn := range chunk {
					ors[i] = eq("memberOf", dn)
				}
				f := and(or(eq("objectClass", "group"), eq("objectClass", "groupOfNames")), or(ors...))
				var norm []byte
				err := r.pagedSearchRaw(ctx, r.cfg.BaseDN, ldap.ScopeWholeSubtree, f, []string{"1.1"}, st, func(e rawEntry) error {
					norm = appendNormalizedDN(norm[:0], e.dn)
					isGroup[string(norm)] = true
					return nil
				})
				if err != nil {
					return fmt.Errorf("finding nested groups: %w", err)
				}
			}
			return nil
		}
	} else if slices.ContainsFunc(q.Groups, func(g GroupQuery) bool { return g.Nested }) {
		f := or(eq("objectClass", "group"), eq("objectClass", "groupOfNames"))
		err := r.pagedSearch(ctx, conn, r.cfg.BaseDN, ldap.ScopeWholeSubtree, f, []string{"1.1"}, st, func(e *ldap.Entry) error {
			isGroup[NormalizeDN(e.DN)] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing groups: %w", err)
		}
	}

	groups := map[string]*groupEntry{} // by normalized DN; nil value = does not exist
	load := func(dn, norm string) (*groupEntry, error) {
		if g, ok := groups[norm]; ok {
			return g, nil
		}
		g, err := r.readGroup(ctx, conn, dn, st)
		if err != nil {
			return nil, err
		}
		groups[norm] = g
		return g, nil
	}

	// reasons says why a candidate member is unresolved.
	reasons := map[string]UnresolvedReason{}
	walks := make([]*walk, len(q.Groups))
	reachable := map[string]string{} // group norm -> display DN, for the user search
	// candidates maps a candidate member's normalized DN to itself (the
	// one string every map of the read shares for it) and its display DN.
	candidates := map[string]candidate{}
	// inNested marks the candidates some nested mapped group reaches: one
	// of them that turns out to be a group was missed as a group above.
	inNested := map[string]bool{}
	for i, gq := range q.Groups {
		rootNorm := NormalizeDN(gq.DN)
		g, err := load(gq.DN, rootNorm)
		if err != nil {
			return nil, err
		}
		res.Groups[gq.DN] = &Group{DN: gq.DN, Exists: g != nil, Members: []string{}, Via: map[string][]string{}}
		if g == nil {
			r.log.Warn("mapped group not found", "group", gq.DN)
			continue
		}
		w := &walk{root: rootNorm, parent: map[string]string{rootNorm: ""}, direct: map[string]string{}, order: []string{rootNorm}}
		walks[i] = w
		level := []string{rootNorm}
		for depth := 0; len(level) > 0; depth++ {
			if gq.Nested && nestedIn != nil {
				if err := nestedIn(level, groups); err != nil {
					return nil, err
				}
			}
			var next []string
			for _, gn := range level {
				ge := groups[gn]
				reachable[gn] = ge.dn
				for k, mn := range ge.norms {
					if gq.Nested && isGroup[mn] {
						if _, seen := w.parent[mn]; seen {
							continue // cycle or diamond
						}
						if depth+1 > MaxNestingDepth {
							return nil, fmt.Errorf("group %s nests deeper than %d levels (at %s)", gq.DN, MaxNestingDepth, ge.members[k])
						}
						child, err := load(ge.members[k], mn)
						if err != nil {
							return nil, err
						}
						if child == nil {
							// Listed as a group but gone on its base read: its
							// members are unknown, so it is an unreadable member.
							if _, ok := w.direct[mn]; !ok {
								w.direct[mn] = gn
								candidates[mn] = candidate{norm: mn, dn: ge.members[k]}
							}
							reasons[mn] = UnresolvedUnreadable
							continue
						}
						w.parent[mn] = gn
						w.order = append(w.order, mn)
						next = append(next, mn)
						continue
					}
					if _, ok := w.direct[mn]; !ok {
						w.direct[mn] = gn
						candidates[mn] = candidate{norm: mn, dn: ge.members[k]}
					}
					if gq.Nested {
						inNested[mn] = true
					}
				}
			}
			level = next
		}
	}

	// Read the candidate users: one paged search per groupsPerFilter
	// reachable groups, matched back to the member lists by normalized DN.
	// Candidates outside baseDN are never read.
	attrs := userAttrs(q.Attributes)
	withClass := append([]string{"objectClass"}, attrs...)
	table := newAttrTable(q.Attributes)
	for n := range candidates {
		if !inBase(n, baseNorm) {
			reasons[n] = UnresolvedOutsideBase
		}
	}
	// A candidate the directory returned is resolved: a user (in
	// res.Users) or another readable entry (in others), so that no map
	// of every candidate is needed for it.
	others := map[string]bool{}
	resolved := func(n string) bool { return res.Users[n] != nil || others[n] }
	// collect records a returned candidate, on the reader's own decoder
	// (the entry arrives still encoded and becomes a User directly): a
	// user account (objectClass user, not computer) becomes a User,
	// another readable entry is ignored. An entry whose objectClass is
	// unknown (the search did not ask for it or the bind account cannot
	// read it) counts as a user only when the search filtered on
	// objectClass=user; otherwise it stays unresolved.
	dec := newUserDecoder(table, r.now())
	var norm []byte
	collect := func(e rawEntry, filteredUsers bool) error {
		norm = appendNormalizedDN(norm[:0], e.dn)
		c, ok := candidates[string(norm)]
		if !ok || resolved(c.norm) || reasons[c.norm] != "" {
			return nil
		}
		n := c.norm
		classes, err := rawClasses(e)
		if err != nil {
			return err
		}
		switch {
		case !classes.has && !filteredUsers:
			return nil
		case classes.has && inNested[n] && classes.group:
			// A group below a nested mapped group that was not found as one
			// (in a delta: its memberOf is unreadable): its members are
			// unknown. A full read lists every group; here it stays
			// unresolved, and a delta is read in full instead.
			if opts.delta {
				return fmt.Errorf("nested group %s was not found through memberOf: %w", e.dn, errNeedFullRead)
			}
			return nil
		case classes.has && (!classes.user || classes.computer):
			others[n] = true // readable, not a user account
			return nil
		}
		u, err := dec.decode(e)
		if err != nil {
			return err
		}
		if u == nil {
			others[n] = true // a computer account
		} else {
			res.Users[n] = u
			if opts.fresh != nil {
				opts.fresh[n] = u
			}
		}
		return nil
	}
	// A delta takes the members it already has (changed users, the
	// caller's view) as they are, and reads the others by DN when they are
	// few; a full read reads every member through memberOf.
	var unknown []string
	if opts.delta {
		for n := range candidates {
			if reasons[n] != "" {
				continue
			}
			if u, ok := opts.changed[n]; ok {
				if u != nil {
					res.Users[n], opts.fresh[n] = u, u
				} else {
					others[n] = true
				}
				continue
			}
			if opts.known != nil {
				if u, ok := opts.known(n); ok && u != nil {
					res.Users[n] = u
					continue
				}
			}
			unknown = append(unknown, n)
		}
		slices.Sort(unknown)
	}
	var memberFilters []filter
	switch {
	case opts.delta && len(unknown) == 0:
	case opts.delta && opts.known != nil && len(unknown) <= dnBatchMax:
		for chunk := range slices.Chunk(unknown, groupsPerFilter) {
			ors := make([]filter, len(chunk))
			for i, n := range chunk {
				ors[i] = eq("distinguishedName", candidates[n].dn)
			}
			memberFilters = append(memberFilters, or(ors...))
		}
	default:
		for chunk := range slices.Chunk(slices.Sorted(maps.Values(reachable)), groupsPerFilter) {
			ors := make([]filter, len(chunk))
			for i, dn := range chunk {
				ors[i] = eq("memberOf", dn)
			}
			memberFilters = append(memberFilters, or(ors...))
		}
	}
	seenEntries := 0
	for _, f := range memberFilters {
		before := st.Entries
		err := r.pagedSearchRaw(ctx, r.cfg.BaseDN, ldap.ScopeWholeSubtree, and(eq("objectClass", "user"), f), attrs, st,
			func(e rawEntry) error { return collect(e, true) })
		if err != nil {
			return nil, fmt.Errorf("reading members: %w", err)
		}
		seenEntries += st.Entries - before
	}
	// Servers without memberOf (e.g. OpenLDAP without the memberof overlay)
	// answer nothing: read the members' containers inside baseDN one level
	// deep instead.
	if !opts.delta && seenEntries == 0 && len(candidates) > len(reasons) {
		res.noMemberOf = true
		parents := map[string]bool{}
		for n, c := range candidates {
			dn := c.dn
			if reasons[n] != "" {
				continue
			}
			if p, ok := parentDN(dn); ok && inBase(NormalizeDN(p), baseNorm) {
				parents[p] = true
			}
		}
		r.log.Info("no member found through memberOf; reading member containers instead", "containers", len(parents))
		for _, p := range slices.Sorted(maps.Keys(parents)) {
			err := r.pagedSearchRaw(ctx, p, ldap.ScopeSingleLevel, present("objectClass"), withClass, st,
				func(e rawEntry) error { return collect(e, false) })
			if err != nil {
				return nil, fmt.Errorf("reading members: %w", err)
			}
		}
	}
	// Each candidate in baseDN that no search returned gets one base read:
	// a user whose memberOf the bind account cannot read is still a user, a
	// readable entry that is not a user is ignored, and nothing at all (no
	// entry, or one without even objectClass) is an unreadable member.
	for _, n := range slices.Sorted(maps.Keys(candidates)) {
		if resolved(n) || reasons[n] != "" {
			continue
		}
		st.MemberReads++
		err := r.baseReadRaw(ctx, candidates[n].dn, withClass, st, func(e rawEntry) error { return collect(e, false) })
		if err != nil {
			return nil, fmt.Errorf("reading member %s: %w", candidates[n].dn, err)
		}
		if !resolved(n) {
			reasons[n] = UnresolvedUnreadable
		}
	}

	res.closures = make(map[string][]ClosureGroup, len(q.Groups))
	for i, gq := range q.Groups {
		w := walks[i]
		if w == nil {
			res.closures[gq.DN] = nil
			continue
		}
		res.closures[gq.DN] = w.closure(groups)
		g := res.Groups[gq.DN]
		chains := map[string][]string{} // by container: members share their chain
		chainOf := func(container string) []string {
			chain, ok := chains[container]
			if !ok {
				for c := container; c != ""; c = w.parent[c] {
					chain = append(chain, groups[c].dn)
				}
				slices.Reverse(chain)
				chain = slices.Clip(chain)
				chains[container] = chain
			}
			return chain
		}
		for mn, container := range w.direct {
			if _, ok := res.Users[mn]; ok {
				g.Members = append(g.Members, mn)
				g.Via[mn] = chainOf(container)
				continue
			}
			if reason := reasons[mn]; reason != "" {
				g.Unresolved = append(g.Unresolved, Unresolved{DN: candidates[mn].dn, Reason: reason, Via: chainOf(container)})
			}
		}
		slices.Sort(g.Members)
		slices.SortFunc(g.Unresolved, func(a, b Unresolved) int { return strings.Compare(NormalizeDN(a.DN), NormalizeDN(b.DN)) })
	}
	r.log.Debug("directory read", "groups", len(q.Groups), "users", len(res.Users),
		"searches", st.Searches, "pages", st.Pages, "entries", st.Entries, "rangeRequests", st.RangeRequests)
	return res, nil
}

// inBase reports whether the normalized DN n is baseNorm or below it.
func inBase(n, baseNorm string) bool {
	if n == baseNorm {
		return true
	}
	prefix, ok := strings.CutSuffix(n, ","+baseNorm)
	if !ok {
		return false
	}
	// The comma must separate RDNs, not be an escaped one inside a value.
	slashes := len(prefix) - len(strings.TrimRight(prefix, `\`))
	return slashes%2 == 0
}

func hasFold(vals []string, s string) bool {
	return slices.ContainsFunc(vals, func(v string) bool { return strings.EqualFold(v, s) })
}

// parentDN returns the DN of dn's container.
func parentDN(dn string) (string, bool) {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) < 2 {
		return "", false
	}
	return (&ldap.DN{RDNs: d.RDNs[1:]}).String(), true
}

// toUser converts an entry to a User. Computer accounts return nil.
func (r *Reader) toUser(e *ldap.Entry, table *attrTable) (*User, error) {
	u := &User{DN: e.DN, table: table}
	var byAttr [][]string
	for _, a := range e.Attributes {
		name := strings.ToLower(a.Name)
		switch name {
		case "objectsid":
			if len(a.ByteValues) > 0 {
				s, err := FormatSID(a.ByteValues[0])
				if err != nil {
					return nil, fmt.Errorf("user %s: objectSid: %w", e.DN, err)
				}
				u.SID = s
			}
		case "objectguid":
			if len(a.ByteValues) > 0 {
				s, err := FormatGUID(a.ByteValues[0])
				if err != nil {
					return nil, fmt.Errorf("user %s: objectGUID: %w", e.DN, err)
				}
				u.GUID = s
			}
		case "useraccountcontrol":
			if len(a.Values) > 0 {
				v, err := strconv.ParseInt(a.Values[0], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("user %s: userAccountControl %q: %w", e.DN, a.Values[0], err)
				}
				if v&(uacWorkstationTrust|uacServerTrust) != 0 {
					return nil, nil
				}
				u.Disabled = v&uacDisabled != 0
			}
		case "samaccountname":
			if len(a.Values) > 0 {
				u.SAMAccountName = a.Values[0]
			}
		case "userprincipalname":
			if len(a.Values) > 0 {
				u.UPN = a.Values[0]
			}
		case "accountexpires":
			if len(a.Values) > 0 {
				t, err := parseAccountExpires(a.Values[0])
				if err != nil {
					return nil, fmt.Errorf("user %s: %w", e.DN, err)
				}
				u.Expires = t
				u.Expired = !t.IsZero() && t.Before(r.now())
			}
		}
		i, ok := table.index[name]
		if !ok {
			continue
		}
		vals, err := attrValues(name, a)
		if err != nil {
			return nil, fmt.Errorf("user %s: %s: %w", e.DN, a.Name, err)
		}
		if byAttr == nil {
			byAttr = make([][]string, len(table.names))
		}
		byAttr[i] = vals // later duplicates win
	}
	if byAttr != nil {
		u.setValues(func(i int) []string { return byAttr[i] })
	}
	return u, nil
}

// attrValues renders an attribute's values as text.
func attrValues(lowerName string, a *ldap.EntryAttribute) ([]string, error) {
	out := make([]string, len(a.ByteValues))
	for i, b := range a.ByteValues {
		var err error
		switch {
		case lowerName == "objectsid" || lowerName == "sidhistory":
			out[i], err = FormatSID(b)
		case lowerName == "objectguid":
			out[i], err = FormatGUID(b)
		case isBinaryAttr(lowerName) || !utf8.Valid(b):
			out[i] = base64.StdEncoding.EncodeToString(b)
		default:
			out[i] = string(b)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Lookup finds user accounts by SID, for telling a user deleted from AD
// from one that left the mapped groups. It searches in batches of 100 SIDs
// (binary objectSid assertions, every byte escaped). The map is keyed by the
// SID as given; SIDs not found are absent. The error is an *Error.
func (r *Reader) Lookup(ctx context.Context, sids []string, attrs []string) (map[string]*User, error) {
	for _, a := range attrs {
		if !validAttr(a) {
			return nil, invalid(fmt.Errorf("attribute name %q is not valid", a))
		}
	}
	byCanon := map[string]string{} // canonical SID -> SID as given
	var bins [][]byte
	for _, s := range sids {
		b, err := ParseSID(s)
		if err != nil {
			return nil, invalid(err)
		}
		c, _ := FormatSID(b)
		if _, dup := byCanon[c]; dup {
			continue
		}
		byCanon[c] = s
		bins = append(bins, b)
	}
	out := map[string]*User{}
	if len(bins) == 0 {
		return out, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	all := userAttrs(attrs)
	table := newAttrTable(attrs)
	err := r.withConn(ctx, func(conn *ldap.Conn) error {
		clear(out)
		var st ReadStats
		for chunk := range slices.Chunk(bins, groupsPerFilter) {
			ors := make([]filter, len(chunk))
			for i, b := range chunk {
				ors[i] = eqBytes("objectSid", b)
			}
			err := r.pagedSearch(ctx, conn, r.cfg.BaseDN, ldap.ScopeWholeSubtree, and(eq("objectClass", "user"), or(ors...)), all, &st, func(e *ldap.Entry) error {
				u, err := r.toUser(e, table)
				if err != nil || u == nil {
					return err
				}
				if given, ok := byCanon[u.SID]; ok {
					out[given] = u
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, classify(fmt.Errorf("looking up users by sid: %w", err))
	}
	return out, nil
}
