package spec

import (
	"bytes"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// lineIndex maps the field paths of one document ("spec.fields[2].field",
// in the form Problem.Path uses) to the file line where each is written.
// It is built from the document's YAML node tree, which sigs.k8s.io/yaml's
// JSON-based decoding does not keep.
type lineIndex map[string]int

// indexLines returns the line of every field of a document whose text
// starts after lineOffset lines of its file, and the line of its first
// content line. The index is best-effort: a document the node parser
// cannot read (it is reported by the strict decoder) yields only the start
// line.
func indexLines(text []byte, lineOffset int) (lineIndex, int) {
	start := firstContentLine(text) + lineOffset
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(text, &root); err != nil || len(root.Content) == 0 {
		return nil, start
	}
	idx := lineIndex{}
	var walk func(n *yamlv3.Node, path string, depth int)
	walk = func(n *yamlv3.Node, path string, depth int) {
		if depth > 64 || n == nil {
			return
		}
		switch n.Kind {
		case yamlv3.AliasNode:
			// Aliases are followed by the strict decoder only; their
			// fields are reported at the alias.
		case yamlv3.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := join(path, k.Value)
				if _, seen := idx[p]; !seen {
					idx[p] = k.Line + lineOffset
				}
				walk(v, p, depth+1)
			}
		case yamlv3.SequenceNode:
			for i, e := range n.Content {
				p := index(path, i)
				idx[p] = e.Line + lineOffset
				walk(e, p, depth+1)
			}
		}
	}
	walk(root.Content[0], "", 0)
	return idx, start
}

// lineOf returns the line of path, or of its nearest enclosing field that
// is written, or 0.
func (idx lineIndex) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := idx[p]; ok {
			return l
		}
	}
	return 0
}

// parentPath strips the last field or index from a path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// firstContentLine returns the 1-based line of the first line of text
// that is neither blank nor a comment, or 1.
func firstContentLine(text []byte) int {
	n := 0
	for l := range bytes.Lines(text) {
		n++
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return n
		}
	}
	return 1
}
