package assetpanda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// ProbeReport is what Probe found: one ShapeCheck per endpoint pandasync
// reads, in the order they were called. It holds no value from any reply,
// no name of the tenant beyond those asked for, and no secret, so an admin
// can send it to the maintainers as it stands.
type ProbeReport struct {
	Checks []ShapeCheck
}

// ShapeCheck is the outcome for one endpoint: the HTTP status of its reply
// and how the reply differs from the shape pandasync decodes it with (the
// reply types of wire.go). A check with no Problems and no Error found the
// shape as expected.
type ShapeCheck struct {
	// Endpoint is the route, e.g. "GET /v3/groups/{id}/fields" (never an id).
	Endpoint string
	// Status is the HTTP status of the reply; 0 when none arrived or the
	// endpoint was not called.
	Status int
	// Problems lists each key, JSON type or header that differs.
	Problems []ShapeProblem
	// Error says in plain words why the call failed or was not made, and
	// what to fix; empty when the reply arrived.
	Error string
}

// ShapeProblem is one difference between a reply and the expected shape.
type ShapeProblem struct {
	// Path is where: "" for the reply itself, "groups", "totals.objects",
	// "fields[].id" for a key of each element, "header X-Total-Count".
	Path string
	// Want is the JSON type pandasync decodes there (string, number,
	// boolean, array, object), "one of ..." for alternatives.
	Want string
	// Got is what the reply had: a JSON type, "null" or "missing".
	Got string
	// Fix says what was expected, e.g. "expected `groups` array in the
	// reply of GET /v3/groups (got missing)".
	Fix string
}

// OK reports whether the endpoint answered 2xx with the expected shape.
func (s ShapeCheck) OK() bool {
	return s.Error == "" && len(s.Problems) == 0 && s.Status >= 200 && s.Status < 300
}

