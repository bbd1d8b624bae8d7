package loop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// TestLoopEndToEnd drives the loop against the embedded directory and the
// emulator: the start-up pass applies the demo, a spec edit triggers a
// pass, an invalid edit keeps the old spec and is reported, POST /sync runs
// a pass, and /metrics and /status say what happened.
func TestLoopEndToEnd(t *testing.T) {
	w := newWorld(t)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	cfg := w.config(clock, ev)
	cfg.WatchPaths = []string{w.specDir}
	l := startLoop(t, cfg)
	admin := httptest.NewServer(l.Handler(loop.AdminOptions{}))
	t.Cleanup(admin.Close)

	// The start-up pass is due at once; the loop is ready before it runs,
	// since a valid spec is in force.
	first := clock.next(t)
	if first.d != 0 {
		t.Errorf("first pass in %s, want 0 (the start-up pass)", first.d)
	}
	if code, _ := get(t, admin.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d before the first pass, want 200", code)
	}
	if code, body := get(t, admin.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %q with a valid spec before the first pass, want 200", code, body)
	}
	if st := getStatus(t, admin.URL); st.NextRunReason != loop.ReasonStartup || !st.NextRun.Equal(t0) {
		t.Errorf("/status next run %v for %q, want %v for %q", st.NextRun, st.NextRunReason, t0, loop.ReasonStartup)
	}

	// 1. The start-up pass applies the demo.
	clock.fire(first)
	rep := ev.pass(t)
	if rep.Outcome != loop.OutcomeSuccess || rep.Reason != loop.ReasonStartup {
		t.Fatalf("first pass: outcome %q reason %q error %q problems %v, want success at start-up", rep.Outcome, rep.Reason, rep.Error, rep.Problems)
	}
	if rep.Plan == nil || rep.Summary == nil || rep.Counts.Applied != rep.Summary.Total() || rep.Counts.Applied == 0 || rep.Counts.Failed != 0 {
		t.Fatalf("first pass: counts %+v of summary %+v, want all of a non-empty plan applied", rep.Counts, rep.Summary)
	}
	if len(rep.Changes) != rep.Counts.Applied || rep.Truncated {
		t.Errorf("first pass lists %d changes of %d applied (truncated %v), want all", len(rep.Changes), rep.Counts.Applied, rep.Truncated)
	}
	firstPlan := rep.Plan
	if next := clock.next(t); next.d != time.Hour {
		t.Errorf("next scheduled pass in %s, want 1h", next.d)
	}

	// 2. An edit, saved atomically, triggers a pass; nothing is left to do.
	good := readFile(t, "testdata/pandasync.yaml")
	w.writeSpec(t, "pandasync.yaml", good+"\n# edited\n")
	rep = ev.pass(t)
	if rep.Reason != loop.ReasonSpecChange || rep.Outcome != loop.OutcomeNoChanges {
		t.Errorf("after the edit: reason %q outcome %q error %q, want a spec change pass with no changes", rep.Reason, rep.Outcome, rep.Error)
	}

	// 3. An invalid edit is reported and the last good spec stays in force.
	w.writeSpec(t, "pandasync.yaml", strings.Replace(good, "role: Collaborator", "role: Collaborator\n  colour: blue", 1))
	inv := ev.wait(t, loop.EventSpecInvalid)
	var ps spec.Problems
	if !errors.As(inv.Err, &ps) {
		t.Fatalf("invalid spec error %v is not spec.Problems", inv.Err)
	}
	st := getStatus(t, admin.URL)
	if st.Spec.Valid || len(st.Spec.Problems) == 0 || !strings.Contains(strings.Join(st.Spec.Problems, "\n"), "colour") {
		t.Errorf("/status spec = %+v, want invalid with a problem naming the unknown field", st.Spec)
	}
	if len(st.Spec.Files) != 1 || st.Spec.LoadedAt.IsZero() || !st.Ready {
		t.Errorf("/status spec files %v loaded %v ready %v, want the last good set in force and ready", st.Spec.Files, st.Spec.LoadedAt, st.Ready)
	}

	// 4. POST /sync runs a pass now, still with the last good spec.
	resp, err := http.Post(admin.URL+"/sync", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST /sync = %d, want 202", resp.StatusCode)
	}
	rep = ev.pass(t)
	if rep.Reason != "POST /sync" || rep.Outcome != loop.OutcomeNoChanges {
		t.Errorf("on demand: reason %q outcome %q error %q, want POST /sync with no changes", rep.Reason, rep.Outcome, rep.Error)
	}
	if code, _ := get(t, admin.URL+"/sync"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /sync = %d, want 405", code)
	}

	// 5. Fixing the spec loads it and runs a pass.
	w.writeSpec(t, "pandasync.yaml", good)
	ev.wait(t, loop.EventSpecLoaded)
	rep = ev.pass(t)
	if rep.Reason != loop.ReasonSpecChange {
		t.Errorf("after the fix: reason %q, want spec change", rep.Reason)
	}

	// /status reports the last pass and its plan summary.
	st = getStatus(t, admin.URL)
	if !st.Ready || !st.Spec.Valid || st.Passes != 4 || st.ConsecutiveFailures != 0 || st.LastPass == nil ||
		st.LastPass.Outcome != loop.OutcomeNoChanges || st.LastPass.Summary == nil || st.NextRunReason != loop.ReasonSchedule ||
		st.State != loop.StateIdle {
		t.Errorf("/status = %+v, want idle, ready, valid spec, 4 passes, last one without changes, next by schedule", st)
	}
	if !st.LastSuccess.Equal(clock.Now()) {
		t.Errorf("/status last_success = %v, want %v", st.LastSuccess, clock.Now())
	}
	if got := len(l.History().Passes()); got != 4 {
		t.Errorf("history holds %d passes, want 4", got)
	}

	// /metrics counts the passes, changes, reloads and traffic.
	want := map[string]string{
		`pandasync_passes_total{outcome="failed"}`:       "0",
		`pandasync_passes_total{outcome="no_changes"}`:   "3",
		`pandasync_passes_total{outcome="problems"}`:     "0",
		`pandasync_passes_total{outcome="stopped"}`:      "0",
		`pandasync_passes_total{outcome="success"}`:      "1",
		`pandasync_passes_total{outcome="suspended"}`:    "0",
		`pandasync_spec_reloads_total{result="invalid"}`: "2", // the edit, and the reload POST /sync does
		`pandasync_spec_reloads_total{result="ok"}`:      "3",
		`pandasync_spec_valid`:                           "1",
		`pandasync_spec_info{dirty="false",revision=""}`: "1",
		`pandasync_consecutive_failures`:                 "0",
		`pandasync_audit_write_errors_total`:             "0",
		`pandasync_pass_duration_seconds_count`:          "4",
		`pandasync_pass_duration_seconds_sum`:            "0", // the fake clock stands still during passes
		`pandasync_last_success_timestamp_seconds`:       fmt.Sprint(float64(clock.Now().UnixNano()) / 1e9),
		`pandasync_loop_state{state="idle"}`:             "1",
		`pandasync_loop_state{state="backoff"}`:          "0",
		`pandasync_loop_state{state="degraded"}`:         "0",
		`pandasync_loop_state{state="quarantined"}`:      "0",
		`pandasync_loop_state{state="running"}`:          "0",
		`pandasync_loop_state{state="stalled"}`:          "0",
		`pandasync_loop_state{state="standby"}`:          "0",
		`pandasync_loop_state{state="starting"}`:         "0",
		`pandasync_loop_state{state="stopped"}`:          "0",
		`pandasync_loop_state{state="waiting_for_spec"}`: "0",
		// The first pass reads everything, the later ones what changed.
		`pandasync_reads_total{read="full"}`:  "1",
		`pandasync_reads_total{read="delta"}`: "3",
	}
	applied := map[string]int{}
	for _, c := range firstPlan.Changes {
		applied[fmt.Sprintf(`pandasync_changes_total{action="%s",mapping="%s",result="applied"}`, c.Action, c.Mapping)]++
	}
	for k, n := range applied {
		want[k] = strconv.Itoa(n)
	}
	_, body := get(t, admin.URL+"/metrics")
	got := map[string]string{}
	for _, line := range metricLines(body) {
		i := strings.LastIndexByte(line, ' ')
		got[line[:i]] = line[i+1:]
	}
	for _, positive := range []string{"pandasync_assetpanda_requests_total", "pandasync_ldap_entries_read_total", "pandasync_ldap_searches_total"} {
		if n, err := strconv.ParseFloat(got[positive], 64); err != nil || n <= 0 {
			t.Errorf("%s = %q, want a positive count", positive, got[positive])
		}
		delete(got, positive)
	}
	if got["pandasync_assetpanda_throttled_total"] != "0" {
		t.Errorf("pandasync_assetpanda_throttled_total = %q, want 0", got["pandasync_assetpanda_throttled_total"])
	}
	delete(got, "pandasync_assetpanda_throttled_total")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/metrics (-want +got):\n%s", diff)
	}
}

