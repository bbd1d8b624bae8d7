package emulator

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

type account struct {
	id      int
	name    string
	modules []*module
}

type module struct {
	id      int
	name    string
	account *account
	roles   []*role
	groups  []*group
}

type role struct {
	id     int
	name   string
	typ    string
	module *module
}

type group struct {
	id      int
	name    string
	key     string
	module  *module
	fields  []*field
	objects []*object
	byID    map[string]*object
	uniq    map[string]map[string][]*object // unique field key -> folded value -> objects holding it
	// allowDup: the seed may repeat unique values (SeedCollection.AllowDuplicates).
	allowDup bool
}

type option struct {
	id   int
	name string
}

type field struct {
	id       int
	key      string
	name     string
	typ      string
	unique   bool
	required bool
	options  []option
}

type object struct {
	id        string
	values    map[string]string // field key -> canonical value (option id for lists)
	archived  bool
	createdAt time.Time
	updatedAt time.Time
}

type userRole struct {
	accountID, moduleID, roleID int
}

type user struct {
	id        int
	email     string
	firstName string
	lastName  string
	active    bool
	adSID     string
	roles     []userRole
}

func roleType(name string) string {
	switch name {
	case "Organization Admin", "Account Admin", "Module Admin", "Collaborator":
		return "predefined"
	}
	return "custom"
}

func (e *Emulator) id() int {
	e.nextID++
	return e.nextID
}

func (e *Emulator) objectID() string {
	e.nextObj++
	return fmt.Sprintf("65%022x", e.nextObj)
}

func (e *Emulator) load(s *Seed) error {
	seenAcc := map[string]bool{}
	for _, sa := range s.Accounts {
		if sa.Name == "" || seenAcc[sa.Name] {
			return fmt.Errorf("account %q: empty or duplicate name", sa.Name)
		}
		seenAcc[sa.Name] = true
		a := &account{id: e.id(), name: sa.Name}
		e.accounts = append(e.accounts, a)
		seenMod := map[string]bool{}
		for _, sm := range sa.Modules {
			if sm.Name == "" || seenMod[sm.Name] {
				return fmt.Errorf("account %q: module %q: empty or duplicate name", sa.Name, sm.Name)
			}
			seenMod[sm.Name] = true
			m := &module{id: e.id(), name: sm.Name, account: a}
			a.modules = append(a.modules, m)
			e.modules[m.id] = m
			for _, rn := range sm.Roles {
				if rn == "" || m.role(rn) != nil {
					return fmt.Errorf("module %q: role %q: empty or duplicate name", sm.Name, rn)
				}
				r := &role{id: e.id(), name: rn, typ: roleType(rn), module: m}
				m.roles = append(m.roles, r)
				e.roles[r.id] = r
			}
			for _, sc := range sm.Collections {
				if err := e.loadCollection(m, sc); err != nil {
					return fmt.Errorf("module %q: %w", sm.Name, err)
				}
			}
		}
	}
	for _, su := range s.Users {
		u := &user{id: e.id(), email: su.Email, firstName: su.FirstName, lastName: su.LastName, active: su.Active, adSID: su.ADSID}
		if su.Email == "" || e.userByEmail(su.Email) != nil {
			return fmt.Errorf("user %q: empty or duplicate email", su.Email)
		}
		for _, sr := range su.Roles {
			m := e.moduleByName(sr.Account, sr.Module)
			if m == nil {
				return fmt.Errorf("user %q: no module %q in account %q", su.Email, sr.Module, sr.Account)
			}
			r := m.role(sr.Role)
			if r == nil {
				return fmt.Errorf("user %q: no role %q in module %q", su.Email, sr.Role, sr.Module)
			}
			u.setRole(m, r)
		}
		e.users = append(e.users, u)
	}
	if s.Credentials.Email != "" && e.userByEmail(s.Credentials.Email) == nil {
		e.users = append(e.users, &user{id: e.id(), email: s.Credentials.Email, active: true})
	}
	return nil
}

