package ui_test

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/reconcile/loop/ui"
	"github.com/pandasync/pandasync/spec"
)

// fakeSource is a hand-written Source: a status and a history set by the
// test, an admin token it can change, and the triggers it heard.
type fakeSource struct {
	mu         sync.Mutex
	status     loop.Status
	set        *spec.Set
	history    *loop.History
	token      string // "" : none set
	unreadable bool
	triggers   []string
}

func newFakeSource(t *testing.T) *fakeSource {
	h, err := loop.OpenHistory("", 0)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSource{history: h, status: loop.Status{State: loop.StateIdle, Spec: loop.SpecStatus{Valid: true}}}
}

func (f *fakeSource) Status() loop.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}
func (f *fakeSource) Spec() *spec.Set        { return f.set }
func (f *fakeSource) History() *loop.History { return f.history }
func (f *fakeSource) Trigger(reason string) {
	f.mu.Lock()
	f.triggers = append(f.triggers, reason)
	f.mu.Unlock()
}
func (f *fakeSource) setToken(token string) { f.mu.Lock(); f.token = token; f.mu.Unlock() }
func (f *fakeSource) heard() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.triggers...)
}
func (f *fakeSource) AdminAccess(opts loop.AdminOptions, candidate string) loop.Access {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.unreadable:
		return loop.AccessUnreadable
	case f.token == "" && opts.RequireToken:
		return loop.AccessNoToken
	case f.token == "":
		return loop.AccessOpen
	case subtle.ConstantTimeCompare([]byte(candidate), []byte(f.token)) == 1:
		return loop.AccessGranted
	}
	return loop.AccessDenied
}

// fakeAdmin stands for the loop's admin handler: it counts the requests
// passed on to it.
type fakeAdmin struct {
	mu    sync.Mutex
	paths []string
}

func (a *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.paths = append(a.paths, r.Method+" "+r.URL.Path)
	a.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (a *fakeAdmin) heard() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.paths...)
}

// fakeExplainer answers every question with one explanation.
type fakeExplainer struct {
	ex  *ui.Explained
	err error
}

func (f *fakeExplainer) Explain(context.Context, string) (*ui.Explained, error) { return f.ex, f.err }

// server serves the page over src.
func server(t *testing.T, src *fakeSource, opts ui.Options) (*httptest.Server, *fakeAdmin) {
	t.Helper()
	admin := &fakeAdmin{}
	opts.Source, opts.Admin = src, admin
	h, err := ui.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, admin
}

