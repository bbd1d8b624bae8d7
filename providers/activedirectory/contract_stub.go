package activedirectory

import "strings"

// TEMPORARY: the contract the issue-8 AD work implements; replaced when it lands.

// Unresolved is a member the read could not resolve to a user account.
type Unresolved struct {
	DN     string
	Reason UnresolvedReason
	Via    []string
}

// UnresolvedReason says why a member is unresolved.
type UnresolvedReason string

// The reasons.
const (
	UnresolvedUnreadable  UnresolvedReason = "unreadable"
	UnresolvedOutsideBase UnresolvedReason = "outside_base"
)

// Schema is the directory's attribute schema.
type Schema struct{ names map[string]bool }

// NewSchema returns a schema defining the given attribute names.
func NewSchema(names ...string) *Schema {
	s := &Schema{names: map[string]bool{}}
	for _, n := range names {
		s.names[strings.ToLower(n)] = true
	}
	return s
}

// HasAttribute reports whether the schema defines the attribute.
func (s *Schema) HasAttribute(name string) bool { return s.names == nil || s.names[strings.ToLower(name)] }

// Suggest returns close attribute names.
func (s *Schema) Suggest(name string) []string { return nil }
