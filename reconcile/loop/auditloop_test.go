package loop_test

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
)

// TestLoopAudit runs a pass in which the user invitations fail: every
// applied and every failed write is one audit entry with the pass id and
// the spec's git revision, one log line each, and /status, the metrics and
// the history name the same revision.
func TestLoopAudit(t *testing.T) {
	w := newWorld(t)
	_, commit := gitRepo(t, w.specDir, nil) // commits the spec file
	w.emu.Fault(emulator.Fault{Route: "POST /v3/users/invite", Count: -1, Kind: emulator.FaultStatus, Status: 500})
	stateDir := t.TempDir()
	audit, err := loop.OpenAudit(filepath.Join(stateDir, loop.AuditFile), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Close()
	clock := newFakeClock(t0)
	ev := make(events, 1000)
	var logs logBuffer
	cfg := w.config(clock, ev)
	cfg.Audit = audit
	cfg.Revision = gitRevision(w.specDir)
	cfg.Logger = logs.logger()
	l := startLoop(t, cfg)
	admin := httptest.NewServer(l.Handler(loop.AdminOptions{}))
	t.Cleanup(admin.Close)
	clock.fire(clock.next(t))
	rep := ev.pass(t)
	wantRev := "main@sha1:" + commit
	if rep.Outcome != loop.OutcomeProblems || rep.Counts.Failed == 0 || rep.Counts.Applied == 0 || rep.Revision != wantRev || rep.Dirty {
		t.Fatalf("pass: outcome %q counts %+v revision %q dirty %v, want problems with applied and failed changes at %s",
			rep.Outcome, rep.Counts, rep.Revision, rep.Dirty, wantRev)
	}

	// The plan records the revision and is still sealed.
	var buf bytes.Buffer
	if err := rep.Plan.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if p, err := reconcile.ReadPlan(&buf); err != nil || p.Prior.Revision != wantRev || p.Prior.Dirty {
		t.Errorf("the pass's plan: %v, prior %+v; want it sealed with revision %s", err, p, wantRev)
	}

	entries, _, err := loop.ReadAudit(stateDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The audit holds exactly the changes the report lists, with results.
	key := func(mapping, kind, action, k, result string) string {
		return strings.Join([]string{mapping, kind, action, k, result}, " ")
	}
	var want, got []string
	for _, c := range append(rep.Changes, rep.Failed...) {
		want = append(want, key(c.Mapping, string(c.Kind), string(c.Action), c.Key, c.Result))
	}
	for _, e := range entries {
		got = append(got, key(e.Mapping, e.Kind, e.Action, e.Key, e.Result))
		if e.Pass != rep.ID || e.Revision != wantRev || e.Dirty || e.Time.IsZero() || e.Mapping == "" || e.Key == "" || e.After == nil {
			t.Errorf("entry %+v lacks the pass %s, revision %s or the change", e, rep.ID, wantRev)
		}
		switch e.Result {
		case loop.ResultApplied:
			if e.Error != "" {
				t.Errorf("applied entry with an error: %+v", e)
			}
		case loop.ResultFailed:
			if !strings.Contains(e.Error, "500") || e.Kind != "user" || e.Action != "create" {
				t.Errorf("failed entry %+v, want a user create failing with the 500", e)
			}
		default:
			t.Errorf("entry result %q", e.Result)
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit entries (-want +got):\n%s", diff)
	}
	if n := len(logs.lines(t, "change applied")); n != rep.Counts.Applied {
		t.Errorf("%d \"change applied\" log lines, want %d", n, rep.Counts.Applied)
	}
	if n := len(logs.lines(t, "change failed")); n != rep.Counts.Failed {
		t.Errorf("%d \"change failed\" log lines, want %d", n, rep.Counts.Failed)
	}

	st := getStatus(t, admin.URL)
	if st.Spec.Revision != wantRev || st.Spec.Dirty || st.LastPass.Revision != wantRev || len(st.LastPass.Failed) != rep.Counts.Failed {
		t.Errorf("/status spec %+v last pass revision %q failed %d, want %s and the failed changes", st.Spec, st.LastPass.Revision, len(st.LastPass.Failed), wantRev)
	}
	if h := l.History().Last(); h == nil || h.ID != rep.ID || h.Revision != wantRev {
		t.Errorf("history's last pass %+v, want %s at %s", h, rep.ID, wantRev)
	}
	_, metrics := get(t, admin.URL+"/metrics")
	if want := `pandasync_spec_info{dirty="false",revision="` + wantRev + `"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}

	// An uncommitted edit makes the next pass dirty.
	w.writeSpec(t, "pandasync.yaml", readFile(t, "testdata/pandasync.yaml")+"# uncommitted\n")
	l.Trigger("test")
	if rep := ev.pass(t); rep.Revision != wantRev || !rep.Dirty {
		t.Errorf("after an uncommitted edit: revision %q dirty %v, want %s dirty", rep.Revision, rep.Dirty, wantRev)
	}
	if b, err := os.ReadFile(filepath.Join(stateDir, loop.AuditFile)); err != nil || !strings.Contains(string(b), `"dirty":true`) {
		t.Errorf("the audit log does not record the dirty revision (%v)", err)
	}
}
