package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

const demoSeed = "../../../examples/demo/assetpanda-seed.json"

func loadDemo(t *testing.T) *Seed {
	t.Helper()
	f, err := os.Open(demoSeed)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := LoadSeed(f)
	if err != nil {
		t.Fatalf("LoadSeed(%s): %v", demoSeed, err)
	}
	return s
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type tenv struct {
	emu   *Emulator
	url   string
	token string
	clk   *clock
}

func newTenv(t *testing.T, opts Options) *tenv {
	t.Helper()
	clk := &clock{t: time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	e, err := New(loadDemo(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	te := &tenv{emu: e, url: srv.URL, clk: clk}
	st, body, _ := te.call(t, "POST", "/v3/session/token", `{"client_id":"demo-client","client_secret":"demo-secret","email":"admin@example.com","password":"demo-password"}`)
	if st != 200 {
		t.Fatalf("token: %d %s", st, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		Token       string `json:"token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	wantTTL := 3600
	if opts.TokenTTL > 0 {
		wantTTL = int(opts.TokenTTL.Seconds())
	}
	if tr.AccessToken == "" || tr.Token != tr.AccessToken || tr.TokenType != "bearer" || tr.ExpiresIn != wantTTL {
		t.Fatalf("token response = %s", body)
	}
	te.token = tr.AccessToken
	return te
}

// call sends a request with the env's token (if any) and returns status,
// body and headers.
func (te *tenv) call(t *testing.T, method, path, body string) (int, []byte, http.Header) {
	t.Helper()
	return te.callTok(t, te.token, method, path, body)
}

func (te *tenv) callTok(t *testing.T, tok, method, path, body string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, te.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// ids resolves the demo's ids by name through the API itself.
type demoIDs struct {
	itAssets, facilities, people, assets, rooms, collaborator, moduleAdmin int
	sid, status, firstName                                                 string // People field keys
}

func (te *tenv) ids(t *testing.T) demoIDs {
	t.Helper()
	var d demoIDs
	var accs []struct {
		Modules []struct {
			ID   int
			Name string
		}
	}
	_, b, _ := te.call(t, "GET", "/v3/accounts", "")
	mustJSON(t, b, &accs)
	for _, m := range accs[0].Modules {
		switch m.Name {
		case "IT Assets":
			d.itAssets = m.ID
		case "Facilities":
			d.facilities = m.ID
		}
	}
	var roles []struct {
		ID   int
		Name string
	}
	_, b, _ = te.call(t, "GET", fmt.Sprintf("/v3/roles?module_id=%d", d.itAssets), "")
	mustJSON(t, b, &roles)
	for _, r := range roles {
		switch r.Name {
		case "Collaborator":
			d.collaborator = r.ID
		case "Module Admin":
			d.moduleAdmin = r.ID
		}
	}
	var gs struct {
		Groups []struct {
			ID   int
			Name string
		}
	}
	_, b, _ = te.call(t, "GET", "/v3/groups", "")
	mustJSON(t, b, &gs)
	for _, g := range gs.Groups {
		switch g.Name {
		case "People":
			d.people = g.ID
		case "Assets":
			d.assets = g.ID
		case "Rooms":
			d.rooms = g.ID
		}
	}
	var fs struct {
		Fields []struct {
			Name, Key string
		}
	}
	_, b, _ = te.call(t, "GET", fmt.Sprintf("/v3/groups/%d/fields", d.people), "")
	mustJSON(t, b, &fs)
	for _, f := range fs.Fields {
		switch f.Name {
		case "AD SID":
			d.sid = f.Key
		case "Integration Status AD":
			d.status = f.Key
		case "First Name":
			d.firstName = f.Key
		}
	}
	return d
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func TestDemoSeedStateGolden(t *testing.T) {
	e, err := New(loadDemo(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(e.State(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "demo-state.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(strings.TrimSpace(string(want)), strings.TrimSpace(string(got))); diff != "" {
		t.Errorf("state dump (-want +got):\n%s", diff)
	}
	// The dump loads back as a seed (with the secrets put back).
	again, err := LoadSeed(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	again.Credentials = loadDemo(t).Credentials
	e2, err := New(again, Options{})
	if err != nil {
		t.Fatalf("reloading the dump: %v", err)
	}
	if diff := cmp.Diff(e.State(), e2.State()); diff != "" {
		t.Errorf("dump of the reloaded dump differs (-want +got):\n%s", diff)
	}
}

func TestSeedValidation(t *testing.T) {
	tests := map[string]struct {
		seed string
		want string
	}{
		"unknown key":        {`{"acounts":[]}`, `unknown field "acounts"`},
		"unknown type":       {`{"accounts":[{"name":"A","modules":[{"name":"M","collections":[{"name":"C","fields":[{"name":"F","type":"blob"}]}]}]}]}`, `unknown type "blob"`},
		"list needs options": {`{"accounts":[{"name":"A","modules":[{"name":"M","collections":[{"name":"C","fields":[{"name":"F","type":"list"}]}]}]}]}`, "needs options"},
		"record bad field":   {`{"accounts":[{"name":"A","modules":[{"name":"M","collections":[{"name":"C","fields":[{"name":"F","type":"text"}],"records":[{"G":"x"}]}]}]}]}`, `unknown field "G"`},
		"record bad option":  {`{"accounts":[{"name":"A","modules":[{"name":"M","collections":[{"name":"C","fields":[{"name":"F","type":"list","options":["a"]}],"records":[{"F":"b"}]}]}]}]}`, "not an option"},
		"record not unique":  {`{"accounts":[{"name":"A","modules":[{"name":"M","collections":[{"name":"C","fields":[{"name":"F","type":"text","unique":true}],"records":[{"F":"x"},{"F":"X"}]}]}]}]}`, "not unique"},
		"user bad role":      {`{"accounts":[{"name":"A","modules":[{"name":"M","roles":["R"]}]}],"users":[{"email":"a@b","roles":[{"account":"A","module":"M","role":"S"}]}]}`, `no role "S"`},
		"duplicate email":    {`{"users":[{"email":"a@b"},{"email":"A@b"}]}`, "duplicate email"},
		"bad rate":           {`{"rate_limit":{"requests":5,"per":"soon"}}`, "rate_limit.per"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := LoadSeed(strings.NewReader(tc.seed))
			if err == nil {
				_, err = New(s, Options{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestStatusCodes(t *testing.T) {
	te := newTenv(t, Options{Rate: Rate{Requests: -1}})
	d := te.ids(t)
	people := fmt.Sprintf("/v3/groups/%d", d.people)
	manyObjects := func(n int) string {
		objs := make([]string, n)
		for i := range objs {
			objs[i] = fmt.Sprintf(`{"%s":"S-1-5-21-9-9-9-%d"}`, d.sid, i)
		}
		return `{"objects":[` + strings.Join(objs, ",") + `]}`
	}
	tests := []struct {
		name               string
		tok                string // "" = the env's token; "none" = no header
		method, path, body string
		status             int
		want               string // substring of the body
	}{
		{"no token", "none", "GET", "/v3/groups", "", 401, `"message":"Unauthorized"`},
		{"unknown token", "nope", "GET", "/v3/groups", "", 401, "Unauthorized"},
		{"wrong email", "none", "POST", "/v3/session/token", `{"email":"x@example.com","password":"demo-password"}`, 401, "User email not found!"},
		{"wrong password", "none", "POST", "/v3/session/token", `{"client_id":"demo-client","client_secret":"demo-secret","email":"admin@example.com","password":"x"}`, 401, "Invalid credentials"},
		{"hyphen token path", "none", "POST", "/v3/session-token", `{"client_id":"demo-client","client_secret":"demo-secret","email":"admin@example.com","password":"demo-password"}`, 200, `"token_type":"bearer"`},
		{"groups of module", "", "GET", fmt.Sprintf("/v3/groups?module_id=%d", d.facilities), "", 200, `"name":"Rooms"`},
		{"unknown module", "", "GET", "/v3/roles?module_id=1", "", 404, "Not found"},
		{"roles need module", "", "GET", "/v3/roles", "", 400, "module_id is required"},
		{"unknown group", "", "GET", "/v3/groups/1/fields", "", 404, "Not found"},
		{"fields", "", "GET", people + "/fields", "", 200, `"options":[{"id":`},
		{"search alt path", "", "POST", people + "/objects/search", `{}`, 200, `"group_totals":2`},
		{"create one", "", "POST", people + "/objects", fmt.Sprintf(`{"%s":"S-1-5-21-1-1-1-1","%s":"Active"}`, d.sid, d.status), 200, `"display_name":"Active"`},
		{"create not unique", "", "POST", people + "/objects", fmt.Sprintf(`{"%s":"s-1-5-21-1004336348-1177238915-682003330-1107"}`, d.sid), 422, `"code":2`},
		{"unknown option", "", "POST", people + "/objects", fmt.Sprintf(`{"%s":"Maybe"}`, d.status), 422, "is not an option"},
		{"option by id object", "", "POST", people + "/objects", fmt.Sprintf(`{"%s":{"id":"nope"}}`, d.status), 422, "is not an option"},
		{"unknown field key", "", "POST", people + "/objects", `{"field_999":"x"}`, 422, "unknown field key field_999"},
		{"201 objects", "", "POST", people + "/objects", manyObjects(201), 422, "at most 200"},
		{"200 objects", "", "POST", people + "/objects", manyObjects(200), 200, `"errors":[]`},
		{"201 updates", "", "PUT", people + "/objects", manyObjects(201), 422, "at most 200"},
		{"update unknown id", "", "PUT", people + "/objects", `{"objects":[{"id":"nope"}]}`, 200, `"code":3`},
		{"patch unknown id", "", "PATCH", people + "/objects/nope", `{}`, 404, "Not found"},
		{"archive unknown id", "", "POST", people + "/objects/archive", `{"object_ids":["nope"]}`, 404, "Not found"},
		{"invite bad role", "", "POST", "/v3/users/invite", fmt.Sprintf(`{"email":"n@x.com","module_id":%d,"role_id":%d}`, d.facilities, d.moduleAdmin), 422, "is not a role of module"},
		{"invite duplicate", "", "POST", "/v3/users/invite", fmt.Sprintf(`{"email":"GRACE@corp.example.com","module_id":%d,"role_id":%d}`, d.itAssets, d.collaborator), 422, "already been taken"},
		{"invite", "", "POST", "/v3/users/invite", fmt.Sprintf(`{"email":"n@x.com","module_id":%d,"role_id":%d,"integ_ad_sid":"S-1"}`, d.itAssets, d.collaborator), 200, `"status":"invited"`},
		{"update unknown user", "", "PUT", "/v3/users/1", `{"user":{}}`, 404, "Not found"},
		{"me", "", "GET", "/v3/users/me", "", 200, `"create_users":true`},
		{"unknown route", "", "GET", "/v3/nothing", "", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := te.token
			switch tc.tok {
			case "none":
				tok = ""
			case "":
			default:
				tok = tc.tok
			}
			st, body, _ := te.callTok(t, tok, tc.method, tc.path, tc.body)
			if st != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("%s %s = %d %s\nwant %d containing %s", tc.method, tc.path, st, body, tc.status, tc.want)
			}
		})
	}
	stats := te.emu.Stats()
	if stats.Status["401"] != 4 || stats.Requests["POST /v3/session/token"] != 3 {
		t.Errorf("stats = %+v, want four 401s and three token requests", stats)
	}
}

func TestBulkCreatePerObjectErrors(t *testing.T) {
	te := newTenv(t, Options{Rate: Rate{Requests: -1}})
	d := te.ids(t)
	body := fmt.Sprintf(`{"objects":[{"%[1]s":"S-1"},{"%[1]s":"S-1"},{"%[2]s":"nope"},{"%[1]s":"S-2","%[2]s":"Inactive"}]}`, d.sid, d.status)
	st, b, _ := te.call(t, "POST", fmt.Sprintf("/v3/groups/%d/objects", d.people), body)
	if st != 200 {
		t.Fatalf("status %d %s", st, b)
	}
	var resp struct {
		Objects []map[string]any
		Errors  []struct {
			Index int
			Code  int
		}
	}
	mustJSON(t, b, &resp)
	var okIdx []int
	for i, o := range resp.Objects {
		if o != nil {
			okIdx = append(okIdx, i)
		}
	}
	if diff := cmp.Diff([]int{0, 3}, okIdx); diff != "" {
		t.Errorf("created indexes (-want +got):\n%s", diff)
	}
	type ie = struct {
		Index int
		Code  int
	}
	if diff := cmp.Diff([]ie{{1, 2}, {2, 1}}, resp.Errors); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestPaging(t *testing.T) {
	seed := loadDemo(t)
	people := &seed.Accounts[0].Modules[0].Collections[0]
	for i := range 1200 {
		people.Records = append(people.Records, SeedRecord{Fields: map[string]string{"AD SID": fmt.Sprintf("S-1-5-21-5-5-5-%d", i)}})
	}
	e, err := New(seed, Options{Rate: Rate{Requests: -1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	te := &tenv{emu: e, url: srv.URL}
	_, b, _ := te.call(t, "POST", "/v3/session/token", `{"client_id":"demo-client","client_secret":"demo-secret","email":"admin@example.com","password":"demo-password"}`)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	mustJSON(t, b, &tr)
	te.token = tr.AccessToken
	d := te.ids(t)
	type page struct {
		Totals struct{ Objects, GroupTotals, Offset, Limit int }
		N      int
	}
	get := func(query, body string) page {
		_, b, _ := te.call(t, "POST", fmt.Sprintf("/v3/groups/%d/search/objects%s", d.people, query), body)
		var r struct {
			Totals struct {
				Objects     int `json:"objects"`
				GroupTotals int `json:"group_totals"`
				Offset      int `json:"offset"`
				Limit       int `json:"limit"`
			}
			Objects []json.RawMessage
		}
		mustJSON(t, b, &r)
		return page{Totals: struct{ Objects, GroupTotals, Offset, Limit int }{r.Totals.Objects, r.Totals.GroupTotals, r.Totals.Offset, r.Totals.Limit}, N: len(r.Objects)}
	}
	tests := map[string]struct {
		query, body string
		want        page
	}{
		"default 50":      {"", `{}`, page{Totals: struct{ Objects, GroupTotals, Offset, Limit int }{1202, 1202, 0, 50}, N: 50}},
		"clamped to 1000": {"?limit=5000", `{}`, page{Totals: struct{ Objects, GroupTotals, Offset, Limit int }{1202, 1202, 0, 1000}, N: 1000}},
		"last page":       {"?offset=1000&limit=1000", `{}`, page{Totals: struct{ Objects, GroupTotals, Offset, Limit int }{1202, 1202, 1000, 1000}, N: 202}},
		"filter":          {"", fmt.Sprintf(`{"field_filters":{"%s":"s-1-5-21-5-5-5-7"}}`, d.sid), page{Totals: struct{ Objects, GroupTotals, Offset, Limit int }{1, 1202, 0, 50}, N: 1}},
		"filter option":   {"", fmt.Sprintf(`{"field_filters":{"%s":"none"}}`, d.status), page{Totals: struct{ Objects, GroupTotals, Offset, Limit int }{1, 1202, 0, 50}, N: 1}},
		"text search":     {"", `{"search":"visitor"}`, page{Totals: struct{ Objects, GroupTotals, Offset, Limit int }{1, 1202, 0, 50}, N: 1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, get(tc.query, tc.body)); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
		})
	}
	// Archived records leave default searches but not view_archived=all.
	var first struct{ Objects []struct{ ID string } }
	_, b, _ = te.call(t, "POST", fmt.Sprintf("/v3/groups/%d/search/objects?limit=1", d.people), `{}`)
	mustJSON(t, b, &first)
	st, _, _ := te.call(t, "POST", fmt.Sprintf("/v3/groups/%d/objects/archive", d.people), fmt.Sprintf(`{"object_ids":[%q]}`, first.Objects[0].ID))
	if st != 200 {
		t.Fatalf("archive: %d", st)
	}
	if got := get("", `{}`).Totals.Objects; got != 1201 {
		t.Errorf("live records = %d, want 1201", got)
	}
	if got := get("", `{"view_archived":"all"}`).Totals.Objects; got != 1202 {
		t.Errorf("all records = %d, want 1202", got)
	}
	if got := get("", `{"view_archived":"archived"}`).Totals.Objects; got != 1 {
		t.Errorf("archived records = %d, want 1", got)
	}
}

func TestRateLimit(t *testing.T) {
	te := newTenv(t, Options{Rate: Rate{Requests: 3, Per: time.Minute}})
	// The token request of newTenv counted against the caller's IP, not the client.
	for i := range 3 {
		if st, b, _ := te.call(t, "GET", "/v3/accounts", ""); st != 200 {
			t.Fatalf("request %d: %d %s", i, st, b)
		}
	}
	st, b, h := te.call(t, "GET", "/v3/accounts", "")
	if st != 429 || h.Get("Retry-After") != "60" || !strings.Contains(string(b), "Rate limit exceeded") {
		t.Fatalf("over the limit: %d %s Retry-After=%q, want 429 with Retry-After 60", st, b, h.Get("Retry-After"))
	}
	te.clk.Advance(30 * time.Second)
	if _, _, h := te.call(t, "GET", "/v3/accounts", ""); h.Get("Retry-After") != "30" {
		t.Errorf("Retry-After after 30 s = %q, want 30", h.Get("Retry-After"))
	}
	te.clk.Advance(31 * time.Second)
	if st, _, _ := te.call(t, "GET", "/v3/accounts", ""); st != 200 {
		t.Errorf("after the window: %d, want 200", st)
	}
	if got := te.emu.Stats().Status["429"]; got != 2 {
		t.Errorf("429s = %d, want 2", got)
	}

	off := newTenv(t, Options{Rate: Rate{Requests: -1}})
	for i := range 20 {
		if st, _, _ := off.call(t, "GET", "/v3/accounts", ""); st != 200 {
			t.Fatalf("limit off, request %d: %d", i, st)
		}
	}
}

func TestTokenExpiry(t *testing.T) {
	te := newTenv(t, Options{TokenTTL: 10 * time.Minute})
	if st, _, _ := te.call(t, "GET", "/v3/users", ""); st != 200 {
		t.Fatalf("fresh token: %d", st)
	}
	te.clk.Advance(10 * time.Minute)
	if st, b, _ := te.call(t, "GET", "/v3/users", ""); st != 401 {
		t.Errorf("expired token: %d %s, want 401", st, b)
	}
}

func TestPermissions(t *testing.T) {
	te := newTenv(t, Options{})
	d := te.ids(t)
	te.emu.SetPermissions(Permissions{Read: true})
	st, b, _ := te.call(t, "POST", "/v3/users/invite", fmt.Sprintf(`{"email":"n@x.com","module_id":%d,"role_id":%d}`, d.itAssets, d.collaborator))
	if st != 403 || !strings.Contains(string(b), "user creation not granted for this API client") {
		t.Errorf("invite without create_users: %d %s", st, b)
	}
	if st, _, _ := te.call(t, "PUT", fmt.Sprintf("/v3/groups/%d/objects", d.people), `{"objects":[]}`); st != 403 {
		t.Errorf("write without write permission: %d, want 403", st)
	}
	if st, b, _ := te.call(t, "GET", "/v3/users/me", ""); st != 200 || !strings.Contains(string(b), `"create_users":false`) {
		t.Errorf("me: %d %s", st, b)
	}
}

func TestUserUpdate(t *testing.T) {
	te := newTenv(t, Options{})
	d := te.ids(t)
	var users []struct {
		ID    int
		Email string
	}
	_, b, _ := te.call(t, "GET", "/v3/users", "")
	mustJSON(t, b, &users)
	grace := users[1].ID
	body := fmt.Sprintf(`{"user":{"is_active":false,"integ_ad_sid":"S-1-5-21-7","last_name":"H."},"module_id":%d,"role_id":%d}`, d.itAssets, d.moduleAdmin)
	if st, b, _ := te.call(t, "PUT", fmt.Sprintf("/v3/users/%d", grace), body); st != 200 {
		t.Fatalf("update: %d %s", st, b)
	}
	if st, b, _ := te.call(t, "PUT", fmt.Sprintf("/v3/users/%d", grace), `{"user":{"email":"admin@example.com"}}`); st != 422 {
		t.Errorf("email taken: %d %s, want 422", st, b)
	}
	want := SeedUser{Email: "grace@corp.example.com", FirstName: "Grace", LastName: "H.", Active: false, ADSID: "S-1-5-21-7",
		Roles: []SeedUserRole{{Account: "Acme", Module: "IT Assets", Role: "Module Admin"}}}
	if diff := cmp.Diff(want, te.emu.State().Users[1]); diff != "" {
		t.Errorf("user (-want +got):\n%s", diff)
	}
}

func TestFaults(t *testing.T) {
	te := newTenv(t, Options{Rate: Rate{Requests: -1}})
	d := te.ids(t)
	search := fmt.Sprintf("/v3/groups/%d/search/objects", d.people)
	te.emu.Fault(Fault{Route: "POST /v3/groups/{id}/search/objects", Kind: FaultStatus, Status: 503, Skip: 1, Count: 2})
	var got []int
	for range 4 {
		st, _, _ := te.call(t, "POST", search, `{}`)
		got = append(got, st)
	}
	if diff := cmp.Diff([]int{200, 503, 503, 200}, got); diff != "" {
		t.Errorf("statuses with skip 1 count 2 (-want +got):\n%s", diff)
	}

	te.emu.Fault(Fault{Route: "GET /v3/users", Kind: FaultStatus, Status: 429, RetryAfter: "7"})
	if st, _, h := te.call(t, "GET", "/v3/users", ""); st != 429 || h.Get("Retry-After") != "7" {
		t.Errorf("scripted 429: %d Retry-After=%q", st, h.Get("Retry-After"))
	}
	te.emu.Fault(Fault{Route: "GET /v3/users", Kind: FaultStatus, Status: 401})
	if st, b, _ := te.call(t, "GET", "/v3/users", ""); st != 401 || !strings.Contains(string(b), "Unauthorized") {
		t.Errorf("scripted 401: %d %s", st, b)
	}

	for kind, want := range map[FaultKind]int{FaultShortPage: 1, FaultEmptyPage: 0} {
		te.emu.Fault(Fault{Route: "POST /v3/groups/{id}/search/objects", Kind: kind})
		var r struct {
			Totals  struct{ Objects int }
			Objects []json.RawMessage
		}
		_, b, _ := te.call(t, "POST", search, `{}`)
		mustJSON(t, b, &r)
		if r.Totals.Objects != 2 || len(r.Objects) != want {
			t.Errorf("%s: totals %d, %d objects; want 2 and %d", kind, r.Totals.Objects, len(r.Objects), want)
		}
	}

	te.emu.Fault(Fault{Route: "GET /v3/accounts", Kind: FaultLatency, Delay: 10 * time.Millisecond})
	if st, _, _ := te.call(t, "GET", "/v3/accounts", ""); st != 200 {
		t.Errorf("latency fault: %d, want 200 after the delay", st)
	}

	// Commit then drop: the client sees no response, the record exists.
	te.emu.Fault(Fault{Route: "POST /v3/groups/{id}/objects", Kind: FaultCommitDrop})
	req, _ := http.NewRequest("POST", te.url+fmt.Sprintf("/v3/groups/%d/objects", d.people), strings.NewReader(fmt.Sprintf(`{"%s":"S-1-5-21-4-4-4-4"}`, d.sid)))
	req.Header.Set("Authorization", "Bearer "+te.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("commit-drop: got a response %d, want a dropped connection", resp.StatusCode)
	}
	var r struct{ Totals struct{ Objects int } }
	_, b, _ := te.call(t, "POST", search, fmt.Sprintf(`{"field_filters":{"%s":"S-1-5-21-4-4-4-4"}}`, d.sid))
	mustJSON(t, b, &r)
	if r.Totals.Objects != 1 {
		t.Errorf("committed record found %d times, want 1", r.Totals.Objects)
	}
}

func TestEmulatorEndpoints(t *testing.T) {
	te := newTenv(t, Options{})
	te.call(t, "GET", "/v3/accounts", "")
	_, b, _ := te.callTok(t, "", "GET", "/_emulator/stats", "")
	var st Stats
	mustJSON(t, b, &st)
	want := Stats{
		Requests: map[string]int{"POST /v3/session/token": 1, "GET /v3/accounts": 1},
		Status:   map[string]int{"200": 2},
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	_, b, _ = te.callTok(t, "", "GET", "/_emulator/state", "")
	s, err := LoadSeed(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("state is not a seed: %v", err)
	}
	if s.Credentials.ClientSecret != "" || s.Credentials.Password != "" || strings.Contains(string(b), "demo-secret") || strings.Contains(string(b), "demo-password") {
		t.Errorf("state dump carries secrets: %s", b)
	}
	if got := fmt.Sprintf("%v %+v %#v", loadDemo(t).Credentials, loadDemo(t), loadDemo(t)); strings.Contains(got, "demo-secret") || strings.Contains(got, "demo-password") {
		t.Errorf("seed formatting leaks secrets: %s", got)
	}
}

func TestListenAndServe(t *testing.T) {
	e, err := New(loadDemo(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- ListenAndServe(ctx, "127.0.0.1:0", e, func(u string) { ready <- u }) }()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	}
	resp, err := http.Get(base + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("stats: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe after cancel: %v", err)
	}
}