func getStatus(t *testing.T, base string) loop.Status {
	t.Helper()
	code, body := get(t, base+"/status")
	if code != http.StatusOK {
		t.Fatalf("/status = %d %s", code, body)
	}
	var st loop.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status is not a Status: %v\n%s", err, body)
	}
	return st
}

// TestLoopStartup checks the start-up pass and next_run: with runAtStart
// (the default) a pass runs at once and the schedule follows; without it
// the first pass waits for the schedule. Every pass logs when the next one
// is due and why, and /status shows the same.
func TestLoopStartup(t *testing.T) {
	tests := map[string]struct {
		extra      []string
		wantFirst  time.Duration
		wantReason string
	}{
		"start-up pass":    {nil, 0, loop.ReasonStartup},
		"no start-up pass": {[]string{"runAtStart: false"}, 40 * time.Minute, loop.ReasonSchedule},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.writeSpec(t, "pandasync.yaml", withSchedule(t, `{start: "02:00", every: 1h}`, tc.extra...))
			clock := newFakeClock(t0)
			ev := make(events, 1000)
			var logs logBuffer
			cfg := w.config(clock, ev)
			cfg.Jitter = -1
			cfg.Logger = logs.logger()
			l := startLoop(t, cfg)

			tm := clock.next(t)
			if wait := ev.wait(t, loop.EventWaiting); wait.Reason != tc.wantReason || !wait.Next.Equal(t0.Add(tc.wantFirst)) {
				t.Errorf("first wait until %v for %q, want %v for %q", wait.Next, wait.Reason, t0.Add(tc.wantFirst), tc.wantReason)
			}
			if tm.d != tc.wantFirst {
				t.Errorf("first pass in %s, want %s", tm.d, tc.wantFirst)
			}
			if st := l.Status(); st.NextRunReason != tc.wantReason || !st.NextRun.Equal(t0.Add(tc.wantFirst)) || st.State != loop.StateIdle {
				t.Errorf("status before the first pass: state %q next %v for %q, want idle, %v for %q", st.State, st.NextRun, st.NextRunReason, t0.Add(tc.wantFirst), tc.wantReason)
			}
			clock.fire(tm)
			if rep := ev.pass(t); rep.Reason != tc.wantReason || rep.Outcome != loop.OutcomeSuccess {
				t.Fatalf("first pass: reason %q outcome %q error %q", rep.Reason, rep.Outcome, rep.Error)
			}
			// Whichever way it started, the next pass is the 11:00 slot.
			next := clock.next(t)
			wantNext := time.Date(2025, 1, 15, 11, 0, 0, 0, time.Local)
			if tc.wantFirst > 0 {
				wantNext = wantNext.Add(time.Hour) // the first pass was the 11:00 slot
			}
			if !next.at.Equal(wantNext) {
				t.Errorf("second pass at %v, want %v", next.at, wantNext)
			}
			if st := l.Status(); !st.NextRun.Equal(wantNext) || st.NextRunReason != loop.ReasonSchedule {
				t.Errorf("status next run %v for %q, want %v for schedule", st.NextRun, st.NextRunReason, wantNext)
			}
			done := logs.lines(t, "pass finished")
			if len(done) != 1 || done[0]["next_run"] != wantNext.Format(time.RFC3339) || done[0]["next_run_reason"] != loop.ReasonSchedule {
				t.Errorf(`"pass finished" lines %v, want one with next_run %s and next_run_reason schedule`, done, wantNext.Format(time.RFC3339))
			}
		})
	}
}

