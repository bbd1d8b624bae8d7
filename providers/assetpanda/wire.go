package assetpanda

// This file is the one place that knows the Asset Panda wire format: every
// path, query parameter, header and request/response shape the client uses.
// Shapes marked ASSUMPTION in reference/assetpanda-api.md (and listed in
// the README's "Asset Panda API" section) can be corrected against the live
// service here, in one edit.
//
// The reply types double as the expected shapes of Probe (check -api): the
// json tag names a key, the Go type gives its JSON type, and a shape tag
// says what must be there: shape:"req" (the key must be present and not
// null) or shape:"oneof=NAME" (at least one key of the group NAME must be).
// Keys without a shape tag are optional but, when present, must have the
// JSON type of their Go field.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// route is "METHOD /path/with/{placeholders}". It names a request in Stats
// and, filled in, gives the path to call.
type route string

// The endpoints used by the client.
const (
	routeToken     route = "POST /v3/session/token"                 // [DOC] path; JSON body = ASSUMPTION
	routeAccounts  route = "GET /v3/accounts"                       // ASSUMPTION (Pro scoping)
	routeRoles     route = "GET /v3/roles"                          // ASSUMPTION, ?module_id=
	routeGroups    route = "GET /v3/groups"                         // [DOC]; ?module_id= is ASSUMPTION
	routeFields    route = "GET /v3/groups/{id}/fields"             // [CODE]; unique/options = ASSUMPTION
	routeSearch    route = "POST /v3/groups/{id}/search/objects"    // [DOC]
	routeCreate    route = "POST /v3/groups/{id}/objects"           // [DOC]; bulk body = ASSUMPTION
	routeUpdate    route = "PUT /v3/groups/{id}/objects"            // [DOC]; response = ASSUMPTION
	routeArchive   route = "POST /v3/groups/{id}/objects/archive"   // [DOC]; body = ASSUMPTION
	routeUnarchive route = "POST /v3/groups/{id}/objects/unarchive" // [DOC]; body = ASSUMPTION
	routeUsers     route = "GET /v3/users"                          // [DOC]; roles, paging, X-Total-Count = ASSUMPTION
	routeMe        route = "GET /v3/users/me"                       // [DOC]; permissions = ASSUMPTION
	routeInvite    route = "POST /v3/users/invite"                  // ASSUMPTION (Pro invite)
	routeUser      route = "PUT /v3/users/{id}"                     // [DOC]; is_active, module_id, role_id = ASSUMPTION
)

// permission is the API client permission a route needs, in the words of
// the Asset Panda API Configuration page (ASSUMPTION: read, write and user
// creation, as the emulator grants them).
func (r route) permission() string {
	switch {
	case r == routeInvite:
		return "user creation"
	case r.method() == http.MethodGet || r == routeSearch:
		return "read"
	}
	return "write"
}

func (r route) method() string {
	m, _, _ := strings.Cut(string(r), " ")
	return m
}

// path fills the {placeholders} in order with args.
func (r route) path(args ...string) string {
	_, p, _ := strings.Cut(string(r), " ")
	for _, a := range args {
		i := strings.Index(p, "{")
		j := strings.Index(p, "}")
		if i < 0 || j < i {
			break
		}
		p = p[:i] + a + p[j+1:]
	}
	return p
}

// Query parameters.
const (
	qModuleID = "module_id"
	qOffset   = "offset"
	qLimit    = "limit"
)

// hdrTotalCount is the reply header of GET /v3/users that gives the number
// of users in the whole list (ASSUMPTION: the list is documented as a bare
// array without paging; a bare array cannot show it is complete, so
// pandasync pages it with offset/limit and requires this header).
const hdrTotalCount = "X-Total-Count"

// Limits of the API.
const (
	maxBulk       = 200  // objects per bulk create/update/archive [DOC for update; ASSUMPTION for the rest]
	pageSize      = 1000 // objects per search page we ask for (ASSUMPTION: the service caps at 1000)
	usersPageSize = 1000 // users per page of GET /v3/users we ask for (ASSUMPTION: honoured as asked)
)

