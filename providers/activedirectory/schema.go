package activedirectory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// attrSubschemaSubentry is the rootDSE attribute naming the subschema entry.
const attrSubschemaSubentry = "subschemaSubentry"

// Schema is the set of attribute types the directory defines, as its
// subschema entry (RFC 4512 4.2, CN=Aggregate,CN=Schema,... in AD) lists
// them in attributeTypes. Names are compared case-insensitively and every
// NAME alias counts. A nil *Schema knows no attribute.
type Schema struct {
	names map[string]string // lower-case name -> name as the schema spells it
	oids  map[string]string // numeric OID -> first name
}

// NewSchema returns a schema defining exactly names, for fakes and tests
// that build results without a directory.
func NewSchema(names ...string) *Schema {
	s := &Schema{names: make(map[string]string, len(names)), oids: map[string]string{}}
	for _, n := range names {
		s.add("", []string{n})
	}
	return s
}

func (s *Schema) add(oid string, names []string) {
	for _, n := range names {
		if l := strings.ToLower(n); s.names[l] == "" {
			s.names[l] = n
		}
	}
	if oid != "" && len(names) > 0 && s.oids[oid] == "" {
		s.oids[oid] = names[0]
	}
}

// Len returns the number of attribute names (aliases included).
func (s *Schema) Len() int {
	if s == nil {
		return 0
	}
	return len(s.names)
}

// HasAttribute reports whether the schema defines the attribute, given by
// name (any case, any alias) or numeric OID. Options such as ";binary" or
// ";range=0-*" are ignored.
func (s *Schema) HasAttribute(name string) bool {
	_, ok := s.Name(name)
	return ok
}

// Name returns the attribute's name as the schema spells it (for an OID,
// its first name) and whether the schema defines it.
func (s *Schema) Name(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	base, _, _ := strings.Cut(strings.TrimSpace(name), ";")
	if n, ok := s.names[strings.ToLower(base)]; ok {
		return n, true
	}
	n, ok := s.oids[base]
	return n, ok
}

// maxSuggestions caps what Suggest returns.
const maxSuggestions = 3

