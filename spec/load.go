package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Size limits that keep hostile input from exhausting memory.
const (
	// MaxFileSize is the largest spec file Load accepts.
	MaxFileSize = 1 << 20
	// MaxSetSize is the largest total size of all files of a spec set.
	MaxSetSize = 16 << 20
	// maxProblems caps the problems reported for one set; the rest are
	// counted.
	maxProblems = 200
)

// Load reads the spec set made of the given files and directories. A
// directory contributes every *.yaml and *.yml file directly inside it, in
// name order; hidden files and editor files (*~, .#*, *.swp) are skipped. A
// file named explicitly is read whatever its name.
//
// Every document is decoded strictly, defaulted and validated. On failure
// Load returns nil and a Problems error listing every problem found.
func Load(paths ...string) (*Set, error) {
	return load(osSource{}, paths)
}

// LoadFS is Load reading from fsys; paths are slash-separated fs.FS paths
// (use "." for the root).
func LoadFS(fsys fs.FS, paths ...string) (*Set, error) {
	return load(fsSource{fsys}, paths)
}

// Parse decodes, defaults and validates in-memory files, taken in name
// order; the names are used in messages and in Set.Files. It applies the
// same size limits as Load.
func Parse(files map[string][]byte) (*Set, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var ps Problems
	var raw []rawFile
	total := 0
	for _, name := range names {
		data := files[name]
		if len(data) > MaxFileSize {
			ps = append(ps, Problem{File: name, Message: fmt.Sprintf("file is larger than the %s limit", sizeString(MaxFileSize))})
			continue
		}
		total += len(data)
		if total > MaxSetSize {
			ps = append(ps, Problem{File: name, Message: fmt.Sprintf("spec set is larger than the %s limit; stopped reading", sizeString(MaxSetSize))})
			break
		}
		raw = append(raw, rawFile{name: name, data: data})
	}
	return parse(raw, ps)
}

// rawFile is a file's name and content.
type rawFile struct {
	name string
	data []byte
}

// source is the file system Load and LoadFS read from.
type source interface {
	stat(name string) (fs.FileInfo, error)
	readDir(name string) ([]fs.DirEntry, error)
	open(name string) (io.ReadCloser, error)
	join(dir, name string) string
}

type osSource struct{}

func (osSource) stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (osSource) readDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (osSource) open(name string) (io.ReadCloser, error)    { return os.Open(name) }
func (osSource) join(dir, name string) string               { return filepath.Join(dir, name) }

type fsSource struct{ fsys fs.FS }

func (s fsSource) stat(name string) (fs.FileInfo, error)      { return fs.Stat(s.fsys, name) }
func (s fsSource) readDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(s.fsys, name) }
func (s fsSource) open(name string) (io.ReadCloser, error)    { return s.fsys.Open(name) }
func (fsSource) join(dir, name string) string                 { return path.Join(dir, name) }

