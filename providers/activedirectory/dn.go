package activedirectory

import (
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// NormalizeDN returns a comparison key for a distinguished name: attribute
// types and values lower-cased, insignificant spaces removed and special
// characters escaped uniformly (RFC 4514), so that two spellings of the same
// DN, as AD compares them, give the same string. A string that does not
// parse as a DN is trimmed and lower-cased.
func NormalizeDN(dn string) string {
	if n, ok := normalizePlainDN(dn); ok {
		return n
	}
	return normalizeDN(dn)
}

// normalizeDN is NormalizeDN for any DN, through the full RFC 4514 parser.
func normalizeDN(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		// Some servers return RFC 2253-era spellings with bare '"', ';',
		// '<' or '>' in values, which ParseDN rejects: escape and retry.
		parsed, err = ldap.ParseDN(escapeBare(dn))
	}
	if err != nil {
		return strings.ToLower(strings.TrimSpace(dn))
	}
	for _, rdn := range parsed.RDNs {
		for _, a := range rdn.Attributes {
			a.Value = strings.ToLower(a.Value)
		}
	}
	return parsed.String()
}

// escapeBare backslash-escapes '"', ';', '<' and '>' that are not escaped.
func escapeBare(dn string) string {
	var sb strings.Builder
	escaped := false
	for i := 0; i < len(dn); i++ {
		c := dn[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"' || c == ';' || c == '<' || c == '>':
			sb.WriteByte('\\')
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// normalizePlainDN normalizes the common DN that needs no parser: printable
// ASCII without escapes, quotes, multi-valued RDNs or characters that
// RFC 4514 escapes, each RDN holding one "type=value". It gives the same
// result as normalizeDN for such DNs at a fraction of the cost, which
// matters because every member and user DN of a read is normalized. ok is
// false for any other DN.
func normalizePlainDN(dn string) (string, bool) {
	if dn == "" {
		return "", false
	}
	var sb strings.Builder
	sb.Grow(len(dn))
	for part := range strings.SplitSeq(dn, ",") {
		typ, val, found := strings.Cut(part, "=")
		typ, val = strings.TrimSpace(typ), strings.TrimSpace(val)
		if !found || typ == "" || val == "" || strings.IndexByte(val, '=') >= 0 || val[0] == '#' {
			return "", false
		}
		for i := 0; i < len(typ); i++ {
			if c := typ[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				return "", false
			}
		}
		for i := 0; i < len(part); i++ {
			switch c := part[i]; {
			case c < 0x20 || c > 0x7e:
				return "", false
			case c == '\\' || c == '"' || c == '+' || c == ';' || c == '<' || c == '>':
				return "", false
			}
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strings.ToLower(typ))
		sb.WriteByte('=')
		sb.WriteString(strings.ToLower(val))
	}
	return sb.String(), true
}
