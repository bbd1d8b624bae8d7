package assetpanda

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

const (
	rSearch = "POST /v3/groups/{id}/search/objects"
	rCreate = "POST /v3/groups/{id}/objects"
	rUpdate = "PUT /v3/groups/{id}/objects"
)

func TestRecordsPagesThroughWholeCollection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, baseSeed(2500), envOpts{})
	col := e.people(t)
	if err := e.c.ArchiveRecords(ctx(t), col, []string{e.stateRecords(t)[7].ID}); err != nil {
		t.Fatal(err)
	}
	recs, err := e.c.Records(ctx(t), col)
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	if len(recs) != 2500 {
		t.Fatalf("got %d records, want 2500 (archived included)", len(recs))
	}
	if got := e.emu.Stats().Requests[rSearch]; got != 3 {
		t.Errorf("search requests = %d, want 3 (pages of 1000)", got)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Fields["AD SID"]] = true
	}
	if len(seen) != 2500 {
		t.Errorf("%d distinct keys, want 2500", len(seen))
	}
	want := Record{ID: recs[7].ID, Archived: true, Fields: map[string]string{
		"AD SID": sid(7), "First Name": "Person 7", "Email": "p7@corp.example.com", "Integration Status AD": "Active",
	}}
	if diff := cmp.Diff(want, recs[7], cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".UpdatedAt" }, cmp.Ignore())); diff != "" {
		t.Errorf("record 7 (-want +got):\n%s", diff)
	}
	if recs[7].UpdatedAt.IsZero() {
		t.Error("UpdatedAt not decoded")
	}
}

// A service that pages by a smaller limit than asked is followed when it
// echoes that limit; when it does not, its short pages fail the read.
func TestSearchFollowsTheEchoedLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		echo  func(totals map[string]any) // edits the echoed limit (100 as served)
		want  string                      // substring of the error; "" = complete
		calls int
	}{
		{name: "limit clamped and echoed", echo: func(map[string]any) {}, calls: 25},
		{name: "limit clamped, echo missing", echo: func(t map[string]any) { delete(t, "limit") },
			want: "partial read: the page at offset 0 has 100 records, stopping short at 100 of the 2500", calls: 1},
		{name: "limit clamped, the asked limit echoed", echo: func(t map[string]any) { t["limit"] = 1000.0 },
			want: "partial read: the page at offset 0 has 100 records", calls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wrap := rewrite(rewriter{method: "POST", suffix: "/search/objects",
				before: func(r *http.Request) {
					q := r.URL.Query()
					q.Set("limit", "100")
					r.URL.RawQuery = q.Encode()
				},
				edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
					tc.echo(totals(body))
					return nil
				}})
			e := newEnv(t, baseSeed(2500), envOpts{server: wrap})
			recs, err := e.c.Records(ctx(t), e.people(t))
			switch {
			case tc.want == "" && (err != nil || len(recs) != 2500):
				t.Errorf("Records = %d, %v; want 2500", len(recs), err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrIncomplete)):
				t.Errorf("Records = %d, %v; want an incomplete read containing %q", len(recs), err, tc.want)
			}
			if n := e.emu.Stats().Requests[rSearch]; n != tc.calls {
				t.Errorf("search requests = %d, want %d", n, tc.calls)
			}
		})
	}
}

