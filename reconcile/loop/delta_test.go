package loop_test

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// Names in the demo directory.
const (
	grace     = "CN=Grace Hopper,OU=People," + demoBase
	dennis    = "CN=Dennis Ritchie,OU=People," + demoBase
	ada       = `CN=Lovelace\, Ada,OU=People,` + demoBase
	tim       = "CN=Tim Berners-Lee,OU=People," + demoBase
	annie     = "CN=Annie Easley,OU=People," + demoBase
	linus     = "CN=Linus Torvalds,OU=People," + demoBase
	katherine = "CN=Katherine Johnson,OU=People," + demoBase
	apAdmins  = "CN=AP Admins,OU=Groups," + demoBase
	apUsers   = "CN=AP Users,OU=Groups," + demoBase
	allStaff  = "CN=All Staff,OU=Groups," + demoBase
	eng       = "CN=Engineering,OU=Groups," + demoBase
)

// rewriteReader is the real reader with the watermark it is given edited
// first, once, as when the state it came from was restored from an old
// copy or names another DC (R8, R9).
type rewriteReader struct {
	*activedirectory.Reader
	rewrite *func(*activedirectory.Watermark)
}

func (r rewriteReader) ReadChanges(ctx context.Context, q activedirectory.Query, wm activedirectory.Watermark, have *activedirectory.Result) (*activedirectory.Delta, error) {
	if f := *r.rewrite; f != nil && !wm.IsZero() {
		f(&wm)
		*r.rewrite = nil
	}
	return r.Reader.ReadChanges(ctx, q, wm, have)
}

// comparablePlan is a plan without what differs between any two plans (id,
// time, digest) or comes from outside (the revision).
func comparablePlan(p *reconcile.Plan) reconcile.Plan {
	c := *p
	c.ID, c.CreatedAt, c.Digest, c.Prior.Revision, c.Prior.Dirty = "", time.Time{}, "", "", false
	return c
}

// deltaHarness runs pandasync run's passes (a Syncer) in a deltaWorld and
// makes full plans to compare them with.
type deltaHarness struct {
	w        *deltaWorld
	s        *loop.Syncer
	rewrite  func(*activedirectory.Watermark)
	stateDir string
}

func newDeltaHarness(t *testing.T, w *deltaWorld) *deltaHarness {
	h := &deltaHarness{w: w, stateDir: t.TempDir()}
	h.s = &loop.Syncer{StateDir: h.stateDir, Connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
		p := w.providers(t)
		p.Directory = rewriteReader{Reader: p.Directory.(*activedirectory.Reader), rewrite: &h.rewrite}
		return p, nil
	}}
	return h
}