func (e *Emulator) loadCollection(m *module, sc SeedCollection) error {
	if sc.Name == "" || m.group(sc.Name) != nil {
		return fmt.Errorf("collection %q: empty or duplicate name", sc.Name)
	}
	g := &group{id: e.id(), name: sc.Name, module: m, byID: map[string]*object{}, uniq: map[string]map[string][]*object{},
		allowDup: sc.AllowDuplicates}
	g.key = strings.ToLower(strings.ReplaceAll(sc.Name, " ", "_"))
	for _, sf := range sc.Fields {
		if sf.Name == "" || g.fieldByName(sf.Name) != nil {
			return fmt.Errorf("collection %q: field %q: empty or duplicate name", sc.Name, sf.Name)
		}
		switch sf.Type {
		case "text", "number", "date", "boolean":
			if len(sf.Options) > 0 {
				return fmt.Errorf("collection %q: field %q: only list fields have options", sc.Name, sf.Name)
			}
		case "list":
			if len(sf.Options) == 0 {
				return fmt.Errorf("collection %q: field %q: a list field needs options", sc.Name, sf.Name)
			}
		default:
			return fmt.Errorf("collection %q: field %q: unknown type %q (want text, number, date, boolean or list)", sc.Name, sf.Name, sf.Type)
		}
		e.nextKey++
		f := &field{id: e.id(), key: "field_" + strconv.Itoa(e.nextKey), name: sf.Name, typ: sf.Type, unique: sf.Unique, required: sf.Required}
		for _, on := range sf.Options {
			f.options = append(f.options, option{id: e.id(), name: on})
		}
		g.fields = append(g.fields, f)
		if f.unique {
			g.uniq[f.key] = map[string][]*object{}
		}
	}
	m.groups = append(m.groups, g)
	e.groups[g.id] = g
	now := e.now().UTC()
	for i, sr := range sc.Records {
		vals := map[string]any{}
		for name, v := range sr.Fields {
			f := g.fieldByName(name)
			if f == nil {
				return fmt.Errorf("collection %q: record %d: unknown field %q", sc.Name, i, name)
			}
			vals[f.key] = v
		}
		o := &object{id: sr.ID, archived: sr.Archived, createdAt: now, updatedAt: now}
		if o.id == "" {
			o.id = e.objectID()
		}
		if g.byID[o.id] != nil {
			return fmt.Errorf("collection %q: record %d: duplicate _id %q", sc.Name, i, o.id)
		}
		if ie := g.apply(o, vals, true, !g.allowDup); ie != nil {
			return fmt.Errorf("collection %q: record %d: %s", sc.Name, i, ie.Message)
		}
		g.objects = append(g.objects, o)
		g.byID[o.id] = o
	}
	return nil
}

func (m *module) role(name string) *role {
	for _, r := range m.roles {
		if r.name == name {
			return r
		}
	}
	return nil
}

func (m *module) group(name string) *group {
	for _, g := range m.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

func (e *Emulator) moduleByName(acc, mod string) *module {
	for _, a := range e.accounts {
		if a.name != acc {
			continue
		}
		for _, m := range a.modules {
			if m.name == mod {
				return m
			}
		}
	}
	return nil
}

func (e *Emulator) userByEmail(email string) *user {
	for _, u := range e.users {
		if strings.EqualFold(u.email, email) {
			return u
		}
	}
	return nil
}

func (e *Emulator) userByID(id int) *user {
	for _, u := range e.users {
		if u.id == id {
			return u
		}
	}
	return nil
}

func (u *user) setRole(m *module, r *role) {
	for i := range u.roles {
		if u.roles[i].moduleID == m.id {
			u.roles[i].roleID = r.id
			return
		}
	}
	u.roles = append(u.roles, userRole{accountID: m.account.id, moduleID: m.id, roleID: r.id})
}

func (g *group) fieldByName(name string) *field {
	for _, f := range g.fields {
		if f.name == name {
			return f
		}
	}
	return nil
}

func (g *group) fieldByKey(key string) *field {
	for _, f := range g.fields {
		if f.key == key {
			return f
		}
	}
	return nil
}

// display renders a stored value for dumps and filters (option names for lists).
func (f *field) display(v string) string {
	if f.typ != "list" || v == "" {
		return v
	}
	id, _ := strconv.Atoi(v)
	for _, o := range f.options {
		if o.id == id {
			return o.name
		}
	}
	return v
}

// itemError is a validation failure of one object.
type itemError struct {
	Message string
	Code    int               // 1 validation, 2 not unique, 3 not found
	Errors  map[string]string // field key -> problem
}

// Error codes of per-object errors.
const (
	codeInvalid   = 1
	codeNotUnique = 2
	codeNotFound  = 3
)

// normalize validates a raw JSON value for f and returns the canonical
// stored string.
func (f *field) normalize(raw any) (string, string) {
	var s string
	switch x := raw.(type) {
	case nil:
		return "", ""
	case string:
		s = x
	case json.Number:
		s = x.String()
	case bool:
		s = strconv.FormatBool(x)
	case map[string]any:
		if f.typ != "list" {
			return "", fmt.Sprintf("%s: an object is only accepted for list fields", f.name)
		}
		id, ok := x["id"]
		if !ok {
			return "", fmt.Sprintf("%s: option object needs an id", f.name)
		}
		return f.normalize(id)
	default:
		return "", fmt.Sprintf("%s: unsupported value", f.name)
	}
	if s == "" {
		return "", ""
	}
	switch f.typ {
	case "number":
		if _, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64); err != nil {
			return "", fmt.Sprintf("%s: %q is not a number", f.name, s)
		}
	case "date":
		if _, err := time.Parse("2006-01-02", s); err != nil {
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				return "", fmt.Sprintf("%s: %q is not a date (YYYY-MM-DD)", f.name, s)
			}
		}
	case "boolean":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return "", fmt.Sprintf("%s: %q is not a boolean", f.name, s)
		}
		s = strconv.FormatBool(b)
	case "list":
		if id, err := strconv.Atoi(s); err == nil {
			for _, o := range f.options {
				if o.id == id {
					return strconv.Itoa(o.id), ""
				}
			}
		}
		for _, o := range f.options {
			if strings.EqualFold(o.name, s) {
				return strconv.Itoa(o.id), ""
			}
		}
		return "", fmt.Sprintf("%s: %q is not an option of this field", f.name, s)
	}
	return s, ""
}

