package activedirectory

import (
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// filter is a typed LDAP search filter (RFC 4515). It is built only through
// the constructors below, which escape every assertion value, so no value
// can change the structure of the filter.
type filter interface {
	appendTo(sb *strings.Builder)
}

// filterString renders f.
func filterString(f filter) string {
	var sb strings.Builder
	f.appendTo(&sb)
	return sb.String()
}

type setFilter struct {
	op    byte // '&' or '|'
	items []filter
}

func (s setFilter) appendTo(sb *strings.Builder) {
	sb.WriteByte('(')
	sb.WriteByte(s.op)
	for _, f := range s.items {
		f.appendTo(sb)
	}
	sb.WriteByte(')')
}

// and matches entries matching every item. Callers pass at least one item.
func and(items ...filter) filter { return setFilter{op: '&', items: items} }

// or matches entries matching any item. Callers pass at least one item.
func or(items ...filter) filter { return setFilter{op: '|', items: items} }

type notFilter struct{ f filter }

func (n notFilter) appendTo(sb *strings.Builder) {
	sb.WriteString("(!")
	n.f.appendTo(sb)
	sb.WriteByte(')')
}

// not negates f.
func not(f filter) filter { return notFilter{f} }

type eqFilter struct {
	attr, value string // value already escaped
}

func (e eqFilter) appendTo(sb *strings.Builder) {
	sb.WriteByte('(')
	sb.WriteString(e.attr)
	sb.WriteByte('=')
	sb.WriteString(e.value)
	sb.WriteByte(')')
}

// eq is an equality assertion attr=value with value escaped by
// ldap.EscapeFilter. attr is a constant attribute name from this package.
func eq(attr, value string) filter { return eqFilter{attr: attr, value: ldap.EscapeFilter(value)} }

// eqBytes is an equality assertion on a binary value (e.g. objectSid),
// every byte written as a \XX escape.
func eqBytes(attr string, value []byte) filter {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 3*len(value))
	for _, c := range value {
		b = append(b, '\\', hex[c>>4], hex[c&0xf])
	}
	return eqFilter{attr: attr, value: string(b)}
}

type presentFilter struct{ attr string }

func (p presentFilter) appendTo(sb *strings.Builder) {
	sb.WriteByte('(')
	sb.WriteString(p.attr)
	sb.WriteString("=*)")
}

// present matches entries that have attr.
func present(attr string) filter { return presentFilter{attr} }
