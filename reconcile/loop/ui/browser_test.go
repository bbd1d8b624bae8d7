package ui_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile/loop"
)

// The browser tests drive Debian's chromium with chromedp. They skip when
// it is not installed (they fail instead with PANDASYNC_REQUIRE_BROWSER
// set, as in CI); PANDASYNC_CHROMIUM names another binary, and
// PANDASYNC_SCREENSHOTS a folder to save a screenshot of every page in.

// chromiumPath returns the browser to drive, or skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PANDASYNC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed (apt-get install -y chromium; .ci/browser-tests.sh does), or set PANDASYNC_CHROMIUM"
	if os.Getenv("PANDASYNC_REQUIRE_BROWSER") != "" {
		t.Fatal(msg + "; PANDASYNC_REQUIRE_BROWSER is set, so the browser tests may not skip")
	}
	t.Skip(msg + ": skipping the browser tests")
	return ""
}

// browser is one headless chromium tab.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
	// dialogs counts the JavaScript dialogs (alert, confirm) pages opened.
	dialogs chan string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// This machine has no internet: stop chromium's own traffic.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx, shots: os.Getenv("PANDASYNC_SCREENSHOTS"), dialogs: make(chan string, 10)}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", path, err)
	}
	events := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			b.dialogs <- ev.Message
			go chromedp.Run(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
				return err
			}))
		}
	}()
	if b.shots != "" {
		if err := os.MkdirAll(b.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// do runs actions with a deadline.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open navigates to a URL and waits for the page.
func (b *browser) open(url string) {
	b.t.Helper()
	b.do(chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("footer")))
}

// text returns the visible text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// body is the page's visible text.
func (b *browser) body() string { return b.text("body") }

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// location is the page's URL.
func (b *browser) location() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// click clicks the element and waits for the page it leads to.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)), chromedp.Sleep(100*time.Millisecond), chromedp.WaitReady(chromedp.CSS("footer")))
}

// contains fails unless the visible text holds every want.
func (b *browser) contains(what string, wants ...string) {
	b.t.Helper()
	body := b.body()
	for _, want := range wants {
		if !strings.Contains(body, want) {
			b.t.Errorf("%s: the page does not show %q; it shows:\n%s", what, want, body)
		}
	}
}

// lacks fails when the visible text holds any of the strings.
func (b *browser) lacks(what string, nots ...string) {
	b.t.Helper()
	body := b.body()
	for _, not := range nots {
		if strings.Contains(body, not) {
			b.t.Errorf("%s: the page shows %q; it should not:\n%s", what, not, body)
		}
	}
}

