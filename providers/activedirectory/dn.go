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
