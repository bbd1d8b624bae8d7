package embedded

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// AD matching rules understood by the filter evaluator.
const (
	ruleBitAnd  = "1.2.840.113556.1.4.803"
	ruleBitOr   = "1.2.840.113556.1.4.804"
	ruleInChain = "1.2.840.113556.1.4.1941"
)

// matcher reports whether an entry matches; it runs under the read lock.
type matcher func(e *entry) bool

// resultError is an LDAP result code with a diagnostic message.
type resultError struct {
	code int
	msg  string
}

func (e *resultError) Error() string {
	return fmt.Sprintf("ldap result %d: %s", e.code, e.msg)
}

func protocolErr(format string, args ...any) error {
	return &resultError{code: ldap.LDAPResultProtocolError, msg: fmt.Sprintf(format, args...)}
}

// dnValued reports whether an attribute holds DNs (compared normalized).
func dnValued(lname string) bool {
	switch lname {
	case "member", "memberof", "distinguishedname", "manager", "directreports",
		"managedby", "objectcategory", "dsservicename", "defaultnamingcontext":
		return true
	}
	return false
}

// rawBytes returns the content octets of a primitive BER element.
func rawBytes(p *ber.Packet) []byte {
	if p.Data != nil {
		return p.Data.Bytes()
	}
	if p.ByteValue != nil {
		return p.ByteValue
	}
	if s, ok := p.Value.(string); ok {
		return []byte(s)
	}
	return nil
}

// compileFilter turns the BER filter of a search request into a matcher.
func (d *directory) compileFilter(p *ber.Packet) (matcher, error) {
	if p == nil || p.ClassType != ber.ClassContext {
		return nil, protocolErr("invalid filter")
	}
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr:
		subs := make([]matcher, 0, len(p.Children))
		for _, c := range p.Children {
			m, err := d.compileFilter(c)
			if err != nil {
				return nil, err
			}
			subs = append(subs, m)
		}
		if p.Tag == ldap.FilterAnd {
			return func(e *entry) bool {
				for _, m := range subs {
					if !m(e) {
						return false
					}
				}
				return true
			}, nil
		}
		return func(e *entry) bool {
			for _, m := range subs {
				if m(e) {
					return true
				}
			}
			return false
		}, nil
	case ldap.FilterNot:
		if len(p.Children) != 1 {
			return nil, protocolErr("not filter needs one operand")
		}
		m, err := d.compileFilter(p.Children[0])
		if err != nil {
			return nil, err
		}
		return func(e *entry) bool { return !m(e) }, nil
	case ldap.FilterPresent:
		lname := strings.ToLower(string(rawBytes(p)))
		if lname == "objectclass" {
			return func(e *entry) bool { return !e.attrHidden(lname) }, nil
		}
		return func(e *entry) bool { return len(d.values(e, lname)) > 0 }, nil
	case ldap.FilterEqualityMatch, ldap.FilterApproxMatch, ldap.FilterGreaterOrEqual, ldap.FilterLessOrEqual:
		if len(p.Children) != 2 {
			return nil, protocolErr("attribute value assertion needs two elements")
		}
		lname := strings.ToLower(string(rawBytes(p.Children[0])))
		val := string(rawBytes(p.Children[1]))
		switch p.Tag {
		case ldap.FilterGreaterOrEqual:
			return d.ordering(lname, val, func(c int) bool { return c >= 0 }), nil
		case ldap.FilterLessOrEqual:
			return d.ordering(lname, val, func(c int) bool { return c <= 0 }), nil
		}
		return d.equality(lname, val)
	case ldap.FilterSubstrings:
		return d.substrings(p)
	case ldap.FilterExtensibleMatch:
		return d.extensible(p)
	}
	return nil, protocolErr("unknown filter choice %d", p.Tag)
}

// equality builds an equality matcher with AD's comparison rules.
func (d *directory) equality(lname, val string) (matcher, error) {
	switch {
	case lname == "objectsid":
		want := []byte(val)
		if strings.HasPrefix(strings.ToUpper(val), "S-") {
			if b, err := ParseSID(val); err == nil {
				want = b
			}
		}
		return d.anyValue(lname, func(v string) bool { return bytes.Equal([]byte(v), want) }), nil
	case lname == "objectguid" || lname == "invocationid":
		want := val
		if g, ok := parseGUIDString(val); ok {
			want = g
		}
		return d.anyValue(lname, func(v string) bool { return v == want }), nil
	case lname == "objectcategory" && !strings.Contains(val, "="):
		// AD expands a class name to its default object category.
		cn := strings.ToLower(val)
		switch cn {
		case "user", "person":
			cn = "person"
		case "organizationalunit":
			cn = "organizational-unit"
		case "domaindns":
			cn = "domain-dns"
		}
		prefix := "cn=" + cn + ","
		return d.anyValue(lname, func(v string) bool {
			return len(v) > len(prefix) && strings.EqualFold(v[:len(prefix)], prefix)
		}), nil
	case dnValued(lname):
		want, err := normDN(val)
		if err != nil {
			// An invalid DN matches nothing (AD answers with no entries).
			return func(*entry) bool { return false }, nil
		}
		switch lname {
		case "member":
			return func(e *entry) bool { return !e.attrHidden(lname) && slices.Contains(e.memberNorms, want) }, nil
		case "memberof":
			return func(e *entry) bool {
				if e.attrHidden(lname) {
					return false
				}
				for _, g := range d.memberOf[e.norm] {
					if g.norm == want && !g.deleted {
						return true
					}
				}
				return false
			}, nil
		}
		return d.anyValue(lname, func(v string) bool {
			n, err := normDN(v)
			return err == nil && n == want
		}), nil
	}
	return d.anyValue(lname, func(v string) bool { return strings.EqualFold(v, val) }), nil
}

