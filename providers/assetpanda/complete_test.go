package assetpanda

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

const rUsers = "GET /v3/users"

// totals returns the totals object of a search reply body.
func totals(body any) map[string]any {
	m, _ := body.(map[string]any)
	t, _ := m["totals"].(map[string]any)
	return t
}

// A search that cannot prove it is complete is a failed read, for every
// paged search: Records, RecordsByID and FindRecords.
func TestIncompleteSearchIsAFailedRead(t *testing.T) {
	t.Parallel()
	type read func(t *testing.T, e *env, col *Collection) ([]Record, error)
	reads := map[string]read{
		"Records": func(t *testing.T, e *env, col *Collection) ([]Record, error) { return e.c.Records(ctx(t), col) },
		"RecordsByID": func(t *testing.T, e *env, col *Collection) ([]Record, error) {
			var ids []string
			for _, r := range e.stateRecords(t) {
				ids = append(ids, r.ID)
			}
			return e.c.RecordsByID(ctx(t), col, ids)
		},
		// ScanRecords hands records over as they arrive; after an error the
		// caller discards them.
		"ScanRecords": func(t *testing.T, e *env, col *Collection) ([]Record, error) {
			var recs []Record
			if _, err := e.c.ScanRecords(ctx(t), col, func(r Record) error { recs = append(recs, r); return nil }); err != nil {
				return nil, err
			}
			return recs, nil
		},
		// Every record was written after the zero time: all of them match.
		"RecordsModifiedSince": func(t *testing.T, e *env, col *Collection) ([]Record, error) {
			recs, _, err := e.c.RecordsModifiedSince(ctx(t), col, time.Time{})
			return recs, err
		},
		// One SID matches: the faults make the reply about it lie.
		"FindRecords": func(t *testing.T, e *env, col *Collection) ([]Record, error) {
			return e.c.FindRecords(ctx(t), col, "AD SID", sid(3))
		},
	}
	tests := []struct {
		name  string
		reads []string // which reads the case applies to
		seed  int
		fault *emulator.Fault
		wrap  func(http.Handler) http.Handler
		want  string // substring of the error
		byID  string // substring of the error of RecordsByID, if it differs
		retry bool
		calls int // search requests sent, including the failing one
	}{
		{
			name: "no total", reads: []string{"Records", "ScanRecords", "RecordsByID", "FindRecords", "RecordsModifiedSince"}, seed: 5,
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultNoTotal},
			want:  `collection "People": the reply carries no total, so the read cannot be shown complete`, calls: 1,
		},
		{
			name: "no total on the second page", reads: []string{"Records", "ScanRecords", "RecordsModifiedSince"}, seed: 2500,
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultNoTotal, Skip: 1},
			want:  "the reply carries no total", calls: 2,
		},
		{
			name: "total 0 with objects", reads: []string{"Records", "ScanRecords", "RecordsByID", "FindRecords", "RecordsModifiedSince"}, seed: 5,
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultZeroTotal},
			want:  "the reply says the total is 0 but carries", calls: 1,
		},
		{
			// Only a whole-collection read can tell: 0 modified records is an
			// answer RecordsModifiedSince may get.
			name: "total 0 that stops short", reads: []string{"Records", "ScanRecords"}, seed: 5,
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultZeroTotalEmpty},
			want:  "the reply says 0 records match but the collection holds 5 (group_totals)", retry: true, calls: 1,
		},
		{
			name: "short page", reads: []string{"Records", "ScanRecords", "RecordsByID", "RecordsModifiedSince"}, seed: 2500,
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultShortPage, Skip: 1},
			want:  "partial read: the page at offset 1000 has 500 records, stopping short at 1500 of the 2500", retry: true, calls: 2,
			byID: "partial read: the page at offset 0 has 500 records, stopping short at 500 of the 1000", // the second batch of ids
		},
		{
			name: "empty page", reads: []string{"Records", "ScanRecords", "RecordsByID", "RecordsModifiedSince"}, seed: 2500,
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultEmptyPage, Skip: 1},
			want:  "the page at offset 1000 has 0 records", retry: true, calls: 2,
			byID: "the page at offset 0 has 0 records, stopping short at 0 of the 1000",
		},
		{
			name: "short last page", reads: []string{"Records", "ScanRecords", "FindRecords", "RecordsModifiedSince"}, seed: 5,
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultShortPage},
			want:  "stopping short", retry: true, calls: 1,
		},
		{
			name: "total changes between pages", reads: []string{"Records", "ScanRecords", "RecordsModifiedSince"}, seed: 2500,
			wrap: rewrite(rewriter{method: "POST", suffix: "/search/objects", edit: func(n int, _ *http.Request, _ http.Header, body any) any {
				if n == 2 {
					totals(body)["objects"] = 2501.0
				}
				return nil
			}}),
			want: "the total changed from 2500 to 2501 between pages", retry: true, calls: 2,
		},
		{
			name: "more records than the total", reads: []string{"Records", "ScanRecords", "RecordsModifiedSince"}, seed: 1500,
			wrap: rewrite(rewriter{method: "POST", suffix: "/search/objects", edit: func(n int, _ *http.Request, _ http.Header, body any) any {
				totals(body)["objects"], totals(body)["group_totals"] = 999.0, 999.0
				return nil
			}}),
			want: "1000 records arrived but the reply says the total is 999", retry: true, calls: 1,
		},
		{
			name: "offset ignored", reads: []string{"Records", "ScanRecords", "RecordsModifiedSince"}, seed: 2500,
			wrap: rewrite(rewriter{method: "POST", suffix: "/search/objects", before: func(r *http.Request) {
				q := r.URL.Query()
				q.Del("offset")
				r.URL.RawQuery = q.Encode()
			}}),
			want: "arrived twice", retry: true, calls: 2,
		},
		{
			name: "record without an id", reads: []string{"Records", "ScanRecords", "RecordsByID", "FindRecords", "RecordsModifiedSince"}, seed: 5,
			wrap: rewrite(rewriter{method: "POST", suffix: "/search/objects", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
				objs, _ := body.(map[string]any)["objects"].([]any)
				delete(objs[0].(map[string]any), "id")
				return nil
			}}),
			want: `collection "People": the reply carries a record without an id, so the read cannot be shown complete`, calls: 1,
		},
		{
			name: "records hidden from the client", reads: []string{"Records", "ScanRecords", "FindRecords", "RecordsModifiedSince"}, seed: 5,
			wrap: rewrite(rewriter{method: "POST", suffix: "/search/objects", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
				body.(map[string]any)["not_viewable"] = 2.0
				return nil
			}}),
			want: "the service hides 2 records from this API client", calls: 1,
		},
	}
	for _, tc := range tests {
		for _, rn := range tc.reads {
			t.Run(tc.name+"/"+rn, func(t *testing.T) {
				e := newEnv(t, baseSeed(tc.seed), envOpts{server: tc.wrap})
				col := e.people(t)
				if tc.fault != nil {
					e.emu.Fault(*tc.fault)
				}
				before := e.emu.Stats().Requests[rSearch]
				recs, err := reads[rn](t, e, col)
				if err == nil || recs != nil {
					t.Fatalf("%s = %d records, err %v; want an error and no records", rn, len(recs), err)
				}
				want := tc.want
				if rn == "RecordsByID" && tc.byID != "" {
					want = tc.byID
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v\nwant containing %q", err, want)
				}
				if !errors.Is(err, ErrIncomplete) || IsRetryable(err) != tc.retry || isTerminal(err) {
					t.Errorf("err = %v: Is(ErrIncomplete) = %v, retryable = %v, terminal = %v; want true, %v, false",
						err, errors.Is(err, ErrIncomplete), IsRetryable(err), isTerminal(err), tc.retry)
				}
				if n := e.emu.Stats().Requests[rSearch] - before; n != tc.calls {
					t.Errorf("search requests = %d, want %d", n, tc.calls)
				}
			})
		}
	}
}

