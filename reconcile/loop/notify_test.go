package loop_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// receiver is a webhook endpoint that records what it receives, by path.
type receiver struct {
	mu     sync.Mutex
	bodies map[string][]string
	srv    *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{bodies: map[string][]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies[req.URL.Path] = append(r.bodies[req.URL.Path], string(b))
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// wait returns the bodies for path once there are n.
func (r *receiver) wait(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.bodies[path]...)
		r.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The canaries are secrets: none may appear in a notification or a log.
const (
	canaryHook  = "CANARY-hook-token"
	canaryAdmin = "CANARY-admin-token"
)

// TestNotifications drives the loop through failures, degraded,
// quarantine, recovery and blocked changes: each webhook, in each format,
// hears of each once, in order; repeats are not sent again; nothing holds
// a secret.
func TestNotifications(t *testing.T) {
	w := newWorld(t)
	rcv := newReceiver(t)
	env := map[string]string{
		"HOOK_JSON":   rcv.srv.URL + "/json/" + canaryHook,
		"HOOK_SLACK":  rcv.srv.URL + "/slack/" + canaryHook,
		"ADMIN_TOKEN": canaryAdmin,
	}
	hooks := []string{
		"webhooks:",
		"  - {name: ops-json, url: {env: HOOK_JSON}}",
		"  - {name: ops-slack, url: {env: HOOK_SLACK}, format: slack}",
		"  - {name: ops-teams, url: " + rcv.srv.URL + "/teams/" + canaryHook + ", format: teams}",
		"admin: {token: {env: ADMIN_TOKEN}}",
		"degradedAfter: 2",
		"quarantine: {after: 3, retryEvery: 2h}",
		"limits: {maxDeactivations: 1, maxDeactivationPercent: -1}",
	}
	w.writeSpec(t, "pandasync.yaml", strings.Replace(policy(t, hooks...),
		"  limits: {maxDeactivations: 500, maxDeactivationPercent: 20}\n", "", 1))
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	var logs logBuffer
	var failing atomic.Int32
	failing.Store(3)
	cfg := w.config(clock, ev)
	cfg.Logger = logs.logger()
	cfg.Host = "sync01"
	cfg.Resolver = spec.Resolver{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	cfg.BackoffBase = time.Second
	cfg.Reconciler = &loop.Syncer{Connect: w.failingConnect(&failing, errFlaky)}
	l, err := loop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer cancel()

	// Three failed passes: pass_failed (once: the error repeats),
	// degraded, quarantined.
	tm := clock.next(t)
	for range 3 {
		clock.fire(tm)
		if rep := ev.pass(t); rep.Outcome != loop.OutcomeFailed {
			t.Fatalf("pass: %q, want failed", rep.Outcome)
		}
		tm = clock.next(t)
	}
	// Recovery.
	l.Trigger("POST /sync")
	if rep := ev.pass(t); rep.Outcome != loop.OutcomeSuccess {
		t.Fatalf("pass: %q %q, want success", rep.Outcome, rep.Error)
	}
	// Three people leave All Staff; one deactivation is allowed.
	if err := w.dir.Replace("CN=All Staff,OU=Groups,"+demoBase, "member",
		"CN=Engineering,OU=Groups,"+demoBase, "CN=Grace Hopper,OU=People,"+demoBase); err != nil {
		t.Fatal(err)
	}
	// The second pass blocks the same changes: not sent again; but two
	// passes in a row that are not green make the loop degraded again.
	for range 2 {
		l.Trigger("POST /sync")
		if rep := ev.pass(t); rep.Outcome != loop.OutcomeProblems || rep.Counts.Blocked == 0 {
			t.Fatalf("pass: %q blocked %d, want problems with blocked changes", rep.Outcome, rep.Counts.Blocked)
		}
	}
	// Stopping delivers what is queued.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	wantEvents := []loop.NotificationEvent{loop.NotifyPassFailed, loop.NotifyDegraded, loop.NotifyQuarantined, loop.NotifyRecovered,
		loop.NotifyChangesBlocked, loop.NotifyDegraded}
	jsonBodies := rcv.wait(t, "/json/"+canaryHook, len(wantEvents))
	var gotEvents []loop.NotificationEvent
	for _, b := range jsonBodies {
		var n loop.Notification
		if err := json.Unmarshal([]byte(b), &n); err != nil {
			t.Fatalf("json notification %q: %v", b, err)
		}
		gotEvents = append(gotEvents, n.Event)
		if n.Host != "sync01" || n.Message == "" || n.Pass == nil || n.Pass.ID == "" || n.Time.IsZero() {
			t.Errorf("json notification %+v lacks host, message or pass", n)
		}
		if n.Event == loop.NotifyQuarantined && (n.State != loop.StateQuarantined || n.NextRunReason != loop.ReasonQuarantine) {
			t.Errorf("quarantine notification %+v, want the quarantined state and its next attempt", n)
		}
		if n.Event == loop.NotifyChangesBlocked && (len(n.Details) == 0 || !strings.Contains(n.Details[0], "maxDeactivations")) {
			t.Errorf("blocked notification details %q, want the mapping and the limit", n.Details)
		}
	}
	if diff := cmp.Diff(wantEvents, gotEvents); diff != "" {
		t.Errorf("json notifications (-want +got):\n%s", diff)
	}
	slack := rcv.wait(t, "/slack/"+canaryHook, len(wantEvents))
	teams := rcv.wait(t, "/teams/"+canaryHook, len(wantEvents))
	if len(slack) != len(wantEvents) || len(teams) != len(wantEvents) {
		t.Fatalf("slack got %d, teams %d notifications, want %d each", len(slack), len(teams), len(wantEvents))
	}
	for i := range slack {
		var s struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(slack[i]), &s); err != nil || !strings.HasPrefix(s.Text, "*pandasync on sync01: ") {
			t.Errorf("slack body %q (%v), want a text starting with the host", slack[i], err)
		}
		var m struct {
			Type        string `json:"type"`
			Attachments []struct {
				ContentType string `json:"contentType"`
				Content     struct {
					Type string           `json:"type"`
					Body []map[string]any `json:"body"`
				} `json:"content"`
			} `json:"attachments"`
		}
		if err := json.Unmarshal([]byte(teams[i]), &m); err != nil || m.Type != "message" || len(m.Attachments) != 1 ||
			m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" || m.Attachments[0].Content.Type != "AdaptiveCard" ||
			len(m.Attachments[0].Content.Body) == 0 {
			t.Errorf("teams body %q (%v), want an Adaptive Card message", teams[i], err)
		}
	}

	all := strings.Join(append(append(jsonBodies, slack...), teams...), "\n") + logs.String()
	for _, secret := range []string{canaryHook, canaryAdmin, demoPassword, "demo-secret"} {
		if strings.Contains(all, secret) {
			t.Errorf("a notification or log holds the secret %q", secret)
		}
	}

	// The metrics count what was sent and what was deduplicated.
	admin := httptest.NewServer(l.Handler(loop.AdminOptions{}))
	t.Cleanup(admin.Close)
	_, metrics := get(t, admin.URL+"/metrics")
	for _, want := range []string{
		`pandasync_notifications_total{event="pass_failed",result="sent"} 3`,
		`pandasync_notifications_total{event="pass_failed",result="deduplicated"} 2`,
		`pandasync_notifications_total{event="changes_blocked",result="deduplicated"} 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