// Suggest returns up to three attribute names close to name, best first,
// for messages such as "did you mean title?": names within a small edit
// distance (insertions, deletions, substitutions and swaps of adjacent
// letters, ignoring case; at most 1 for names up to 7 letters, 2 up to 11,
// else 3), then names that start with name (for names of 4 letters or more).
// It returns nil when nothing is close, and the schema's own spelling when
// name differs from it only in case.
func (s *Schema) Suggest(name string) []string {
	if s == nil {
		return nil
	}
	q := strings.ToLower(strings.TrimSpace(name))
	if q == "" {
		return nil
	}
	limit := 1
	switch {
	case len(q) > 11:
		limit = 3
	case len(q) > 7:
		limit = 2
	}
	type cand struct {
		name string
		rank int
	}
	var cands []cand
	for l, n := range s.names {
		if d := editDistance(q, l, limit); d <= limit {
			cands = append(cands, cand{n, d})
		} else if len(q) >= 4 && strings.HasPrefix(l, q) {
			cands = append(cands, cand{n, limit + 1 + len(l) - len(q)})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(strings.ToLower(a.name), strings.ToLower(b.name))
	})
	var out []string
	for _, c := range cands {
		if len(out) == maxSuggestions {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// editDistance is the optimal string alignment distance between a and b
// (bytes), giving up with limit+1 once it must exceed limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			best = min(best, v)
		}
		if best > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// parseAttributeTypes builds a schema from attributeTypes values
// ("( 2.5.4.12 NAME 'title' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' )", or
// NAME ( 'cn' 'commonName' )). A value that does not parse is an error:
// a schema read only in part could make a real attribute look misspelt.
func parseAttributeTypes(values []string) (*Schema, error) {
	s := &Schema{names: make(map[string]string, len(values)), oids: make(map[string]string, len(values))}
	for _, v := range values {
		oid, names, err := parseAttributeType(v)
		if err != nil {
			return nil, fmt.Errorf("attributeTypes value %q: %w", truncateValue(v), err)
		}
		s.add(oid, names)
	}
	return s, nil
}

func truncateValue(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// parseAttributeType returns the OID and the NAMEs of one
// AttributeTypeDescription (RFC 4512 4.1.2). Names are optional there;
// one without names yields none.
func parseAttributeType(v string) (string, []string, error) {
	toks, err := schemaTokens(v)
	if err != nil {
		return "", nil, err
	}
	if len(toks) < 3 || toks[0] != "(" || toks[len(toks)-1] != ")" {
		return "", nil, errors.New("not a parenthesized description")
	}
	oid := toks[1]
	var names []string
	for i := 2; i < len(toks)-1; i++ {
		if !strings.EqualFold(toks[i], "NAME") {
			continue
		}
		i++
		switch {
		case i < len(toks) && strings.HasPrefix(toks[i], "'"):
			names = append(names, strings.Trim(toks[i], "'"))
		case i < len(toks) && toks[i] == "(":
			for i++; i < len(toks) && toks[i] != ")"; i++ {
				if !strings.HasPrefix(toks[i], "'") {
					return "", nil, fmt.Errorf("unexpected %q in NAME list", toks[i])
				}
				names = append(names, strings.Trim(toks[i], "'"))
			}
			if i == len(toks) {
				return "", nil, errors.New("unterminated NAME list")
			}
		default:
			return "", nil, errors.New("NAME without a name")
		}
		break
	}
	return oid, names, nil
}

// schemaTokens splits a schema description into "(", ")", quoted strings
// (with their quotes) and bare words.
func schemaTokens(v string) ([]string, error) {
	var toks []string
	for i := 0; i < len(v); {
		switch c := v[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '\'':
			j := strings.IndexByte(v[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated quoted string")
			}
			toks = append(toks, v[i:i+j+2])
			i += j + 2
		default:
			j := i
			for j < len(v) && !strings.ContainsRune(" \t\n\r()'", rune(v[j])) {
				j++
			}
			toks = append(toks, v[i:j])
			i = j
		}
	}
	return toks, nil
}

// readSchema reads the attribute types from the subschema entry named by
// the rootDSE's subschemaSubentry. Any failure, or a schema without a
// single attribute, is an error: callers must not judge attribute names
// against a schema they could not read.
func (r *Reader) readSchema(ctx context.Context, conn asyncSearcher, root *ldap.Entry, st *ReadStats) (*Schema, error) {
	if root == nil {
		return nil, errors.New("the rootDSE is not readable")
	}
	dn := root.GetEqualFoldAttributeValue(attrSubschemaSubentry)
	if dn == "" {
		return nil, errors.New("the rootDSE names no subschemaSubentry")
	}
	found, values, err := r.readAll(ctx, conn, dn, "attributeTypes", st)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dn, err)
	}
	if found == "" {
		return nil, fmt.Errorf("the subschema entry %s does not exist or is not readable by %s", dn, r.cfg.BindDN)
	}
	s, err := parseAttributeTypes(values)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", dn, err)
	}
	if s.Len() == 0 {
		return nil, fmt.Errorf("the subschema entry %s lists no attributeTypes readable by %s", dn, r.cfg.BindDN)
	}
	return s, nil
}

// Schema reads the directory's attribute types (for check). Read reads
// them too, on the same connection, and returns them in Result.Schema. The
// error is an *Error.
func (r *Reader) Schema(ctx context.Context) (*Schema, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s *Schema
	err := r.withConn(ctx, func(conn *ldap.Conn) error {
		var st ReadStats
		root, err := r.baseRead(ctx, conn, "", []string{attrSubschemaSubentry}, &st)
		if err != nil {
			return fmt.Errorf("reading rootDSE: %w", err)
		}
		s, err = r.readSchema(ctx, conn, root, &st)
		return err
	})
	if err != nil {
		return nil, classify(fmt.Errorf("reading the directory schema: %w", err))
	}
	return s, nil
}
