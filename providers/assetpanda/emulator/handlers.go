package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBulk is the most objects one bulk create or update may carry.
const maxBulk = 200

// Paging of searches.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

func canRead(p Permissions) bool   { return p.Read }
func canWrite(p Permissions) bool  { return p.Write }
func canInvite(p Permissions) bool { return p.CreateUsers }

func (e *Emulator) routes() {
	e.mux = http.NewServeMux()
	e.mux.HandleFunc("GET /_emulator/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.State())
	})
	e.mux.HandleFunc("GET /_emulator/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.Stats())
	})
	read := routeOpts{perm: canRead, denied: "read access not granted for this API client"}
	write := routeOpts{perm: canWrite, denied: "write access not granted for this API client"}
	e.handle("POST /v3/session/token", e.token, routeOpts{noAuth: true})
	e.handle("POST /v3/session-token", e.token, routeOpts{noAuth: true})
	e.handle("GET /v3/accounts", e.listAccounts, read)
	e.handle("GET /v3/roles", e.listRoles, read)
	e.handle("GET /v3/groups", e.listGroups, read)
	e.handle("GET /v3/groups/{id}", e.getGroup, read)
	e.handle("GET /v3/groups/{id}/fields", e.listFields, read)
	e.handle("POST /v3/groups/{id}/search/objects", e.search, read)
	e.handle("POST /v3/groups/{id}/objects/search", e.search, read)
	e.handle("POST /v3/groups/{id}/objects", e.createObjects, write)
	e.handle("PUT /v3/groups/{id}/objects", e.updateObjects, write)
	e.handle("PATCH /v3/groups/{id}/objects/{oid}", e.patchObject, write)
	e.handle("POST /v3/groups/{id}/objects/archive", e.archive(true), write)
	e.handle("POST /v3/groups/{id}/objects/unarchive", e.archive(false), write)
	e.handle("GET /v3/users", e.listUsers, read)
	e.handle("GET /v3/users/me", e.me, routeOpts{})
	e.handle("POST /v3/users/invite", e.invite, routeOpts{perm: canInvite, denied: "user creation not granted for this API client"})
	e.handle("PUT /v3/users/{id}", e.updateUser, write)
}

func msg(status int, m string) (int, any) { return status, apiError{Message: m} }

func notFound() (int, any) { return msg(http.StatusNotFound, "Not found") }

func badRequest(m string) (int, any) { return msg(http.StatusBadRequest, m) }