// Values of the wire format.
const (
	authScheme      = "Bearer"
	fieldTypeList   = "list" // single-select with inline options (ASSUMPTION)
	viewArchivedAll = "all"  // search archived and live records [DOC]
	objKeyID        = "id"   // the record id in a bulk update body (wireRecordMeta reads it back)
)

type tokenRequest struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Email        string `json:"email"`
	Password     string `json:"password"`
}

// tokenResponse: the token may come as access_token or token (ASSUMPTION).
type tokenResponse struct {
	AccessToken string      `json:"access_token" shape:"oneof=token"`
	Token       string      `json:"token" shape:"oneof=token"`
	TokenType   string      `json:"token_type"`
	ExpiresIn   json.Number `json:"expires_in"`
}

type wireAccount struct {
	ID      int          `json:"id" shape:"req"`
	Name    string       `json:"name" shape:"req"`
	Modules []wireModule `json:"modules" shape:"req"`
}

type wireModule struct {
	ID   int    `json:"id" shape:"req"`
	Name string `json:"name" shape:"req"`
}

type wireRole struct {
	ID   int    `json:"id" shape:"req"`
	Name string `json:"name" shape:"req"`
	Type string `json:"type"`
}

type wireGroups struct {
	Groups []wireGroup `json:"groups" shape:"req"`
}

type wireGroup struct {
	ID   int    `json:"id" shape:"req"`
	Name string `json:"name" shape:"req"`
	Key  string `json:"key"`
}

type wireFields struct {
	Fields []wireField `json:"fields" shape:"req"`
}

type wireField struct {
	ID         int          `json:"id"`
	Name       string       `json:"name" shape:"req"`
	Key        string       `json:"key" shape:"req"`
	Type       string       `json:"type" shape:"req"`
	Unique     bool         `json:"unique"`
	IsRequired bool         `json:"is_required"`
	Options    []wireOption `json:"options"`
}

type wireOption struct {
	ID   int    `json:"id" shape:"req"`
	Name string `json:"name" shape:"req"`
}

type searchRequest struct {
	FieldFilters map[string]string `json:"field_filters,omitempty"`
	IDs          []string          `json:"ids,omitempty"`
	LastModified *modifiedRange    `json:"last_modified,omitempty"`
	ViewArchived string            `json:"view_archived,omitempty"`
}

// modifiedRange is the search's last_modified filter on updated_at. The key
// and its gte/lte bounds are documented [DOC]; ASSUMPTION: the bounds are
// RFC 3339 timestamps (the docs' example shows "2023-02-01T00:00:00.000Z"),
// both inclusive, compared with the record's updated_at, which every write
// (create, update, archive, unarchive) moves to the time of the write.
type modifiedRange struct {
	GTE string `json:"gte,omitempty"`
	LTE string `json:"lte,omitempty"`
}

// searchResponse is the v2 list envelope; v3 may say "total" instead of
// totals.objects (ASSUMPTION: tolerate both). One of them is required: a
// reply without a total cannot show that the read is complete.
// group_totals (all records of the collection) and not_viewable (records
// hidden from the caller) are checked when present (ASSUMPTION: their
// meaning is read from third-party code only).
type searchResponse struct {
	Totals *struct {
		Objects     *int `json:"objects" shape:"oneof=total"`
		GroupTotals *int `json:"group_totals"`
		Limit       int  `json:"limit"`
	} `json:"totals"`
	Total       *int         `json:"total" shape:"oneof=total"`
	NotViewable *int         `json:"not_viewable"`
	Objects     []wireObject `json:"objects" shape:"req"`
}