// client is a browser-like client: it keeps cookies and does not follow
// redirects.
func client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func getPage(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

// postForm posts a form as a browser on the same origin does.
func postForm(t *testing.T, c *http.Client, u string, form url.Values, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return do(t, c, req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the CSRF token of a page's forms.
func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the page has no CSRF field:\n%s", body)
	}
	return m[1]
}

const xss = `<script>alert(1)</script>`

// hostilePass is a pass in which every string holds markup.
func hostilePass() *loop.PassReport {
	ch := reconcile.Change{Mapping: "m" + xss, Kind: reconcile.KindRecord, Action: reconcile.ActionDeactivate, Key: "S-1-5-21-1-2-3-" + xss,
		Name: "n" + xss, Before: map[string]string{"f" + xss: "b" + xss}, After: map[string]string{"f" + xss: "a" + xss}, Reason: "r" + xss}
	now := time.Date(2025, 1, 15, 10, 20, 0, 0, time.UTC)
	return &loop.PassReport{ID: "p" + xss, Reason: "why" + xss, Revision: "rev" + xss, StartedAt: now, FinishedAt: now.Add(time.Second),
		Outcome: loop.OutcomeProblems, Error: "e" + xss,
		Counts:  loop.Counts{Applied: 1, Failed: 1, Blocked: 1, Problems: 2},
		Changes: []loop.ChangeResult{{Mapping: ch.Mapping, Kind: ch.Kind, Action: reconcile.ActionUpdate, Key: ch.Key, Name: ch.Name, Before: ch.Before, After: ch.After, Result: loop.ResultApplied}},
		Failed:  []loop.ChangeResult{{Mapping: ch.Mapping, Kind: ch.Kind, Action: ch.Action, Key: ch.Key, Name: ch.Name, After: ch.After, Result: loop.ResultFailed, Error: "fail" + xss}},
		Blocked: []reconcile.Blocked{{Change: ch, Limit: reconcile.LimitMaxDeactivations, Detail: "d" + xss, Fix: "fix" + xss}},
		Problems: []reconcile.Problem{
			{Code: reconcile.ProblemUnresolvedGroup, Mapping: ch.Mapping, Object: "o" + xss, Message: "msg" + xss, Fix: "fx" + xss},
			{Code: reconcile.ProblemRecordConflict, Mapping: ch.Mapping, Key: ch.Key, Message: "c" + xss, Fix: "cf" + xss}},
		Mappings: []loop.MappingReport{{Scope: reconcile.Scope{Mapping: ch.Mapping, Kind: ch.Kind, Group: "g" + xss, Resolved: true, Members: 3, Managed: 2},
			Applied: reconcile.Summary{Update: 1}, Failed: 1, Blocked: 1, Problems: 2}},
	}
}

// TestEscaping fills every value the pages show with markup and requires
// it to come out as text on every page.
func TestEscaping(t *testing.T) {
	src := newFakeSource(t)
	p := hostilePass()
	if err := src.history.Add(p); err != nil {
		t.Fatal(err)
	}
	src.status = loop.Status{State: loop.StateDegraded, StateReason: "sr" + xss, ReadyReason: "rr" + xss, LastPass: p, StateDir: "/var/lib/" + xss,
		NextRunReason: "next" + xss, NextRun: p.FinishedAt.Add(time.Hour),
		Spec: loop.SpecStatus{Valid: false, Files: []string{"f" + xss}, Revision: "rev" + xss, Problems: []string{"line" + xss},
			Details: []loop.SpecProblem{{File: "file" + xss, Document: 2, Kind: "UserMapping", Name: "nm" + xss, Path: "spec." + xss, Message: "m" + xss}}}}
	ex := &ui.Explained{PlannedAt: p.StartedAt, Explanation: &reconcile.Explanation{
		Person:      &activedirectory.User{DN: "CN=" + xss, SID: "S-1-5-21-1-2-3-4", SAMAccountName: "s" + xss, UPN: "u" + xss},
		Memberships: []reconcile.Membership{{Mapping: "m" + xss, Kind: reconcile.KindUser, Group: "g" + xss, Member: true, Via: []string{"g" + xss, "sub" + xss}}},
		Changes:     []reconcile.Change{p.Blocked[0].Change},
		Blocked:     p.Blocked,
		Errors:      p.Problems,
		Notes:       []string{"note" + xss},
	}}
	srv, _ := server(t, src, ui.Options{Explainer: &fakeExplainer{ex: ex}, SpecPaths: []string{"/etc/" + xss}})
	c := client(t)
	for _, path := range []string{"/", "/passes", "/passes/" + url.PathEscape(p.ID), "/passes?mapping=" + url.QueryEscape("m"+xss), "/explain?q=" + url.QueryEscape(xss)} {
		resp, body := getPage(t, c, srv.URL+path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d:\n%s", path, resp.StatusCode, body)
			continue
		}
		if strings.Contains(body, "<script>alert") {
			t.Errorf("GET %s: a value came out as markup:\n%s", path, body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("GET %s: the values are not shown as escaped text:\n%s", path, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("GET %s: the page refers to another site:\n%s", path, body)
		}
	}
	// The shell commands quote what they do not trust.
	_, body := getPage(t, c, srv.URL+"/")
	if want := "pandasync -f &#39;/etc/&lt;script&gt;alert(1)&lt;/script&gt;&#39; plan -mapping &#39;m&lt;script&gt;alert(1)&lt;/script&gt;&#39; -allow-mass-deactivation -out approve.plan"; !strings.Contains(body, want) {
		t.Errorf("the approving command is not quoted for the shell; want %s in:\n%s", want, body)
	}
}

// TestCSRF: Sync now needs the page's CSRF token and a same-origin
// request; a script's POST /sync goes to the loop's handler, unless it
// comes from another site.
func TestCSRF(t *testing.T) {
	src := newFakeSource(t)
	srv, admin := server(t, src, ui.Options{})
	c := client(t)
	_, page := getPage(t, c, srv.URL+"/")
	token := csrfOf(t, page)
	syncURL := srv.URL + "/sync"

	tests := []struct {
		name    string
		client  *http.Client
		form    url.Values
		headers map[string]string
		want    int
	}{
		{"no token", c, url.Values{}, nil, http.StatusForbidden},
		{"wrong token", c, url.Values{"csrf": {token + "x"}}, nil, http.StatusForbidden},
		{"token without its cookie", client(t), url.Values{"csrf": {token}}, nil, http.StatusForbidden},
		{"from another site", c, url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"from a sibling site", c, url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"another origin, old browser", c, url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "", "Origin": "http://evil.example"}, http.StatusForbidden},
	}
	for _, tc := range tests {
		resp, body := postForm(t, tc.client, syncURL, tc.form, tc.headers)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: POST /sync = %d, want %d:\n%s", tc.name, resp.StatusCode, tc.want, body)
		}
	}
	if got := src.heard(); len(got) != 0 {
		t.Fatalf("refused requests asked for passes: %v", got)
	}
	resp, _ := postForm(t, c, syncURL, url.Values{"csrf": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?sync=requested" {
		t.Errorf("Sync now = %d to %q, want 303 to the overview", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := src.heard(); len(got) != 1 || got[0] != ui.SyncReason {
		t.Errorf("Sync now asked for %v, want one pass for %q", got, ui.SyncReason)
	}

	// Scripts: curl's POST /sync reaches the loop's handler; a cross-site
	// fetch with a body a form cannot send is stopped before it.
	req, _ := http.NewRequest(http.MethodPost, syncURL, nil)
	if resp, _ := do(t, http.DefaultClient, req); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a script's POST /sync = %d, want the loop's 202", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, syncURL, strings.NewReader("x"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := do(t, http.DefaultClient, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site fetch to /sync = %d, want 403", resp.StatusCode)
	}
	if got := admin.heard(); len(got) != 1 || got[0] != "POST /sync" {
		t.Errorf("the loop's handler heard %v, want the one script request", got)
	}
}

// TestToken: with an admin token every page needs it, from a session made
// on the sign-in page or from the Authorization header; a session ends
// when the token changes or on sign-out; the token never shows up in a
// URL or a cookie.
func TestToken(t *testing.T) {
	const token = "the-admin-token-0123"
	src := newFakeSource(t)
	src.setToken(token)
	srv, _ := server(t, src, ui.Options{})
	c := client(t)

	resp, _ := getPage(t, c, srv.URL+"/passes?outcome=failed")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fpasses%3Foutcome%3Dfailed" {
		t.Fatalf("GET /passes without a session = %d to %q, want 303 to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	for header, want := range map[string]int{"Bearer nope": http.StatusUnauthorized, "Bearer " + token: http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.Header.Set("Authorization", header)
		if resp, _ := do(t, client(t), req); resp.StatusCode != want {
			t.Errorf("GET / with %q = %d, want %d", header, resp.StatusCode, want)
		}
	}
	_, login := getPage(t, c, srv.URL+"/login?next=%2Fpasses")
	csrf := csrfOf(t, login)
	resp, body := postForm(t, c, srv.URL+"/login", url.Values{"csrf": {csrf}, "token": {"wrong"}, "next": {"/passes"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "That is not the admin token in force.") {
		t.Errorf("a wrong token = %d:\n%s", resp.StatusCode, body)
	}
	if resp, _ := postForm(t, c, srv.URL+"/login", url.Values{"token": {token}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without the CSRF token = %d, want 403", resp.StatusCode)
	}
	resp, _ = postForm(t, c, srv.URL+"/login", url.Values{"csrf": {csrf}, "token": {token}, "next": {"/passes"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/passes" {
		t.Fatalf("sign-in = %d to %q, want 303 to /passes", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if strings.Contains(ck.Value, token) {
			t.Errorf("cookie %s holds the token", ck.Name)
		}
		if ck.Name == "pandasync_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Fatalf("session cookie %+v, want HttpOnly, SameSite=Strict, Path=/", session)
	}
	if strings.Contains(resp.Header.Get("Location"), token) {
		t.Error("the token is in the redirect")
	}
	resp, body = getPage(t, c, srv.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Sign out") {
		t.Fatalf("GET / signed in = %d:\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, token) {
		t.Error("the page shows the token")
	}
	csrf = csrfOf(t, body)
	if resp, _ := postForm(t, c, srv.URL+"/sync", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("Sync now signed in = %d, want 303", resp.StatusCode)
	}

	// A new token ends the session.
	src.setToken(token + "-rotated")
	if resp, _ := getPage(t, c, srv.URL+"/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after the token changed = %d, want 303 to sign in again", resp.StatusCode)
	}
	if resp, _ := postForm(t, c, srv.URL+"/sync", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Sync now after the token changed = %d, want 401", resp.StatusCode)
	}
	if got := src.heard(); len(got) != 1 {
		t.Errorf("passes asked for: %v, want only the signed-in one", got)
	}

	// Sign-out ends it too.
	src.setToken(token)
	resp, _ = postForm(t, c, srv.URL+"/logout", url.Values{"csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-out = %d", resp.StatusCode)
	}
	if resp, _ := getPage(t, c, srv.URL+"/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after signing out = %d, want 303", resp.StatusCode)
	}

	// A redirect stays on this site.
	resp, _ = postForm(t, c, srv.URL+"/login", url.Values{"csrf": {csrf}, "token": {token}, "next": {"//evil.example/x"}}, nil)
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("sign-in with next=//evil.example went to %q, want /", loc)
	}

	// Guessing is slowed: after ten wrong tokens in a minute, sign-in
	// pauses.
	var last int
	for range 11 {
		resp, _ := postForm(t, c, srv.URL+"/login", url.Values{"csrf": {csrf}, "token": {"guess"}}, nil)
		last = resp.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("the 12th wrong token = %d, want 429", last)
	}
}

// TestClosed: a page refuses to show anything when the listener is
// reachable from other hosts without a token, or the token is unreadable.
func TestClosed(t *testing.T) {
	src := newFakeSource(t)
	srv, _ := server(t, src, ui.Options{AdminOptions: loop.AdminOptions{RequireToken: true}})
	if resp, body := getPage(t, client(t), srv.URL+"/"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "spec.admin.token") {
		t.Errorf("remote without a token: GET / = %d:\n%s", resp.StatusCode, body)
	}
	src.unreadable = true
	if resp, _ := getPage(t, client(t), srv.URL+"/explain?q=ada"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("unreadable token: GET /explain = %d, want 503", resp.StatusCode)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestPlanExplainerRateLimit: explain reads AD and Asset Panda through
// one shared read-only plan, at most once a minute, reused until a pass
// finishes or it is five minutes old; it never writes.
func TestPlanExplainerRateLimit(t *testing.T) {
	w := newWorld(t, worldOptions{noToken: true})
	w.pass(t)
	clock := &fakeClock{now: time.Now()}
	e := &ui.PlanExplainer{Source: w.loop, Connect: w.connect, Now: clock.Now}
	ctx := context.Background()
	before := w.sb.Emulator.Stats()

	explain := func(who string) *ui.Explained {
		t.Helper()
		ex, err := e.Explain(ctx, who)
		if err != nil {
			t.Fatalf("explain %s: %v", who, err)
		}
		return ex
	}
	ada := explain("ada")
	if ada.Person == nil || ada.Person.SAMAccountName != "ada" || e.Plans() != 1 || ada.Stale {
		t.Fatalf("ada: %+v after %d plans", ada.Person, e.Plans())
	}
	if g := explain("grace@corp.example.com"); g.Person == nil || e.Plans() != 1 {
		t.Errorf("a second question made a plan of its own (%d plans)", e.Plans())
	}

	// A pass finishes: within the minute the old plan is shown, marked.
	w.loop.Trigger("test")
	w.pass(t)
	clock.add(time.Second)
	if ex := explain("ada"); !ex.Stale || e.Plans() != 1 {
		t.Errorf("within the minute after a pass: stale %v, %d plans; want the old plan, marked stale", ex.Stale, e.Plans())
	}
	// After the minute, questions asked together share one new plan.
	clock.add(time.Minute)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := e.Explain(ctx, "ada"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if e.Plans() != 2 {
		t.Errorf("five questions at once made %d plans in all, want 2", e.Plans())
	}
	clock.add(4 * time.Minute)
	if explain("ada"); e.Plans() != 2 {
		t.Errorf("a plan 4 minutes old with no pass since was not reused (%d plans)", e.Plans())
	}
	clock.add(2 * time.Minute)
	if explain("ada"); e.Plans() != 3 {
		t.Errorf("a plan past 5 minutes was reused (%d plans)", e.Plans())
	}

	// No write came from explaining.
	after := w.sb.Emulator.Stats()
	for route, n := range after.Requests {
		if d := n - before.Requests[route]; d > 0 && !strings.HasPrefix(route, "GET ") && !strings.Contains(route, "search") && !strings.Contains(route, "token") {
			t.Errorf("explaining sent %d %s", d, route)
		}
	}

	// A plan that failed is not retried within the minute: the question
	// waits.
	var broken atomic.Bool
	broken.Store(true)
	f := &ui.PlanExplainer{Source: w.loop, Now: clock.Now, Connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
		if broken.Load() {
			return nil, errors.New("directory server unavailable")
		}
		return w.connect(ctx, set, log)
	}}
	if _, err := f.Explain(ctx, "ada"); err == nil || !strings.Contains(err.Error(), "directory server unavailable") {
		t.Errorf("a failing plan: %v", err)
	}
	broken.Store(false)
	var rl *ui.RateLimitedError
	if _, err := f.Explain(ctx, "ada"); !errors.As(err, &rl) || !rl.RetryAt.Equal(clock.Now().Add(time.Minute)) {
		t.Errorf("asking again at once: %v, want RateLimitedError until a minute after the failed plan", err)
	}
	clock.add(time.Minute)
	if ex, err := f.Explain(ctx, "ada"); err != nil || ex.Person == nil || f.Plans() != 2 {
		t.Errorf("a minute later: %v, %d plans; want a new plan", err, f.Plans())
	}
}

// TestApproveCommandsFromSpecFiles: without -f paths (run -git), the
// commands name the files of the spec set in force.
func TestApproveCommandsFromSpecFiles(t *testing.T) {
	src := newFakeSource(t)
	src.set = &spec.Set{Files: []string{"/var/lib/pandasync/git/abc/10-users.yaml", "/var/lib/pandasync/git/abc/90-policy.yaml"}}
	p := &loop.PassReport{ID: "p1", Outcome: loop.OutcomeProblems, Counts: loop.Counts{Blocked: 1},
		Blocked: []reconcile.Blocked{{Change: reconcile.Change{Mapping: "staff", Kind: reconcile.KindUser, Action: reconcile.ActionUpdate, Key: "S-1-5-21-1-2-3-4",
			Before: map[string]string{reconcile.UserRole: "Module Admin"}, After: map[string]string{reconcile.UserRole: "Collaborator"}},
			Limit: reconcile.LimitMaxRoleChanges, Detail: "3 role changes planned, the limit is 2 per mapping per run"}}}
	src.status.LastPass, src.status.StateDir = p, "/var/lib/pandasync"
	srv, _ := server(t, src, ui.Options{})
	_, body := getPage(t, client(t), srv.URL+"/")
	for _, want := range []string{
		"pandasync -f /var/lib/pandasync/git/abc/10-users.yaml -f /var/lib/pandasync/git/abc/90-policy.yaml plan -mapping staff -allow-mass-role-change -out approve.plan",
		"pandasync -f /var/lib/pandasync/git/abc/10-users.yaml -f /var/lib/pandasync/git/abc/90-policy.yaml apply -state-dir /var/lib/pandasync approve.plan",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the overview lacks %q:\n%s", want, body)
		}
	}
}