// A complete read passes every check: the same cases without the fault.
func TestCompleteSearchPassesTheChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, baseSeed(2000), envOpts{}) // exactly two full pages
	col := e.people(t)
	recs, err := e.c.Records(ctx(t), col)
	if err != nil || len(recs) != 2000 {
		t.Fatalf("Records = %d, %v; want 2000", len(recs), err)
	}
	if n := e.emu.Stats().Requests[rSearch]; n != 2 {
		t.Errorf("search requests = %d, want 2", n)
	}
	mod, _, err := e.c.RecordsModifiedSince(ctx(t), col, time.Time{})
	if err != nil || len(mod) != 2000 {
		t.Fatalf("RecordsModifiedSince the zero time = %d, %v; want all 2000", len(mod), err)
	}
	if n := e.emu.Stats().Requests[rSearch]; n != 4 {
		t.Errorf("search requests = %d, want 4 (two pages each)", n)
	}
	none, err := e.c.FindRecords(ctx(t), col, "AD SID", "S-1-5-21-nobody")
	if err != nil || len(none) != 0 {
		t.Errorf("FindRecords with no match = %d, %v; want an empty, complete answer", len(none), err)
	}
	empty := newEnv(t, baseSeed(0), envOpts{})
	if recs, err := empty.c.Records(ctx(t), empty.people(t)); err != nil || len(recs) != 0 {
		t.Errorf("Records of an empty collection = %d, %v; want 0, nil", len(recs), err)
	}
}

// usersSeed is baseSeed with n more users (admin and Grace come first).
func usersSeed(n int) *emulator.Seed {
	s := baseSeed(0)
	for i := range n {
		s.Users = append(s.Users, emulator.SeedUser{Email: fmt.Sprintf("u%d@corp.example.com", i), Active: true, ADSID: sid(i)})
	}
	return s
}