// full makes a plan that reads everything, as pandasync plan does.
func (h *deltaHarness) full(t *testing.T) *reconcile.Plan {
	t.Helper()
	prov := h.w.providers(t)
	defer prov.Close()
	p, err := reconcile.MakePlan(context.Background(), h.w.set, prov.Directory, prov.Target, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pass runs one pass of the Syncer, which applies its plan.
func (h *deltaHarness) pass(t *testing.T, fullRead string) loop.Result {
	t.Helper()
	res, err := h.s.Reconcile(context.Background(), loop.Request{ID: "test", Set: h.w.set, Log: slog.New(slog.DiscardHandler), FullRead: fullRead})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != nil && res.Applied.Failed > 0 {
		t.Fatalf("apply: %d failed: %+v", res.Applied.Failed, res.Applied.Problems())
	}
	return res
}

func TestDeltaPassPlansAsAFullReadEmbedded(t *testing.T) {
	testDeltaPassPlansAsAFullRead(t, embeddedDeltaWorld(t))
}

func TestDeltaPassPlansAsAFullReadSamba(t *testing.T) {
	testDeltaPassPlansAsAFullRead(t, sambaDeltaWorld(t))
}

// testDeltaPassPlansAsAFullRead goes through the scenarios of change
// tracking, and checks that each pass plans exactly what a plan reading
// everything makes at that moment: changes (with their reasons), blocked
// changes, problems, notes and the digests of what was read. Each pass
// applies its plan, so the next pass also shows that the writes were
// folded into the view. A deletion, which a plain reader cannot see as a
// tombstone, is the one case where a delta does less than a full read: it
// takes nothing away, and the next full read does.
func testDeltaPassPlansAsAFullRead(t *testing.T, w *deltaWorld) {
	h := newDeltaHarness(t, w)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	setMembers := func(group string, edit func([]string) []string) {
		must(w.replace(w.dn(group), "member", edit(w.members(t, group))...))
	}
	without := func(dn string) func([]string) []string {
		return func(ms []string) []string {
			return slices.DeleteFunc(ms, func(m string) bool { return strings.EqualFold(m, w.dn(dn)) })
		}
	}
	with := func(dn string) func([]string) []string {
		return func(ms []string) []string { return append(ms, w.dn(dn)) }
	}

	// The first pass reads everything: there is no view.
	want := h.full(t)
	res := h.pass(t, "")
	if !res.Stats.Read.Full || !strings.HasPrefix(res.Stats.Read.Reason, "no view in memory") {
		t.Fatalf("first pass read %+v, want a full read for want of a view", res.Stats.Read)
	}
	if diff := cmp.Diff(comparablePlan(want), comparablePlan(res.Plan), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("first pass (-full +pass):\n%s", diff)
	}
	ws, err := loop.ReadWatermark(h.stateDir)
	if err != nil || ws.Watermark.IsZero() || ws.Watermark.Server == "" || ws.Watermark.InvocationID == "" {
		t.Fatalf("watermark file after a full read = %+v, %v; want the DC's identity and USN", ws, err)
	}

	steps := []struct {
		name   string
		change func()
		// full: the pass must read everything (the directory cannot serve
		// a delta), for a reason containing this.
		full string
		// fullRead: the loop asks for a full read.
		fullRead string
		// less: the delta plans fewer take-aways than a full read (a
		// deletion it cannot see): its changes must be the full plan's
		// without some deactivations.
		less bool
	}{
		{name: "our own writes folded in", change: func() {}},
		{name: "no change", change: func() {}},
		{name: "change an attribute", change: func() { must(w.replace(w.dn(grace), "givenName", "Gracie")) }},
		{name: "disable a user", change: func() { must(w.replace(w.dn(dennis), "userAccountControl", w.disabled)) }},
		{name: "re-enable the user", change: func() { must(w.replace(w.dn(dennis), "userAccountControl", w.enabled)) }},
		{name: "add a member to a nested group", change: func() { setMembers(eng, with(tim)) }},
		{name: "remove a member", change: func() { setMembers(allStaff, without(katherine)) }},
		{name: "move a member between mapped groups", change: func() {
			setMembers(apAdmins, without(ada))
			setMembers(apUsers, with(ada))
		}},
		{name: "rename a nested group", change: func() { must(w.rename(w.dn(eng), w.dn("CN=Engineers,OU=Groups,"+demoBase))) }},
		{name: "rename a user", change: func() { must(w.rename(w.dn(annie), w.dn("CN=Annie J. Easley,OU=People,"+demoBase))) }},
		{name: "edit a record in Asset Panda", change: func() {
			c := w.client(t)
			col, err := c.Collection(ctx, "Acme", "IT Assets", "People")
			must(err)
			recs, err := c.Records(ctx, col)
			must(err)
			for _, r := range recs {
				if r.Fields["First Name"] == "Gracie" {
					_, err := c.UpdateRecords(ctx, col, []assetpanda.RecordUpdate{{ID: r.ID, Fields: map[string]string{"First Name": "Edited in Asset Panda"}}})
					must(err)
					return
				}
			}
			t.Fatal("no record of Gracie")
		}},
		{name: "delete a user (no tombstones for a plain reader)", less: true, change: func() { must(w.remove(w.dn(linus))) }},
		{name: "the periodic full read sees the deletion", fullRead: "the periodic full read", change: func() {}},
		{name: "another DC answers (R8)", full: "a different domain controller answers", change: func() {
			if w.setIdentity != nil {
				must(w.setIdentity("dc2.corp.example.com", []byte("0123456789abcdef")))
				return
			}
			h.rewrite = func(wm *activedirectory.Watermark) { wm.Server = "dc9.example.test" }
		}},
		{name: "the DC was restored: new invocationId (R8)", full: "invocationId", change: func() {
			h.rewrite = func(wm *activedirectory.Watermark) { wm.InvocationID = "00000000-0000-0000-0000-000000000001" }
		}},
		{name: "the watermark is ahead of the DC (R9)", full: "ahead of the DC's highestCommittedUSN", change: func() {
			h.rewrite = func(wm *activedirectory.Watermark) { wm.USN += 1 << 40 }
		}},
		{name: "deltas again after the full reads", change: func() { must(w.replace(w.dn(tim), "title", "Inventor")) }},
	}
	for _, st := range steps {
		st.change()
		want := h.full(t)
		res := h.pass(t, st.fullRead)
		r := res.Stats.Read
		switch {
		case st.full != "" && (!r.Full || !strings.Contains(r.Reason, st.full)):
			t.Errorf("%s: read %+v, want a full read because %s", st.name, r, st.full)
		case st.full == "" && st.fullRead == "" && r.Full:
			t.Errorf("%s: read everything (%s), want a delta", st.name, r.Reason)
		}
		if st.less {
			var rest []reconcile.Change
			dropped := 0
			for _, c := range want.Changes {
				if c.Action == reconcile.ActionDeactivate && !slices.ContainsFunc(res.Plan.Changes, func(d reconcile.Change) bool { return d.Key == c.Key && d.Mapping == c.Mapping }) {
					dropped++
					continue
				}
				rest = append(rest, c)
			}
			if dropped == 0 {
				t.Errorf("%s: the full plan deactivates nobody, so the step shows nothing", st.name)
			}
			if diff := cmp.Diff(rest, res.Plan.Changes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: changes (-full without its deactivations +pass):\n%s", st.name, diff)
			}
			continue
		}
		if diff := cmp.Diff(comparablePlan(want), comparablePlan(res.Plan), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: the pass (read %+v) differs from a full read (-full +pass):\n%s", st.name, r, diff)
		}
		t.Logf("%s: read %+v, %d changes", st.name, r, len(res.Plan.Changes))
	}

	// A restart: the watermark is on disk, the view is gone. The pass
	// reads everything and takes nothing away for want of the view (R8,
	// R9): it plans what a full read plans.
	must(w.replace(w.dn(tim), "title", "Physicist"))
	h.s = &loop.Syncer{StateDir: h.stateDir, Connect: h.s.Connect}
	want = h.full(t)
	res = h.pass(t, "")
	if r := res.Stats.Read; !r.Full || !strings.Contains(r.Reason, "stored watermark") {
		t.Errorf("after a restart: read %+v, want a full read: no view for the stored watermark", r)
	}
	if diff := cmp.Diff(comparablePlan(want), comparablePlan(res.Plan), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after a restart (-full +pass):\n%s", diff)
	}
}

// TestDeltaCookieRefusedSamba: with DirSync, a cookie the DC refuses (a
// corrupt or foreign one) makes the pass read everything, and it plans
// what a full read plans.
func TestDeltaCookieRefusedSamba(t *testing.T) {
	w := sambaDeltaWorld(t)
	w.method = activedirectory.ChangeTrackingDirSync
	h := newDeltaHarness(t, w)
	h.pass(t, "")
	if err := w.replace(w.dn(grace), "givenName", "Amazing Grace"); err != nil {
		t.Fatal(err)
	}
	want := h.full(t)
	res := h.pass(t, "")
	if res.Stats.Read.Full {
		t.Fatalf("DirSync delta: read everything (%s), want a delta", res.Stats.Read.Reason)
	}
	if diff := cmp.Diff(comparablePlan(want), comparablePlan(res.Plan), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("DirSync delta differs from a full read (-full +pass):\n%s", diff)
	}
	if err := w.replace(w.dn(dennis), "userAccountControl", w.disabled); err != nil {
		t.Fatal(err)
	}
	h.rewrite = func(wm *activedirectory.Watermark) {
		if wm.Method != activedirectory.ChangeTrackingDirSync || len(wm.Cookie) == 0 {
			t.Errorf("watermark %+v: want a DirSync cookie", wm)
		}
		for i := range wm.Cookie {
			wm.Cookie[i] ^= 0x5a
		}
	}
	want = h.full(t)
	res = h.pass(t, "")
	if r := res.Stats.Read; !r.Full || !strings.Contains(r.Reason, "cookie") {
		t.Errorf("refused cookie: read %+v, want a full read because the cookie was refused", r)
	}
	if diff := cmp.Diff(comparablePlan(want), comparablePlan(res.Plan), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after a refused cookie (-full +pass):\n%s", diff)
	}
}

func TestDeltaAfterAFailedPassEmbedded(t *testing.T) {
	testDeltaAfterAFailedPass(t, embeddedDeltaWorld(t))
}

// testDeltaAfterAFailedPass: a pass that fails under change tracking (the
// directory read, the Asset Panda change probe, the writes) is not green,
// and the pass after it plans exactly what a full read plans, take-aways
// made while it failed included.
func testDeltaAfterAFailedPass(t *testing.T, w *deltaWorld) {
	h := newDeltaHarness(t, w)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	connect := h.s.Connect
	l, err := loop.New(loop.Config{Load: func() (*spec.Set, error) { return w.set, nil }, Reconciler: h.s})
	must(err)
	h.pass(t, "")
	h.pass(t, "") // our own writes folded in
	without := func(group, dn string) {
		ms := slices.DeleteFunc(w.members(t, group), func(m string) bool { return strings.EqualFold(m, w.dn(dn)) })
		must(w.replace(w.dn(group), "member", ms...))
	}
	editRecord := func(first, to string) {
		c := w.client(t)
		col, err := c.Collection(ctx, "Acme", "IT Assets", "People")
		must(err)
		recs, err := c.Records(ctx, col)
		must(err)
		for _, r := range recs {
			if r.Fields["First Name"] == first {
				_, err := c.UpdateRecords(ctx, col, []assetpanda.RecordUpdate{{ID: r.ID, Fields: map[string]string{"First Name": to}}})
				must(err)
				return
			}
		}
		t.Fatalf("no record with First Name %q", first)
	}
	const search = "POST /v3/groups/{id}/search/objects"
	steps := []struct {
		name   string
		change func()
		// fail makes the pass fail; undo ends the failure.
		fail, undo func()
		want       []loop.Outcome
	}{
		{
			name:   "the directory read fails",
			change: func() { without(allStaff, katherine) },
			fail: func() {
				h.s.Connect = func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
					p, err := connect(ctx, set, log)
					if err != nil {
						return nil, err
					}
					r, err := activedirectory.New(activedirectory.Config{URLs: []string{"ldap://127.0.0.1:1"}, BaseDN: demoBase,
						BindDN: demoBindDN, Password: demoPassword, AllowCleartextBind: true})
					must(err)
					p.Directory = r
					return p, nil
				}
			},
			undo: func() { h.s.Connect = connect },
			want: []loop.Outcome{loop.OutcomeFailed},
		},
		{
			name: "the Asset Panda change probe fails",
			change: func() {
				must(w.replace(w.dn(dennis), "userAccountControl", w.disabled))
				editRecord("Grace", "Edited in Asset Panda")
			},
			fail: func() { w.emu.Fault(emulator.Fault{Route: search, Count: -1, Kind: emulator.FaultStatus, Status: 500}) },
			undo: w.emu.ClearFaults,
			want: []loop.Outcome{loop.OutcomeFailed},
		},
		{
			name:   "the writes fail",
			change: func() { must(w.replace(w.dn(dennis), "userAccountControl", w.enabled)) },
			fail: func() {
				w.emu.Fault(emulator.Fault{Route: "PUT /v3/groups/{id}/objects", Count: -1, Kind: emulator.FaultStatus, Status: 500})
			},
			undo: w.emu.ClearFaults,
			want: []loop.Outcome{loop.OutcomeFailed, loop.OutcomeProblems},
		},
		{
			name:   "a write commits but its answer is lost",
			change: func() { must(w.replace(w.dn(grace), "title", "Rear Admiral")) },
			fail: func() {
				w.emu.Fault(emulator.Fault{Route: "PUT /v3/groups/{id}/objects", Kind: emulator.FaultCommitDrop})
			},
			undo: w.emu.ClearFaults,
			want: []loop.Outcome{loop.OutcomeFailed, loop.OutcomeProblems, loop.OutcomeSuccess},
		},
	}
	for _, st := range steps {
		st.change()
		st.fail()
		rep, err := l.Once(ctx)
		st.undo()
		must(err)
		if !slices.Contains(st.want, rep.Outcome) {
			t.Errorf("%s: outcome %s (%s), want one of %v", st.name, rep.Outcome, rep.Error, st.want)
		}
		if rep.Outcome.Green() && rep.Counts.Failed+rep.Counts.NotAttempted > 0 {
			t.Errorf("%s: a green pass with %+v", st.name, rep.Counts)
		}
		want := h.full(t)
		res := h.pass(t, "")
		if res.Stats.Read.Full {
			t.Errorf("%s: the pass after read everything (%s), want a delta", st.name, res.Stats.Read.Reason)
		}
		if diff := cmp.Diff(comparablePlan(want), comparablePlan(res.Plan), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: the pass after differs from a full read (-full +pass):\n%s", st.name, diff)
		}
		t.Logf("%s: %s (%s); the pass after: read %+v, %d changes", st.name, rep.Outcome, rep.Error, res.Stats.Read, len(res.Plan.Changes))
	}
}

// TestFullReadStopsWhenAssetPandaFails: in a full read, Asset Panda
// refusing the credentials ends the pass at once, with its terminal error,
// rather than after the directory read running beside it (here one that
// never answers, on a real socket).
func TestFullReadStopsWhenAssetPandaFails(t *testing.T) {
	w := embeddedDeltaWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // read nothing, answer nothing
		}
	}()
	w.emu.Fault(emulator.Fault{Route: "GET /v3/accounts", Count: -1, Kind: emulator.FaultStatus, Status: 403})
	s := &loop.Syncer{Connect: func(ctx context.Context, set *spec.Set, log *slog.Logger) (*loop.Providers, error) {
		p := w.providers(t)
		r, err := activedirectory.New(activedirectory.Config{URLs: []string{"ldap://" + ln.Addr().String()}, BaseDN: demoBase,
			BindDN: demoBindDN, Password: demoPassword, AllowCleartextBind: true, Timeout: time.Minute})
		if err != nil {
			return nil, err
		}
		p.Directory = r
		return p, nil
	}}
	start := time.Now()
	_, err = s.Reconcile(context.Background(), loop.Request{ID: "test", Set: w.set, Log: slog.New(slog.DiscardHandler)})
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "read asset panda") || !loop.IsTerminal(err) || took > 20*time.Second {
		t.Errorf("Reconcile = %v (terminal %v) after %s; want Asset Panda's terminal error at once", err, loop.IsTerminal(err), took.Round(time.Millisecond))
	}
}