// RecordsByID reads 1,500 of 2,500 records in two requests, archived
// included, and leaves unknown ids out.
func TestRecordsByID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, baseSeed(2500), envOpts{})
	col := e.people(t)
	all := e.stateRecords(t)
	if err := e.c.ArchiveRecords(ctx(t), col, []string{all[3].ID}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	want := map[string]string{}
	for i := 0; i < 1500; i++ {
		ids = append(ids, all[i].ID)
		want[all[i].ID] = sid(i)
	}
	ids = append(ids, "000000000000000000000000")
	before := e.emu.Stats().Requests[rSearch]
	recs, err := e.c.RecordsByID(ctx(t), col, ids)
	if err != nil {
		t.Fatalf("RecordsByID: %v", err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[r.ID] = r.Fields["AD SID"]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records by id (-want +got):\n%s", diff)
	}
	if n := e.emu.Stats().Requests[rSearch] - before; n != 2 {
		t.Errorf("search requests = %d, want 2 (1,000 ids per request)", n)
	}
}

// A run with nothing changed reads 1,000 records in one request.
func TestThousandUnchangedRecordsIsOneRequest(t *testing.T) {
	e := newEnv(t, baseSeed(1000), envOpts{})
	col := e.people(t)
	e.emu.ResetStats()
	recs, err := e.c.Records(ctx(t), col)
	if err != nil || len(recs) != 1000 {
		t.Fatalf("Records = %d, %v", len(recs), err)
	}
	if diff := cmp.Diff(map[string]int{rSearch: 1}, e.emu.Stats().Requests); diff != "" {
		t.Errorf("requests for 1000 unchanged records (-want +got):\n%s", diff)
	}
}

func BenchmarkRecords1000(b *testing.B) {
	emu, err := emulator.New(baseSeed(1000), emulator.Options{Rate: emulator.Rate{Requests: -1}})
	if err != nil {
		b.Fatal(err)
	}
	srv := newBenchServer(b, emu)
	c, err := New(Config{URL: srv, ClientID: testClientID, ClientSecret: testSecret, Email: testEmail, Password: testPassword, Rate: Rate{Requests: -1}})
	if err != nil {
		b.Fatal(err)
	}
	col, err := c.Collection(b.Context(), "Acme", "IT Assets", "People")
	if err != nil {
		b.Fatal(err)
	}
	before := c.Stats().Requests["POST /v3/groups/{id}/search/objects"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Records(b.Context(), col); err != nil {
			b.Fatal(err)
		}
	}
	reqs := c.Stats().Requests["POST /v3/groups/{id}/search/objects"] - before
	b.ReportMetric(float64(reqs)/float64(b.N), "requests/op")
}

func TestFindRecords(t *testing.T) {
	e := newEnv(t, baseSeed(30), envOpts{})
	col := e.people(t)
	got, err := e.c.FindRecords(ctx(t), col, "AD SID", strings.ToLower(sid(12)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Fields["AD SID"] != sid(12) {
		t.Errorf("FindRecords = %+v, want the one record of %s", got, sid(12))
	}
	if _, err := e.c.FindRecords(ctx(t), col, "SID", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindRecords on an unknown field: err = %v, want ErrNotFound", err)
	}
}

func newRecs(from, n int) []map[string]string {
	out := make([]map[string]string, n)
	for i := range out {
		out[i] = map[string]string{"AD SID": sid(from + i), "First Name": fmt.Sprintf("New %d", from+i), "Integration Status AD": "Active"}
	}
	return out
}

func TestCreateRecordsInBulk(t *testing.T) {
	e := newEnv(t, baseSeed(0), envOpts{})
	col := e.people(t)
	res, err := e.c.CreateRecords(ctx(t), col, "AD SID", newRecs(0, 450))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || r.ID == "" {
			t.Fatalf("result %d = %+v, want success", r.Index, r)
		}
	}
	if got := e.emu.Stats().Requests[rCreate]; got != 3 {
		t.Errorf("create requests for 450 records = %d, want 3", got)
	}
	if got := len(e.stateRecords(t)); got != 450 {
		t.Errorf("emulator holds %d records, want 450", got)
	}
}

// A bulk create whose reply returns another record in an object's place
// reports that object's outcome unknown, not its creation.
func TestCreateRecordsTrustsOnlyMatchingResults(t *testing.T) {
	t.Parallel()
	wrap := rewrite(rewriter{method: "POST", suffix: "/objects", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
		m := body.(map[string]any)
		if _, create := m["errors"]; create { // not a search reply
			objs := m["objects"].([]any)
			objs[0], objs[1] = objs[1], objs[0]
		}
		return nil
	}})
	e := newEnv(t, baseSeed(0), envOpts{server: wrap})
	res, err := e.c.CreateRecords(ctx(t), e.people(t), "AD SID", newRecs(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, r := range res {
		got = append(got, r.Err == nil && r.ID != "")
		if r.Err != nil && !strings.Contains(r.Err.Error(), "in this object's place, so its outcome is unknown") {
			t.Errorf("result %d: err = %v, want its outcome unknown", r.Index, r.Err)
		}
	}
	if diff := cmp.Diff([]bool{false, false, true}, got); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
}

func TestUniqueViolationFailsOnlyThatObject(t *testing.T) {
	e := newEnv(t, baseSeed(1), envOpts{})
	col := e.people(t)
	recs := newRecs(100, 3)
	recs[1]["AD SID"] = sid(0) // already exists
	res, err := e.c.CreateRecords(ctx(t), col, "AD SID", recs)
	if err != nil {
		t.Fatal(err)
	}
	var ae *Error
	if !errors.As(res[1].Err, &ae) || ae.Code != 2 || ae.Status != 422 || ae.Key != sid(0) || IsRetryable(ae) {
		t.Errorf("duplicate's error = %v, want terminal 422 code 2 keyed %s", res[1].Err, sid(0))
	}
	if res[0].Err != nil || res[2].Err != nil || res[0].ID == "" || res[2].ID == "" {
		t.Errorf("others = %+v / %+v, want success", res[0], res[2])
	}
	if got := len(e.stateRecords(t)); got != 3 {
		t.Errorf("emulator holds %d records, want 3", got)
	}
}

func TestUnknownOption(t *testing.T) {
	e := newEnv(t, baseSeed(1), envOpts{})
	col := e.people(t)
	// Refused by the client, by name, before anything is sent.
	recs := newRecs(10, 2)
	recs[0]["Integration Status AD"] = "Maybe"
	recs[1]["Unknown Field"] = "x"
	res, err := e.c.CreateRecords(ctx(t), col, "AD SID", recs)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err == nil || !errors.Is(res[0].Err, ErrNotFound) || !strings.Contains(res[0].Err.Error(), `option "Maybe" not found`) {
		t.Errorf("unknown option err = %v", res[0].Err)
	}
	if res[1].Err == nil || !strings.Contains(res[1].Err.Error(), `field "Unknown Field" not found`) {
		t.Errorf("unknown field err = %v", res[1].Err)
	}
	if n := e.emu.Stats().Requests[rCreate]; n != 0 {
		t.Errorf("create requests = %d, want 0", n)
	}
	// A stale option id (removed on the server) is the service's 422.
	stale := *col
	stale.Fields = append([]Field(nil), col.Fields...)
	f := &stale.Fields[3]
	f.Options = append(append([]Option(nil), f.Options...), Option{ID: 999999, Name: "Retired"})
	up := []RecordUpdate{{ID: e.stateRecords(t)[0].ID, Fields: map[string]string{"Integration Status AD": "Retired"}}}
	res, err = e.c.UpdateRecords(ctx(t), &stale, up)
	if err != nil {
		t.Fatal(err)
	}
	var ae *Error
	if !errors.As(res[0].Err, &ae) || ae.Status != 422 || !strings.Contains(ae.Message, "not an option") {
		t.Errorf("stale option err = %v, want a 422 naming the option problem", res[0].Err)
	}
}

func TestUpdateRecordsInBulk(t *testing.T) {
	e := newEnv(t, baseSeed(250), envOpts{})
	col := e.people(t)
	recs, err := e.c.Records(ctx(t), col)
	if err != nil {
		t.Fatal(err)
	}
	ups := make([]RecordUpdate, len(recs))
	for i, r := range recs {
		ups[i] = RecordUpdate{ID: r.ID, Fields: map[string]string{"Integration Status AD": "Inactive", "Email": ""}}
	}
	ups = append(ups, RecordUpdate{ID: "000000000000000000000000", Fields: map[string]string{"First Name": "ghost"}})
	res, err := e.c.UpdateRecords(ctx(t), col, ups)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res[:250] {
		if r.Err != nil || r.ID == "" {
			t.Fatalf("result %d = %+v, want success", r.Index, r)
		}
	}
	if res[250].Err == nil {
		t.Error("update of an unknown id succeeded")
	}
	if got := e.emu.Stats().Requests[rUpdate]; got != 2 {
		t.Errorf("update requests for 251 records = %d, want 2", got)
	}
	after, err := e.c.Records(ctx(t), col)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range after {
		if r.Fields["Integration Status AD"] != "Inactive" || r.Fields["Email"] != "" {
			t.Fatalf("record %s = %v, want Inactive with Email cleared", r.ID, r.Fields)
		}
	}
}

// A bulk update is reported applied only for the objects whose result the
// reply returns in their place; an echoed secret in a per-object message
// is blanked.
func TestUpdateRecordsTrustsOnlyMatchingResults(t *testing.T) {
	t.Parallel()
	type outcome struct {
		OK  bool
		Err string // substring of the error
	}
	tests := []struct {
		name string
		edit func(e *env, body map[string]any)
		want []outcome
	}{
		{
			name: "results out of order",
			edit: func(_ *env, body map[string]any) {
				objs := body["objects"].([]any)
				objs[0], objs[1] = objs[1], objs[0]
			},
			want: []outcome{{Err: "in this object's place, so its outcome is unknown"}, {Err: "in this object's place"}, {OK: true}},
		},
		{
			name: "a result missing",
			edit: func(_ *env, body map[string]any) { body["objects"] = body["objects"].([]any)[:2] },
			want: []outcome{{OK: true}, {OK: true}, {Err: "the service returned no result for this object"}},
		},
		{
			name: "an error body with status 200",
			edit: func(_ *env, body map[string]any) {
				for k := range body {
					delete(body, k)
				}
				body["message"] = "something went wrong"
			},
			want: []outcome{{Err: "no result"}, {Err: "no result"}, {Err: "no result"}},
		},
		{
			name: "a per-object message echoes the client secret",
			edit: func(e *env, body map[string]any) {
				body["objects"].([]any)[1] = nil
				body["errors"] = []any{map[string]any{"index": 1, "message": "secret " + e.c.cfg.ClientSecret + " rejected", "code": 1}}
			},
			want: []outcome{{OK: true}, {Err: "secret REDACTED rejected"}, {OK: true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			wrap := rewrite(rewriter{method: "PUT", suffix: "/objects", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
				tc.edit(e, body.(map[string]any))
				return nil
			}})
			e = newEnv(t, baseSeed(3), envOpts{server: wrap})
			col := e.people(t)
			var ups []RecordUpdate
			for _, r := range e.stateRecords(t) {
				ups = append(ups, RecordUpdate{ID: r.ID, Fields: map[string]string{"First Name": "Edited"}})
			}
			res, err := e.c.UpdateRecords(ctx(t), col, ups)
			if err != nil {
				t.Fatal(err)
			}
			var got []outcome
			for i, r := range res {
				o := outcome{OK: r.Err == nil && r.ID == ups[i].ID}
				if r.Err != nil {
					o.Err = r.Err.Error()
					if strings.Contains(o.Err, e.c.cfg.ClientSecret) {
						t.Errorf("result %d carries the client secret: %v", i, r.Err)
					}
				}
				if w := tc.want[i]; w.Err != "" && strings.Contains(o.Err, w.Err) {
					o.Err = w.Err
				}
				got = append(got, o)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestArchiveAndUnarchive(t *testing.T) {
	e := newEnv(t, baseSeed(3), envOpts{})
	col := e.people(t)
	ids := []string{e.stateRecords(t)[0].ID, e.stateRecords(t)[2].ID}
	if err := e.c.ArchiveRecords(ctx(t), col, ids); err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, r := range e.stateRecords(t) {
		got = append(got, r.Archived)
	}
	if diff := cmp.Diff([]bool{true, false, true}, got); diff != "" {
		t.Errorf("archived flags (-want +got):\n%s", diff)
	}
	if err := e.c.UnarchiveRecords(ctx(t), col, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if e.stateRecords(t)[0].Archived {
		t.Error("record still archived after UnarchiveRecords")
	}
}

func TestRateLimited429HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	tests := map[string]func() string{
		"seconds":   func() string { return "1" },
		"http date": func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) },
	}
	for name, retryAfter := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, baseSeed(5), envOpts{})
			col := e.people(t)
			e.emu.Fault(emulator.Fault{Route: rSearch, Kind: emulator.FaultStatus, Status: 429, RetryAfter: retryAfter()})
			start := time.Now()
			recs, err := e.c.Records(ctx(t), col)
			waited := time.Since(start)
			if err != nil || len(recs) != 5 {
				t.Fatalf("Records = %d, %v", len(recs), err)
			}
			// A lower bound only: the client must not come back before Retry-After.
			if waited < 900*time.Millisecond {
				t.Errorf("retried after %v, before Retry-After", waited)
			}
			if st := e.c.Stats(); st.RateLimited != 1 || st.Requests[rSearch] != 2 {
				t.Errorf("client stats = %+v, want one 429 and 2 searches", st)
			}
			if got := e.emu.Stats().Status["429"]; got != 1 {
				t.Errorf("emulator 429s = %d, want 1", got)
			}
		})
	}
}

func TestServerRateLimitIsRespected(t *testing.T) {
	t.Parallel()
	// The client has no limit of its own here: the emulator's 429s and
	// Retry-After pace it, and nothing is lost.
	e := newEnv(t, baseSeed(1), envOpts{emu: emulator.Options{Rate: emulator.Rate{Requests: 4, Per: time.Second}}})
	col := e.people(t) // 4 requests: token, accounts, groups, fields
	for range 3 {
		if _, err := e.c.Records(ctx(t), col); err != nil {
			t.Fatalf("Records: %v", err)
		}
	}
	if e.c.Stats().RateLimited == 0 || e.emu.Stats().Status["429"] == 0 {
		t.Errorf("no 429 seen over the server limit: client %+v, emulator %+v", e.c.Stats(), e.emu.Stats())
	}
}

func TestClientRateLimitAvoids429(t *testing.T) {
	t.Parallel()
	e := newEnv(t, baseSeed(1), envOpts{
		emu: emulator.Options{Rate: emulator.Rate{Requests: 5, Per: time.Second}},
		cfg: func(c *Config) { c.Rate = Rate{Requests: 5, Per: time.Second} },
	})
	col := e.people(t)
	for range 8 {
		if _, err := e.c.Records(ctx(t), col); err != nil {
			t.Fatalf("Records: %v", err)
		}
	}
	if got := e.emu.Stats().Status["429"]; got != 0 {
		t.Errorf("emulator answered %d 429s although the client kept to the limit", got)
	}
	if got := e.emu.Stats().Status["200"]; got != 12 {
		t.Errorf("emulator answered %d 200s, want 12", got)
	}
}

func TestServerErrorsRetriedForSafeCalls(t *testing.T) {
	e := newEnv(t, baseSeed(5), envOpts{})
	col := e.people(t)
	e.emu.Fault(emulator.Fault{Route: rSearch, Kind: emulator.FaultStatus, Status: 500})
	e.emu.Fault(emulator.Fault{Route: rSearch, Kind: emulator.FaultStatus, Status: 503})
	recs, err := e.c.Records(ctx(t), col)
	if err != nil || len(recs) != 5 {
		t.Fatalf("Records = %d, %v", len(recs), err)
	}
	if st := e.c.Stats(); st.Retries != 2 || st.Requests[rSearch] != 3 {
		t.Errorf("retries = %d, searches = %d; want 2 and 3", st.Retries, st.Requests[rSearch])
	}
	// Persistent 5xx: a retryable error after the configured attempts.
	e.emu.Fault(emulator.Fault{Route: rSearch, Kind: emulator.FaultStatus, Status: 503, Count: -1})
	_, err = e.c.Records(ctx(t), col)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 503 || !IsRetryable(err) {
		t.Errorf("err = %v, want retryable 503", err)
	}
	if got := e.c.Stats().Requests[rSearch]; got != 3+e.c.retry.attempts {
		t.Errorf("searches = %d, want %d", got, 3+e.c.retry.attempts)
	}
}

func TestNetworkTimeoutRetriedForSafeCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, baseSeed(2), envOpts{cfg: func(c *Config) { c.RequestTimeout = 150 * time.Millisecond }})
	col := e.people(t)
	e.emu.Fault(emulator.Fault{Route: rSearch, Kind: emulator.FaultLatency, Delay: 600 * time.Millisecond})
	recs, err := e.c.Records(ctx(t), col)
	if err != nil || len(recs) != 2 {
		t.Fatalf("Records = %d, %v", len(recs), err)
	}
	if st := e.c.Stats(); st.Retries != 1 || st.Requests[rSearch] != 2 {
		t.Errorf("retries = %d, searches = %d; want 1 and 2", st.Retries, st.Requests[rSearch])
	}
}