func (e *Emulator) token(r *http.Request, _ string) (int, any) {
	var body struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Email        string `json:"email"`
		Password     string `json:"password"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			return badRequest("invalid form body")
		}
		body.ClientID, body.ClientSecret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		body.Email, body.Password = r.PostForm.Get("email"), r.PostForm.Get("password")
	} else if err := decodeBody(r, &body); err != nil {
		return badRequest("invalid JSON body")
	}
	if !strings.EqualFold(body.Email, e.creds.Email) {
		return msg(http.StatusUnauthorized, "User email not found!")
	}
	if body.Password != e.creds.Password || body.ClientID != e.creds.ClientID || body.ClientSecret != e.creds.ClientSecret {
		return msg(http.StatusUnauthorized, "Invalid credentials")
	}
	tok := newToken()
	e.tokens[tok] = tokenInfo{clientID: body.ClientID, expires: e.now().Add(e.ttl)}
	return http.StatusOK, map[string]any{
		"access_token": tok,
		"token":        tok,
		"token_type":   "bearer",
		"expires_in":   int(e.ttl.Seconds()),
	}
}

func (e *Emulator) listAccounts(_ *http.Request, _ string) (int, any) {
	out := []map[string]any{}
	for _, a := range e.accounts {
		mods := []map[string]any{}
		for _, m := range a.modules {
			mods = append(mods, map[string]any{"id": m.id, "name": m.name})
		}
		out = append(out, map[string]any{"id": a.id, "name": a.name, "modules": mods})
	}
	return http.StatusOK, out
}

// moduleParam resolves ?module_id=; ok=false with a response when invalid.
func (e *Emulator) moduleParam(q url.Values) (*module, bool, int, any) {
	s := q.Get("module_id")
	if s == "" {
		return nil, true, 0, nil
	}
	id, err := strconv.Atoi(s)
	if err != nil {
		st, b := badRequest("module_id must be a number")
		return nil, false, st, b
	}
	m := e.modules[id]
	if m == nil {
		st, b := notFound()
		return nil, false, st, b
	}
	return m, true, 0, nil
}

func (e *Emulator) listRoles(r *http.Request, _ string) (int, any) {
	m, ok, st, b := e.moduleParam(r.URL.Query())
	if !ok {
		return st, b
	}
	if m == nil {
		return badRequest("module_id is required")
	}
	out := []map[string]any{}
	for _, ro := range m.roles {
		out = append(out, map[string]any{"id": ro.id, "name": ro.name, "type": ro.typ})
	}
	return http.StatusOK, out
}

func (e *Emulator) groupJSON(g *group) map[string]any {
	return map[string]any{"id": g.id, "name": g.name, "key": g.key, "icon": "", "module_id": g.module.id, "account_id": g.module.account.id}
}

func (e *Emulator) listGroups(r *http.Request, _ string) (int, any) {
	m, ok, st, b := e.moduleParam(r.URL.Query())
	if !ok {
		return st, b
	}
	out := []map[string]any{}
	for _, a := range e.accounts {
		for _, mm := range a.modules {
			if m != nil && mm != m {
				continue
			}
			for _, g := range mm.groups {
				out = append(out, e.groupJSON(g))
			}
		}
	}
	return http.StatusOK, map[string]any{"groups": out}
}

func (e *Emulator) groupParam(r *http.Request) *group {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return nil
	}
	return e.groups[id]
}

func (e *Emulator) getGroup(r *http.Request, _ string) (int, any) {
	g := e.groupParam(r)
	if g == nil {
		return notFound()
	}
	return http.StatusOK, e.groupJSON(g)
}

func (e *Emulator) listFields(r *http.Request, _ string) (int, any) {
	g := e.groupParam(r)
	if g == nil {
		return notFound()
	}
	out := []map[string]any{}
	for _, f := range g.fields {
		fm := map[string]any{"id": f.id, "name": f.name, "key": f.key, "type": f.typ, "unique": f.unique,
			"is_required": f.required, "entity_id": g.id}
		if f.typ == "list" {
			opts := []map[string]any{}
			for _, o := range f.options {
				opts = append(opts, map[string]any{"id": o.id, "name": o.name})
			}
			fm["options"] = opts
		}
		out = append(out, fm)
	}
	return http.StatusOK, map[string]any{"fields": out}
}

func (e *Emulator) search(r *http.Request, _ string) (int, any) {
	g := e.groupParam(r)
	if g == nil {
		return notFound()
	}
	var body struct {
		FieldFilters map[string]any `json:"field_filters"`
		Search       string         `json:"search"`
		IDs          []string       `json:"ids"`
		ViewArchived string         `json:"view_archived"`
		// LastModified filters on updated_at, both bounds inclusive
		// (ASSUMPTION: RFC 3339 timestamps; see the client's wire.go).
		LastModified *struct {
			GTE string `json:"gte"`
			LTE string `json:"lte"`
		} `json:"last_modified"`
	}
	if err := decodeBody(r, &body); err != nil {
		return badRequest("invalid JSON body")
	}
	var gte, lte time.Time
	if lm := body.LastModified; lm != nil {
		for _, b := range []struct {
			name, v string
			t       *time.Time
		}{{"gte", lm.GTE, &gte}, {"lte", lm.LTE, &lte}} {
			if b.v == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, b.v)
			if err != nil {
				return msg(http.StatusUnprocessableEntity, "last_modified."+b.name+" must be an RFC 3339 timestamp")
			}
			*b.t = t
		}
	}
	offset, limit, ok, st, b := paging(r.URL.Query(), defaultLimit, maxLimit)
	if !ok {
		return st, b
	}
	type filter struct {
		f *field
		v string
	}
	var filters []filter
	for k, raw := range body.FieldFilters {
		f := g.fieldByKey(k)
		if f == nil {
			return msg(http.StatusUnprocessableEntity, "unknown field key "+k)
		}
		var v string
		switch x := raw.(type) {
		case string:
			v = x
		case json.Number:
			v = x.String()
		case bool:
			v = strconv.FormatBool(x)
		default:
			return badRequest("field_filters values must be scalars")
		}
		filters = append(filters, filter{f, v})
	}
	var ids map[string]bool
	if body.IDs != nil {
		ids = map[string]bool{}
		for _, id := range body.IDs {
			ids[id] = true
		}
	}
	needle := strings.ToLower(body.Search)
	var hits []*object
	for _, o := range g.objects {
		switch body.ViewArchived {
		case "all":
		case "archived":
			if !o.archived {
				continue
			}
		default:
			if o.archived {
				continue
			}
		}
		if ids != nil && !ids[o.id] {
			continue
		}
		if !gte.IsZero() && o.updatedAt.Before(gte) || !lte.IsZero() && o.updatedAt.After(lte) {
			continue
		}
		match := true
		for _, fl := range filters {
			stored := o.values[fl.f.key]
			if !strings.EqualFold(fl.f.display(stored), fl.v) && !(fl.f.typ == "list" && stored == fl.v) {
				match = false
				break
			}
		}
		if match && needle != "" {
			match = false
			for _, f := range g.fields {
				if strings.Contains(strings.ToLower(f.display(o.values[f.key])), needle) {
					match = true
					break
				}
			}
		}
		if match {
			hits = append(hits, o)
		}
	}
	page := []map[string]any{}
	for i := offset; i < len(hits) && i < offset+limit; i++ {
		page = append(page, g.json(hits[i]))
	}
	total := len(hits)
	fault, _ := r.Context().Value(ctxPageFault).(FaultKind)
	page, total = cutPage(fault, page, total)
	out := map[string]any{
		"totals":       map[string]int{"objects": total, "group_totals": len(g.objects), "offset": offset, "limit": limit},
		"not_viewable": 0,
		"objects":      page,
	}
	if fault == FaultNoTotal {
		delete(out, "totals")
	}
	return http.StatusOK, out
}

// cutPage applies a page fault to a page and its total.
func cutPage[T any](f FaultKind, page []T, total int) ([]T, int) {
	switch f {
	case FaultShortPage:
		page = page[:len(page)/2]
	case FaultEmptyPage:
		page = page[:0]
	case FaultZeroTotal:
		total = 0
	case FaultZeroTotalEmpty:
		page, total = page[:0], 0
	}
	return page, total
}

// paging reads ?offset= and ?limit= (def when absent, capped at max when
// max > 0); ok=false with a response when invalid.
func paging(q url.Values, def, max int) (offset, limit int, ok bool, status int, body any) {
	limit = def
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			st, b := badRequest("offset must be a non-negative number")
			return 0, 0, false, st, b
		}
		offset = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			st, b := badRequest("limit must be a positive number")
			return 0, 0, false, st, b
		}
		limit = n
		if max > 0 {
			limit = min(n, max)
		}
	}
	return offset, limit, true, 0, nil
}

// bulkError is one failed object of a bulk call.
type bulkError struct {
	Index   int               `json:"index"`
	ID      string            `json:"id,omitempty"`
	Message string            `json:"message"`
	Code    int               `json:"code"`
	Errors  map[string]string `json:"errors,omitempty"`
}

func validationError(ie *itemError) (int, any) {
	return http.StatusUnprocessableEntity, apiError{Message: ie.Message, Errors: []map[string]string{ie.Errors}, Code: ie.Code}
}

func (e *Emulator) createObjects(r *http.Request, _ string) (int, any) {
	g := e.groupParam(r)
	if g == nil {
		return notFound()
	}
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return badRequest("invalid JSON body")
	}
	rawList, bulk := body["objects"]
	if !bulk {
		o, ie := e.createOne(g, body)
		if ie != nil {
			return validationError(ie)
		}
		return http.StatusOK, g.json(o)
	}
	list, ok := rawList.([]any)
	if !ok {
		return badRequest("objects must be an array")
	}
	if len(list) > maxBulk {
		return msg(http.StatusUnprocessableEntity, "at most 200 objects per request")
	}
	out := make([]any, len(list))
	errs := []bulkError{}
	for i, raw := range list {
		vals, ok := raw.(map[string]any)
		if !ok {
			errs = append(errs, bulkError{Index: i, Message: "object must be a JSON object", Code: codeInvalid})
			continue
		}
		o, ie := e.createOne(g, vals)
		if ie != nil {
			errs = append(errs, bulkError{Index: i, Message: ie.Message, Code: ie.Code, Errors: ie.Errors})
			continue
		}
		out[i] = g.json(o)
	}
	return http.StatusOK, map[string]any{"objects": out, "errors": errs}
}

func (e *Emulator) createOne(g *group, vals map[string]any) (*object, *itemError) {
	now := e.now().UTC()
	o := &object{createdAt: now, updatedAt: now}
	if ie := g.apply(o, vals, true, true); ie != nil {
		return nil, ie
	}
	o.id = e.objectID()
	g.objects = append(g.objects, o)
	g.byID[o.id] = o
	return o, nil
}

func (e *Emulator) updateOne(g *group, id string, vals map[string]any) (*object, *itemError) {
	o := g.byID[id]
	if o == nil {
		return nil, &itemError{Message: "Not found", Code: codeNotFound}
	}
	if ie := g.apply(o, vals, false, true); ie != nil {
		return nil, ie
	}
	o.updatedAt = e.now().UTC()
	return o, nil
}

func (e *Emulator) updateObjects(r *http.Request, _ string) (int, any) {
	g := e.groupParam(r)
	if g == nil {
		return notFound()
	}
	var body struct {
		Objects []map[string]any `json:"objects"`
	}
	if err := decodeBody(r, &body); err != nil {
		return badRequest("invalid JSON body")
	}
	if len(body.Objects) > maxBulk {
		return msg(http.StatusUnprocessableEntity, "at most 200 objects per request")
	}
	out := make([]any, len(body.Objects))
	errs := []bulkError{}
	for i, vals := range body.Objects {
		id, _ := vals["id"].(string)
		o, ie := e.updateOne(g, id, vals)
		if ie != nil {
			errs = append(errs, bulkError{Index: i, ID: id, Message: ie.Message, Code: ie.Code, Errors: ie.Errors})
			continue
		}
		out[i] = g.json(o)
	}
	return http.StatusOK, map[string]any{"objects": out, "errors": errs}
}

func (e *Emulator) patchObject(r *http.Request, _ string) (int, any) {
	g := e.groupParam(r)
	if g == nil {
		return notFound()
	}
	var vals map[string]any
	if err := decodeBody(r, &vals); err != nil {
		return badRequest("invalid JSON body")
	}
	o, ie := e.updateOne(g, r.PathValue("oid"), vals)
	if ie != nil {
		if ie.Code == codeNotFound {
			return notFound()
		}
		return validationError(ie)
	}
	return http.StatusOK, g.json(o)
}

func (e *Emulator) archive(archived bool) handlerFunc {
	return func(r *http.Request, _ string) (int, any) {
		g := e.groupParam(r)
		if g == nil {
			return notFound()
		}
		var body struct {
			ObjectIDs []string `json:"object_ids"`
			StopDate  string   `json:"stop_date"`
		}
		if err := decodeBody(r, &body); err != nil {
			return badRequest("invalid JSON body")
		}
		if len(body.ObjectIDs) > maxBulk {
			return msg(http.StatusUnprocessableEntity, "at most 200 objects per request")
		}
		for _, id := range body.ObjectIDs {
			if g.byID[id] == nil {
				return msg(http.StatusNotFound, "Not found: "+id)
			}
		}
		now := e.now().UTC()
		for _, id := range body.ObjectIDs {
			o := g.byID[id]
			if o.archived != archived {
				o.archived = archived
				o.updatedAt = now
			}
		}
		return http.StatusOK, map[string]any{"object_ids": body.ObjectIDs}
	}
}

// listUsers serves the bare array of users. ASSUMPTION: ?offset= and
// ?limit= page it (no limit = every user, as documented), and the
// X-Total-Count header gives the number of all users.
func (e *Emulator) listUsers(r *http.Request, _ string) (int, any) {
	offset, limit, ok, st, b := paging(r.URL.Query(), len(e.users), 0)
	if !ok {
		return st, b
	}
	out := []map[string]any{}
	for i := offset; i < len(e.users) && i < offset+limit; i++ {
		out = append(out, e.userJSON(e.users[i]))
	}
	fault, _ := r.Context().Value(ctxPageFault).(FaultKind)
	out, total := cutPage(fault, out, len(e.users))
	h := http.Header{}
	if fault != FaultNoTotal {
		h.Set("X-Total-Count", strconv.Itoa(total))
	}
	return http.StatusOK, withHeader{header: h, body: out}
}

func (e *Emulator) me(_ *http.Request, _ string) (int, any) {
	u := e.userByEmail(e.creds.Email)
	var m map[string]any
	if u != nil {
		m = e.userJSON(u)
	} else {
		m = map[string]any{"email": e.creds.Email}
	}
	m["permissions"] = map[string]bool{"read": e.perms.Read, "write": e.perms.Write, "create_users": e.perms.CreateUsers}
	return http.StatusOK, m
}

// roleIn resolves module_id and role_id of a user request.
func (e *Emulator) roleIn(moduleID, roleID int) (*module, *role, string) {
	m := e.modules[moduleID]
	if m == nil {
		return nil, nil, "unknown module_id " + strconv.Itoa(moduleID)
	}
	r := e.roles[roleID]
	if r == nil || r.module != m {
		return nil, nil, "role_id " + strconv.Itoa(roleID) + " is not a role of module " + strconv.Itoa(moduleID)
	}
	return m, r, ""
}

func (e *Emulator) invite(r *http.Request, _ string) (int, any) {
	var body struct {
		Email      string `json:"email"`
		FirstName  string `json:"first_name"`
		LastName   string `json:"last_name"`
		ModuleID   int    `json:"module_id"`
		RoleID     int    `json:"role_id"`
		IntegADSID string `json:"integ_ad_sid"`
	}
	if err := decodeBody(r, &body); err != nil {
		return badRequest("invalid JSON body")
	}
	if !strings.Contains(body.Email, "@") {
		return validationError(&itemError{Message: "Email is invalid", Code: codeInvalid, Errors: map[string]string{"email": "is invalid"}})
	}
	if e.userByEmail(body.Email) != nil {
		return validationError(&itemError{Message: "Email has already been taken", Code: codeNotUnique, Errors: map[string]string{"email": "has already been taken"}})
	}
	m, ro, problem := e.roleIn(body.ModuleID, body.RoleID)
	if problem != "" {
		return validationError(&itemError{Message: problem, Code: codeInvalid, Errors: map[string]string{"role_id": problem}})
	}
	u := &user{id: e.id(), email: body.Email, firstName: body.FirstName, lastName: body.LastName, active: true, adSID: body.IntegADSID}
	u.setRole(m, ro)
	e.users = append(e.users, u)
	out := e.userJSON(u)
	out["status"] = "invited"
	return http.StatusOK, out
}

func (e *Emulator) updateUser(r *http.Request, _ string) (int, any) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return notFound()
	}
	u := e.userByID(id)
	if u == nil {
		return notFound()
	}
	var body struct {
		User struct {
			FirstName  *string `json:"first_name"`
			LastName   *string `json:"last_name"`
			Email      *string `json:"email"`
			IsActive   *bool   `json:"is_active"`
			IntegADSID *string `json:"integ_ad_sid"`
		} `json:"user"`
		ModuleID int `json:"module_id"`
		RoleID   int `json:"role_id"`
	}
	if err := decodeBody(r, &body); err != nil {
		return badRequest("invalid JSON body")
	}
	bu := body.User
	if bu.Email != nil {
		if !strings.Contains(*bu.Email, "@") {
			return validationError(&itemError{Message: "Email is invalid", Code: codeInvalid, Errors: map[string]string{"email": "is invalid"}})
		}
		if other := e.userByEmail(*bu.Email); other != nil && other != u {
			return validationError(&itemError{Message: "Email has already been taken", Code: codeNotUnique, Errors: map[string]string{"email": "has already been taken"}})
		}
	}
	var m *module
	var ro *role
	if body.ModuleID != 0 || body.RoleID != 0 {
		var problem string
		m, ro, problem = e.roleIn(body.ModuleID, body.RoleID)
		if problem != "" {
			return validationError(&itemError{Message: problem, Code: codeInvalid, Errors: map[string]string{"role_id": problem}})
		}
	}
	if bu.FirstName != nil {
		u.firstName = *bu.FirstName
	}
	if bu.LastName != nil {
		u.lastName = *bu.LastName
	}
	if bu.Email != nil {
		u.email = *bu.Email
	}
	if bu.IsActive != nil {
		u.active = *bu.IsActive
	}
	if bu.IntegADSID != nil {
		u.adSID = *bu.IntegADSID
	}
	if m != nil {
		u.setRole(m, ro)
	}
	return http.StatusOK, e.userJSON(u)
}
