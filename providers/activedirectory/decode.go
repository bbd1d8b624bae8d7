package activedirectory

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// This file decodes the responses to the reader's own searches (see mux.go)
// straight from the bytes of each message, without building go-ldap's
// packet tree or *ldap.Entry: a SearchResultEntry becomes a User with a
// handful of allocations, all of them kept.
//
// The decoder walks the fixed shape of an LDAPMessage (RFC 4511 4.1.1,
// 4.5.2), so nesting is bounded by that shape (at most six levels); any
// other structure is an error. Every element's length is checked against
// the element that contains it before it is used, and the decoder never
// allocates from a length it read: it only slices the message, which the
// transport has already bounded by Config.MaxPacketBytes.

// errBER marks a message that is not well-formed BER/LDAP.
var errBER = errors.New("malformed ldap message")

// LDAP protocol operation tags of the responses handled here.
const (
	tagSequence     = 0x30
	tagSet          = 0x31
	tagInteger      = 0x02
	tagBoolean      = 0x01
	tagOctetString  = 0x04
	tagEnumerated   = 0x0a
	tagControls     = 0xa0 // [0] constructed
	tagReferral     = 0xa3 // [3] constructed, inside LDAPResult
	opSearchEntry   = 0x64 // [APPLICATION 4]
	opSearchDone    = 0x65 // [APPLICATION 5]
	opSearchRef     = 0x73 // [APPLICATION 19]
	maxLengthOctets = 4    // longest definite length accepted (4 GiB)
)

// splitTLV splits the first BER element off b: its identifier octet, its
// content and what follows it. It accepts low tag numbers and definite
// lengths of up to four octets whose value fits in b; anything else
// (indefinite lengths, high tag numbers, an element longer than what holds
// it) is an error. It never allocates.
func splitTLV(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, fmt.Errorf("truncated element: %w", errBER)
	}
	tag = b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, fmt.Errorf("high tag number 0x%02x: %w", tag, errBER)
	}
	n, i := uint64(b[1]), 2
	if n >= 0x80 {
		k := int(n & 0x7f)
		if k == 0 {
			return 0, nil, nil, fmt.Errorf("indefinite length: %w", errBER)
		}
		if k > maxLengthOctets {
			return 0, nil, nil, fmt.Errorf("length of %d octets: %w", k, errBER)
		}
		if len(b) < 2+k {
			return 0, nil, nil, fmt.Errorf("truncated length: %w", errBER)
		}
		n = 0
		for _, x := range b[2 : 2+k] {
			n = n<<8 | uint64(x)
		}
		i = 2 + k
	}
	if n > uint64(len(b)-i) {
		return 0, nil, nil, fmt.Errorf("element of %d bytes in %d remaining: %w", n, len(b)-i, errBER)
	}
	return tag, b[i : i+int(n)], b[i+int(n):], nil
}