func TestCreateWithUnknownOutcomeLooksUpByKey(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		n       int
		fault   emulator.Fault
		creates int // create requests expected
		search  int // lookup searches expected
	}{
		"commit then drop, small batch": {
			n: 5, fault: emulator.Fault{Route: rCreate, Kind: emulator.FaultCommitDrop}, creates: 1, search: 5,
		},
		"commit then drop, big batch read whole collection": {
			n: 250, fault: emulator.Fault{Route: rCreate, Kind: emulator.FaultCommitDrop}, creates: 2, search: 1,
		},
		"timeout after commit": {
			n: 3, fault: emulator.Fault{Route: rCreate, Kind: emulator.FaultSlowResponse, Delay: 500 * time.Millisecond}, creates: 1, search: 3,
		},
		"timeout before commit is sent again after the lookup": {
			n: 3, fault: emulator.Fault{Route: rCreate, Kind: emulator.FaultLatency, Delay: 500 * time.Millisecond}, creates: 2, search: 3,
		},
		"503 before commit is sent again after the lookup": {
			n: 3, fault: emulator.Fault{Route: rCreate, Kind: emulator.FaultStatus, Status: 503}, creates: 2, search: 3,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, baseSeed(0), envOpts{cfg: func(c *Config) { c.RequestTimeout = 200 * time.Millisecond }})
			col := e.people(t)
			e.emu.Fault(tc.fault)
			res, err := e.c.CreateRecords(ctx(t), col, "AD SID", newRecs(0, tc.n))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil || r.ID == "" {
					t.Fatalf("result %d = %+v, want success", r.Index, r)
				}
			}
			st := e.emu.Stats()
			if st.Requests[rCreate] != tc.creates || st.Requests[rSearch] != tc.search {
				t.Errorf("creates = %d, searches = %d; want %d and %d", st.Requests[rCreate], st.Requests[rSearch], tc.creates, tc.search)
			}
			count := map[string]int{}
			for _, r := range e.stateRecords(t) {
				count[r.Fields["AD SID"]]++
			}
			if len(count) != tc.n {
				t.Errorf("%d distinct records, want %d", len(count), tc.n)
			}
			for k, c := range count {
				if c != 1 {
					t.Errorf("%d records for %s, want 1 (no duplicates)", c, k)
				}
			}
			ids := map[string]bool{}
			for _, r := range e.stateRecords(t) {
				ids[r.ID] = true
			}
			for _, r := range res {
				if !ids[r.ID] {
					t.Errorf("result id %s is not a record of the emulator", r.ID)
				}
			}
		})
	}
}