// String renders the check: the endpoint, the status and "ok", or one
// indented line per problem.
func (s ShapeCheck) String() string {
	var b strings.Builder
	status := "-"
	if s.Status != 0 {
		status = strconv.Itoa(s.Status)
	}
	fmt.Fprintf(&b, "%-40s %3s  ", s.Endpoint, status)
	switch {
	case s.Error != "":
		b.WriteString(s.Error)
	case len(s.Problems) == 0:
		b.WriteString("ok")
	default:
		fmt.Fprintf(&b, "%d difference", len(s.Problems))
		if len(s.Problems) > 1 {
			b.WriteString("s")
		}
	}
	for _, p := range s.Problems {
		b.WriteString("\n    ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// OK reports whether every endpoint answered with the expected shape.
func (r ProbeReport) OK() bool {
	for _, c := range r.Checks {
		if !c.OK() {
			return false
		}
	}
	return len(r.Checks) > 0
}

// String renders one check per line (problems indented below it) and a
// closing summary line.
func (r ProbeReport) String() string {
	var b strings.Builder
	bad := 0
	for _, c := range r.Checks {
		b.WriteString(c.String())
		b.WriteString("\n")
		if !c.OK() {
			bad++
		}
	}
	if bad == 0 {
		fmt.Fprintf(&b, "All %d endpoints answer with the shapes pandasync assumes.", len(r.Checks))
	} else {
		fmt.Fprintf(&b, "%d of %d endpoints differ from the shapes pandasync assumes.", bad, len(r.Checks))
	}
	return b.String()
}

// Probe calls, read-only, each endpoint pandasync relies on (token,
// accounts, roles, collections, fields, search, users, users/me) and checks
// each reply against the shape the client decodes it with. account, module
// and collection pick where roles, fields and records are read; "" takes
// the first one the service lists. Probe never writes. It returns no error:
// every failure is a ShapeCheck.
func (c *Client) Probe(ctx context.Context, account, module, collection string) ProbeReport {
	var r ProbeReport
	add := func(sc ShapeCheck) { r.Checks = append(r.Checks, sc) }
	skipAll := func(why string, routes ...route) {
		for _, rt := range routes {
			add(ShapeCheck{Endpoint: string(rt), Error: "not called: " + why})
		}
	}

	// The token: its own request, so that its reply can be checked.
	tokCheck, _ := c.probe(ctx, request{op: "probe token", route: routeToken, noAuth: true, body: c.tokenRequest()})
	add(tokCheck)
	rest := []route{routeAccounts, routeRoles, routeGroups, routeFields, routeSearch, routeUsers, routeMe}
	if !tokCheck.OK() {
		skipAll("the token request did not succeed", rest...)
		return r
	}
	if _, err := c.ensureToken(ctx); err != nil {
		skipAll("the client could not get a token: "+plain(err), rest...)
		return r
	}

	// Accounts and modules, then the module's roles and collections.
	accCheck, body := c.probe(ctx, request{op: "probe accounts", route: routeAccounts})
	add(accCheck)
	var accs []wireAccount
	moduleID, moduleWhy := 0, "the accounts reply could not be read"
	if body != nil && json.Unmarshal(body, &accs) == nil {
		moduleID, moduleWhy = pickModule(accs, account, module)
	}
	var groupsBody []byte
	if moduleID == 0 {
		skipAll(moduleWhy, routeRoles, routeGroups)
	} else {
		q := url.Values{qModuleID: {strconv.Itoa(moduleID)}}
		sc, _ := c.probe(ctx, request{op: "probe roles", route: routeRoles, query: q})
		add(sc)
		sc, groupsBody = c.probe(ctx, request{op: "probe collections", route: routeGroups, query: q})
		add(sc)
	}

	// The collection's fields and one page of its records.
	groupID, groupWhy := 0, moduleWhy
	if moduleID != 0 {
		groupID, groupWhy = 0, "the collections reply could not be read"
		var gs wireGroups
		if groupsBody != nil && json.Unmarshal(groupsBody, &gs) == nil {
			groupID, groupWhy = pickGroup(gs.Groups, collection)
		}
	}
	if groupID == 0 {
		skipAll(groupWhy, routeFields, routeSearch)
	} else {
		gid := strconv.Itoa(groupID)
		sc, _ := c.probe(ctx, request{op: "probe fields", route: routeFields, args: []string{gid}})
		add(sc)
		sc, _ = c.probe(ctx, request{op: "probe records", route: routeSearch, args: []string{gid},
			query: url.Values{qOffset: {"0"}, qLimit: {"1"}}, body: searchRequest{ViewArchived: viewArchivedAll}})
		add(sc)
	}

	// One page of users (with its total header), and the caller itself.
	sc, _ := c.probe(ctx, request{op: "probe users", route: routeUsers, query: url.Values{qOffset: {"0"}, qLimit: {"1"}}})
	add(sc)
	sc, _ = c.probe(ctx, request{op: "probe own permissions", route: routeMe})
	add(sc)
	return r
}

// probe sends one read and checks its reply against replyType(route). It
// returns the body of a 2xx reply for the next steps.
func (c *Client) probe(ctx context.Context, rq request) (ShapeCheck, []byte) {
	sc := ShapeCheck{Endpoint: string(rq.route)}
	var rep reply
	rq.reply, rq.idempotent = &rep, true
	if err := c.do(ctx, rq); err != nil {
		var e *Error
		if errors.As(err, &e) {
			sc.Status = e.Status
		}
		sc.Error = probeFailure(rq.route, err)
		return sc, nil
	}
	sc.Status = rep.status
	where := "the reply of " + string(rq.route)
	sc.Problems = checkShape(rep.body, shapeOf(replyType(rq.route)), where)
	if rq.route == routeUsers {
		if _, ok := usersTotal(rep.header); !ok {
			got := "missing"
			if rep.header.Get(hdrTotalCount) != "" {
				got = "not a count"
			}
			sc.Problems = append(sc.Problems, ShapeProblem{Path: "header " + hdrTotalCount, Want: "number", Got: got,
				Fix: fmt.Sprintf("expected header %s (the number of users) in %s (got %s)", hdrTotalCount, where, got)})
		}
	}
	return sc, rep.body
}

// probeFailure says in plain words why a probe call failed, without the
// service's message (which may carry values).
func probeFailure(rt route, err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return "failed: " + err.Error()
	}
	switch {
	case e.Status == 0:
		return "no reply (timeout or connection failure): check url and the network path to it"
	case rt == routeToken && (e.Status == http.StatusBadRequest || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden):
		return "asset panda refused the credentials (client id/secret or admin email/password)"
	case e.Status == http.StatusUnauthorized:
		return "asset panda refused the token: check that the admin account (email) may use the API"
	case e.Status == http.StatusForbidden:
		return fmt.Sprintf("asset panda refused the permission: grant the API client %s access in Asset Panda (Settings > API Configuration)", rt.permission())
	case e.Status == http.StatusNotFound:
		return "the service has no such endpoint (404): check that url is the Asset Panda API base; if it is, pandasync's assumption about this endpoint is wrong"
	case e.Status == http.StatusTooManyRequests:
		return "rate limited (429) even after waiting: try again later"
	case e.Status >= 500:
		return fmt.Sprintf("the service failed (%d): try again later", e.Status)
	}
	return fmt.Sprintf("the service refused the request (%d): pandasync's assumption about this request may be wrong", e.Status)
}

// plain is an error's reason when it has one, else its text.
func plain(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e.Reason
	}
	return err.Error()
}

// pickModule finds the module id by names ("" = the first); the reason is
// set when there is none.
func pickModule(accs []wireAccount, account, module string) (int, string) {
	ai := 0
	if account != "" {
		ai, _ = pick(len(accs), func(i int) string { return accs[i].Name }, account)
	}
	if ai < 0 || ai >= len(accs) {
		if account == "" {
			return 0, "the service lists no account"
		}
		return 0, fmt.Sprintf("account %q not found", account)
	}
	a := accs[ai]
	mi := 0
	if module != "" {
		mi, _ = pick(len(a.Modules), func(i int) string { return a.Modules[i].Name }, module)
	}
	if mi < 0 || mi >= len(a.Modules) {
		if module == "" {
			return 0, "the account lists no module"
		}
		return 0, fmt.Sprintf("module %q not found in the account", module)
	}
	if a.Modules[mi].ID == 0 {
		return 0, "the module has no id"
	}
	return a.Modules[mi].ID, ""
}

// pickGroup finds the collection id by name ("" = the first).
func pickGroup(gs []wireGroup, name string) (int, string) {
	i := 0
	if name != "" {
		i, _ = pick(len(gs), func(i int) string { return gs[i].Name }, name)
	}
	if i < 0 || i >= len(gs) {
		if name == "" {
			return 0, "the module lists no collection"
		}
		return 0, fmt.Sprintf("collection %q not found in the module", name)
	}
	if gs[i].ID == 0 {
		return 0, "the collection has no id"
	}
	return gs[i].ID, ""
}

// jsonKind is a JSON type.
type jsonKind string

// The JSON types.
const (
	kindAny    jsonKind = "any"
	kindString jsonKind = "string"
	kindNumber jsonKind = "number"
	kindBool   jsonKind = "boolean"
	kindArray  jsonKind = "array"
	kindObject jsonKind = "object"
)

// shape is the JSON shape of a Go type as encoding/json decodes it.
type shape struct {
	kind      jsonKind
	numString bool       // a number may come as a numeric string (json.Number)
	elem      *shape     // of an array
	keys      []keyShape // of an object (declared order); other keys are allowed
}

// keyShape is one key of an object shape.
type keyShape struct {
	name     string
	shape    shape
	required bool   // shape:"req"
	oneOf    string // shape:"oneof=NAME"
}

// shaper lets a type with its own UnmarshalJSON state its shape.
type shaper interface{ jsonShape() shape }

// shapeOf derives the shape of t from its json and shape tags.
func shapeOf(t reflect.Type) shape {
	if t == nil {
		return shape{kind: kindAny}
	}
	if t.Implements(reflect.TypeFor[shaper]()) {
		return reflect.Zero(t).Interface().(shaper).jsonShape()
	}
	switch t {
	case reflect.TypeFor[json.Number]():
		return shape{kind: kindNumber, numString: true}
	case reflect.TypeFor[json.RawMessage]():
		return shape{kind: kindAny}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return shapeOf(t.Elem())
	case reflect.String:
		return shape{kind: kindString}
	case reflect.Bool:
		return shape{kind: kindBool}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return shape{kind: kindNumber}
	case reflect.Slice, reflect.Array:
		e := shapeOf(t.Elem())
		return shape{kind: kindArray, elem: &e}
	case reflect.Map:
		return shape{kind: kindObject}
	case reflect.Struct:
		s := shape{kind: kindObject}
		s.keys = structKeys(t)
		return s
	}
	return shape{kind: kindAny}
}

// structKeys lists the keys of a struct as encoding/json sees them,
// embedded structs flattened.
func structKeys(t reflect.Type) []keyShape {
	var keys []keyShape
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(reflect.TypeFor[json.Unmarshaler]()) {
			keys = append(keys, structKeys(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		k := keyShape{name: name, shape: shapeOf(f.Type)}
		st := f.Tag.Get("shape")
		switch {
		case st == "req":
			k.required = true
		case strings.HasPrefix(st, "oneof="):
			k.oneOf = strings.TrimPrefix(st, "oneof=")
		}
		keys = append(keys, k)
	}
	return keys
}

// checkShape compares body with want and lists the differences; where
// names the reply in the fixes ("the reply of GET /v3/groups").
func checkShape(body []byte, want shape, where string) []ShapeProblem {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return []ShapeProblem{{Path: "", Want: string(want.kind), Got: "not JSON",
			Fix: fmt.Sprintf("expected %s to be JSON (%s), got something else", where, want.kind)}}
	}
	sc := &shapeChecker{where: where, seen: map[string]bool{}}
	sc.value(v, want, "")
	return sc.out
}

type shapeChecker struct {
	where string
	out   []ShapeProblem
	seen  map[string]bool // path+got already reported (array elements repeat)
}

// oneOfGroup tracks the alternatives of one group within a scope.
type oneOfGroup struct {
	members []string // "path (kind)"
	present bool
}

func jsonKindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return string(kindString)
	case json.Number:
		return string(kindNumber)
	case bool:
		return string(kindBool)
	case []any:
		return string(kindArray)
	case map[string]any:
		return string(kindObject)
	}
	return "unknown"
}