// total returns the number of matches the server reported, if any.
func (s *searchResponse) total() (int, bool) {
	if s.Totals != nil && s.Totals.Objects != nil {
		return *s.Totals.Objects, true
	}
	if s.Total != nil {
		return *s.Total, true
	}
	return 0, false
}

// groupTotal returns the number of records of the whole collection, if
// reported.
func (s *searchResponse) groupTotal() (int, bool) {
	if s.Totals != nil && s.Totals.GroupTotals != nil {
		return *s.Totals.GroupTotals, true
	}
	return 0, false
}

// limit returns the page size the server applied (it may clamp ours).
func (s *searchResponse) limit(asked int) int {
	if s.Totals != nil && s.Totals.Limit > 0 {
		return s.Totals.Limit
	}
	return asked
}

// usersTotal reads the X-Total-Count header of a users page.
func usersTotal(h http.Header) (int, bool) {
	v := strings.TrimSpace(h.Get(hdrTotalCount))
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// wireRecordMeta are the keys of a record that are not field values.
type wireRecordMeta struct {
	ID        wireID `json:"id" shape:"req"`
	Archived  bool   `json:"is_archived"`
	UpdatedAt string `json:"updated_at"`
}

// wireObject is a record in the flat shape: field keys ("field_N") at the
// top level next to id, is_archived, updated_at... The meta keys are
// decoded leniently: a value of another type leaves its field zero.
type wireObject struct {
	wireRecordMeta
	values map[string]json.RawMessage
}

// UnmarshalJSON reads the flat object: every key into values, the meta
// keys also into wireRecordMeta. A meta value of another type leaves its
// field zero (encoding/json carries on past it), so that error is ignored.
func (o *wireObject) UnmarshalJSON(b []byte) error {
	*o = wireObject{}
	if err := json.Unmarshal(b, &o.values); err != nil {
		return err
	}
	_ = json.Unmarshal(b, &o.wireRecordMeta)
	return nil
}

// wireID is a record id: a string (24 hex) on the wire; a number is kept
// as its literal.
type wireID string

// UnmarshalJSON accepts a string or any other literal.
func (id *wireID) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*id = wireID(s)
		return nil
	}
	if t := strings.TrimSpace(string(b)); t != "null" {
		*id = wireID(t)
	}
	return nil
}

// jsonShape: Probe expects an id to be a string.
func (wireID) jsonShape() shape { return shape{kind: kindString} }

// bulkRequest is the body of bulk create and bulk update (ASSUMPTION for create).
type bulkRequest struct {
	Objects []map[string]any `json:"objects"`
}

// bulkResponse lists results in request order (null for a failed object)
// and the failures by index (ASSUMPTION).
type bulkResponse struct {
	Objects []wireObject    `json:"objects"`
	Errors  []wireBulkError `json:"errors"`
}

type wireBulkError struct {
	Index   int               `json:"index"`
	ID      string            `json:"id"`
	Message string            `json:"message"`
	Code    int               `json:"code"`
	Errors  map[string]string `json:"errors"`
}

type archiveRequest struct {
	ObjectIDs []string `json:"object_ids"`
}

// wireUser is a user as GET /v3/users lists it (a bare array, paged with
// offset/limit and counted by X-Total-Count: ASSUMPTION) and as the user
// writes return it.
type wireUser struct {
	ID         int            `json:"id" shape:"req"`
	Email      string         `json:"email" shape:"req"`
	FirstName  string         `json:"first_name"`
	LastName   string         `json:"last_name"`
	IsActive   bool           `json:"is_active" shape:"req"`
	IntegADSID *string        `json:"integ_ad_sid"`
	Roles      []wireUserRole `json:"roles" shape:"req"`
}

type wireUserRole struct {
	AccountID int `json:"account_id" shape:"req"`
	ModuleID  int `json:"module_id" shape:"req"`
	RoleID    int `json:"role_id" shape:"req"`
}

