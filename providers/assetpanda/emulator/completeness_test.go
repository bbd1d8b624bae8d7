package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The users list pages with offset/limit and counts itself in
// X-Total-Count; without a limit it is every user, as documented.
func TestUsersPaging(t *testing.T) {
	te := newTenv(t, Options{Rate: Rate{Requests: -1}})
	type page struct {
		Total  string
		Emails []string
	}
	get := func(query string) page {
		st, b, h := te.call(t, "GET", "/v3/users"+query, "")
		if st != 200 {
			t.Fatalf("GET /v3/users%s: %d %s", query, st, b)
		}
		var us []struct{ Email string }
		mustJSON(t, b, &us)
		p := page{Total: h.Get("X-Total-Count"), Emails: []string{}}
		for _, u := range us {
			p.Emails = append(p.Emails, u.Email)
		}
		return p
	}
	all := get("")
	if all.Total != "2" || len(all.Emails) != 2 {
		t.Fatalf("all users = %+v, want 2 with X-Total-Count 2", all)
	}
	tests := map[string]struct {
		query string
		want  page
	}{
		"first":        {"?offset=0&limit=1", page{"2", all.Emails[:1]}},
		"second":       {"?offset=1&limit=1", page{"2", all.Emails[1:]}},
		"past the end": {"?offset=5&limit=10", page{"2", []string{}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, get(tc.query)); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
		})
	}
	if st, _, _ := te.call(t, "GET", "/v3/users?limit=0", ""); st != 400 {
		t.Errorf("limit=0: %d, want 400", st)
	}
}

// The completeness faults: what a search and the users list say with each.
func TestCompletenessFaults(t *testing.T) {
	type reply struct {
		HasTotals   bool
		Total       int
		GroupTotals int
		Objects     int
	}
	tests := []struct {
		kind        FaultKind
		search      reply
		usersHeader string // X-Total-Count; "" = absent
		users       int
	}{
		{FaultNoTotal, reply{HasTotals: false, Objects: 2}, "", 2},
		{FaultZeroTotal, reply{HasTotals: true, Total: 0, GroupTotals: 2, Objects: 2}, "0", 2},
		{FaultZeroTotalEmpty, reply{HasTotals: true, Total: 0, GroupTotals: 2, Objects: 0}, "0", 0},
		{FaultShortPage, reply{HasTotals: true, Total: 2, GroupTotals: 2, Objects: 1}, "2", 1},
		{FaultEmptyPage, reply{HasTotals: true, Total: 2, GroupTotals: 2, Objects: 0}, "2", 0},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			te := newTenv(t, Options{Rate: Rate{Requests: -1}})
			d := te.ids(t)
			te.emu.Fault(Fault{Route: "POST /v3/groups/{id}/search/objects", Kind: tc.kind})
			te.emu.Fault(Fault{Route: "GET /v3/users", Kind: tc.kind})
			_, b, _ := te.call(t, "POST", fmt.Sprintf("/v3/groups/%d/search/objects?limit=1000", d.people), `{"view_archived":"all"}`)
			var sr struct {
				Totals *struct {
					Objects     int `json:"objects"`
					GroupTotals int `json:"group_totals"`
				} `json:"totals"`
				Total   *int              `json:"total"`
				Objects []json.RawMessage `json:"objects"`
			}
			mustJSON(t, b, &sr)
			got := reply{HasTotals: sr.Totals != nil || sr.Total != nil, Objects: len(sr.Objects)}
			if sr.Totals != nil {
				got.Total, got.GroupTotals = sr.Totals.Objects, sr.Totals.GroupTotals
			}
			if diff := cmp.Diff(tc.search, got); diff != "" {
				t.Errorf("search reply (-want +got):\n%s", diff)
			}
			_, b, h := te.call(t, "GET", "/v3/users?offset=0&limit=1000", "")
			var us []json.RawMessage
			mustJSON(t, b, &us)
			if h.Get("X-Total-Count") != tc.usersHeader || len(us) != tc.users {
				t.Errorf("users: X-Total-Count %q, %d users; want %q and %d", h.Get("X-Total-Count"), len(us), tc.usersHeader, tc.users)
			}
			// Each fault fired once: the next replies are whole again.
			_, _, h = te.call(t, "GET", "/v3/users", "")
			if h.Get("X-Total-Count") != "2" {
				t.Errorf("after the fault: X-Total-Count %q, want 2", h.Get("X-Total-Count"))
			}
		})
	}
}

