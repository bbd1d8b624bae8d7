package embedded

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// DefaultDomainSID is the domain SID used when Options.DomainSID is empty.
const DefaultDomainSID = "S-1-5-21-1004336348-1177238915-682003330"

// firstRID is the first relative ID handed to users and groups without objectSid.
const firstRID = 1100

// firstUSN is the first update sequence number handed out.
const firstUSN = 12000

// attribute is one stored attribute; values hold raw bytes in Go strings.
type attribute struct {
	name  string // as stored (and returned)
	lname string // lower case, for lookups
	vals  []string
}

// entry is one directory object. Entries are mutated in place under the
// directory's write lock and read under its read lock.
type entry struct {
	dn          string // as given
	norm        string // normalized (lower case, canonical escaping)
	parent      string // normalized parent DN
	attrs       []*attribute
	memberNorms []string // normalized member values (groups only)
	deleted     bool
	config      bool // lives in the configuration naming context
	// hidden (x-embedded-hidden) makes the entry invisible to clients; it
	// still appears in the member values of groups.
	hidden bool
	// hiddenAttrs (x-embedded-hidden-attribute) are lower-case names of
	// attributes clients can neither read nor match in filters.
	hiddenAttrs []string
	tombstone   bool // a deleted object (or CN=Deleted Objects itself): seen only with the show-deleted control
}

// Pseudo-attributes that simulate access control in LDIF fixtures; they are
// interpreted by New and Add, never stored or returned.
const (
	pseudoHidden     = "x-embedded-hidden"
	pseudoHiddenAttr = "x-embedded-hidden-attribute"
)

// attrHidden reports whether clients may not see attribute lname of e.
func (e *entry) attrHidden(lname string) bool {
	return len(e.hiddenAttrs) > 0 && slices.Contains(e.hiddenAttrs, lname)
}

// setPseudo applies a pseudo-attribute; ok is false when name is none.
func (e *entry) setPseudo(name string, vals []string) (ok bool, err error) {
	switch strings.ToLower(name) {
	case pseudoHidden:
		switch {
		case len(vals) == 0:
			e.hidden = false
		case len(vals) == 1 && strings.EqualFold(vals[0], "TRUE"):
			e.hidden = true
		case len(vals) == 1 && strings.EqualFold(vals[0], "FALSE"):
			e.hidden = false
		default:
			return true, fmt.Errorf("entry %q: %s must be TRUE or FALSE, got %q", e.dn, pseudoHidden, vals)
		}
		return true, nil
	case pseudoHiddenAttr:
		e.hiddenAttrs = e.hiddenAttrs[:0:0]
		for _, v := range vals {
			if !validAttrDesc(v) || strings.HasPrefix(strings.ToLower(v), "x-embedded-") {
				return true, fmt.Errorf("entry %q: %s: %q is not an attribute name", e.dn, pseudoHiddenAttr, v)
			}
			e.hiddenAttrs = append(e.hiddenAttrs, strings.ToLower(v))
		}
		return true, nil
	}
	return false, nil
}

func (e *entry) get(lname string) *attribute {
	for _, a := range e.attrs {
		if a.lname == lname {
			return a
		}
	}
	return nil
}

func (e *entry) values(lname string) []string {
	if a := e.get(lname); a != nil {
		return a.vals
	}
	return nil
}

// set replaces (or with no values removes) an attribute, keeping its position.
func (e *entry) set(name string, vals []string) {
	lname := strings.ToLower(name)
	for i, a := range e.attrs {
		if a.lname == lname {
			if len(vals) == 0 {
				e.attrs = slices.Delete(e.attrs, i, i+1)
				return
			}
			a.vals = vals
			return
		}
	}
	if len(vals) > 0 {
		e.attrs = append(e.attrs, &attribute{name: name, lname: lname, vals: vals})
	}
}

func (e *entry) hasClass(class string) bool {
	for _, v := range e.values("objectclass") {
		if strings.EqualFold(v, class) {
			return true
		}
	}
	return false
}