// TestLoopBackoff checks that failed passes are retried after capped,
// exponentially growing, jittered waits, that a success resets the
// backoff, and that the schedule resumes.
func TestLoopBackoff(t *testing.T) {
	tests := map[string]struct {
		rand float64
		want []time.Duration
	}{
		"no jitter": {0, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}},
		// Jitter 0.5 at rand 0.5 shortens every wait by a quarter.
		"jitter": {0.5, []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 6 * time.Second}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			// Neither degraded nor quarantine change the backoff.
			w.writeSpec(t, "pandasync.yaml", policy(t, "quarantine: {after: -1}"))
			clock := newFakeClock(t0)
			ev := make(events, 1000)
			var failing atomic.Int32
			failing.Store(int32(len(tc.want)))
			cfg := w.config(clock, ev)
			cfg.BackoffBase, cfg.BackoffMax = time.Second, 8*time.Second
			cfg.Jitter = 0.5
			cfg.Rand = func() float64 { return tc.rand }
			cfg.Reconciler = &loop.Syncer{Connect: w.failingConnect(&failing, errFlaky)}
			l := startLoop(t, cfg)

			clock.fire(clock.next(t)) // the start-up pass
			var got []time.Duration
			for range tc.want {
				rep := ev.pass(t)
				if rep.Outcome != loop.OutcomeFailed || rep.Terminal || !strings.Contains(rep.Error, errFlaky.Error()) {
					t.Fatalf("pass: outcome %q terminal %v error %q, want a retryable failure", rep.Outcome, rep.Terminal, rep.Error)
				}
				tm := clock.next(t)
				got = append(got, tm.d)
				clock.fire(tm)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("backoff waits (-want +got):\n%s", diff)
			}
			rep := ev.pass(t)
			if rep.Outcome != loop.OutcomeSuccess || rep.Reason != loop.ReasonRetry {
				t.Fatalf("recovery pass: outcome %q reason %q error %q, want success on retry", rep.Outcome, rep.Reason, rep.Error)
			}
			if st := l.Status(); st.ConsecutiveFailures != 0 || st.LastPass.Outcome != loop.OutcomeSuccess {
				t.Errorf("status after recovery: %d failures, last %q; want 0, success", st.ConsecutiveFailures, st.LastPass.Outcome)
			}
			// Back on schedule: the next slot is an hour after the start,
			// plus its jitter.
			tm := clock.next(t)
			jitter := time.Duration(0.5 * tc.rand * float64(time.Hour))
			if want := t0.Add(time.Hour).Add(jitter); !tm.at.Equal(want) {
				t.Errorf("after recovery the next pass is at %v, want %v", tm.at, want)
			}

			// A new failure starts the backoff from the beginning.
			failing.Store(1)
			l.Trigger("test")
			if rep := ev.pass(t); rep.Outcome != loop.OutcomeFailed {
				t.Fatalf("pass: outcome %q, want failed", rep.Outcome)
			}
			if tm := clock.next(t); tm.d != tc.want[0] {
				t.Errorf("backoff after a success = %s, want %s", tm.d, tc.want[0])
			}
		})
	}
}

