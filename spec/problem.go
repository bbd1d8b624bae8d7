package spec

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a spec set: where it is and what is wrong.
// Messages never contain secret values.
type Problem struct {
	// File is the file the problem is in; empty for problems of the whole
	// set, such as a missing Connection.
	File string
	// Document is the 1-based index of the document in File, counting only
	// non-empty documents; 0 for problems of the whole file.
	Document int
	// Kind and Name identify the document when they are known.
	Kind, Name string
	// Path is the field path inside the document, such as
	// "spec.fields[2].attribute" (list indexes are 0-based); empty when the
	// problem is with the document or file as a whole.
	Path string
	// Line is the 1-based line in File where Path (or, when Path is not
	// written, its nearest enclosing field, or the document) is; 0 when
	// unknown.
	Line int
	// Message says what is wrong.
	Message string
}

// String formats the problem as
// `file.yaml:12 (document 2, UserMapping "it-admins"): spec.role: required`.
func (p Problem) String() string {
	var b strings.Builder
	if p.File == "" {
		b.WriteString("spec set")
	} else {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
	}
	if p.Document > 0 {
		fmt.Fprintf(&b, " (document %d", p.Document)
		if p.Kind != "" {
			b.WriteString(", " + p.Kind)
			if p.Name != "" {
				fmt.Fprintf(&b, " %q", p.Name)
			}
		}
		b.WriteString(")")
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// msgNoSpecFiles is the message of a directory without spec files.
const msgNoSpecFiles = "directory has no *.yaml or *.yml files"

// NoSpecFiles reports whether the problem is a directory named as the
// spec that holds no spec files, so that a caller can say where it looked.
func (p Problem) NoSpecFiles() bool { return p.Message == msgNoSpecFiles }

// Problems is every problem found in a spec set. It is the error Load,
// LoadFS and Parse return; use errors.As to get at the list.
type Problems []Problem

// Error lists the problems, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// docContext adds problems for one document (or, with Document 0, one file
// or the whole set).
type docContext struct {
	problems *Problems
	file     string
	document int
	kind     string
	name     string
	// lines locates the document's fields; docLine is its first line.
	lines   lineIndex
	docLine int
	// suppress lists paths whose values were dropped for having the wrong
	// type; validation problems at or under them would only repeat that.
	suppress []string
}

// add records a problem at path, unless path is suppressed.
func (c docContext) add(path, format string, args ...any) {
	for _, s := range c.suppress {
		if path == s || strings.HasPrefix(path, s+".") || strings.HasPrefix(path, s+"[") {
			return
		}
	}
	line := c.lines.lineOf(path)
	if line == 0 {
		line = c.docLine
	}
	*c.problems = append(*c.problems, Problem{
		File: c.file, Document: c.document, Kind: c.kind, Name: c.name,
		Path: path, Line: line, Message: fmt.Sprintf(format, args...),
	})
}

// suppressUnder drops later problems at or under path: they would only
// repeat one already reported.
func (c *docContext) suppressUnder(path string) {
	c.suppress = append(c.suppress, path)
}

// join appends a field name to a path.
func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// index appends a list index to a path.
func index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}