// conflictSeed holds two users carrying one AD SID and, with
// allow_duplicates, two records holding one key.
const conflictSeed = `{
 "credentials": {"client_id": "c", "client_secret": "s", "email": "admin@example.com", "password": "p"},
 "accounts": [{"name": "Acme", "modules": [{"name": "IT", "roles": ["Collaborator"],
   "collections": [{"name": "People", "allow_duplicates": true,
     "fields": [{"name": "AD SID", "type": "text", "unique": true}, {"name": "Name", "type": "text"}],
     "records": [{"AD SID": "S-1-5-21-1-1-1-1105", "Name": "Ada"}, {"AD SID": "s-1-5-21-1-1-1-1105", "Name": "Ada (copy)"},
                 {"AD SID": "S-1-5-21-1-1-1-1106", "Name": "Alan"}]}]}]}],
 "users": [{"email": "admin@example.com", "active": true},
           {"email": "ada@corp.example.com", "active": true, "ad_sid": "S-1-5-21-1-1-1-1105"},
           {"email": "ada.l@corp.example.com", "active": true, "ad_sid": "S-1-5-21-1-1-1-1105"}]
}`

func TestSeedConflicts(t *testing.T) {
	seed, err := LoadSeed(strings.NewReader(conflictSeed))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(seed, Options{Rate: Rate{Requests: -1}})
	if err != nil {
		t.Fatalf("New with duplicate keys and shared SIDs: %v", err)
	}
	st := e.State()
	people := st.Accounts[0].Modules[0].Collections[0]
	if !people.AllowDuplicates || len(people.Records) != 3 {
		t.Errorf("People = allow_duplicates %v, %d records; want true, 3", people.AllowDuplicates, len(people.Records))
	}
	if st.Users[1].ADSID != st.Users[2].ADSID || st.Users[1].ADSID == "" {
		t.Errorf("users = %+v, want two carrying one SID", st.Users)
	}

	// The dump round-trips, duplicates included.
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadSeed(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	again.Credentials = seed.Credentials
	e2, err := New(again, Options{})
	if err != nil {
		t.Fatalf("reloading the dump: %v", err)
	}
	if diff := cmp.Diff(st, e2.State()); diff != "" {
		t.Errorf("dump of the reloaded dump differs (-want +got):\n%s", diff)
	}

	// The API still refuses a repeated key, and refuses to write either
	// holder of a repeated key until the conflict is resolved.
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	te := &tenv{emu: e, url: srv.URL}
	_, b, _ = te.call(t, "POST", "/v3/session/token", `{"client_id":"c","client_secret":"s","email":"admin@example.com","password":"p"}`)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	mustJSON(t, b, &tr)
	te.token = tr.AccessToken
	var gs struct{ Groups []struct{ ID int } }
	_, b, _ = te.call(t, "GET", "/v3/groups", "")
	mustJSON(t, b, &gs)
	var fs struct{ Fields []struct{ Name, Key string } }
	_, b, _ = te.call(t, "GET", fmt.Sprintf("/v3/groups/%d/fields", gs.Groups[0].ID), "")
	mustJSON(t, b, &fs)
	sidKey, nameKey := fs.Fields[0].Key, fs.Fields[1].Key
	alan := people.Records[2].ID
	ada := people.Records[0].ID
	objects := fmt.Sprintf("/v3/groups/%d/objects", gs.Groups[0].ID)
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"create with a held key", "POST", objects, fmt.Sprintf(`{%q:"S-1-5-21-1-1-1-1106"}`, sidKey), 422, "AD SID is not unique"},
		{"move a key onto another", "PATCH", objects + "/" + alan, fmt.Sprintf(`{%q:"S-1-5-21-1-1-1-1105"}`, sidKey), 422, "AD SID is not unique"},
		{"write a holder of a repeated key", "PATCH", objects + "/" + ada, fmt.Sprintf(`{%q:"Ada L."}`, nameKey), 422, "AD SID is not unique"},
		{"write an unrelated record", "PATCH", objects + "/" + alan, fmt.Sprintf(`{%q:"Alan T."}`, nameKey), 200, "Alan T."},
		{"resolve the conflict", "PATCH", objects + "/" + ada, fmt.Sprintf(`{%q:"S-1-5-21-1-1-1-1199"}`, sidKey), 200, "S-1-5-21-1-1-1-1199"},
	}
	for _, tc := range tests {
		st, b, _ := te.call(t, tc.method, tc.path, tc.body)
		if st != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s; want %d containing %q", tc.name, st, b, tc.status, tc.want)
		}
	}
	// Once resolved, the other holder can be written again.
	copyID := people.Records[1].ID
	if st, b, _ := te.call(t, "PATCH", objects+"/"+copyID, fmt.Sprintf(`{%q:"Ada"}`, nameKey)); st != 200 {
		t.Errorf("write the remaining holder: %d %s, want 200", st, b)
	}
}