// apply validates vals (field key -> raw JSON value) against g and, when
// valid, writes them into o. create means o is new: required fields must be
// set. With unique, every unique field of o is checked against the other
// objects of g (writes through the API always check; only a seed with
// allow_duplicates skips it).
func (g *group) apply(o *object, vals map[string]any, create, unique bool) *itemError {
	next := make(map[string]string, len(g.fields))
	for k, v := range o.values {
		next[k] = v
	}
	probs := map[string]string{}
	for k, raw := range vals {
		switch k {
		case "id", "integ_ad_sid", "integ_audit_id", "gps_coordinates":
			continue
		}
		f := g.fieldByKey(k)
		if f == nil {
			probs[k] = fmt.Sprintf("unknown field key %s", k)
			continue
		}
		v, msg := f.normalize(raw)
		if msg != "" {
			probs[k] = msg
			continue
		}
		next[k] = v
	}
	if len(probs) > 0 {
		return newItemError(codeInvalid, probs)
	}
	for _, f := range g.fields {
		if f.required && next[f.key] == "" && (create || vals[f.key] != nil) {
			probs[f.key] = fmt.Sprintf("%s is required", f.name)
		}
	}
	if len(probs) > 0 {
		return newItemError(codeInvalid, probs)
	}
	for _, f := range g.fields {
		v := next[f.key]
		if !unique || !f.unique || v == "" {
			continue
		}
		for _, other := range g.uniq[f.key][strings.ToLower(v)] {
			if other != o {
				probs[f.key] = fmt.Sprintf("%s is not unique", f.name)
			}
		}
	}
	if len(probs) > 0 {
		return newItemError(codeNotUnique, probs)
	}
	for k, v := range next {
		if v == "" {
			delete(next, k)
		}
	}
	for key, idx := range g.uniq {
		if old := o.values[key]; old != "" {
			k := strings.ToLower(old)
			idx[k] = slices.DeleteFunc(idx[k], func(x *object) bool { return x == o })
			if len(idx[k]) == 0 {
				delete(idx, k)
			}
		}
		if v := next[key]; v != "" {
			k := strings.ToLower(v)
			idx[k] = append(idx[k], o)
		}
	}
	o.values = next
	return nil
}

func newItemError(code int, probs map[string]string) *itemError {
	var msgs []string
	for _, m := range probs {
		msgs = append(msgs, m)
	}
	slices.Sort(msgs)
	return &itemError{Code: code, Errors: probs, Message: strings.Join(msgs, "; ")}
}

// json renders an object in the flat v2/v3 shape: field keys at the top
// level, single-selects as {id, display_name}, empty as null.
func (g *group) json(o *object) map[string]any {
	m := map[string]any{
		"id":           o.id,
		"is_archived":  o.archived,
		"created_at":   o.createdAt.Format(time.RFC3339Nano),
		"updated_at":   o.updatedAt.Format(time.RFC3339Nano),
		"integ_ad_sid": nil,
		"entity":       map[string]any{"id": g.id, "key": g.key},
	}
	display := ""
	for _, f := range g.fields {
		v := o.values[f.key]
		if v == "" {
			m[f.key] = nil
			continue
		}
		switch f.typ {
		case "list":
			id, _ := strconv.Atoi(v)
			m[f.key] = map[string]any{"id": id, "display_name": f.display(v)}
		case "boolean":
			m[f.key] = v == "true"
		case "number":
			m[f.key] = json.Number(strings.ReplaceAll(v, ",", ""))
		default:
			m[f.key] = v
			if display == "" && f.typ == "text" {
				display = v
			}
		}
	}
	m["display_name"] = display
	return m
}

func (e *Emulator) userJSON(u *user) map[string]any {
	roles := make([]map[string]int, 0, len(u.roles))
	accountID := 0
	for _, r := range u.roles {
		roles = append(roles, map[string]int{"account_id": r.accountID, "module_id": r.moduleID, "role_id": r.roleID})
		if accountID == 0 {
			accountID = r.accountID
		}
	}
	var sid any
	if u.adSID != "" {
		sid = u.adSID
	}
	return map[string]any{
		"id":           u.id,
		"email":        u.email,
		"first_name":   u.firstName,
		"last_name":    u.lastName,
		"is_active":    u.active,
		"is_admin":     strings.EqualFold(u.email, e.creds.Email),
		"account_id":   accountID,
		"integ_ad_sid": sid,
		"roles":        roles,
	}
}