// TestLoopSchedule checks the schedule's slots when there is no start-up
// pass: the first at start, then every interval.
func TestLoopSchedule(t *testing.T) {
	tests := map[string]struct {
		schedule string
		jitter   float64 // at rand 0.5
		want     []time.Duration
	}{
		"no start":        {"{every: 1h}", 0, []time.Duration{0, time.Hour, time.Hour}},
		"clock start":     {`{start: "02:00", every: 1h}`, 0, []time.Duration{40 * time.Minute, time.Hour, time.Hour}},
		"daily":           {`{start: "02:00", every: 24h}`, 0, []time.Duration{15*time.Hour + 40*time.Minute, 24 * time.Hour, 24 * time.Hour}},
		"timestamp start": {`{start: "` + t0.Add(30*time.Minute).Format(time.RFC3339) + `", every: 2h}`, 0, []time.Duration{30 * time.Minute, 2 * time.Hour, 2 * time.Hour}},
		// The first slot is on time; each later one up to 10 % of the
		// interval late (here 3 minutes), never drifting.
		"jittered": {`{start: "02:00", every: 1h}`, 0.1, []time.Duration{40 * time.Minute, time.Hour + 3*time.Minute, time.Hour}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.writeSpec(t, "pandasync.yaml", withSchedule(t, tc.schedule, "runAtStart: false"))
			clock := newFakeClock(t0)
			ev := make(events, 1000)
			cfg := w.config(clock, ev)
			cfg.Jitter = tc.jitter
			if tc.jitter == 0 {
				cfg.Jitter = -1
			}
			cfg.Rand = func() float64 { return 0.5 }
			startLoop(t, cfg)

			var got []time.Duration
			for range 3 {
				tm := clock.next(t)
				got = append(got, tm.d)
				clock.fire(tm)
				if rep := ev.pass(t); rep.Reason != loop.ReasonSchedule || !rep.Outcome.Green() {
					t.Fatalf("pass: reason %q outcome %q error %q", rep.Reason, rep.Outcome, rep.Error)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("waits between passes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoopStalled checks that a failure retrying cannot fix, as a provider
// classifies it, is not retried: the loop is stalled and not ready until
// the spec changes, which runs a pass at once. The error comes from the real
// Asset Panda client, refused by the emulator.
func TestLoopStalled(t *testing.T) {
	w := newWorld(t)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	var broken atomic.Bool
	broken.Store(true)
	cfg := w.config(clock, ev)
	cfg.WatchPaths = []string{w.specDir}
	cfg.Reconciler = &loop.Syncer{Connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
		if !broken.Load() {
			return w.connect(ctx, set, log)
		}
		dir, err := activedirectory.New(activedirectory.Config{URLs: []string{w.ldapURL}, BaseDN: demoBase,
			BindDN: demoBindDN, Password: demoPassword, AllowCleartextBind: true, Logger: log})
		if err != nil {
			return nil, err
		}
		ap, err := assetpanda.New(assetpanda.Config{URL: w.apURL, ClientID: "demo-client", ClientSecret: "demo-secret",
			Email: "admin@example.com", Password: "a wrong password", Logger: log})
		if err != nil {
			return nil, err
		}
		return loop.NewProviders(dir, ap), nil
	}}
	l := startLoop(t, cfg)
	admin := httptest.NewServer(l.Handler(loop.AdminOptions{}))
	t.Cleanup(admin.Close)
	clock.fire(clock.next(t))
	rep := ev.pass(t)
	if rep.Outcome != loop.OutcomeFailed || !rep.Terminal {
		t.Fatalf("pass: outcome %q terminal %v, want a terminal failure", rep.Outcome, rep.Terminal)
	}
	if wait := ev.wait(t, loop.EventWaiting); !wait.Next.IsZero() {
		t.Errorf("after a terminal failure the loop runs again at %v, want only after an event", wait.Next)
	}
	st := l.Status()
	if st.State != loop.StateStalled || !st.NextRun.IsZero() || st.Ready || !strings.Contains(st.ReadyReason, rep.Error) {
		t.Errorf("status state %q next %v ready %v (%q), want stalled, no next run, not ready naming the error", st.State, st.NextRun, st.Ready, st.ReadyReason)
	}
	if st.ConsecutiveFailures != 1 || !st.LastSuccess.IsZero() {
		t.Errorf("refused credentials: consecutive failures %d, last success %v; want 1 and none (defect 3 of issue 8)", st.ConsecutiveFailures, st.LastSuccess)
	}
	if code, body := get(t, admin.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "retrying cannot fix it") {
		t.Errorf("/readyz = %d %q, want 503 saying retrying cannot fix it", code, body)
	}

	broken.Store(false)
	w.writeSpec(t, "pandasync.yaml", readFile(t, "testdata/pandasync.yaml")+"\n# fixed\n")
	rep = ev.pass(t)
	if rep.Reason != loop.ReasonSpecChange || rep.Outcome != loop.OutcomeSuccess {
		t.Errorf("after the spec change: reason %q outcome %q error %q, want a successful spec change pass", rep.Reason, rep.Outcome, rep.Error)
	}
	if code, _ := get(t, admin.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d after the fix, want 200", code)
	}
}

// TestLoopDegradedQuarantine walks the loop through its health states with
// a directory that stays down: backoff, degraded after degradedAfter
// failures, quarantined after quarantine.after with one attempt every
// retryEvery (never more often than the schedule); a spec change retries
// at once, and a green pass ends it all.
func TestLoopDegradedQuarantine(t *testing.T) {
	w := newWorld(t)
	w.writeSpec(t, "pandasync.yaml", policy(t, "degradedAfter: 2", "quarantine: {after: 4, retryEvery: 3h}"))
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	var failing atomic.Int32
	failing.Store(1000)
	cfg := w.config(clock, ev)
	cfg.WatchPaths = []string{w.specDir}
	cfg.BackoffBase, cfg.BackoffMax = time.Second, time.Minute
	cfg.Jitter = -1
	cfg.Reconciler = &loop.Syncer{Connect: w.failingConnect(&failing, errFlaky)}
	l := startLoop(t, cfg)

	type step struct {
		State   loop.State
		Wait    time.Duration
		Reason  string
		Failing int
	}
	var got []step
	tm := clock.next(t)
	for range 5 {
		clock.fire(tm)
		if rep := ev.pass(t); rep.Outcome != loop.OutcomeFailed {
			t.Fatalf("pass: outcome %q, want failed", rep.Outcome)
		}
		tm = clock.next(t)
		st := l.Status()
		got = append(got, step{st.State, tm.d, st.NextRunReason, st.ConsecutiveFailures})
	}
	want := []step{
		{loop.StateBackoff, time.Second, loop.ReasonRetry, 1},
		{loop.StateDegraded, 2 * time.Second, loop.ReasonRetry, 2},
		{loop.StateDegraded, 4 * time.Second, loop.ReasonRetry, 3},
		{loop.StateQuarantined, 3 * time.Hour, loop.ReasonQuarantine, 4},
		{loop.StateQuarantined, 3 * time.Hour, loop.ReasonQuarantine, 5},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("health after each failed pass (-want +got):\n%s", diff)
	}
	st := l.Status()
	if st.QuarantinedSince.IsZero() || !strings.Contains(st.StateReason, "one attempt every 3h0m0s") {
		t.Errorf("status %+v, want the quarantine's start and its retry interval", st)
	}

	// A spec change retries at once, even in quarantine; still failing,
	// the loop stays quarantined.
	w.writeSpec(t, "pandasync.yaml", policy(t, "degradedAfter: 2", "quarantine: {after: 4, retryEvery: 3h}")+"# edited\n")
	if rep := ev.pass(t); rep.Reason != loop.ReasonSpecChange || rep.Outcome != loop.OutcomeFailed {
		t.Fatalf("pass after the spec change: reason %q outcome %q, want a failed spec change pass", rep.Reason, rep.Outcome)
	}
	if tm := clock.next(t); tm.d != 3*time.Hour || l.Status().State != loop.StateQuarantined {
		t.Errorf("after a failed spec change pass: next in %s, state %q; want 3h, quarantined", tm.d, l.Status().State)
	}

	// POST /sync, once the directory is back, ends the quarantine.
	failing.Store(0)
	l.Trigger("POST /sync")
	if rep := ev.pass(t); rep.Outcome != loop.OutcomeSuccess {
		t.Fatalf("pass after the fix: outcome %q error %q, want success", rep.Outcome, rep.Error)
	}
	tm = clock.next(t)
	st = l.Status()
	if st.State != loop.StateIdle || st.ConsecutiveFailures != 0 || !st.QuarantinedSince.IsZero() || st.NextRunReason != loop.ReasonSchedule || tm.d > time.Hour {
		t.Errorf("after recovery: %+v next in %s, want idle, 0 failures, not quarantined, next by schedule", st, tm.d)
	}
}

// TestLoopProblems checks a pass that finishes with problems (here a
// mapping that names a collection Asset Panda lacks): it is not green, so
// it counts toward consecutive_failures and degraded and does not move
// last_success, but it is not retried early: the next scheduled pass is
// the retry.
func TestLoopProblems(t *testing.T) {
	w := newWorld(t)
	w.writeSpec(t, "pandasync.yaml", policy(t, "degradedAfter: 2"))
	w.writeSpec(t, "typo.yaml", `apiVersion: pandasync.dev/v1alpha1
kind: CollectionMapping
metadata: {name: typo}
spec:
  account: Acme
  module: IT Assets
  collection: Peeple
  group: CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com
  key: {field: AD SID}
`)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	cfg := w.config(clock, ev)
	cfg.Jitter = -1
	l := startLoop(t, cfg)
	clock.fire(clock.next(t))
	rep := ev.pass(t)
	if rep.Outcome != loop.OutcomeProblems || rep.Counts.Problems == 0 || len(rep.Problems) != rep.Counts.Problems || rep.Error != "" {
		t.Fatalf("pass: outcome %q counts %+v problems %v error %q, want problems listed, no error", rep.Outcome, rep.Counts, rep.Problems, rep.Error)
	}
	if rep.Counts.Applied == 0 {
		t.Errorf("the other mappings applied nothing; want them applied")
	}
	tm := clock.next(t)
	st := l.Status()
	if tm.d != time.Hour || st.NextRunReason != loop.ReasonSchedule || st.State != loop.StateIdle || st.ConsecutiveFailures != 1 || !st.LastSuccess.IsZero() {
		t.Errorf("after a pass with problems: next in %s for %q, status %+v; want the schedule, idle, 1 failure, no last success", tm.d, st.NextRunReason, st)
	}
	clock.fire(tm)
	if rep := ev.pass(t); rep.Outcome != loop.OutcomeProblems || rep.Reason != loop.ReasonSchedule {
		t.Fatalf("second pass: outcome %q reason %q, want problems on schedule", rep.Outcome, rep.Reason)
	}
	clock.next(t)
	if st := l.Status(); st.State != loop.StateDegraded || st.ConsecutiveFailures != 2 {
		t.Errorf("after two passes with problems: state %q failures %d, want degraded, 2", st.State, st.ConsecutiveFailures)
	}
}

// TestLoopReadiness pins down /readyz: 503 until a valid spec is in force,
// 200 while it is (before any pass, and through retryable failures), 503
// after a terminal failure.
func TestLoopReadiness(t *testing.T) {
	tests := map[string]struct {
		spec      string
		err       error
		wantCode  int
		wantState loop.State
	}{
		"no valid spec":     {"kind: Nonsense\n", nil, http.StatusServiceUnavailable, loop.StateWaitingForSpec},
		"healthy":           {"", nil, http.StatusOK, loop.StateIdle},
		"retryable failure": {"", errFlaky, http.StatusOK, loop.StateBackoff},
		"terminal failure":  {"", &terminalError{"bind: invalid credentials"}, http.StatusServiceUnavailable, loop.StateStalled},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			if tc.spec != "" {
				w.writeSpec(t, "pandasync.yaml", tc.spec)
			}
			clock := newFakeClock(t0)
			ev := make(events, 1000)
			cfg := w.config(clock, ev)
			var failing atomic.Int32
			if tc.err != nil {
				failing.Store(1)
			}
			cfg.Reconciler = &loop.Syncer{Connect: w.failingConnect(&failing, tc.err)}
			l := startLoop(t, cfg)
			admin := httptest.NewServer(l.Handler(loop.AdminOptions{}))
			t.Cleanup(admin.Close)
			if tc.spec == "" {
				clock.fire(clock.next(t))
				ev.pass(t)
			}
			ev.wait(t, loop.EventWaiting)
			code, body := get(t, admin.URL+"/readyz")
			if code != tc.wantCode || !strings.Contains(body, string(tc.wantState)) {
				t.Errorf("/readyz = %d %q, want %d in state %s", code, body, tc.wantCode, tc.wantState)
			}
		})
	}
}

// blockingDirectory blocks every read until the pass's context ends.
type blockingDirectory struct {
	reconcile.DirectoryReader
	entered chan struct{}
}

func (d blockingDirectory) Read(ctx context.Context, q activedirectory.Query) (*activedirectory.Result, error) {
	d.entered <- struct{}{}
	<-ctx.Done()
	return nil, fmt.Errorf("read: %w", ctx.Err())
}

// noTarget is an Asset Panda that answers no read until the pass is
// cancelled; it accepts no write (the embedded interface is nil).
type noTarget struct{ reconcile.TargetWriter }

func (noTarget) Collection(ctx context.Context, _, _, _ string) (*assetpanda.Collection, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (noTarget) Role(ctx context.Context, _, _, _ string) (*assetpanda.Role, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (noTarget) Users(ctx context.Context) ([]assetpanda.User, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestLoopStopDuringRead checks that stopping the loop (what SIGTERM does)
// during a read does not cancel it at once: the pass gets the shutdown
// timeout, is then cancelled, ends as stopped, and Run returns nil.
func TestLoopStopDuringRead(t *testing.T) {
	w := newWorld(t)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	entered := make(chan struct{}, 1)
	closed := make(chan struct{}, 1)
	cfg := w.config(clock, ev)
	cfg.ShutdownTimeout = 50 * time.Millisecond
	cfg.Reconciler = &loop.Syncer{Connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
		return &loop.Providers{Directory: blockingDirectory{entered: entered}, Target: noTarget{},
			Close: func() { closed <- struct{}{} }}, nil
	}}
	l, err := loop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	clock.fire(clock.next(t))
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatal("the pass never read the directory")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after the shutdown timeout")
	}
	rep := ev.pass(t)
	if rep.Outcome != loop.OutcomeStopped {
		t.Errorf("pass outcome %q error %q, want stopped", rep.Outcome, rep.Error)
	}
	select {
	case <-closed:
	default:
		t.Error("the providers were not closed")
	}
	if st := l.Status(); st.State != loop.StateStopped || st.ConsecutiveFailures != 0 {
		t.Errorf("status state %q failures %d, want stopped, and a stopped pass not counted as a failure", st.State, st.ConsecutiveFailures)
	}
}

// TestLoopPassFailures checks that a panic, a pass that overruns its
// timeout and a reconciler that returns nothing are reported as retryable
// failures, each logged once, and the loop carries on.
func TestLoopPassFailures(t *testing.T) {
	tests := map[string]struct {
		connect   func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error)
		wantError string
	}{
		"panic": {
			connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
				panic("boom")
			},
			wantError: "pass panicked: boom",
		},
		"timeout": {
			connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
				return &loop.Providers{Directory: blockingDirectory{entered: make(chan struct{}, 10)}, Target: noTarget{}}, nil
			},
			wantError: "pass did not finish within 50ms",
		},
		"no providers": {
			connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
				return nil, nil
			},
			wantError: "connect returned no providers",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			clock := newFakeClock(t0)
			ev := make(events, 1000)
			var logs logBuffer
			cfg := w.config(clock, ev)
			cfg.BackoffBase = time.Second
			cfg.PassTimeout = 50 * time.Millisecond
			cfg.Logger = logs.logger()
			cfg.Reconciler = &loop.Syncer{Connect: tc.connect}
			startLoop(t, cfg)
			clock.fire(clock.next(t))
			rep := ev.pass(t)
			if rep.Outcome != loop.OutcomeFailed || rep.Terminal || !strings.Contains(rep.Error, tc.wantError) {
				t.Errorf("pass: outcome %q terminal %v error %q, want a retryable failure with %q", rep.Outcome, rep.Terminal, rep.Error, tc.wantError)
			}
			if tm := clock.next(t); tm.d != time.Second {
				t.Errorf("retry in %s, want 1s", tm.d)
			}
			if n := strings.Count(logs.String(), tc.wantError); n != 1 {
				t.Errorf("the error is logged %d times, want once:\n%s", n, logs.String())
			}
			failed := logs.lines(t, "pass failed")
			if len(failed) != 1 || failed[0]["next_run_reason"] != loop.ReasonRetry {
				t.Errorf(`"pass failed" lines %v, want one naming the retry`, failed)
			}
			if name == "panic" && !strings.Contains(fmt.Sprint(failed[0]["stack"]), "runtime/debug.Stack") {
				t.Errorf("the panic's stack is not logged: %v", failed[0])
			}
		})
	}
}