// load lists, reads and parses the files of a spec set.
func load(src source, paths []string) (*Set, error) {
	var ps Problems
	if len(paths) == 0 {
		ps = append(ps, Problem{Message: "no spec files or directories given"})
		return nil, ps
	}
	var names []string
	seen := make(map[string]bool)
	addFile := func(name string) {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	for _, p := range paths {
		info, err := src.stat(p)
		if err != nil {
			ps = append(ps, Problem{File: p, Message: "cannot read: " + pathErrorMessage(err)})
			continue
		}
		if !info.IsDir() {
			addFile(p)
			continue
		}
		entries, err := src.readDir(p)
		if err != nil {
			ps = append(ps, Problem{File: p, Message: "cannot read directory: " + pathErrorMessage(err)})
			continue
		}
		found := false
		for _, e := range entries { // ReadDir sorts by name
			if e.IsDir() || !isSpecFileName(e.Name()) {
				continue
			}
			found = true
			addFile(src.join(p, e.Name()))
		}
		if !found {
			ps = append(ps, Problem{File: p, Message: msgNoSpecFiles})
		}
	}

	var raw []rawFile
	total := 0
	for _, name := range names {
		data, err := readLimited(src, name)
		if err != nil {
			ps = append(ps, Problem{File: name, Message: err.Error()})
			continue
		}
		total += len(data)
		if total > MaxSetSize {
			ps = append(ps, Problem{File: name, Message: fmt.Sprintf("spec set is larger than the %s limit; stopped reading", sizeString(MaxSetSize))})
			break
		}
		raw = append(raw, rawFile{name: name, data: data})
	}
	return parse(raw, ps)
}

// isSpecFileName reports whether a directory entry is a spec file: *.yaml
// or *.yml, not hidden, not an editor's backup, lock or swap file.
func isSpecFileName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") ||
		strings.HasSuffix(name, "~") || strings.HasSuffix(name, ".swp") {
		return false
	}
	ext := strings.ToLower(path.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// readLimited reads a file, refusing files over MaxFileSize without reading
// more than one byte past the limit.
func readLimited(src source, name string) ([]byte, error) {
	f, err := src.open(name)
	if err != nil {
		return nil, errors.New("cannot read: " + pathErrorMessage(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, errors.New("cannot read: " + pathErrorMessage(err))
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is larger than the %s limit", sizeString(MaxFileSize))
	}
	return data, nil
}

// pathErrorMessage returns the message of a *fs.PathError without the path,
// which the Problem already names.
func pathErrorMessage(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// sizeString formats a byte limit as "1 MiB".
func sizeString(n int) string {
	return fmt.Sprintf("%d MiB", n>>20)
}

// document is one YAML document of a file.
type document struct {
	text []byte
	// lineOffset is the number of file lines before the document's first
	// line.
	lineOffset int
}

// splitDocuments splits a YAML stream on "---" (and "...") marker lines. A
// marker line may carry content after the marker ("--- {a: 1}"); it stays
// in the document it starts, with the marker blanked out so columns and
// line numbers are unchanged.
func splitDocuments(data []byte) []document {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	var docs []document
	var cur []byte
	start := 0
	line := 0
	for len(data) > 0 {
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		if isMarker(l) {
			docs = append(docs, document{text: cur, lineOffset: start})
			cur = nil
			start = line
			if bytes.HasPrefix(l, []byte("---")) {
				cur = append(cur, "   "...)
				cur = append(cur, l[3:]...)
			} else {
				cur = append(cur, '\n')
			}
		} else {
			cur = append(cur, l...)
		}
		line++
	}
	docs = append(docs, document{text: cur, lineOffset: start})
	out := docs[:0]
	for _, d := range docs {
		if !isBlank(d.text) {
			out = append(out, d)
		}
	}
	return out
}

// isMarker reports whether a line is a document start ("---") or end
// ("...") marker, optionally followed by a space and more.
func isMarker(l []byte) bool {
	if !bytes.HasPrefix(l, []byte("---")) && !bytes.HasPrefix(l, []byte("...")) {
		return false
	}
	return len(l) == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\n' || l[3] == '\r'
}

// isBlank reports whether a document holds only blank lines and comments.
func isBlank(text []byte) bool {
	for l := range bytes.Lines(text) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

// parse decodes, defaults and validates the files of a set. ps holds
// problems already found while reading.
func parse(files []rawFile, ps Problems) (*Set, error) {
	if len(files) == 0 && len(ps) > 0 {
		// Nothing could be read: a missing Connection would only repeat
		// that.
		return nil, ps
	}
	set := &Set{}
	var policies []SyncPolicy
	var connections []Connection
	stopped := false
	undecoded := 0 // documents too broken to tell their kind
files:
	for _, f := range files {
		set.Files = append(set.Files, f.name)
		n := 0
		for _, d := range splitDocuments(f.data) {
			if len(ps) >= maxProblems {
				// Hostile or badly broken input: stop early.
				stopped = true
				break files
			}
			lines, docLine := indexLines(d.text, d.lineOffset)
			ctx := &docContext{problems: &ps, file: f.name, document: n + 1, lines: lines, docLine: docLine}
			doc, empty := decodeDocument(ctx, d.text, d.lineOffset)
			if empty {
				continue
			}
			n++
			if doc == nil {
				undecoded++
			}
			src := Source{File: f.name, Document: ctx.document, Line: docLine, lines: lines}
			switch doc := doc.(type) {
			case *connectionDoc:
				c := doc.Connection
				c.Source = src
				defaultConnection(&c)
				validateConnection(*ctx, &c)
				connections = append(connections, c)
			case *userMappingDoc:
				m := doc.UserMapping
				m.Source = src
				defaultUserMapping(&m)
				validateUserMapping(*ctx, &m)
				set.UserMappings = append(set.UserMappings, m)
			case *collectionMappingDoc:
				m := doc.CollectionMapping
				m.Source = src
				defaultCollectionMapping(&m)
				validateCollectionMapping(*ctx, &m)
				set.CollectionMappings = append(set.CollectionMappings, m)
			case *syncPolicyDoc:
				p := doc.SyncPolicy
				p.Source = src
				defaultSyncPolicy(&p)
				validateSyncPolicy(*ctx, &p)
				policies = append(policies, p)
			}
		}
	}
	if stopped {
		ps = append(ps[:maxProblems:maxProblems], Problem{Message: fmt.Sprintf("stopped after %d problems", maxProblems)})
		return nil, ps
	}
	validateSet(&ps, set, connections, policies, undecoded > 0)
	if len(ps) > 0 {
		if len(ps) > maxProblems {
			more := len(ps) - maxProblems
			ps = append(ps[:maxProblems:maxProblems], Problem{Message: fmt.Sprintf("%d more problems not shown", more)})
		}
		return nil, ps
	}
	return set, nil
}