// fits reports whether a non-null v has the kind of s.
func fits(v any, s shape) bool {
	got := jsonKindOf(v)
	switch {
	case s.kind == kindAny, got == string(s.kind):
		return true
	case s.numString && got == string(kindString):
		_, err := strconv.ParseFloat(v.(string), 64)
		return err == nil
	}
	return false
}

func (c *shapeChecker) report(path string, want, got string) {
	if c.seen[path+"\x00"+got] {
		return
	}
	c.seen[path+"\x00"+got] = true
	c.out = append(c.out, ShapeProblem{Path: path, Want: want, Got: got, Fix: c.fix(path, want, got)})
}

// fix words a problem: "expected `groups` array in the reply of GET
// /v3/groups (got missing)".
func (c *shapeChecker) fix(path, want, got string) string {
	if path == "" {
		return fmt.Sprintf("expected %s to be a JSON %s (got %s)", c.where, want, got)
	}
	if i := strings.LastIndex(path, "[]."); i >= 0 {
		arr, key := path[:i], path[i+3:]
		in := "each element of `" + arr + "` in " + c.where
		if arr == "" {
			in = "each element of " + c.where
		}
		return fmt.Sprintf("expected `%s` %s in %s (got %s)", key, want, in, got)
	}
	if strings.HasSuffix(path, "[]") {
		return fmt.Sprintf("expected each element of `%s` in %s to be a JSON %s (got %s)", strings.TrimSuffix(path, "[]"), c.where, want, got)
	}
	return fmt.Sprintf("expected `%s` %s in %s (got %s)", path, want, c.where, got)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// value checks v against s at path. A new scope of oneof groups starts at
// the reply and at each array element.
func (c *shapeChecker) value(v any, s shape, path string) {
	if v == nil || s.kind == kindAny {
		return
	}
	if !fits(v, s) {
		c.report(path, string(s.kind), jsonKindOf(v))
		return
	}
	switch s.kind {
	case kindArray:
		if s.elem == nil {
			return
		}
		for _, e := range v.([]any) {
			if e == nil {
				continue
			}
			c.scope(e, *s.elem, path+"[]")
		}
	case kindObject:
		c.scope(v, s, path)
	}
}

// scope checks v as the root of a oneof scope.
func (c *shapeChecker) scope(v any, s shape, path string) {
	if s.kind != kindObject {
		c.value(v, s, path)
		return
	}
	groups := map[string]*oneOfGroup{}
	var order []string
	c.object(v, s, path, groups, &order, false)
	for _, name := range order {
		g := groups[name]
		if g.present {
			continue
		}
		want := "one of " + strings.Join(g.members, ", ")
		key := path + "\x00oneof " + name
		if c.seen[key] {
			continue
		}
		c.seen[key] = true
		in := c.where
		if path != "" {
			in = "each element of `" + strings.TrimSuffix(path, "[]") + "` in " + c.where
		}
		c.out = append(c.out, ShapeProblem{Path: path, Want: want, Got: "none of them",
			Fix: fmt.Sprintf("expected %s in %s (got none of them)", want, in)})
	}
}

// object checks the keys of an object within a oneof scope. With
// declareOnly (the object is absent) it only declares the oneof members
// inside, all missing.
func (c *shapeChecker) object(v any, s shape, path string, groups map[string]*oneOfGroup, order *[]string, declareOnly bool) {
	m, _ := v.(map[string]any)
	rel := func(p string) string { // the path within the scope, for oneof members
		if i := strings.LastIndex(p, "[]."); i >= 0 {
			return p[i+3:]
		}
		return p
	}
	for _, k := range s.keys {
		p := join(path, k.name)
		val, ok := m[k.name]
		if k.oneOf != "" {
			g := groups[k.oneOf]
			if g == nil {
				g = &oneOfGroup{}
				groups[k.oneOf] = g
				*order = append(*order, k.oneOf)
			}
			g.members = append(g.members, fmt.Sprintf("`%s` %s", rel(p), k.shape.kind))
			if ok && val != nil && fits(val, k.shape) {
				g.present = true
			}
		}
		switch {
		case declareOnly || !ok:
			if k.required && !declareOnly {
				c.report(p, string(k.shape.kind), "missing")
			}
			if k.shape.kind == kindObject {
				c.object(nil, k.shape, p, groups, order, true)
			}
		case val == nil:
			if k.required {
				c.report(p, string(k.shape.kind), "null")
			}
		case k.shape.kind == kindObject && fits(val, k.shape):
			c.object(val, k.shape, p, groups, order, false)
		default:
			c.value(val, k.shape, p)
		}
	}
}