// TestLoopOnce checks the single pass of `run -once`: its outcomes, a spec
// error returned rather than logged, and logs that promise no retry.
func TestLoopOnce(t *testing.T) {
	w := newWorld(t)
	ev := make(events, 1000)
	var logs logBuffer
	cfg := w.config(newFakeClock(t0), ev)
	cfg.Logger = logs.logger()
	var failing atomic.Int32
	cfg.Reconciler = &loop.Syncer{Connect: w.failingConnect(&failing, errFlaky)}
	l, err := loop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []loop.Outcome
	for range 2 {
		rep, err := l.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rep.Outcome)
	}
	failing.Store(1)
	rep, err := l.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, rep.Outcome)
	if diff := cmp.Diff([]loop.Outcome{loop.OutcomeSuccess, loop.OutcomeNoChanges, loop.OutcomeFailed}, got); diff != "" {
		t.Errorf("outcomes of three passes (-want +got):\n%s", diff)
	}
	failed := logs.lines(t, "pass failed")
	if len(failed) != 1 || failed[0]["next_run"] != nil || failed[0]["next_run_reason"] != nil {
		t.Errorf(`"pass failed" lines %v, want one that promises no next run`, failed)
	}

	w.writeSpec(t, "pandasync.yaml", "kind: Nonsense\n")
	logs.mu.Lock()
	logs.b.Reset()
	logs.mu.Unlock()
	if _, err := l.Once(context.Background()); !loop.IsTerminal(err) {
		t.Errorf("Once with an invalid spec = %v, want a spec error", err)
	}
	if strings.Contains(logs.String(), "Nonsense") || strings.Contains(logs.String(), "not valid") {
		t.Errorf("Once logged the spec error it returns:\n%s", logs.String())
	}
}