// expect is splitTLV that also checks the identifier octet.
func expect(b []byte, want byte, what string) (content, rest []byte, err error) {
	tag, content, rest, err := splitTLV(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if tag != want {
		return nil, nil, fmt.Errorf("%s: tag 0x%02x, want 0x%02x: %w", what, tag, want, errBER)
	}
	return content, rest, nil
}

// berInt decodes the content of an INTEGER or ENUMERATED of up to 8 octets.
func berInt(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 8 {
		return 0, fmt.Errorf("integer of %d octets: %w", len(b), errBER)
	}
	v := int64(int8(b[0])) // sign-extend
	for _, x := range b[1:] {
		v = v<<8 | int64(x)
	}
	return v, nil
}

// message is one decoded LDAPMessage envelope.
type message struct {
	id       int64
	op       byte   // protocolOp identifier octet
	body     []byte // protocolOp content
	controls []byte // content of [0] Controls, if any
}

// parseMessage decodes the envelope of one complete LDAPMessage.
func parseMessage(b []byte) (message, error) {
	var m message
	content, rest, err := expect(b, tagSequence, "message")
	if err != nil {
		return m, err
	}
	if len(rest) != 0 {
		return m, fmt.Errorf("%d bytes after the message: %w", len(rest), errBER)
	}
	idb, content, err := expect(content, tagInteger, "message id")
	if err != nil {
		return m, err
	}
	if m.id, err = berInt(idb); err != nil {
		return m, err
	}
	if m.op, m.body, content, err = splitTLV(content); err != nil {
		return m, fmt.Errorf("protocol op: %w", err)
	}
	if len(content) > 0 {
		if m.controls, content, err = expect(content, tagControls, "controls"); err != nil {
			return m, err
		}
		if len(content) != 0 {
			return m, fmt.Errorf("%d bytes after the controls: %w", len(content), errBER)
		}
	}
	return m, nil
}

// rawEntry is a SearchResultEntry as it arrived: its DN and its still
// encoded attribute list, both slices of the message buffer. It is valid
// only while the callback that received it runs.
type rawEntry struct {
	dn    []byte
	attrs []byte // content of the PartialAttributeList SEQUENCE
}

func parseEntry(body []byte) (rawEntry, error) {
	dn, rest, err := expect(body, tagOctetString, "entry dn")
	if err != nil {
		return rawEntry{}, err
	}
	attrs, rest, err := expect(rest, tagSequence, "entry attributes")
	if err != nil {
		return rawEntry{}, err
	}
	if len(rest) != 0 {
		return rawEntry{}, fmt.Errorf("%d bytes after the attributes: %w", len(rest), errBER)
	}
	return rawEntry{dn: dn, attrs: attrs}, nil
}

// each calls fn for every attribute with its type and the content of its
// value SET (iterate it with nextValue). It stops at the first error.
func (e rawEntry) each(fn func(name, vals []byte) error) error {
	b := e.attrs
	for len(b) > 0 {
		pa, rest, err := expect(b, tagSequence, "attribute")
		if err != nil {
			return err
		}
		b = rest
		name, pa, err := expect(pa, tagOctetString, "attribute type")
		if err != nil {
			return err
		}
		vals, pa, err := expect(pa, tagSet, "attribute values")
		if err != nil {
			return err
		}
		if len(pa) != 0 {
			return fmt.Errorf("%d bytes after the values of %q: %w", len(pa), name, errBER)
		}
		if err := fn(name, vals); err != nil {
			return err
		}
	}
	return nil
}

// nextValue splits the first value off the content of a value SET.
func nextValue(vals []byte) (v, rest []byte, err error) {
	return expect(vals, tagOctetString, "attribute value")
}

// firstValue returns the first value of a value SET, nil for an empty one.
func firstValue(vals []byte) ([]byte, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	v, _, err := nextValue(vals)
	return v, err
}

// countValues returns how many values a value SET holds, checking them all.
func countValues(vals []byte) (int, error) {
	n := 0
	for len(vals) > 0 {
		var err error
		if _, vals, err = nextValue(vals); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// searchDone is a decoded SearchResultDone with the response controls the
// reader uses.
type searchDone struct {
	code          int
	matched, diag string
	pagingCookie  []byte // paged results response control (RFC 2696)
	dirSyncCookie []byte // DirSync response control
	dirSyncMore   bool   // DirSync: more data is waiting
	hasDirSync    bool
}

// err returns the result as an *ldap.Error (as go-ldap builds it), or nil
// for success.
func (d *searchDone) err() error {
	if d.code == ldap.LDAPResultSuccess {
		return nil
	}
	return &ldap.Error{ResultCode: uint16(d.code), MatchedDN: d.matched, Err: errors.New(d.diag)}
}

func parseDone(m message) (*searchDone, error) {
	codeb, rest, err := expect(m.body, tagEnumerated, "result code")
	if err != nil {
		return nil, err
	}
	code, err := berInt(codeb)
	if err != nil {
		return nil, err
	}
	matched, rest, err := expect(rest, tagOctetString, "matched dn")
	if err != nil {
		return nil, err
	}
	diag, rest, err := expect(rest, tagOctetString, "diagnostic message")
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 { // referral [3]; the reader never follows referrals
		if _, rest, err = expect(rest, tagReferral, "referral"); err != nil {
			return nil, err
		}
		if len(rest) != 0 {
			return nil, fmt.Errorf("%d bytes after the result: %w", len(rest), errBER)
		}
	}
	d := &searchDone{code: int(code), matched: string(matched), diag: string(diag)}
	// Cookies are copied: the message buffer is reused once this returns.
	ctls := m.controls
	for len(ctls) > 0 {
		c, more, err := expect(ctls, tagSequence, "control")
		if err != nil {
			return nil, err
		}
		ctls = more
		oid, c, err := expect(c, tagOctetString, "control type")
		if err != nil {
			return nil, err
		}
		var value []byte
		for len(c) > 0 {
			tag, content, next, err := splitTLV(c)
			if err != nil {
				return nil, fmt.Errorf("control %s: %w", oid, err)
			}
			c = next
			switch tag {
			case tagBoolean: // criticality
			case tagOctetString:
				value = content
			default:
				return nil, fmt.Errorf("control %s: tag 0x%02x: %w", oid, tag, errBER)
			}
		}
		switch string(oid) {
		case ldap.ControlTypePaging:
			seq, rest, err := expect(value, tagSequence, "paging control")
			if err == nil && len(rest) == 0 {
				_, seq, err = expect(seq, tagInteger, "paging size")
			}
			if err == nil {
				d.pagingCookie, _, err = expect(seq, tagOctetString, "paging cookie")
			}
			if err != nil {
				return nil, err
			}
			d.pagingCookie = bytes.Clone(d.pagingCookie)
		case ldap.ControlTypeDirSync:
			seq, rest, err := expect(value, tagSequence, "dirsync control")
			var flags []byte
			if err == nil && len(rest) == 0 {
				flags, seq, err = expect(seq, tagInteger, "dirsync flags")
			}
			if err == nil {
				_, seq, err = expect(seq, tagInteger, "dirsync max attributes")
			}
			if err == nil {
				d.dirSyncCookie, _, err = expect(seq, tagOctetString, "dirsync cookie")
			}
			if err != nil {
				return nil, err
			}
			f, err := berInt(flags)
			if err != nil {
				return nil, err
			}
			d.dirSyncCookie = bytes.Clone(d.dirSyncCookie)
			d.hasDirSync, d.dirSyncMore = true, f != 0
		}
	}
	return d, nil
}

// errComputer stops decoding a computer account, which is not a user.
var errComputer = errors.New("computer account")

// userDecoder turns raw user entries into Users. It keeps scratch buffers
// between entries, so one decoder serves one read at a time.
type userDecoder struct {
	table *attrTable
	now   time.Time
	lower []byte   // lower-cased attribute name
	text  []byte   // every string of the user being decoded, back to back
	spans []span   // where each string lies in text
	vals  []valRef // requested attribute values: table index and span range
}

// span is a [start, end) range of userDecoder.text.
type span struct{ start, end int }

// valRef says that spans[from:to] are the values of table attribute idx.
type valRef struct{ idx, from, to int }

func newUserDecoder(table *attrTable, now time.Time) *userDecoder {
	return &userDecoder{table: table, now: now}
}

// lowerName lower-cases an ASCII attribute name into the scratch buffer.
func (d *userDecoder) lowerName(name []byte) []byte {
	d.lower = d.lower[:0]
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d.lower = append(d.lower, c)
	}
	return d.lower
}

// add appends s's bytes to the text and returns its span index.
func (d *userDecoder) addSpan(start int) int {
	d.spans = append(d.spans, span{start, len(d.text)})
	return len(d.spans) - 1
}

// decode converts one entry. It returns nil for a computer account, as
// toUser does, and the same errors for malformed values.
func (d *userDecoder) decode(e rawEntry) (*User, error) {
	d.text, d.spans, d.vals = d.text[:0], d.spans[:0], d.vals[:0]
	d.text = append(d.text, e.dn...)
	dnSpan := d.addSpan(0)
	sid, guid, sam, upn := -1, -1, -1, -1
	var disabled bool
	var expires time.Time
	dnText := func() string { return string(e.dn) }
	err := e.each(func(name, vals []byte) error {
		lname := d.lowerName(name)
		first, err := firstValue(vals)
		if err != nil {
			return err
		}
		switch string(lname) {
		case "objectsid":
			if first != nil {
				start := len(d.text)
				var err error
				if d.text, err = appendSID(d.text, first); err != nil {
					return fmt.Errorf("user %s: objectSid: %w", dnText(), err)
				}
				sid = d.addSpan(start)
			}
		case "objectguid":
			if first != nil {
				start := len(d.text)
				var err error
				if d.text, err = appendGUID(d.text, first); err != nil {
					return fmt.Errorf("user %s: objectGUID: %w", dnText(), err)
				}
				guid = d.addSpan(start)
			}
		case "useraccountcontrol":
			if first != nil {
				v, err := strconv.ParseInt(string(first), 10, 64)
				if err != nil {
					return fmt.Errorf("user %s: userAccountControl %q: %w", dnText(), first, err)
				}
				if v&(uacWorkstationTrust|uacServerTrust) != 0 {
					return errComputer
				}
				disabled = v&uacDisabled != 0
			}
		case "samaccountname":
			if first != nil {
				start := len(d.text)
				d.text = append(d.text, first...)
				sam = d.addSpan(start)
			}
		case "userprincipalname":
			if first != nil {
				start := len(d.text)
				d.text = append(d.text, first...)
				upn = d.addSpan(start)
			}
		case "accountexpires":
			if first != nil {
				t, err := parseAccountExpires(string(first))
				if err != nil {
					return fmt.Errorf("user %s: %w", dnText(), err)
				}
				expires = t
			}
		}
		i, ok := d.table.index[string(lname)]
		if !ok {
			return nil
		}
		from := len(d.spans)
		for v := vals; len(v) > 0; {
			val, rest, err := nextValue(v)
			if err != nil {
				return err
			}
			v = rest
			start := len(d.text)
			switch string(lname) {
			case "objectsid", "sidhistory":
				d.text, err = appendSID(d.text, val)
			case "objectguid":
				d.text, err = appendGUID(d.text, val)
			default:
				if isBinaryAttr(string(lname)) || !utf8.Valid(val) {
					d.text = base64.StdEncoding.AppendEncode(d.text, val)
				} else {
					d.text = append(d.text, val...)
				}
			}
			if err != nil {
				return fmt.Errorf("user %s: %s: %w", dnText(), name, err)
			}
			d.addSpan(start)
		}
		d.vals = append(d.vals, valRef{idx: i, from: from, to: len(d.spans)})
		return nil
	})
	if errors.Is(err, errComputer) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// One string holds every text of the user; the fields are substrings.
	text := string(d.text)
	str := func(i int) string {
		if i < 0 {
			return ""
		}
		s := d.spans[i]
		return text[s.start:s.end]
	}
	u := &User{
		DN: str(dnSpan), SID: str(sid), GUID: str(guid), SAMAccountName: str(sam), UPN: str(upn),
		Disabled: disabled, Expires: expires, Expired: !expires.IsZero() && expires.Before(d.now),
		table: d.table,
	}
	if len(d.vals) > 0 {
		// Later duplicates of an attribute win, as in toUser.
		n := 0
		for i, v := range d.vals {
			if slices.ContainsFunc(d.vals[i+1:], func(w valRef) bool { return w.idx == v.idx }) {
				continue
			}
			n += v.to - v.from
		}
		u.text = text
		u.vals = make([]valSpan, 0, n)
		for i, v := range d.vals {
			if slices.ContainsFunc(d.vals[i+1:], func(w valRef) bool { return w.idx == v.idx }) {
				continue
			}
			for j := v.from; j < v.to; j++ {
				sp := d.spans[j]
				u.vals = append(u.vals, valSpan{attr: uint16(v.idx), start: uint32(sp.start), end: uint32(sp.end)})
			}
		}
		slices.SortStableFunc(u.vals, func(a, b valSpan) int { return int(a.attr) - int(b.attr) })
	}
	return u, nil
}

// appendSID appends the string form of a binary SID (see FormatSID).
func appendSID(b, sid []byte) ([]byte, error) {
	if len(sid) < 8 {
		return b, fmt.Errorf("sid of %d bytes is too short", len(sid))
	}
	n := int(sid[1])
	if n > 15 || len(sid) != 8+4*n {
		return b, fmt.Errorf("sid of %d bytes does not hold %d sub-authorities", len(sid), n)
	}
	var auth uint64
	for _, x := range sid[2:8] {
		auth = auth<<8 | uint64(x)
	}
	b = append(b, "S-"...)
	b = strconv.AppendUint(b, uint64(sid[0]), 10)
	b = append(b, '-')
	if auth >= 1<<32 {
		b = fmt.Appendf(b, "0x%012X", auth)
	} else {
		b = strconv.AppendUint(b, auth, 10)
	}
	for i := range n {
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(binary.LittleEndian.Uint32(sid[8+4*i:])), 10)
	}
	return b, nil
}

// appendGUID appends the canonical form of a binary GUID (see FormatGUID).
func appendGUID(b, g []byte) ([]byte, error) {
	if len(g) != 16 {
		return b, fmt.Errorf("guid of %d bytes, want 16", len(g))
	}
	const hexdigits = "0123456789abcdef"
	hex := func(b []byte, x byte) []byte { return append(b, hexdigits[x>>4], hexdigits[x&0xf]) }
	for _, i := range []int{3, 2, 1, 0} {
		b = hex(b, g[i])
	}
	b = append(b, '-')
	b = hex(hex(b, g[5]), g[4])
	b = append(b, '-')
	b = hex(hex(b, g[7]), g[6])
	b = append(b, '-')
	b = hex(hex(b, g[8]), g[9])
	b = append(b, '-')
	for _, x := range g[10:16] {
		b = hex(b, x)
	}
	return b, nil
}

// objectClasses says which of the object classes the reader tells apart
// an entry carries.
type objectClasses struct {
	has            bool // any objectClass value at all
	user, computer bool
	group          bool // group or groupOfNames
}

// rawClasses reads an entry's objectClass values.
func rawClasses(e rawEntry) (objectClasses, error) {
	var c objectClasses
	err := e.each(func(name, vals []byte) error {
		if !equalFoldASCII(name, "objectClass") {
			return nil
		}
		for len(vals) > 0 {
			v, rest, err := nextValue(vals)
			if err != nil {
				return err
			}
			vals = rest
			c.has = true
			c.user = c.user || equalFoldASCII(v, "user")
			c.computer = c.computer || equalFoldASCII(v, "computer")
			c.group = c.group || equalFoldASCII(v, "group") || equalFoldASCII(v, "groupOfNames")
		}
		return nil
	})
	return c, err
}

// equalFoldASCII compares an attribute name or value with a constant,
// ignoring ASCII case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
