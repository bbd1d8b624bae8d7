package reconcile_test

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

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/spec"
)

// TestLoopEndToEnd drives the loop against the embedded directory and the
// emulator: the first scheduled pass applies the demo, a spec edit triggers
// a pass, an invalid edit keeps the old spec and is reported, POST /sync
// runs a pass, and /metrics and /status say what happened.
func TestLoopEndToEnd(t *testing.T) {
	w := newWorld(t)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	cfg := w.config(clock, ev)
	cfg.WatchPaths = []string{w.specDir}
	l := startLoop(t, cfg)
	admin := httptest.NewServer(l.Handler())
	t.Cleanup(admin.Close)

	// Waiting for the first scheduled run: alive, not ready.
	first := clock.next(t)
	if first.d != 0 {
		t.Errorf("first run in %s, want 0 (the schedule has no start)", first.d)
	}
	if code, _ := get(t, admin.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d before the first pass, want 200", code)
	}
	if code, body := get(t, admin.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d %q before the first pass, want 503", code, body)
	}

	// 1. The scheduled pass applies the demo.
	clock.fire(first)
	rep := ev.pass(t)
	if rep.Outcome != reconcile.OutcomeSuccess || rep.Reason != reconcile.ReasonSchedule {
		t.Fatalf("first pass: outcome %q reason %q error %q problems %v, want success by schedule", rep.Outcome, rep.Reason, rep.Error, rep.Problems)
	}
	if rep.Plan == nil || rep.Summary == nil || rep.Applied != rep.Summary.Total() || rep.Applied == 0 || rep.Failed != 0 {
		t.Fatalf("first pass: applied %d failed %d of summary %+v, want all of a non-empty plan", rep.Applied, rep.Failed, rep.Summary)
	}
	firstPlan := rep.Plan
	if code, _ := get(t, admin.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d after the first pass, want 200", code)
	}
	if next := clock.next(t); next.d != time.Hour {
		t.Errorf("next scheduled run in %s, want 1h", next.d)
	}

	// 2. An edit, saved atomically, triggers a pass; nothing is left to do.
	good := readFile(t, "testdata/loop/pandasync.yaml")
	w.writeSpec(t, "pandasync.yaml", good+"\n# edited\n")
	rep = ev.pass(t)
	if rep.Reason != reconcile.ReasonSpecChange || rep.Outcome != reconcile.OutcomeNoChanges {
		t.Errorf("after the edit: reason %q outcome %q error %q, want a spec change pass with no changes", rep.Reason, rep.Outcome, rep.Error)
	}

	// 3. An invalid edit is reported and the last good spec stays in force.
	w.writeSpec(t, "pandasync.yaml", strings.Replace(good, "role: Collaborator", "role: Collaborator\n  colour: blue", 1))
	inv := ev.wait(t, reconcile.EventSpecInvalid)
	var ps spec.Problems
	if !errors.As(inv.Err, &ps) {
		t.Fatalf("invalid spec error %v is not spec.Problems", inv.Err)
	}
	st := getStatus(t, admin.URL)
	if st.Spec.Valid || len(st.Spec.Problems) == 0 || !strings.Contains(strings.Join(st.Spec.Problems, "\n"), "colour") {
		t.Errorf("/status spec = %+v, want invalid with a problem naming the unknown field", st.Spec)
	}
	if len(st.Spec.Files) != 1 || st.Spec.LoadedAt.IsZero() {
		t.Errorf("/status spec files %v loaded %v, want the last good set", st.Spec.Files, st.Spec.LoadedAt)
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
	if rep.Reason != "POST /sync" || rep.Outcome != reconcile.OutcomeNoChanges {
		t.Errorf("on demand: reason %q outcome %q error %q, want POST /sync with no changes", rep.Reason, rep.Outcome, rep.Error)
	}
	if code, _ := get(t, admin.URL+"/sync"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /sync = %d, want 405", code)
	}

	// 5. Fixing the spec loads it and runs a pass.
	w.writeSpec(t, "pandasync.yaml", good)
	ev.wait(t, reconcile.EventSpecLoaded)
	rep = ev.pass(t)
	if rep.Reason != reconcile.ReasonSpecChange {
		t.Errorf("after the fix: reason %q, want spec change", rep.Reason)
	}

	// /status reports the last pass and its plan summary.
	st = getStatus(t, admin.URL)
	if !st.Ready || !st.Spec.Valid || st.Passes != 4 || st.ConsecutiveFailures != 0 || st.LastPass == nil ||
		st.LastPass.Outcome != reconcile.OutcomeNoChanges || st.LastPass.Summary == nil || st.NextRunReason != reconcile.ReasonSchedule {
		t.Errorf("/status = %+v, want ready, valid spec, 4 passes, last one without changes, next by schedule", st)
	}
	if !st.LastSuccess.Equal(clock.Now()) {
		t.Errorf("/status last_success = %v, want %v", st.LastSuccess, clock.Now())
	}

	// /metrics counts the passes, changes, reloads and traffic.
	want := map[string]string{
		`pandasync_passes_total{outcome="canceled"}`:     "0",
		`pandasync_passes_total{outcome="failed"}`:       "0",
		`pandasync_passes_total{outcome="no_changes"}`:   "3",
		`pandasync_passes_total{outcome="partial"}`:      "0",
		`pandasync_passes_total{outcome="success"}`:      "1",
		`pandasync_passes_total{outcome="suspended"}`:    "0",
		`pandasync_spec_reloads_total{result="invalid"}`: "2", // the edit, and the reload POST /sync does
		`pandasync_spec_reloads_total{result="ok"}`:      "3",
		`pandasync_spec_valid`:                           "1",
		`pandasync_consecutive_failures`:                 "0",
		`pandasync_pass_duration_seconds_count`:          "4",
		`pandasync_pass_duration_seconds_sum`:            "0", // the fake clock stands still during passes
		`pandasync_last_success_timestamp_seconds`:       fmt.Sprint(float64(clock.Now().UnixNano()) / 1e9),
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
	for _, positive := range []string{"pandasync_assetpanda_requests_total", "pandasync_ldap_entries_read_total"} {
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
	if got := w.emu.Stats().Status["429"]; got != 0 {
		t.Errorf("emulator answered %d requests 429, want 0", got)
	}
}

func getStatus(t *testing.T, base string) reconcile.Status {
	t.Helper()
	code, body := get(t, base+"/status")
	if code != http.StatusOK {
		t.Fatalf("/status = %d %s", code, body)
	}
	var st reconcile.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status is not a Status: %v\n%s", err, body)
	}
	return st
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
			clock := newFakeClock(t0)
			ev := make(events, 1000)
			var failing atomic.Int32
			failing.Store(int32(len(tc.want)))
			cfg := w.config(clock, ev)
			cfg.BackoffBase, cfg.BackoffMax = time.Second, 8*time.Second
			cfg.Jitter = 0.5
			cfg.Rand = func() float64 { return tc.rand }
			cfg.Connect = func(ctx context.Context, set *spec.Set, log *slog.Logger) (*reconcile.Providers, error) {
				if failing.Add(-1) >= 0 {
					return nil, errFlaky
				}
				return w.connect(ctx, set, log)
			}
			l := startLoop(t, cfg)

			// The first run is due at once.
			tm := clock.next(t)
			clock.fire(tm)
			var got []time.Duration
			for range tc.want {
				rep := ev.pass(t)
				if rep.Outcome != reconcile.OutcomeFailed || rep.Terminal || !strings.Contains(rep.Error, errFlaky.Error()) {
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
			if rep.Outcome != reconcile.OutcomeSuccess || rep.Reason != reconcile.ReasonRetry {
				t.Fatalf("recovery pass: outcome %q reason %q error %q, want success on retry", rep.Outcome, rep.Reason, rep.Error)
			}
			if st := l.Status(); st.ConsecutiveFailures != 0 || st.LastPass.Outcome != reconcile.OutcomeSuccess {
				t.Errorf("status after recovery: %d failures, last %q; want 0, success", st.ConsecutiveFailures, st.LastPass.Outcome)
			}
			// Back on schedule: the next run is the one due an hour after
			// the first, plus its jitter.
			tm = clock.next(t)
			jitter := time.Duration(0.5 * tc.rand * float64(time.Hour))
			if want := t0.Add(time.Hour).Add(jitter); !tm.at.Equal(want) {
				t.Errorf("after recovery the next run is at %v, want %v", tm.at, want)
			}

			// A new failure starts the backoff from the beginning.
			failing.Store(1)
			l.Trigger("test")
			if rep := ev.pass(t); rep.Outcome != reconcile.OutcomeFailed {
				t.Fatalf("pass: outcome %q, want failed", rep.Outcome)
			}
			if tm := clock.next(t); tm.d != tc.want[0] {
				t.Errorf("backoff after a success = %s, want %s", tm.d, tc.want[0])
			}
		})
	}
}

// TestLoopSchedule checks the first run at start, then every interval.
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
		// The first run is at start; each later one up to 10 % of the
		// interval late (here 3 minutes), never drifting.
		"jittered": {`{start: "02:00", every: 1h}`, 0.1, []time.Duration{40 * time.Minute, time.Hour + 3*time.Minute, time.Hour}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.writeSpec(t, "pandasync.yaml", strings.Replace(readFile(t, "testdata/loop/pandasync.yaml"),
				"schedule: {every: 1h}", "schedule: "+tc.schedule, 1))
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
				if rep := ev.pass(t); rep.Reason != reconcile.ReasonSchedule || rep.Outcome == reconcile.OutcomeFailed {
					t.Fatalf("pass: reason %q outcome %q error %q", rep.Reason, rep.Outcome, rep.Error)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("waits between runs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoopTerminal checks that a failure retrying cannot fix is not
// retried until the spec changes.
func TestLoopTerminal(t *testing.T) {
	w := newWorld(t)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	var broken atomic.Bool
	broken.Store(true)
	cfg := w.config(clock, ev)
	cfg.WatchPaths = []string{w.specDir}
	cfg.Connect = func(ctx context.Context, set *spec.Set, log *slog.Logger) (*reconcile.Providers, error) {
		if broken.Load() {
			return nil, reconcile.Terminal(errors.New(`assetPanda.password: environment variable "PANDASYNC_AP_PASSWORD" is not set`))
		}
		return w.connect(ctx, set, log)
	}
	l := startLoop(t, cfg)
	clock.fire(clock.next(t))
	rep := ev.pass(t)
	if rep.Outcome != reconcile.OutcomeFailed || !rep.Terminal {
		t.Fatalf("pass: outcome %q terminal %v, want a terminal failure", rep.Outcome, rep.Terminal)
	}
	if wait := ev.wait(t, reconcile.EventWaiting); !wait.Next.IsZero() {
		t.Errorf("after a terminal failure the loop runs again at %v, want only after a spec change", wait.Next)
	}
	if st := l.Status(); st.State != reconcile.StateWaitingForSpec || !st.NextRun.IsZero() {
		t.Errorf("status state %q next %v, want %q and no next run", st.State, st.NextRun, reconcile.StateWaitingForSpec)
	}

	broken.Store(false)
	w.writeSpec(t, "pandasync.yaml", readFile(t, "testdata/loop/pandasync.yaml")+"\n# fixed\n")
	rep = ev.pass(t)
	if rep.Reason != reconcile.ReasonSpecChange || rep.Outcome != reconcile.OutcomeSuccess {
		t.Errorf("after the spec change: reason %q outcome %q error %q, want a successful spec change pass", rep.Reason, rep.Outcome, rep.Error)
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

// noTarget is a target that must not be reached.
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

// TestLoopCancelMidPass checks that stopping the loop (what SIGTERM does)
// during a pass cancels it and Run returns nil.
func TestLoopCancelMidPass(t *testing.T) {
	w := newWorld(t)
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	entered := make(chan struct{}, 1)
	closed := make(chan struct{}, 1)
	cfg := w.config(clock, ev)
	cfg.Connect = func(ctx context.Context, set *spec.Set, log *slog.Logger) (*reconcile.Providers, error) {
		return &reconcile.Providers{Directory: blockingDirectory{entered: entered}, Target: noTarget{},
			Close: func() { closed <- struct{}{} }}, nil
	}
	l, err := reconcile.NewLoop(cfg)
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
		t.Fatal("Run did not return after cancel")
	}
	rep := ev.pass(t)
	if rep.Outcome != reconcile.OutcomeCanceled {
		t.Errorf("pass outcome %q error %q, want canceled", rep.Outcome, rep.Error)
	}
	select {
	case <-closed:
	default:
		t.Error("the providers were not closed")
	}
	if st := l.Status(); st.State != reconcile.StateStopped || st.Ready {
		t.Errorf("status state %q ready %v, want stopped and not ready (no pass finished)", st.State, st.Ready)
	}
}

// TestLoopPassFailures checks that a panic and a pass that overruns its
// timeout are reported as retryable failures and the loop carries on.
func TestLoopPassFailures(t *testing.T) {
	tests := map[string]struct {
		connect   func(ctx context.Context, set *spec.Set, log *slog.Logger) (*reconcile.Providers, error)
		wantError string
	}{
		"panic": {
			connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*reconcile.Providers, error) {
				panic("boom")
			},
			wantError: "pass panicked: boom",
		},
		"timeout": {
			connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*reconcile.Providers, error) {
				return &reconcile.Providers{Directory: blockingDirectory{entered: make(chan struct{}, 10)}, Target: noTarget{}}, nil
			},
			wantError: "pass did not finish within 50ms",
		},
		"no providers": {
			connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*reconcile.Providers, error) {
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
			cfg := w.config(clock, ev)
			cfg.BackoffBase = time.Second
			cfg.PassTimeout = 50 * time.Millisecond
			cfg.Connect = tc.connect
			startLoop(t, cfg)
			clock.fire(clock.next(t))
			rep := ev.pass(t)
			if rep.Outcome != reconcile.OutcomeFailed || rep.Terminal || !strings.Contains(rep.Error, tc.wantError) {
				t.Errorf("pass: outcome %q terminal %v error %q, want a retryable failure with %q", rep.Outcome, rep.Terminal, rep.Error, tc.wantError)
			}
			if tm := clock.next(t); tm.d != time.Second {
				t.Errorf("retry in %s, want 1s", tm.d)
			}
		})
	}
}

// TestLoopOnce checks the single pass of `run -once` and its exit code.
func TestLoopOnce(t *testing.T) {
	w := newWorld(t)
	ev := make(events, 1000)
	cfg := w.config(newFakeClock(t0), ev)
	l, err := reconcile.NewLoop(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var codes []int
	for range 2 {
		rep, err := l.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, rep.ExitCode())
	}
	if diff := cmp.Diff([]int{2, 0}, codes); diff != "" {
		t.Errorf("exit codes of two passes (-want +got):\n%s", diff)
	}

	w.writeSpec(t, "pandasync.yaml", "kind: Nonsense\n")
	if _, err := l.Once(context.Background()); !reconcile.IsTerminal(err) {
		t.Errorf("Once with an invalid spec = %v, want a spec error", err)
	}
}

func TestPassReportExitCode(t *testing.T) {
	changes := &reconcile.Plan{Changes: []reconcile.Change{{Action: reconcile.ActionCreate}}}
	tests := map[string]struct {
		rep  reconcile.PassReport
		want int
	}{
		"no changes": {reconcile.PassReport{Outcome: reconcile.OutcomeNoChanges, Plan: &reconcile.Plan{}}, 0},
		"applied":    {reconcile.PassReport{Outcome: reconcile.OutcomeSuccess, Plan: changes}, 2},
		"suspended":  {reconcile.PassReport{Outcome: reconcile.OutcomeSuspended, Plan: changes}, 2},
		"partial":    {reconcile.PassReport{Outcome: reconcile.OutcomePartial, Plan: changes}, 1},
		"failed":     {reconcile.PassReport{Outcome: reconcile.OutcomeFailed, Err: errFlaky}, 1},
		"canceled":   {reconcile.PassReport{Outcome: reconcile.OutcomeCanceled, Err: context.Canceled}, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.rep.ExitCode(); got != tc.want {
				t.Errorf("ExitCode() = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestIsTerminal(t *testing.T) {
	tests := map[string]struct {
		err  error
		want bool
	}{
		"nil":             {nil, false},
		"plain":           {errFlaky, false},
		"marked":          {fmt.Errorf("connect: %w", reconcile.Terminal(errFlaky)), true},
		"spec problems":   {fmt.Errorf("load: %w", spec.Problems{{Message: "required"}}), true},
		"ap unauthorized": {fmt.Errorf("plan: %w", &assetpanda.Error{Op: "get token", Status: 401}), true},
		"ap forbidden":    {&assetpanda.Error{Op: "create user", Status: 403}, true},
		"ap throttled":    {&assetpanda.Error{Op: "list records", Status: 429, Retryable: true}, false},
		"ap 5xx":          {&assetpanda.Error{Op: "list records", Status: 503, Retryable: true}, false},
		"ldap bad creds":  {fmt.Errorf("bind: %w", ldap.NewError(ldap.LDAPResultInvalidCredentials, errors.New("bad"))), true},
		"ldap busy":       {fmt.Errorf("search: %w", ldap.NewError(ldap.LDAPResultBusy, errors.New("busy"))), false},
		"canceled":        {context.Canceled, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := reconcile.IsTerminal(tc.err); got != tc.want {
				t.Errorf("IsTerminal(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if reconcile.Terminal(nil) != nil {
		t.Error("Terminal(nil) != nil")
	}
	if err := reconcile.Terminal(errFlaky); !errors.Is(err, errFlaky) || err.Error() != errFlaky.Error() {
		t.Errorf("Terminal(err) = %v, want it to wrap err unchanged", err)
	}
}