// wireMe is what the client reads of GET /v3/users/me: the caller's
// permissions (ASSUMPTION); the rest of the reply is not used.
type wireMe struct {
	Permissions struct {
		Read        bool `json:"read" shape:"req"`
		Write       bool `json:"write" shape:"req"`
		CreateUsers bool `json:"create_users" shape:"req"`
	} `json:"permissions" shape:"req"`
}

type inviteRequest struct {
	Email      string `json:"email"`
	FirstName  string `json:"first_name"`
	LastName   string `json:"last_name"`
	ModuleID   int    `json:"module_id"`
	RoleID     int    `json:"role_id"`
	IntegADSID string `json:"integ_ad_sid,omitempty"`
}

type userUpdateRequest struct {
	User struct {
		FirstName  *string `json:"first_name,omitempty"`
		LastName   *string `json:"last_name,omitempty"`
		Email      *string `json:"email,omitempty"`
		IsActive   *bool   `json:"is_active,omitempty"`
		IntegADSID *string `json:"integ_ad_sid,omitempty"`
	} `json:"user"`
	ModuleID int `json:"module_id,omitempty"`
	RoleID   int `json:"role_id,omitempty"`
}

// wireError is an error body: always a message; validation errors add the
// v2 "errors" (a list of field maps, or a map) and a code (2 = not unique).
type wireError struct {
	Message string          `json:"message"`
	Errors  json.RawMessage `json:"errors"`
	Code    int             `json:"code"`
}

// text renders the error body for humans.
func (w *wireError) text() string {
	if w.Message != "" {
		return w.Message
	}
	var parts []string
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(w.Errors, &list); err != nil {
		var one map[string]json.RawMessage
		if json.Unmarshal(w.Errors, &one) == nil {
			list = append(list, one)
		}
	}
	for _, m := range list {
		for k, v := range m {
			parts = append(parts, k+": "+strings.Trim(string(v), `[]"`))
		}
	}
	return strings.Join(parts, "; ")
}

// encodeOption is how a single-select value is written: the option id as a
// string (ASSUMPTION per the reference's client recommendation).
func encodeOption(o *Option) any { return strconv.Itoa(o.ID) }

// decodeValue turns a wire value into the string form of Record.Fields:
// null = "", single-selects ({id, display_name}) = option name.
func decodeValue(f *Field, raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		if f.Type == fieldTypeList {
			// Some clients see a bare option id or name; map ids to names.
			if id, err := strconv.Atoi(s); err == nil {
				if o := f.optionByID(id); o != nil {
					return o.Name
				}
			}
		}
		return s
	case '{':
		var v struct {
			ID          json.RawMessage `json:"id"`
			DisplayName *string         `json:"display_name"`
			Value       *string         `json:"value"`
			Name        *string         `json:"name"`
		}
		if json.Unmarshal(raw, &v) != nil {
			return ""
		}
		if id, err := strconv.Atoi(strings.Trim(string(v.ID), `"`)); err == nil {
			if o := f.optionByID(id); o != nil {
				return o.Name
			}
		}
		for _, s := range []*string{v.DisplayName, v.Value, v.Name} {
			if s != nil {
				return *s
			}
		}
		return ""
	default: // number, boolean, array: keep the literal
		return string(raw)
	}
}

// replyType is the type the client decodes the reply of a read route
// into: the expected shape Probe checks the service against.
func replyType(r route) reflect.Type {
	switch r {
	case routeToken:
		return reflect.TypeFor[tokenResponse]()
	case routeAccounts:
		return reflect.TypeFor[[]wireAccount]()
	case routeRoles:
		return reflect.TypeFor[[]wireRole]()
	case routeGroups:
		return reflect.TypeFor[wireGroups]()
	case routeFields:
		return reflect.TypeFor[wireFields]()
	case routeSearch:
		return reflect.TypeFor[searchResponse]()
	case routeUsers:
		return reflect.TypeFor[[]wireUser]()
	case routeMe:
		return reflect.TypeFor[wireMe]()
	}
	return nil
}