// TestDeltaPassReadsUsersBeforeTakingFromThem: the view's users are read
// again only after a pass that wrote users, since nothing tells which
// users changed in Asset Panda. A role an admin gave in Asset Panda since
// decides who a leaver belongs to: here Dennis, moved to the role of a
// mapping that ignores leavers, leaves the AP Users group. A full read
// deactivates nobody; so must the delta pass, which has to read the users
// before it takes anything from one.
func TestDeltaPassReadsUsersBeforeTakingFromThem(t *testing.T) {
	w := embeddedDeltaWorld(t)
	var admins spec.UserMapping
	for i := range w.set.UserMappings {
		if w.set.UserMappings[i].Metadata.Name == "it-admins" {
			w.set.UserMappings[i].Spec.OnRemove = spec.OnRemoveIgnore
			admins = w.set.UserMappings[i]
		}
	}
	h := newDeltaHarness(t, w)
	h.pass(t, "")
	h.pass(t, "") // our writes folded in

	ctx := context.Background()
	c := w.client(t)
	users, err := c.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dennisUser := assetpanda.EmailIndex(users)["dennis@corp.example.com"]
	if dennisUser == nil || !dennisUser.Active {
		t.Fatalf("dennis after the first passes: %+v, want an active user", dennisUser)
	}
	role, err := c.Role(ctx, admins.Spec.Account, admins.Spec.Module, admins.Spec.Role)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateUser(ctx, dennisUser.ID, assetpanda.UserUpdate{Role: role}); err != nil {
		t.Fatal(err)
	}
	rest := slices.DeleteFunc(w.members(t, apUsers), func(m string) bool { return strings.EqualFold(m, w.dn(dennis)) })
	if err := w.replace(w.dn(apUsers), "member", rest...); err != nil {
		t.Fatal(err)
	}

	want := h.full(t)
	res := h.pass(t, "")
	if res.Stats.Read.Full {
		t.Fatalf("pass read %+v, want a delta", res.Stats.Read)
	}
	if diff := cmp.Diff(comparablePlan(want), comparablePlan(res.Plan), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("delta pass after a role given in Asset Panda (-full +pass):\n%s", diff)
	}
	for _, ch := range res.Plan.Changes {
		if ch.Kind == reconcile.KindUser && ch.Action == reconcile.ActionDeactivate {
			t.Errorf("the delta pass deactivates %s (%s), whom a full read leaves alone", ch.Name, ch.Reason)
		}
	}
	users, err = c.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u := assetpanda.EmailIndex(users)["dennis@corp.example.com"]; u == nil || !u.Active {
		t.Errorf("dennis after the pass: %+v, want still active", u)
	}
}
