package embedded

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// ParseLDIF reads LDIF content records (an RFC 2849 subset): "dn:" records
// separated by blank lines, "attr: value" and "attr:: base64" lines, line
// folding (a continuation line starts with one space), "#" comments, an
// optional "version: 1" line and "changetype: add", which is ignored. Other
// change types and URL values ("attr:< file") are errors. Values of the same
// attribute are gathered in one EntryAttribute in order, with both Values
// and ByteValues set. Errors name the line.
//
// Two pseudo-attributes simulate access control and are passed through
// like any other attribute, to be interpreted by New and Server.Add (see the
// package documentation): "x-embedded-hidden: TRUE" makes the entry
// invisible to the bind account while groups still list it as a member, and
// "x-embedded-hidden-attribute: NAME" (repeatable) makes attribute NAME of
// the entry unreadable and unmatchable. Neither is ever returned to a client.
func ParseLDIF(r io.Reader) ([]*ldap.Entry, error) {
	lines, err := unfoldLDIF(r)
	if err != nil {
		return nil, err
	}
	var (
		out  []*ldap.Entry
		cur  *ldap.Entry
		seen = make(map[string]int) // normalized dn -> line
	)
	for _, ln := range lines {
		if ln.text == "" {
			cur = nil
			continue
		}
		name, value, err := parseLDIFLine(ln)
		if err != nil {
			return nil, err
		}
		if cur == nil {
			if len(out) == 0 && strings.EqualFold(name, "version") {
				if value != "1" {
					return nil, fmt.Errorf("ldif line %d: unsupported version %q", ln.num, value)
				}
				continue
			}
			if !strings.EqualFold(name, "dn") {
				return nil, fmt.Errorf("ldif line %d: record must start with \"dn:\", got %q", ln.num, name)
			}
			norm, err := normDN(value)
			if err != nil || norm == "" {
				return nil, fmt.Errorf("ldif line %d: invalid dn %q", ln.num, value)
			}
			if prev, ok := seen[norm]; ok {
				return nil, fmt.Errorf("ldif line %d: dn %q already defined on line %d", ln.num, value, prev)
			}
			seen[norm] = ln.num
			cur = &ldap.Entry{DN: value}
			out = append(out, cur)
			continue
		}
		if strings.EqualFold(name, "changetype") {
			if !strings.EqualFold(value, "add") {
				return nil, fmt.Errorf("ldif line %d: changetype %q is not supported (only add)", ln.num, value)
			}
			continue
		}
		if strings.EqualFold(name, "dn") {
			return nil, fmt.Errorf("ldif line %d: second dn in one record (missing blank line?)", ln.num)
		}
		addValue(cur, name, value)
	}
	return out, nil
}

// ldifLine is one logical (unfolded) line and the number of its first physical line.
type ldifLine struct {
	num  int
	text string
}

// unfoldLDIF joins continuation lines and drops comments; record separators
// come back as empty lines.
func unfoldLDIF(r io.Reader) ([]ldifLine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var (
		out       []ldifLine
		num       int
		inComment bool
	)
	for sc.Scan() {
		num++
		text := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(text, " "):
			if inComment {
				continue
			}
			if len(out) == 0 || out[len(out)-1].text == "" {
				return nil, fmt.Errorf("ldif line %d: continuation line without a preceding line", num)
			}
			out[len(out)-1].text += text[1:]
		case strings.HasPrefix(text, "#"):
			inComment = true
		case strings.TrimSpace(text) == "":
			inComment = false
			if len(out) > 0 && out[len(out)-1].text != "" {
				out = append(out, ldifLine{num: num})
			}
		default:
			inComment = false
			out = append(out, ldifLine{num: num, text: text})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ldif line %d: %w", num+1, err)
	}
	return out, nil
}

// parseLDIFLine splits "attr: value", "attr:: base64" into name and value.
func parseLDIFLine(ln ldifLine) (string, string, error) {
	name, rest, ok := strings.Cut(ln.text, ":")
	if !ok {
		return "", "", fmt.Errorf("ldif line %d: expected \"attribute: value\", got %q", ln.num, truncate(ln.text))
	}
	if !validAttrDesc(name) {
		return "", "", fmt.Errorf("ldif line %d: invalid attribute description %q", ln.num, truncate(name))
	}
	switch {
	case strings.HasPrefix(rest, ":"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest[1:]))
		if err != nil {
			return "", "", fmt.Errorf("ldif line %d: attribute %s: invalid base64: %w", ln.num, name, err)
		}
		return name, string(b), nil
	case strings.HasPrefix(rest, "<"):
		return "", "", fmt.Errorf("ldif line %d: attribute %s: URL values are not supported", ln.num, name)
	}
	return name, strings.TrimLeft(rest, " "), nil
}

func validAttrDesc(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == ';' || r == '.') {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func addValue(e *ldap.Entry, name, value string) {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			a.Values = append(a.Values, value)
			a.ByteValues = append(a.ByteValues, []byte(value))
			return
		}
	}
	e.Attributes = append(e.Attributes, &ldap.EntryAttribute{Name: name, Values: []string{value}, ByteValues: [][]byte{[]byte(value)}})
}
