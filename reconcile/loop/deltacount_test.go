package loop_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// writes counts the emulator's write requests between two of its stats.
func writes(before, after emulator.Stats) int {
	n := 0
	for route, c := range after.Requests {
		if !isRead(route) {
			n += c - before.Requests[route]
		}
	}
	return n
}

func TestDeltaCountsEmbedded(t *testing.T) { testDeltaCounts(t, embeddedDeltaWorld(t), 2000) }

func TestDeltaCountsSamba(t *testing.T) { testDeltaCounts(t, sambaDeltaWorld(t), 250) }

// testDeltaCounts checks the count-based goals of change tracking on
// pandasync run's passes, through the loop: P5, a pass with nothing
// changed makes no write, at most 3 LDAP searches reading no entry beyond
// the two identity probes, and one Asset Panda request besides the token
// (the change probe of the one collection), whatever the size of the
// directory; P6, k changed people cost at most k entries and exactly k
// record writes in ⌈k/200⌉ bulk requests; a member leaving a mapped group
// costs at most the members of that group.
func testDeltaCounts(t *testing.T, w *deltaWorld, staff int) {
	dns := w.addStaff(t, staff)
	l, err := loop.New(loop.Config{
		Load: func() (*spec.Set, error) { return w.set, nil },
		Reconciler: &loop.Syncer{Connect: func(context.Context, *spec.Set, *slog.Logger) (*loop.Providers, error) {
			return w.providers(t), nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pass := func(name string) (*loop.PassReport, int) {
		t.Helper()
		// Passes far enough apart for the change probe's margin to pass.
		w.clock.Advance(2 * reconcile.ModifiedMargin)
		before := w.emu.Stats()
		rep, err := l.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Outcome == loop.OutcomeFailed || rep.Read == nil {
			t.Fatalf("%s: pass %s: %s", name, rep.Outcome, rep.Error)
		}
		after := w.emu.Stats()
		diff := map[string]int{}
		for r, c := range after.Requests {
			if d := c - before.Requests[r]; d != 0 {
				diff[r] = d
			}
		}
		t.Logf("%s: %s, read %+v, applied %d, requests %v", name, rep.Outcome, *rep.Read, rep.Counts.Applied, diff)
		return rep, writes(before, w.emu.Stats())
	}
	if rep, _ := pass("first pass"); !rep.Read.Full || rep.Counts.Applied < staff {
		t.Fatalf("first pass: read %+v, applied %d; want a full read creating at least %d records", *rep.Read, rep.Counts.Applied, staff)
	}
	pass("our writes folded in")

	// P5
	for i := range 2 {
		rep, n := pass("nothing changed")
		r := rep.Read
		if r.Full || r.Replanned || r.LDAPSearches > 3 || r.LDAPEntries != 2 || n != 0 || r.APIRequests > 2 || rep.Outcome != loop.OutcomeNoChanges {
			t.Errorf("pass %d with nothing changed: %s, read %+v, %d writes; want a delta reusing the plan, ≤ 3 LDAP searches, "+
				"2 entries (the probes), ≤ 2 API requests (token, one probe), no write", i, rep.Outcome, *r, n)
		}
	}

	// P6
	for round, k := range []int{1, 10, 100} {
		for i := range k {
			if err := w.replace(dns[i], "givenName", fmt.Sprintf("Round %d", round)); err != nil {
				t.Fatal(err)
			}
		}
		rep, n := pass(fmt.Sprintf("%d changed", k))
		r := rep.Read
		if r.Full || r.LDAPSearches > 3 || r.LDAPEntries-2 > k {
			t.Errorf("%d people changed: read %+v; want a delta of ≤ 3 searches and ≤ %d entries beyond the probes", k, *r, k)
		}
		if rep.Counts.Applied != k || n != (k+199)/200 || rep.Summary.Update != k {
			t.Errorf("%d people changed: %d applied (%d updates planned) in %d write requests; want %d in %d", k, rep.Counts.Applied, rep.Summary.Update, n, k, (k+199)/200)
		}
		pass("our writes folded in")
	}

	// A member leaves the mapped group: the group is recomputed.
	group := w.members(t, allStaff)
	var rest []string
	for _, m := range group {
		if m != dns[0] {
			rest = append(rest, m)
		}
	}
	if err := w.replace(w.dn(allStaff), "member", rest...); err != nil {
		t.Fatal(err)
	}
	rep, n := pass("a member left")
	r := rep.Read
	if bound := 1 + len(group) + 2; r.Full || r.LDAPEntries-2 > bound {
		t.Errorf("a member left: read %+v; want a delta of ≤ %d entries beyond the probes", *r, bound)
	}
	if rep.Counts.Applied != 1 || rep.Summary.Deactivate != 1 || n != 1 {
		t.Errorf("a member left: %d applied (%+v) in %d write requests; want the one record set Inactive in 1", rep.Counts.Applied, *rep.Summary, n)
	}
}
