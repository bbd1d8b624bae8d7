package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// The document types as they appear in YAML: the kind's type plus
// apiVersion and kind.
type (
	connectionDoc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Connection
	}
	userMappingDoc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		UserMapping
	}
	collectionMappingDoc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		CollectionMapping
	}
	syncPolicyDoc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		SyncPolicy
	}
)

// kinds lists the document kinds in the order messages name them.
func kinds() []string {
	return []string{KindConnection, KindUserMapping, KindCollectionMapping, KindSyncPolicy}
}

// decodeDocument decodes one YAML document strictly. lineOffset is the
// number of file lines before the document, so YAML error line numbers can
// be made file-relative. It returns nil when the document is empty, and nil
// after recording problems when it is invalid; otherwise one of
// *connectionDoc, *userMappingDoc, *collectionMappingDoc or *syncPolicyDoc.
// ctx is updated with the document's kind and name as they are learnt.
func decodeDocument(ctx *docContext, text []byte, lineOffset int) (doc any, empty bool) {
	j, err := yaml.YAMLToJSONStrict(text)
	if err != nil {
		msg := yamlMessage(err, lineOffset)
		if line := firstLineNumber(msg); line > 0 {
			ctx.docLine = line
		}
		ctx.add("", "invalid YAML: %s%s", msg, missingMarkerHint(msg))
		return nil, false
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil, true
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		ctx.add("", "invalid document: %s", err)
		return nil, false
	}
	m, ok := generic.(map[string]any)
	if !ok {
		ctx.add("", "a document must be a mapping with apiVersion, kind, metadata and spec, got %s", describe(generic))
		return nil, false
	}

	kind, _ := m["kind"].(string)
	if slices.Contains(kinds(), kind) {
		ctx.kind = kind
		if md, ok := m["metadata"].(map[string]any); ok {
			if name, ok := md["name"].(string); ok {
				ctx.name = name
			}
		}
	}
	switch v, ok := m["apiVersion"]; {
	case !ok && nearKey(m, "apiVersion") != "":
		// Reported with the unknown fields below.
	case !ok || v == nil:
		ctx.add("apiVersion", "required (%s)", APIVersion)
	case v != APIVersion:
		// A non-string is reported by checkShape.
		if s, isString := v.(string); isString {
			ctx.add("apiVersion", "must be %q, got %q", APIVersion, s)
		}
	}
	switch v, ok := m["kind"]; {
	case !ok && nearKey(m, "kind") != "":
		near := nearKey(m, "kind")
		ctx.add(near, "unknown field (did you mean \"kind\"?)")
		return nil, false
	case !ok || v == nil:
		ctx.add("kind", "required (one of %s)", strings.Join(kinds(), ", "))
		return nil, false
	case !slices.Contains(kinds(), kind):
		if kind != "" {
			ctx.add("kind", "must be one of %s, got %q", strings.Join(kinds(), ", "), kind)
		} else {
			ctx.add("kind", "must be one of %s, got %s", strings.Join(kinds(), ", "), describe(v))
		}
		return nil, false
	}

	switch kind {
	case KindConnection:
		doc = &connectionDoc{}
	case KindUserMapping:
		doc = &userMappingDoc{}
	case KindCollectionMapping:
		doc = &collectionMappingDoc{}
	default:
		doc = &syncPolicyDoc{}
	}
	before := len(*ctx.problems)
	checkShape(ctx, generic, reflect.TypeOf(doc).Elem(), "")
	if len(*ctx.problems) > before {
		// checkShape pruned what does not fit; decode the rest so that it
		// is validated too, and report all problems at once.
		if j, err = json.Marshal(generic); err != nil {
			ctx.add("", "decoding: %s", err)
			return nil, false
		}
	}
	// The shape is known to be right, so this decode only fails on a bug in
	// checkShape; report it rather than lose it.
	if err := json.Unmarshal(j, doc); err != nil {
		ctx.add("", "decoding: %s", err)
		return nil, false
	}
	return doc, false
}