func TestShortOrEmptyPageIsAnError(t *testing.T) {
	t.Parallel()
	for _, kind := range []emulator.FaultKind{emulator.FaultShortPage, emulator.FaultEmptyPage} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, baseSeed(2500), envOpts{})
			col := e.people(t)
			e.emu.Fault(emulator.Fault{Route: rSearch, Kind: kind, Skip: 1})
			recs, err := e.c.Records(ctx(t), col)
			if err == nil || recs != nil {
				t.Fatalf("Records = %d records, err %v; want an error and no records", len(recs), err)
			}
			if !strings.Contains(err.Error(), "partial read") || !IsRetryable(err) {
				t.Errorf("err = %v, want a retryable partial read error", err)
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	clock := &manualClock{t: time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)}
	t.Run("refreshed ahead of expires_in", func(t *testing.T) {
		e := newEnv(t, baseSeed(1), envOpts{emu: emulator.Options{Now: clock.Now, TokenTTL: time.Hour}})
		e.c.now = clock.Now
		col := e.people(t)
		clock.Advance(59 * time.Minute) // inside the refresh margin
		if _, err := e.c.Records(ctx(t), col); err != nil {
			t.Fatal(err)
		}
		if st := e.c.Stats(); st.Requests["POST /v3/session/token"] != 2 || st.Reauths != 0 || e.emu.Stats().Status["401"] != 0 {
			t.Errorf("stats = %+v, emulator %+v; want a proactive second token and no 401", st, e.emu.Stats())
		}
	})
	t.Run("expired on the server", func(t *testing.T) {
		e := newEnv(t, baseSeed(1), envOpts{emu: emulator.Options{Now: clock.Now, TokenTTL: time.Hour}})
		col := e.people(t) // the client's own clock does not move
		clock.Advance(2 * time.Hour)
		if _, err := e.c.Records(ctx(t), col); err != nil {
			t.Fatal(err)
		}
		if st := e.c.Stats(); st.Reauths != 1 || e.emu.Stats().Status["401"] != 1 {
			t.Errorf("reauths = %d, emulator 401s = %d; want 1 and 1", st.Reauths, e.emu.Stats().Status["401"])
		}
	})
}