// parseGUIDString accepts the registry form of a GUID and returns AD's byte order.
func parseGUIDString(s string) (string, bool) {
	s = strings.Trim(s, "{}")
	if len(s) != 36 {
		return "", false
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		return "", false
	}
	g := []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}
	return string(append(g, b[8:]...)), true
}

func (d *directory) anyValue(lname string, ok func(string) bool) matcher {
	return func(e *entry) bool {
		for _, v := range d.values(e, lname) {
			if ok(v) {
				return true
			}
		}
		return false
	}
}

// ordering compares numerically when both sides are integers, else case-insensitively.
func (d *directory) ordering(lname, val string, want func(int) bool) matcher {
	n, numErr := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
	lval := strings.ToLower(val)
	return d.anyValue(lname, func(v string) bool {
		if numErr == nil {
			if m, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				switch {
				case m < n:
					return want(-1)
				case m > n:
					return want(1)
				}
				return want(0)
			}
		}
		return want(strings.Compare(strings.ToLower(v), lval))
	})
}

func (d *directory) substrings(p *ber.Packet) (matcher, error) {
	if len(p.Children) != 2 {
		return nil, protocolErr("substrings filter needs a type and substrings")
	}
	lname := strings.ToLower(string(rawBytes(p.Children[0])))
	var initial, final string
	var anys []string
	for _, c := range p.Children[1].Children {
		s := strings.ToLower(string(rawBytes(c)))
		switch c.Tag {
		case ldap.FilterSubstringsInitial:
			initial = s
		case ldap.FilterSubstringsAny:
			anys = append(anys, s)
		case ldap.FilterSubstringsFinal:
			final = s
		default:
			return nil, protocolErr("invalid substrings choice %d", c.Tag)
		}
	}
	return d.anyValue(lname, func(v string) bool {
		v = strings.ToLower(v)
		if !strings.HasPrefix(v, initial) {
			return false
		}
		v = v[len(initial):]
		for _, a := range anys {
			i := strings.Index(v, a)
			if i < 0 {
				return false
			}
			v = v[i+len(a):]
		}
		return strings.HasSuffix(v, final)
	}), nil
}

func (d *directory) extensible(p *ber.Packet) (matcher, error) {
	var rule, typ, val string
	for _, c := range p.Children {
		switch c.Tag {
		case ldap.MatchingRuleAssertionMatchingRule:
			rule = string(rawBytes(c))
		case ldap.MatchingRuleAssertionType:
			typ = strings.ToLower(string(rawBytes(c)))
		case ldap.MatchingRuleAssertionMatchValue:
			val = string(rawBytes(c))
		}
	}
	if typ == "" {
		return nil, &resultError{code: ldap.LDAPResultInappropriateMatching, msg: "extensible match without an attribute type is not supported"}
	}
	switch rule {
	case "":
		return d.equality(typ, val)
	case ruleBitAnd, ruleBitOr:
		mask, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return func(*entry) bool { return false }, nil
		}
		m := uint32(mask)
		return d.anyValue(typ, func(v string) bool {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return false
			}
			if rule == ruleBitAnd {
				return uint32(n)&m == m
			}
			return uint32(n)&m != 0
		}), nil
	case ruleInChain:
		target, err := normDN(val)
		if err != nil {
			return func(*entry) bool { return false }, nil
		}
		return func(e *entry) bool { return d.inChain(e, typ, target) }, nil
	}
	return nil, &resultError{code: ldap.LDAPResultInappropriateMatching, msg: "unsupported matching rule " + rule}
}

// inChain reports whether target is reachable from e by following the DN
// links of attribute lname transitively (LDAP_MATCHING_RULE_IN_CHAIN).
func (d *directory) inChain(e *entry, lname, target string) bool {
	next := func(x *entry) []string {
		if x.attrHidden(lname) || x.hidden && x != e {
			return nil
		}
		switch lname {
		case "member":
			return x.memberNorms
		case "memberof":
			groups := d.memberOf[x.norm]
			out := make([]string, 0, len(groups))
			for _, g := range groups {
				out = append(out, g.norm)
			}
			return out
		}
		var out []string
		for _, v := range x.values(lname) {
			if n, err := normDN(v); err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	seen := map[string]bool{e.norm: true}
	queue := next(e)
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == target {
			return true
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		if x, ok := d.byNorm[n]; ok {
			queue = append(queue, next(x)...)
		}
	}
	return false
}