// directory is the in-memory data plus the indexes derived from it.
type directory struct {
	base       string // naming context as given
	baseNorm   string
	configNorm string
	realm      string // lower-case DNS name of the domain
	domainSID  []byte // binary domain SID (no RID)
	entries    []*entry
	byNorm     map[string]*entry
	memberOf   map[string][]*entry // normalized member DN -> groups listing it
	hostName   string              // dnsHostName of the DC
	deletedDN  string              // CN=Deleted Objects,<base>
	usn        int64
	nextRID    uint32
	usedRIDs   map[uint32]bool
	usedGUIDs  map[string]bool   // objectGUIDs handed out, tombstones' included
	attrNames  map[string]string // lower-case -> name of every attribute ever stored (for the schema)
	schemaNorm string            // normalized DN of the subschema entry
}

// normDN returns the canonical form of a DN: types and values lower-cased,
// values re-escaped, multi-valued RDNs sorted. Two DNs are equal when their
// canonical forms are.
func normDN(s string) (string, error) {
	d, err := ldap.ParseDN(s)
	if err != nil {
		return "", fmt.Errorf("parse dn %q: %w", s, err)
	}
	for _, rdn := range d.RDNs {
		for _, a := range rdn.Attributes {
			a.Type = strings.ToLower(a.Type)
			a.Value = strings.ToLower(a.Value)
		}
	}
	return d.String(), nil
}

// parentNorm returns the normalized parent of a normalized DN.
func parentNorm(norm string) string {
	// Normalized DNs escape commas inside values with a backslash; find the
	// first unescaped comma.
	for i := 0; i < len(norm); i++ {
		switch norm[i] {
		case '\\':
			i++
		case ',':
			return norm[i+1:]
		}
	}
	return ""
}

// firstRDNValue returns the (unescaped) value of the first RDN of dn.
func firstRDNValue(dn string) string {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) == 0 {
		return ""
	}
	return d.RDNs[0].Attributes[0].Value
}

// firstRDN returns the type and value of the first RDN of dn.
func firstRDN(dn string) (typ, val string) {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) == 0 {
		return "", ""
	}
	return d.RDNs[0].Attributes[0].Type, d.RDNs[0].Attributes[0].Value
}