// screenshot saves the whole page as NAME.png in the screenshots folder.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// viewport saves what fits in the window (1280×900) as NAME.png, for the
// README.
func (b *browser) viewport(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// passRows counts the rows of the pass list.
func (b *browser) passRows() int {
	b.t.Helper()
	return eval[int](b, `document.querySelectorAll("#passes tr.pass").length`)
}

const (
	grace     = "CN=Grace Hopper,OU=People,DC=corp,DC=example,DC=com"
	allStaff  = "CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com"
	adaSID    = "S-1-5-21-1004336348-1177238915-682003330-1101"
	scriptXSS = `<script>alert("pwned")</script>`
)

// TestBrowser drives the status page of a real loop over the embedded
// directory and the emulator in chromium, through a clean pass, a pass
// with blocked changes, a failed pass and a rejected spec.
func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	w := newWorld(t, worldOptions{})
	first := w.pass(t)
	if first.Outcome != loop.OutcomeSuccess {
		t.Fatalf("start-up pass: %s %s", first.Outcome, first.Error)
	}

	// Signing in: the pages need the admin token.
	b.open(w.url + "/")
	if loc := b.location(); !strings.Contains(loc, "/login?next=") {
		t.Fatalf("without a session the overview went to %s, want the sign-in page", loc)
	}
	b.do(chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"))
	b.click("#sign-in")
	b.contains("a wrong token", "That is not the admin token in force.")
	b.screenshot("login")
	b.do(chromedp.SendKeys(chromedp.CSS("#token"), adminToken))
	b.click("#sign-in")
	if loc := b.location(); loc != w.url+"/" {
		t.Fatalf("after signing in the browser is at %s, want the overview", loc)
	}
	if strings.Contains(b.location(), adminToken) {
		t.Fatal("the token is in the URL")
	}
	if cookies := eval[string](b, `document.cookie`); cookies != "" {
		t.Errorf("the page's script can read cookies %q; the session and CSRF cookies must be HttpOnly", cookies)
	}

	t.Run("clean pass", func(t *testing.T) {
		b.t = t
		b.open(w.url + "/passes")
		before := b.passRows()
		b.open(w.url + "/")
		b.click("#sync-now")
		b.contains("after Sync now", "A pass was asked for.")
		rep := w.pass(t)
		if rep.Reason != "Sync now" || rep.Outcome != loop.OutcomeNoChanges {
			t.Fatalf("Sync now ran a pass %q with outcome %q (%s), want a clean one", rep.Reason, rep.Outcome, rep.Error)
		}
		b.open(w.url + "/passes")
		if got := b.passRows(); got != before+1 {
			t.Errorf("the pass list has %d rows after Sync now, want %d", got, before+1)
		}
		b.contains("the pass list", rep.ID, "Sync now", "no_changes")
		b.open(w.url + "/")
		b.contains("the overview after a clean pass",
			"Nothing needs a person: the spec is valid and the last pass no_changes.",
			"State", "idle", "the next pass is at",
			"Consecutive failures", "valid",
			rep.ID, "had nothing to do",
			"it-admins", "it-users", "people", "CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com",
			"Latest changes")
		if got := b.text("#failures"); got != "0" {
			t.Errorf("consecutive failures %q, want 0", got)
		}
		// The people mapping: 9 members of All Staff (Engineering's 4
		// through nesting), Edsger disabled, 8 records managed.
		if row := b.text("tr.mapping:nth-child(3)"); !strings.Contains(row, "9 (1 disabled)") || !strings.Contains(row, "\t8\t") {
			t.Errorf("the people row %q, want 9 members (1 disabled) and 8 managed", row)
		}
		b.screenshot("overview-clean")

		// From the overview to a pass.
		b.click("#last-pass-link")
		if loc := b.location(); loc != w.url+"/passes/"+rep.ID {
			t.Errorf("the last pass link led to %s", loc)
		}
		b.contains("the pass page", "Pass "+rep.ID, "no_changes", "Sync now", "Changes applied", "None.")

		// From the overview to a person: Ada, created by the first pass.
		b.open(w.url + "/")
		b.click(`a.person[href="/explain?q=` + adaSID + `"]`)
		b.contains("Ada's page",
			`CN=Lovelace\, Ada,OU=People,DC=corp,DC=example,DC=com`, adaSID,
			"From a read-only plan made",
			"✓ member", "CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com → CN=Engineering,OU=Groups,DC=corp,DC=example,DC=com",
			"The next plan changes nothing for this person.",
			"Audit history", "applied", first.ID)
		b.screenshot("explain")
	})

	t.Run("blocked changes", func(t *testing.T) {
		b.t = t
		// Engineering leaves All Staff: four records would go Inactive,
		// over the limit of 2. Grace's title holds markup.
		if err := w.sb.Directory.Replace(allStaff, "member",
			"CN=Grace Hopper,OU=People,DC=corp,DC=example,DC=com", "CN=Dennis Ritchie,OU=People,DC=corp,DC=example,DC=com",
			"CN=Katherine Johnson,OU=People,DC=corp,DC=example,DC=com", "CN=Annie Easley,OU=People,DC=corp,DC=example,DC=com",
			"CN=Edsger Dijkstra,OU=People,DC=corp,DC=example,DC=com"); err != nil {
			t.Fatal(err)
		}
		if err := w.sb.Directory.Replace(grace, "title", scriptXSS); err != nil {
			t.Fatal(err)
		}
		b.open(w.url + "/")
		b.click("#sync-now")
		rep := w.pass(t)
		if rep.Outcome != loop.OutcomeProblems || rep.Counts.Blocked != 4 || rep.Counts.Applied != 1 {
			t.Fatalf("pass: %s, counts %+v, want 4 blocked and Grace's title applied", rep.Outcome, rep.Counts)
		}
		b.open(w.url + "/")
		b.contains("the overview with blocked changes",
			"4 changes of mapping people blocked by maxDeactivations",
			"4 deactivations planned, the limit is 2 per mapping per run.",
			"pandasync -f "+w.specDir+" plan -mapping people -allow-mass-deactivation -out approve.plan",
			"pandasync -f "+w.specDir+" apply -state-dir "+w.stateDir+" approve.plan",
			"no longer a member of CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com",
			"problems", "1 change applied, 4 changes blocked by a limit or guard",
			// The value holding markup is shown as text.
			"Title: Systems Manager→"+scriptXSS)
		b.lacks("the overview with blocked changes", "Nothing needs a person")
		if got := b.text("#failures"); got != "1" {
			t.Errorf("consecutive failures %q, want 1", got)
		}
		b.screenshot("overview-blocked")
		b.viewport("readme-overview") // examples/status-page/overview.png

		b.click("#last-pass-link")
		b.contains("the pass with blocked changes", "Blocked changes", "maxDeactivations", "Title", scriptXSS, "Systems Manager")
		b.screenshot("pass-blocked")
		// The markup is text: no script of it ran, and the only script
		// elements are the page's own.
		scripts := eval[[]string](b, `Array.from(document.querySelectorAll("script")).map(s => s.src || s.textContent)`)
		for _, s := range scripts {
			if !strings.HasSuffix(s, "/assets/refresh.js") {
				t.Errorf("the page has a script element %q that is not its own", s)
			}
		}
		b.open(w.url + "/explain?q=" + `%3Cscript%3Ealert(%22q%22)%3C%2Fscript%3E`)
		b.contains("a question holding markup", `“<script>alert("q")</script>” is not a member of any mapped group`)
		b.open(w.url + "/explain?q=gracee")
		b.contains("a misspelt name", "“gracee” is not a member of any mapped group. Close names among the members: grace")
		select {
		case msg := <-b.dialogs:
			t.Errorf("a page opened a dialog %q: a value ran as script", msg)
		default:
		}
	})

	t.Run("failed pass", func(t *testing.T) {
		b.t = t
		// Asset Panda refuses pandasync's credentials: the pass fails, and
		// retrying cannot fix it.
		w.sb.Emulator.Fault(emulator.Fault{Route: "POST /v3/session/token", Kind: emulator.FaultStatus, Status: 401, Count: -1})
		defer w.sb.Emulator.ClearFaults()
		b.open(w.url + "/")
		b.click("#sync-now")
		rep := w.pass(t)
		if rep.Outcome != loop.OutcomeFailed || !rep.Terminal {
			t.Fatalf("pass with the credentials refused: %s (terminal %v), want failed terminally", rep.Outcome, rep.Terminal)
		}
		b.open(w.url + "/")
		b.contains("the overview after a failed pass",
			"The last pass failed, and retrying cannot fix it", rep.Error,
			"No pass runs by itself until the spec changes, SIGHUP or Sync now.",
			"stalled", "Ready", "no: the last pass failed and retrying cannot fix it")
		if got := b.text("#failures"); got != "2" {
			t.Errorf("consecutive failures %q, want 2", got)
		}
		if got := b.text("#last-outcome"); got != "failed" {
			t.Errorf("last outcome %q, want failed", got)
		}
		b.screenshot("overview-failed")
	})

	t.Run("rejected spec", func(t *testing.T) {
		b.t = t
		good, err := os.ReadFile(filepath.Join(w.specDir, "10-mappings.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		w.writeSpec(t, "10-mappings.yaml", strings.Replace(string(good), "  role: Collaborator\n", "  role: Collaborator\n  colour: blue\n", 1))
		w.wait(t, loop.EventSpecInvalid)
		b.open(w.url + "/")
		b.contains("the overview with a rejected spec",
			"The spec was rejected; the last good spec",
			filepath.Join(w.specDir, "10-mappings.yaml")+":", "#2 UserMapping “it-users”", "spec.colour", "unknown field",
			"rejected (see above)")
		b.screenshot("overview-rejected")
		w.writeSpec(t, "10-mappings.yaml", string(good))
		w.wait(t, loop.EventSpecLoaded)
		if rep := w.pass(t); rep.Reason != loop.ReasonSpecChange {
			t.Errorf("the fixed spec ran a pass for %q, want a spec change", rep.Reason)
		}
	})

	t.Run("pass filters", func(t *testing.T) {
		b.t = t
		b.open(w.url + "/passes")
		all := b.passRows()
		b.do(chromedp.SetValue(chromedp.CSS("#outcome"), "failed"))
		b.click("#filter")
		if got := b.passRows(); got != 1 {
			t.Errorf("%d passes with outcome failed, want 1", got)
		}
		b.contains("failed passes", "failed", "401")
		if !strings.Contains(b.location(), "outcome=failed") {
			t.Errorf("the filter form led to %s", b.location())
		}
		b.screenshot("passes-failed")
		// people: the start-up pass (creates), the blocked pass and the
		// fixed spec's pass (blocked again); not the clean pass, nor the
		// failed one, which planned nothing.
		b.open(w.url + "/passes?mapping=people")
		outcomes := eval[[]string](b, `Array.from(document.querySelectorAll("#passes tr.pass td:nth-child(5) .badge")).map(e => e.textContent)`)
		if diff := cmp.Diff([]string{"problems", "problems", "success"}, outcomes); diff != "" || all != 5 {
			t.Errorf("outcomes of the %d passes that concern mapping people (-want +got):\n%s", all, diff)
		}
		b.open(w.url + "/passes")
		b.screenshot("passes")
	})

	select {
	case msg := <-b.dialogs:
		t.Errorf("a page opened a dialog %q", msg)
	default:
	}
}

// TestBrowserAutoRefresh checks the one script: the overview reloads
// itself and shows a pass that ran meanwhile, with no click.
func TestBrowserAutoRefresh(t *testing.T) {
	b := newBrowser(t)
	w := newWorld(t, worldOptions{noToken: true, refresh: time.Second})
	w.pass(t)
	b.open(w.url + "/")
	if hidden := eval[bool](b, `document.getElementById("autorefresh").hidden`); hidden {
		t.Error("the auto-refresh box is hidden although the script runs")
	}
	w.loop.Trigger("test")
	rep := w.pass(t)
	// The page reloads itself; read it between reloads.
	deadline := time.Now().Add(waitLimit)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("last-pass-link") || {}).textContent || ""`))
		cancel()
		if err == nil && got == rep.ID {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the overview did not show pass %s by itself (last read %q, %v)", rep.ID, got, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