// checkShape compares a decoded JSON value with the Go type it will be
// decoded into and records every unknown field and wrong type, with its
// path. It removes unknown fields and replaces wrongly typed values with
// null inside v, so that what remains decodes, and returns false when v
// itself has the wrong type. Messages never include values, which may be
// secrets.
func checkShape(ctx *docContext, v any, t reflect.Type, path string) bool {
	if v == nil {
		return true // null leaves the zero value
	}
	bad := func(format string, args ...any) bool {
		ctx.add(path, format, args...)
		ctx.suppress = append(ctx.suppress, path)
		return false
	}
	switch t {
	case reflect.TypeFor[Value]():
		switch x := v.(type) {
		case string:
		case map[string]any:
			if _, msg := valueFromMap(x); msg != "" {
				return bad("%s", msg)
			}
		default:
			return bad("%s, got %s", valueShapeMessage, describe(v))
		}
		return true
	case reflect.TypeFor[Duration]():
		s, ok := v.(string)
		if !ok {
			return bad("%s, got %s", durationMessage, describe(v))
		}
		if _, err := time.ParseDuration(s); err != nil {
			return bad("%s, got %q", durationMessage, s)
		}
		return true
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkShape(ctx, v, t.Elem(), path)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("expected a mapping, got %s", describe(v))
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				near := closeField(k, fields)
				if _, present := m[near]; near != "" && !present {
					// A typo for a field that is missing: say so, and do not
					// report that field as required as well.
					ctx.add(join(path, k), "unknown field (did you mean %q?)", near)
					ctx.suppressUnder(join(path, near))
				} else {
					ctx.add(join(path, k), "unknown field%s", suggest(k, fields))
				}
				delete(m, k)
				continue
			}
			if !checkShape(ctx, m[k], ft, join(path, k)) {
				m[k] = nil
			}
		}
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return bad("expected a list, got %s", describe(v))
		}
		for i, e := range l {
			if !checkShape(ctx, e, t.Elem(), index(path, i)) {
				l[i] = nil
			}
		}
	case reflect.String:
		switch v.(type) {
		case string:
		case bool, json.Number:
			// YAML reads unquoted 42, yes or 1.0 as a number or boolean.
			return bad("expected a string, got %s (quote it)", describe(v))
		default:
			return bad("expected a string, got %s", describe(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return bad("expected true or false, got %s", describe(v))
		}
	case reflect.Int:
		n, ok := v.(json.Number)
		if !ok {
			return bad("expected an integer, got %s", describe(v))
		}
		if _, err := strconv.ParseInt(n.String(), 10, strconv.IntSize); err != nil {
			return bad("expected an integer, got %s", n)
		}
	default:
		return bad("cannot decode into %s", t)
	}
	return true
}

// jsonFields maps the JSON names of t's fields, including those promoted
// from untagged embedded structs, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// suggest returns ` (did you mean "x"?)` when a known field is close to k
// (see closeField), else the list of known fields.
func suggest(k string, fields map[string]reflect.Type) string {
	if near := closeField(k, fields); near != "" {
		return fmt.Sprintf(" (did you mean %q?)", near)
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		if name != "apiVersion" && name != "kind" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return " (known fields: " + strings.Join(names, ", ") + ")"
}

// closeField returns the known field k is likely a typo of: one that
// differs only in case, or within a small edit distance; else "".
func closeField(k string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	return closeName(k, names)
}

// nearKey returns a key of m, other than want, that is likely a typo of
// want; else "".
func nearKey(m map[string]any, want string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != want && closeName(k, []string{want}) != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// closeName returns the name in names that k is likely a typo of (see
// Closest), else "".
func closeName(k string, names []string) string {
	slices.Sort(names)
	return Closest(k, names)
}

// missingMarkerHint explains a YAML error that comes from two documents
// written without the "---" line between them: the second document's
// apiVersion or kind repeats the first's.
func missingMarkerHint(msg string) string {
	for _, k := range []string{"apiVersion", "kind", "metadata"} {
		if strings.Contains(msg, fmt.Sprintf("key %q already set", k)) {
			return `; if this starts a second document, put a line with "---" before it`
		}
	}
	return ""
}

// firstLineNumber returns N from the first "line N" in msg, or 0.
func firstLineNumber(msg string) int {
	_, rest, ok := strings.Cut(msg, "line ")
	if !ok {
		return 0
	}
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(rest[:j])
	return n
}

// describe names the JSON type of v for messages, without its value.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// yamlMessage flattens a go-yaml error onto one line and shifts its line
// numbers by lineOffset so they count from the start of the file.
func yamlMessage(err error, lineOffset int) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	msg = strings.Join(lines, "; ")
	var b strings.Builder
	for {
		i := strings.Index(msg, "line ")
		if i < 0 {
			b.WriteString(msg)
			break
		}
		b.WriteString(msg[:i+len("line ")])
		msg = msg[i+len("line "):]
		j := 0
		for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(msg[:j]); err == nil {
			b.WriteString(strconv.Itoa(n + lineOffset))
		} else {
			b.WriteString(msg[:j])
		}
		msg = msg[j:]
	}
	return b.String()
}
