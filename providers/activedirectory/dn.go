package activedirectory

import (
	"bytes"
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

// appendNormalizedDN appends NormalizeDN(dn) to dst. Plain DNs (see
// normalizePlainDN) are normalized in place without allocating; any other
// DN goes through NormalizeDN.
func appendNormalizedDN(dst, dn []byte) []byte {
	if out, ok := appendNormalizedPlainDN(dst, dn); ok {
		return out
	}
	return append(dst, NormalizeDN(string(dn))...)
}

// appendNormalizedPlainDN is normalizePlainDN on bytes, appending to dst.
// ok is false (and dst unchanged) for a DN that is not plain.
func appendNormalizedPlainDN(dst, dn []byte) ([]byte, bool) {
	if len(dn) == 0 {
		return dst, false
	}
	start := len(dst)
	fail := func() ([]byte, bool) { return dst[:start], false }
	for part := range bytes.SplitSeq(dn, []byte{','}) {
		typ, val, found := bytes.Cut(part, []byte{'='})
		typ, val = bytes.TrimSpace(typ), bytes.TrimSpace(val)
		if !found || len(typ) == 0 || len(val) == 0 || bytes.IndexByte(val, '=') >= 0 || val[0] == '#' {
			return fail()
		}
		for _, c := range typ {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				return fail()
			}
		}
		for _, c := range part {
			if c < 0x20 || c > 0x7e || c == '\\' || c == '"' || c == '+' || c == ';' || c == '<' || c == '>' {
				return fail()
			}
		}
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = appendLowerASCII(dst, typ)
		dst = append(dst, '=')
		dst = appendLowerASCII(dst, val)
	}
	return dst, true
}

func appendLowerASCII(dst, s []byte) []byte {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