// ParseSID converts the string form S-1-5-21-... into the binary form AD stores.
func ParseSID(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "S") {
		return nil, fmt.Errorf("invalid sid %q", s)
	}
	rev, err := strconv.ParseUint(parts[1], 10, 8)
	if err != nil {
		return nil, fmt.Errorf("invalid sid %q: revision: %w", s, err)
	}
	auth, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, fmt.Errorf("invalid sid %q: authority: %w", s, err)
	}
	subs := parts[3:]
	if len(subs) > 15 {
		return nil, fmt.Errorf("invalid sid %q: too many sub-authorities", s)
	}
	b := make([]byte, 8, 8+4*len(subs))
	b[0] = byte(rev)
	b[1] = byte(len(subs))
	for i := range 6 {
		b[2+i] = byte(auth >> (8 * (5 - i)))
	}
	for _, p := range subs {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("invalid sid %q: sub-authority %q: %w", s, p, err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, nil
}

// FormatSID converts a binary SID into its string form.
func FormatSID(b []byte) (string, error) {
	if len(b) < 8 || len(b) != 8+4*int(b[1]) {
		return "", errors.New("invalid binary sid")
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "S-%d-%d", b[0], auth)
	for i := range int(b[1]) {
		fmt.Fprintf(&sb, "-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return sb.String(), nil
}

// guidFor derives a stable 16-byte objectGUID from a normalized DN.
func guidFor(salt, norm string) string {
	h := sha256.Sum256([]byte(salt + "\x00" + norm))
	g := h[:16]
	g[7] = g[7]&0x0f | 0x40 // version 4 in the little-endian field AD stores
	g[8] = g[8]&0x3f | 0x80
	return string(g)
}

// newDirectory builds the directory from entries, synthesizing AD attributes.
func newDirectory(in []*ldap.Entry, baseDN, domainSID string) (*directory, error) {
	sid, err := ParseSID(domainSID)
	if err != nil {
		return nil, fmt.Errorf("domain sid: %w", err)
	}
	d := &directory{
		domainSID: sid,
		byNorm:    make(map[string]*entry, len(in)+8),
		memberOf:  make(map[string][]*entry),
		usn:       firstUSN,
		nextRID:   firstRID,
		usedRIDs:  make(map[uint32]bool),
		usedGUIDs: make(map[string]bool),
		attrNames: make(map[string]string),
	}
	given := make([]*entry, 0, len(in))
	defined := make(map[string]bool, len(in))
	for i, le := range in {
		if le == nil {
			return nil, fmt.Errorf("entry %d is nil", i)
		}
		e, err := fromLDAPEntry(le)
		if err != nil {
			return nil, err
		}
		if defined[e.norm] {
			return nil, fmt.Errorf("duplicate entry %q", le.DN)
		}
		defined[e.norm] = true
		given = append(given, e)
	}
	if err := d.setBase(baseDN, given); err != nil {
		return nil, err
	}
	// Explicit SIDs in the data reserve their RIDs so synthesized ones never collide.
	for _, e := range given {
		for _, v := range e.values("objectsid") {
			if rid, ok := d.ridOf([]byte(v)); ok {
				d.usedRIDs[rid] = true
			}
		}
	}
	// Final order: domain root, then every entry preceded by any missing ancestors.
	ordered := make([]*entry, 0, len(given)+4)
	if !defined[d.baseNorm] {
		ordered = append(ordered, d.rootEntry())
		defined[d.baseNorm] = true
	}
	for _, e := range given {
		ordered = append(ordered, d.missingAncestors(e, defined)...)
		ordered = append(ordered, e)
	}
	ordered = append(ordered, d.configEntries()...)
	ordered = append(ordered, d.deletedObjects())
	for _, e := range ordered {
		if err := d.insert(e); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// fromLDAPEntry copies a go-ldap entry, preferring ByteValues (raw bytes).
func fromLDAPEntry(le *ldap.Entry) (*entry, error) {
	norm, err := normDN(le.DN)
	if err != nil {
		return nil, fmt.Errorf("entry %q: %w", le.DN, err)
	}
	if norm == "" {
		return nil, errors.New("entry with an empty dn")
	}
	e := &entry{dn: le.DN, norm: norm, parent: parentNorm(norm)}
	for _, a := range le.Attributes {
		if a == nil || a.Name == "" {
			continue
		}
		var vals []string
		if len(a.ByteValues) > 0 {
			vals = make([]string, len(a.ByteValues))
			for i, b := range a.ByteValues {
				vals[i] = string(b)
			}
		} else {
			vals = slices.Clone(a.Values)
		}
		if pseudo, err := e.setPseudo(a.Name, vals); pseudo {
			if err != nil {
				return nil, err
			}
			continue
		}
		if len(vals) == 0 {
			continue
		}
		if old := e.get(strings.ToLower(a.Name)); old != nil {
			old.vals = append(old.vals, vals...)
			continue
		}
		e.attrs = append(e.attrs, &attribute{name: a.Name, lname: strings.ToLower(a.Name), vals: vals})
	}
	return e, nil
}

// setBase decides the naming context: the explicit one, else a domainDNS
// entry, else the trailing DC= components of the first entry.
func (d *directory) setBase(baseDN string, given []*entry) error {
	if baseDN == "" {
		for _, e := range given {
			if e.hasClass("domainDNS") {
				baseDN = e.dn
				break
			}
		}
	}
	if baseDN == "" && len(given) > 0 {
		parsed, err := ldap.ParseDN(given[0].dn)
		if err != nil {
			return fmt.Errorf("entry %q: %w", given[0].dn, err)
		}
		var dcs []string
		for i := len(parsed.RDNs) - 1; i >= 0; i-- {
			r := parsed.RDNs[i]
			if len(r.Attributes) != 1 || !strings.EqualFold(r.Attributes[0].Type, "dc") {
				break
			}
			dcs = append([]string{"DC=" + ldap.EscapeDN(r.Attributes[0].Value)}, dcs...)
		}
		baseDN = strings.Join(dcs, ",")
	}
	if baseDN == "" {
		return errors.New("cannot determine the naming context: set Options.BaseDN or add DC= entries")
	}
	norm, err := normDN(baseDN)
	if err != nil {
		return fmt.Errorf("base dn: %w", err)
	}
	parsed, _ := ldap.ParseDN(baseDN)
	var labels []string
	for _, r := range parsed.RDNs {
		for _, a := range r.Attributes {
			if strings.EqualFold(a.Type, "dc") {
				labels = append(labels, strings.ToLower(a.Value))
			}
		}
	}
	d.base, d.baseNorm, d.realm = baseDN, norm, strings.Join(labels, ".")
	d.configNorm, _ = normDN("CN=Configuration," + baseDN)
	d.schemaNorm, _ = normDN(subschemaRDN + baseDN)
	d.hostName = "dc1." + d.realm
	d.deletedDN = "CN=Deleted Objects," + baseDN
	return nil
}

func (d *directory) rootEntry() *entry {
	e := &entry{dn: d.base, norm: d.baseNorm, parent: parentNorm(d.baseNorm)}
	_, v := firstRDN(d.base)
	e.set("objectClass", []string{"top", "domain", "domainDNS"})
	e.set("dc", []string{v})
	e.set("objectSid", []string{string(d.domainSID)})
	return e
}

// missingAncestors returns placeholder entries for ancestors of e between it
// and the naming context that are not defined anywhere, top-down.
func (d *directory) missingAncestors(e *entry, defined map[string]bool) []*entry {
	if !strings.HasSuffix(e.norm, ","+d.baseNorm) {
		return nil
	}
	parsed, err := ldap.ParseDN(e.dn)
	if err != nil {
		return nil
	}
	var out []*entry
	for i := len(parsed.RDNs) - 1; i >= 1; i-- {
		sub := &ldap.DN{RDNs: parsed.RDNs[i:]}
		dn := dnString(sub)
		norm, err := normDN(dn)
		if err != nil || defined[norm] || !strings.HasSuffix(norm, ","+d.baseNorm) {
			continue
		}
		defined[norm] = true
		p := &entry{dn: dn, norm: norm, parent: parentNorm(norm)}
		typ, val := parsed.RDNs[i].Attributes[0].Type, parsed.RDNs[i].Attributes[0].Value
		if strings.EqualFold(typ, "ou") {
			p.set("objectClass", []string{"top", "organizationalUnit"})
			p.set("ou", []string{val})
		} else {
			p.set("objectClass", []string{"top", "container"})
			p.set(typ, []string{val})
		}
		out = append(out, p)
	}
	return out
}

// dnString renders a parsed DN keeping the case of types and values.
func dnString(d *ldap.DN) string {
	rdns := make([]string, len(d.RDNs))
	for i, r := range d.RDNs {
		parts := make([]string, len(r.Attributes))
		for j, a := range r.Attributes {
			parts[j] = a.Type + "=" + ldap.EscapeDN(a.Value)
		}
		rdns[i] = strings.Join(parts, "+")
	}
	return strings.Join(rdns, ",")
}

// serviceDN is the DN of the directory service object named by dsServiceName.
func (d *directory) serviceDN() string {
	return "CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration," + d.base
}

func (d *directory) configEntries() []*entry {
	dn := d.serviceDN()
	norm, _ := normDN(dn)
	e := &entry{dn: dn, norm: norm, parent: parentNorm(norm), config: true}
	e.set("objectClass", []string{"top", "applicationSettings", "nTDSDSA"})
	e.set("cn", []string{"NTDS Settings"})
	e.set("invocationId", []string{guidFor("invocationId", d.baseNorm)})
	e.set("objectGUID", []string{guidFor("ntdsSettings", d.baseNorm)})
	return []*entry{e}
}

// deletedObjects is the CN=Deleted Objects container. Like the tombstones
// it holds, it is visible only to searches with the show-deleted control.
func (d *directory) deletedObjects() *entry {
	norm, _ := normDN(d.deletedDN)
	e := &entry{dn: d.deletedDN, norm: norm, parent: parentNorm(norm), tombstone: true}
	e.set("objectClass", []string{"top", "container"})
	e.set("cn", []string{"Deleted Objects"})
	e.set("isDeleted", []string{"TRUE"})
	return e
}

// ntdsSettings returns the DC's NTDS Settings object.
func (d *directory) ntdsSettings() *entry {
	norm, _ := normDN(d.serviceDN())
	return d.byNorm[norm]
}

func (d *directory) ridOf(sid []byte) (uint32, bool) {
	if len(sid) != len(d.domainSID)+4 || string(sid[2:8]) != string(d.domainSID[2:8]) {
		return 0, false
	}
	if sid[1] != d.domainSID[1]+1 || string(sid[8:len(d.domainSID)]) != string(d.domainSID[8:]) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(sid[len(d.domainSID):]), true
}

func (d *directory) allocSID() string {
	for d.usedRIDs[d.nextRID] {
		d.nextRID++
	}
	rid := d.nextRID
	d.usedRIDs[rid] = true
	d.nextRID++
	sid := slices.Clone(d.domainSID)
	sid[1]++
	return string(binary.LittleEndian.AppendUint32(sid, rid))
}

func (d *directory) bumpUSN() string {
	d.usn++
	return strconv.FormatInt(d.usn, 10)
}

// synthesize adds what a DC would: object classes, SID, GUID, category,
// distinguishedName, name, USNs. Given objectSid/objectGUID are kept.
func (d *directory) synthesize(e *entry) {
	isUser, isGroup := e.hasClass("user"), e.hasClass("group")
	if isUser {
		classes := e.values("objectclass")
		var add []string
		for _, c := range []string{"top", "person", "organizationalPerson"} {
			if !e.hasClass(c) {
				add = append(add, c)
			}
		}
		if len(add) > 0 {
			e.get("objectclass").vals = append(add, classes...)
		}
	} else if isGroup && !e.hasClass("top") {
		e.get("objectclass").vals = append([]string{"top"}, e.values("objectclass")...)
	}
	if (isUser || isGroup) && e.get("objectsid") == nil {
		e.set("objectSid", []string{d.allocSID()})
	} else if e.get("objectsid") != nil {
		if rid, ok := d.ridOf([]byte(e.values("objectsid")[0])); ok {
			d.usedRIDs[rid] = true
		}
	}
	if e.get("objectguid") == nil {
		// Derived from the DN, so fixtures keep their GUIDs; an object
		// created where another one was (deleted or moved away) gets a
		// new one, as a DC gives every object its own.
		g := guidFor("objectGUID", e.norm)
		for i := 1; d.usedGUIDs[g]; i++ {
			g = guidFor("objectGUID#"+strconv.Itoa(i), e.norm)
		}
		e.set("objectGUID", []string{g})
	}
	if g := e.values("objectguid"); len(g) > 0 {
		d.usedGUIDs[g[0]] = true
	}
	if e.get("objectcategory") == nil {
		if cat := d.categoryFor(e); cat != "" {
			e.set("objectCategory", []string{cat})
		}
	}
	e.set("distinguishedName", []string{e.dn})
	if e.get("name") == nil {
		if v := firstRDNValue(e.dn); v != "" {
			e.set("name", []string{v})
		}
	}
	if typ, val := firstRDN(e.dn); typ != "" && e.get(strings.ToLower(typ)) == nil {
		e.set(strings.ToLower(typ), []string{val})
	}
	usn := d.bumpUSN()
	e.set("uSNCreated", []string{usn})
	e.set("uSNChanged", []string{usn})
}

func (d *directory) categoryFor(e *entry) string {
	var cn string
	switch {
	case e.hasClass("computer"):
		cn = "Computer"
	case e.hasClass("user"), e.hasClass("person"):
		cn = "Person"
	case e.hasClass("group"):
		cn = "Group"
	case e.hasClass("organizationalUnit"):
		cn = "Organizational-Unit"
	case e.hasClass("domainDNS"):
		cn = "Domain-DNS"
	case e.hasClass("container"):
		cn = "Container"
	default:
		return ""
	}
	return "CN=" + cn + ",CN=Schema,CN=Configuration," + d.base
}

// insert synthesizes e and adds it to the entries and indexes.
func (d *directory) insert(e *entry) error {
	if _, ok := d.byNorm[e.norm]; ok {
		return fmt.Errorf("entry %q already exists", e.dn)
	}
	if strings.HasSuffix(e.norm, ","+d.configNorm) {
		e.config = true
	}
	d.synthesize(e)
	if err := d.setMembers(e, e.values("member")); err != nil {
		return err
	}
	for _, a := range e.attrs {
		d.noteAttribute(a.name)
	}
	d.entries = append(d.entries, e)
	d.byNorm[e.norm] = e
	return nil
}

// setMembers (re)indexes the member values of e.
func (d *directory) setMembers(e *entry, vals []string) error {
	norms := make([]string, 0, len(vals))
	for _, v := range vals {
		n, err := normDN(v)
		if err != nil {
			return fmt.Errorf("entry %q: member: %w", e.dn, err)
		}
		norms = append(norms, n)
	}
	for _, old := range e.memberNorms {
		d.memberOf[old] = slices.DeleteFunc(d.memberOf[old], func(g *entry) bool { return g == e })
		if len(d.memberOf[old]) == 0 {
			delete(d.memberOf, old)
		}
	}
	e.memberNorms = norms
	for _, n := range norms {
		d.memberOf[n] = append(d.memberOf[n], e)
	}
	return nil
}

// memberOfValues returns the computed memberOf values of e.
func (d *directory) memberOfValues(e *entry) []string {
	groups := d.memberOf[e.norm]
	if len(groups) == 0 {
		return nil
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if !g.deleted {
			out = append(out, g.dn)
		}
	}
	return out
}

// values returns the values of an attribute including computed ones, as a
// client sees them (none for a hidden attribute).
func (d *directory) values(e *entry, lname string) []string {
	if e.attrHidden(lname) {
		return nil
	}
	if lname == "memberof" {
		return d.memberOfValues(e)
	}
	return e.values(lname)
}

// readOnly reports whether the directory maintains an attribute itself.
func readOnly(lname string) bool {
	switch lname {
	case "memberof", "distinguishedname", "usnchanged", "usncreated":
		return true
	}
	return false
}

func (d *directory) lookup(dn string) (*entry, error) {
	norm, err := normDN(dn)
	if err != nil {
		return nil, err
	}
	e, ok := d.byNorm[norm]
	if !ok {
		return nil, fmt.Errorf("no such entry %q", dn)
	}
	return e, nil
}

func (d *directory) replace(dn, attr string, vals []string) error {
	e, err := d.lookup(dn)
	if err != nil {
		return err
	}
	if pseudo, err := e.setPseudo(attr, vals); pseudo {
		return err
	}
	lname := strings.ToLower(attr)
	if readOnly(lname) {
		return fmt.Errorf("attribute %s of %q is maintained by the directory", attr, dn)
	}
	if lname == "member" {
		if err := d.setMembers(e, vals); err != nil {
			return err
		}
	}
	if old := e.get(lname); old != nil {
		attr = old.name
	}
	e.set(attr, slices.Clone(vals))
	if len(vals) > 0 {
		d.noteAttribute(attr)
	}
	e.set("uSNChanged", []string{d.bumpUSN()})
	return nil
}

func (d *directory) remove(dn string) error {
	e, err := d.lookup(dn)
	if err != nil {
		return err
	}
	if e.tombstone {
		return fmt.Errorf("entry %q is deleted already", dn)
	}
	for _, o := range d.entries {
		if o.parent == e.norm && !o.deleted {
			return fmt.Errorf("entry %q has children", dn)
		}
	}
	if err := d.setMembers(e, nil); err != nil {
		return err
	}
	e.deleted = true
	delete(d.byNorm, e.norm)
	d.entries = slices.DeleteFunc(d.entries, func(x *entry) bool { return x == e })
	d.entries = append(d.entries, d.tombstoneOf(e))
	// AD removes links to a deleted object from the groups that held them.
	// Samba 4.17 does so without moving the groups' uSNChanged (measured:
	// see .ci/samba-dc.sh and the change-tracking tests), so neither do we.
	for _, g := range slices.Clone(d.memberOf[e.norm]) {
		var keep []string
		for i, n := range g.memberNorms {
			if n != e.norm {
				keep = append(keep, g.values("member")[i])
			}
		}
		if err := d.setMembers(g, keep); err != nil {
			return err
		}
		g.set("member", keep)
	}
	return nil
}

// tombstoneOf builds the tombstone a deleted entry leaves in CN=Deleted
// Objects: "CN=<name>\0ADEL:<guid>" with the attributes AD keeps.
func (d *directory) tombstoneOf(e *entry) *entry {
	guid := e.values("objectguid")
	gs := ""
	if len(guid) > 0 {
		gs = guidText([]byte(guid[0]))
	}
	dn := "CN=" + ldap.EscapeDN(firstRDNValue(e.dn)) + "\\0ADEL:" + gs + "," + d.deletedDN
	norm, err := normDN(dn)
	if err != nil {
		norm = strings.ToLower(dn)
	}
	t := &entry{dn: dn, norm: norm, parent: parentNorm(norm), tombstone: true}
	for _, keep := range []string{"objectclass", "objectguid", "objectsid", "samaccountname", "usncreated"} {
		if a := e.get(keep); a != nil {
			t.set(a.name, a.vals)
		}
	}
	t.set("isDeleted", []string{"TRUE"})
	t.set("lastKnownParent", []string{dnOfNorm(d, e.parent)})
	t.set("name", []string{firstRDNValue(e.dn) + "\nDEL:" + gs})
	t.set("distinguishedName", []string{dn})
	t.set("uSNChanged", []string{d.bumpUSN()})
	return t
}

// dnOfNorm returns the display DN of a normalized DN when the entry exists.
func dnOfNorm(d *directory, norm string) string {
	if p, ok := d.byNorm[norm]; ok {
		return p.dn
	}
	return norm
}

// guidText renders a binary GUID in its canonical string form.
func guidText(g []byte) string {
	if len(g) != 16 {
		return ""
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g[0:4]),
		binary.LittleEndian.Uint16(g[4:6]), binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

// rename gives a leaf entry a new DN (a rename, a move or both), keeping its
// GUID and SID. As in AD and Samba, only the entry's own uSNChanged moves:
// the groups that list it show the new DN without being modified.
func (d *directory) rename(dn, newDN string) error {
	e, err := d.lookup(dn)
	if err != nil {
		return err
	}
	if e.tombstone || e.config || e.norm == d.baseNorm {
		return fmt.Errorf("entry %q cannot be renamed", dn)
	}
	newNorm, err := normDN(newDN)
	if err != nil {
		return err
	}
	if _, ok := d.byNorm[newNorm]; ok {
		return fmt.Errorf("entry %q already exists", newDN)
	}
	if p := parentNorm(newNorm); p != d.baseNorm {
		if _, ok := d.byNorm[p]; !ok {
			return fmt.Errorf("parent of %q does not exist", newDN)
		}
	}
	for _, o := range d.entries {
		if o.parent == e.norm && !o.deleted {
			return fmt.Errorf("entry %q has children", dn)
		}
	}
	old := e.norm
	oldType, _ := firstRDN(e.dn)
	e.dn, e.norm, e.parent = newDN, newNorm, parentNorm(newNorm)
	delete(d.byNorm, old)
	d.byNorm[newNorm] = e
	typ, val := firstRDN(newDN)
	if !strings.EqualFold(typ, oldType) {
		e.set(oldType, nil)
	}
	e.set(typ, []string{val})
	e.set("name", []string{val})
	e.set("distinguishedName", []string{newDN})
	if groups, ok := d.memberOf[old]; ok {
		delete(d.memberOf, old)
		d.memberOf[newNorm] = groups
		for _, g := range groups {
			vals := slices.Clone(g.values("member"))
			for i, n := range g.memberNorms {
				if n == old {
					g.memberNorms[i] = newNorm
					vals[i] = newDN
				}
			}
			g.set("member", vals)
		}
	}
	e.set("uSNChanged", []string{d.bumpUSN()})
	return nil
}