// RecordsModifiedSince returns the records written (updated, archived) at
// or after a time, archived included, in one request when they fit a page;
// ScanRecords hands over the same records as Records.
func TestRecordsModifiedSince(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := newEnv(t, baseSeed(1500), envOpts{emu: emulator.Options{Now: clock}})
	col := e.people(t)
	all := e.stateRecords(t)
	advance(time.Minute)
	since := clock()
	_, err := e.c.UpdateRecords(ctx(t), col, []RecordUpdate{
		{ID: all[2].ID, Fields: map[string]string{"First Name": "Edited"}},
		{ID: all[1400].ID, Fields: map[string]string{"Email": ""}},
	})
	if err != nil {
		t.Fatal(err)
	}
	advance(time.Minute)
	if err := e.c.ArchiveRecords(ctx(t), col, []string{all[9].ID}); err != nil {
		t.Fatal(err)
	}

	tests := map[string]struct {
		since time.Time
		want  map[string]bool // id -> archived
	}{
		"since the first write": {since: since, want: map[string]bool{all[2].ID: false, all[1400].ID: false, all[9].ID: true}},
		"bound is inclusive":    {since: since.Add(time.Minute), want: map[string]bool{all[9].ID: true}},
		"nothing since":         {since: since.Add(2 * time.Minute), want: map[string]bool{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := e.emu.Stats().Requests[rSearch]
			recs, served, err := e.c.RecordsModifiedSince(ctx(t), col, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if served.IsZero() {
				t.Error("no server time from the reply's Date header")
			}
			got := map[string]bool{}
			for _, r := range recs {
				got[r.ID] = r.Archived
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("records modified since %s (-want +got):\n%s", tc.since, diff)
			}
			if n := e.emu.Stats().Requests[rSearch] - before; n != 1 {
				t.Errorf("search requests = %d, want 1", n)
			}
		})
	}

	full, err := e.c.Records(ctx(t), col)
	if err != nil {
		t.Fatal(err)
	}
	var scanned []Record
	if _, err := e.c.ScanRecords(ctx(t), col, func(r Record) error { scanned = append(scanned, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full, scanned); diff != "" {
		t.Errorf("ScanRecords differs from Records (-want +got):\n%s", diff)
	}
	stop := errors.New("enough")
	n := 0
	if _, err := e.c.ScanRecords(ctx(t), col, func(Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("ScanRecords with a failing callback = %v after %d records, want the callback's error after 1", err, n)
	}
}