func TestIsTerminal(t *testing.T) {
	tests := map[string]struct {
		err  error
		want bool
	}{
		"nil":            {nil, false},
		"plain":          {errFlaky, false},
		"marked":         {fmt.Errorf("connect: %w", loop.Terminal(errFlaky)), true},
		"provider":       {fmt.Errorf("plan: %w", &terminalError{"401"}), true},
		"provider no":    {fmt.Errorf("plan: %w", &notTerminal{errFlaky}), false},
		"deeper says so": {&notTerminal{&terminalError{"403"}}, true},
		"joined":         {errors.Join(errFlaky, &terminalError{"401"}), true},
		"spec problems":  {fmt.Errorf("load: %w", spec.Problems{{Message: "required"}}), true},
		"canceled":       {context.Canceled, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := loop.IsTerminal(tc.err); got != tc.want {
				t.Errorf("IsTerminal(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if loop.Terminal(nil) != nil {
		t.Error("Terminal(nil) != nil")
	}
	if err := loop.Terminal(errFlaky); !errors.Is(err, errFlaky) || err.Error() != errFlaky.Error() {
		t.Errorf("Terminal(err) = %v, want it to wrap err unchanged", err)
	}
}

// notTerminal is a provider error that says retrying may help.
type notTerminal struct{ err error }

func (e *notTerminal) Error() string  { return "retryable: " + e.err.Error() }
func (e *notTerminal) Unwrap() error  { return e.err }
func (e *notTerminal) Terminal() bool { return false }