func TestUsersPagedWithTotal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, usersSeed(2498), envOpts{})
	users, err := e.c.Users(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2500 || len(EmailIndex(users)) != 2500 {
		t.Errorf("Users = %d (%d distinct emails), want 2500", len(users), len(EmailIndex(users)))
	}
	if n := e.emu.Stats().Requests[rUsers]; n != 3 {
		t.Errorf("users requests = %d, want 3 (pages of 1000)", n)
	}
}

func TestIncompleteUsersListIsAFailedRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		users int // beyond admin and Grace
		fault *emulator.Fault
		wrap  func(http.Handler) http.Handler
		want  string
		retry bool
		calls int
	}{
		{name: "no total", users: 3, fault: &emulator.Fault{Route: rUsers, Kind: emulator.FaultNoTotal},
			want: "the users list: the reply carries no total (header X-Total-Count), so the read cannot be shown complete", calls: 1},
		{name: "no total on the second page", users: 1500, fault: &emulator.Fault{Route: rUsers, Kind: emulator.FaultNoTotal, Skip: 1},
			want: "the reply carries no total", calls: 2},
		{name: "stops short of its total", users: 3, fault: &emulator.Fault{Route: rUsers, Kind: emulator.FaultShortPage},
			want: "the users list: partial read: the page at offset 0 has 2 users, stopping short at 2 of the 5", retry: true, calls: 1},
		{name: "second page stops short", users: 1500, fault: &emulator.Fault{Route: rUsers, Kind: emulator.FaultShortPage, Skip: 1},
			want: "the page at offset 1000 has 251 users, stopping short at 1251 of the 1502", retry: true, calls: 2},
		{name: "empty page", users: 1500, fault: &emulator.Fault{Route: rUsers, Kind: emulator.FaultEmptyPage, Skip: 1},
			want: "the page at offset 1000 has 0 users", retry: true, calls: 2},
		{name: "total 0 with users", users: 3, fault: &emulator.Fault{Route: rUsers, Kind: emulator.FaultZeroTotal},
			want: "the reply says the total is 0 but carries 5 users", calls: 1},
		{name: "total 0 and no users", users: 3, fault: &emulator.Fault{Route: rUsers, Kind: emulator.FaultZeroTotalEmpty},
			want: "the reply says there are no users, yet the API client's own user is one", retry: true, calls: 1},
		{name: "total not a number", users: 3, wrap: rewrite(rewriter{method: "GET", suffix: "/v3/users", edit: func(_ int, _ *http.Request, h http.Header, _ any) any {
			h.Set("X-Total-Count", "many")
			return nil
		}}), want: "the reply carries no total", calls: 1},
		{name: "total changes between pages", users: 1500, wrap: rewrite(rewriter{method: "GET", suffix: "/v3/users", edit: func(n int, _ *http.Request, h http.Header, _ any) any {
			if n == 2 {
				h.Set("X-Total-Count", "1501")
			}
			return nil
		}}), want: "the total changed from 1502 to 1501 between pages", retry: true, calls: 2},
		{name: "user without an id", users: 3, wrap: rewrite(rewriter{method: "GET", suffix: "/v3/users", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
			delete(body.([]any)[1].(map[string]any), "id")
			return nil
		}}), want: "the users list: the reply carries a user without an id, so the read cannot be shown complete", calls: 1},
		{name: "offset ignored", users: 1500, wrap: rewrite(rewriter{method: "GET", suffix: "/v3/users", before: func(r *http.Request) {
			q := r.URL.Query()
			q.Del("offset")
			r.URL.RawQuery = q.Encode()
		}}), want: "user arrived twice", retry: true, calls: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, usersSeed(tc.users), envOpts{server: tc.wrap})
			if tc.fault != nil {
				e.emu.Fault(*tc.fault)
			}
			users, err := e.c.Users(ctx(t))
			if err == nil || users != nil {
				t.Fatalf("Users = %d users, err %v; want an error and no users", len(users), err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrIncomplete) || IsRetryable(err) != tc.retry || isTerminal(err) {
				t.Errorf("err = %v: Is(ErrIncomplete) = %v, retryable = %v, terminal = %v; want true, %v, false",
					err, errors.Is(err, ErrIncomplete), IsRetryable(err), isTerminal(err), tc.retry)
			}
			if n := e.emu.Stats().Requests[rUsers]; n != tc.calls {
				t.Errorf("users requests = %d, want %d", n, tc.calls)
			}
		})
	}
}

// Two users carrying one AD SID both come back: the client merges nothing.
func TestUsersSharingADSIDAreBothListed(t *testing.T) {
	seed := baseSeed(0)
	seed.Users = append(seed.Users,
		emulator.SeedUser{Email: "a@corp.example.com", Active: true, ADSID: sid(1)},
		emulator.SeedUser{Email: "b@corp.example.com", Active: true, ADSID: sid(1)})
	e := newEnv(t, seed, envOpts{})
	users, err := e.c.Users(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range users {
		if u.ADSID == sid(1) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("users with SID %s = %d, want 2", sid(1), n)
	}
}

// isTerminal is the check the runtime makes.
func isTerminal(err error) bool {
	var t interface{ Terminal() bool }
	return errors.As(err, &t) && t.Terminal()
}
