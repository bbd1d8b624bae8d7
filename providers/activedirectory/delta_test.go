package activedirectory

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
)

// deltaFixture is a small directory for the change-tracking scenarios:
//
//	All (mapped, nested) ∋ u1, Team;  Team ∋ u2, u3, Sub;  Sub ∋ u4
//	Flat (mapped, not nested) ∋ u5, u6;  Other (not mapped) ∋ u7
//	Missing (mapped, nested) does not exist at first
type deltaFixture struct {
	base, users, groups, moved                  string
	prefix                                      string
	u                                           []string // u[1] … u[8]; u[8] is in no group
	all, team, sub, flat, other, missing, spare string
	entries                                     []*ldap.Entry
}

func newDeltaFixture(parent, suffix string) *deltaFixture {
	f := &deltaFixture{prefix: "d" + suffix}
	f.base = "OU=pandasync-delta-" + suffix + "," + parent
	f.users, f.groups, f.moved = "OU=Users,"+f.base, "OU=Groups,"+f.base, "OU=Moved,"+f.base
	for _, ou := range []string{f.base, f.users, f.groups, f.moved} {
		d, _ := ldap.ParseDN(ou)
		f.entries = append(f.entries, ldap.NewEntry(ou, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "ou": {d.RDNs[0].Attributes[0].Value}}))
	}
	f.u = make([]string, 9)
	for i := 1; i <= 8; i++ {
		cn := fmt.Sprintf("Delta User %d", i)
		f.u[i] = "CN=" + cn + "," + f.users
		f.entries = append(f.entries, ldap.NewEntry(f.u[i], map[string][]string{
			"objectClass": {"top", "person", "organizationalPerson", "user"}, "cn": {cn},
			"sAMAccountName": {fmt.Sprintf("%s-u%d", f.prefix, i)}, "userPrincipalName": {fmt.Sprintf("%s-u%d@example.test", f.prefix, i)},
			"userAccountControl": {"544"}, "mail": {fmt.Sprintf("u%d@example.test", i)}, "givenName": {fmt.Sprintf("Given%d", i)}, "sn": {"Delta"},
		}))
	}
	group := func(cn string, members ...string) string {
		dn := "CN=" + cn + "," + f.groups
		attrs := map[string][]string{"objectClass": {"top", "group"}, "cn": {cn}, "sAMAccountName": {f.prefix + "-" + cn}}
		if len(members) > 0 {
			attrs["member"] = members
		}
		f.entries = append(f.entries, ldap.NewEntry(dn, attrs))
		return dn
	}
	f.sub = group("Sub", f.u[4])
	f.team = group("Team", f.u[2], f.u[3], f.sub)
	f.all = group("All", f.u[1], f.team)
	f.flat = group("Flat", f.u[5], f.u[6])
	f.other = group("Other", f.u[7])
	f.spare = group("Spare")
	f.missing = "CN=Missing," + f.groups
	return f
}

func (f *deltaFixture) query() Query {
	return Query{Groups: []GroupQuery{{DN: f.all, Nested: true}, {DN: f.flat}, {DN: f.missing, Nested: true}},
		Attributes: []string{"mail", "givenName", "sn"}}
}

// mutator changes the directory under test as an administrator would.
type mutator interface {
	addMember(group, member string) error
	removeMember(group, member string) error
	set(dn, attr string, vals ...string) error
	rename(dn, newDN string) error
	remove(dn string) error
	add(e *ldap.Entry) error
}

// embeddedMutator changes the embedded server directly.
type embeddedMutator struct{ s *embedded.Server }

func (m embeddedMutator) addMember(g, member string) error {
	return m.s.Replace(g, "member", append(m.s.Entry(g).GetAttributeValues("member"), member)...)
}

func (m embeddedMutator) removeMember(g, member string) error {
	vals := slices.DeleteFunc(m.s.Entry(g).GetAttributeValues("member"), func(v string) bool { return NormalizeDN(v) == NormalizeDN(member) })
	return m.s.Replace(g, "member", vals...)
}
func (m embeddedMutator) set(dn, attr string, vals ...string) error {
	return m.s.Replace(dn, attr, vals...)
}
func (m embeddedMutator) rename(dn, newDN string) error { return m.s.Rename(dn, newDN) }
func (m embeddedMutator) remove(dn string) error        { return m.s.Delete(dn) }
func (m embeddedMutator) add(e *ldap.Entry) error       { return m.s.Add(e) }

// ldapMutator changes a real DC over LDAP as Administrator.
type ldapMutator struct{ c *ldap.Conn }

func (m ldapMutator) addMember(g, member string) error {
	req := ldap.NewModifyRequest(g, nil)
	req.Add("member", []string{member})
	return m.c.Modify(req)
}

func (m ldapMutator) removeMember(g, member string) error {
	req := ldap.NewModifyRequest(g, nil)
	req.Delete("member", []string{member})
	return m.c.Modify(req)
}

func (m ldapMutator) set(dn, attr string, vals ...string) error {
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace(attr, vals)
	return m.c.Modify(req)
}

func (m ldapMutator) rename(dn, newDN string) error {
	d, err := ldap.ParseDN(newDN)
	if err != nil {
		return err
	}
	rdn := d.RDNs[0].Attributes[0]
	return m.c.ModifyDN(ldap.NewModifyDNRequest(dn, rdn.Type+"="+ldap.EscapeDN(rdn.Value), true, (&ldap.DN{RDNs: d.RDNs[1:]}).String()))
}
func (m ldapMutator) remove(dn string) error { return m.c.Del(ldap.NewDelRequest(dn, nil)) }
func (m ldapMutator) add(e *ldap.Entry) error {
	req := ldap.NewAddRequest(e.DN, nil)
	for _, a := range e.Attributes {
		req.Attribute(a.Name, a.Values)
	}
	return m.c.Add(req)
}

// deltaEnv is one server the scenarios run against.
type deltaEnv struct {
	cfg        Config // the reader's (least-privilege on Samba)
	fx         *deltaFixture
	mut        mutator
	tombstones bool // the reader may read CN=Deleted Objects
	// setIdentity changes the DC identity (embedded only; nil on Samba,
	// where the scenarios rewrite the stored watermark instead, as R8 asks).
	setIdentity func(host string, invocationID []byte) error
	identity    func() (string, []byte)
}

// view is what a full read and a delta applied to a view must agree on.
func view(r *Result) map[string]any {
	groups := map[string]any{}
	for k, g := range r.Groups {
		unresolved := make([]string, len(g.Unresolved))
		for i, u := range g.Unresolved {
			unresolved[i] = u.String()
		}
		groups[k] = map[string]any{"exists": g.Exists, "members": g.Members, "via": g.Via, "unresolved": unresolved}
	}
	users := map[string]any{}
	for k, u := range r.Users {
		users[k] = userView(u)
	}
	return map[string]any{"groups": groups, "users": users}
}

// step is one change and what the delta after it must show.
type step struct {
	name    string
	change  func(env deltaEnv) error
	changed int      // objects the change touches (k of P6)
	groups  []string // mapped groups the delta must recompute
}

func deltaSteps(fx *deltaFixture) []step {
	return []step{
		{"no change", func(deltaEnv) error { return nil }, 0, nil},
		{"add a member to a nested group", func(e deltaEnv) error { return e.mut.addMember(fx.sub, fx.u[8]) }, 1, []string{fx.all}},
		{"remove a member", func(e deltaEnv) error { return e.mut.removeMember(fx.team, fx.u[3]) }, 1, []string{fx.all}},
		{"move a member between groups", func(e deltaEnv) error {
			if err := e.mut.removeMember(fx.sub, fx.u[4]); err != nil {
				return err
			}
			return e.mut.addMember(fx.flat, fx.u[4])
		}, 2, []string{fx.all, fx.flat}},
		{"nest a group", func(e deltaEnv) error { return e.mut.addMember(fx.team, fx.other) }, 1, []string{fx.all}},
		{"disable a user", func(e deltaEnv) error { return e.mut.set(fx.u[1], "userAccountControl", "546") }, 1, nil},
		{"re-enable a user", func(e deltaEnv) error { return e.mut.set(fx.u[1], "userAccountControl", "544") }, 1, nil},
		{"change an attribute", func(e deltaEnv) error { return e.mut.set(fx.u[2], "mail", "changed@example.test") }, 1, nil},
		{"rename a user", func(e deltaEnv) error { return e.mut.rename(fx.u[5], "CN=Delta User 5b,"+fx.users) }, 1, nil},
		{"move a user to another OU", func(e deltaEnv) error { return e.mut.rename(fx.u[6], "CN=Delta User 6,"+fx.moved) }, 1, nil},
		{"rename a nested group", func(e deltaEnv) error { return e.mut.rename(fx.sub, "CN=Sub Renamed,"+fx.groups) }, 1, []string{fx.all}},
		{"create the missing mapped group", func(e deltaEnv) error {
			return e.mut.add(ldap.NewEntry(fx.missing, map[string][]string{"objectClass": {"top", "group"}, "cn": {"Missing"},
				"sAMAccountName": {fx.prefix + "-Missing"}, "member": {fx.u[2], fx.spare}}))
		}, 1, []string{fx.missing}},
		{"delete a user", func(e deltaEnv) error { return e.mut.remove(fx.u[7]) }, 1, nil},
	}
}

// runDeltaScenarios applies each step and checks that the delta, applied to
// the previous view, equals a new full read; with and without the view
// given to ReadChanges (have).
func runDeltaScenarios(t *testing.T, env deltaEnv) {
	ctx := context.Background()
	fx := env.fx
	q := fx.query()
	r := newReader(t, env.cfg)
	first, err := r.ReadChanges(ctx, q, Watermark{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Full || first.FullReason != "no watermark" || len(first.Deleted) > 0 {
		t.Fatalf("first read: full %t (%s), %d deleted; want a full read for want of a watermark", first.Full, first.FullReason, len(first.Deleted))
	}
	// The watermark survives JSON (the runtime stores it in its state directory).
	b, err := json.Marshal(first.Watermark)
	if err != nil {
		t.Fatal(err)
	}
	var wm Watermark
	if err := json.Unmarshal(b, &wm); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first.Watermark, wm); diff != "" {
		t.Fatalf("watermark after a JSON round trip (-want +got):\n%s", diff)
	}
	withHave := &Result{}
	withHave.Apply(first)
	noHave := &Result{}
	noHave.Apply(first)
	oldWM, oldView := wm, &Result{}
	oldView.Apply(first)
	wmNoHave := wm

	for _, s := range deltaSteps(fx) {
		if s.name == "delete a user" && !env.tombstones {
			continue // see TestDeltaDeleteWithoutTombstones
		}
		if err := s.change(env); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		full, err := r.Read(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []struct {
			name string
			cur  *Result
			wm   *Watermark
			have bool
		}{{"with have", withHave, &wm, true}, {"without have", noHave, &wmNoHave, false}} {
			var have *Result
			if v.have {
				have = v.cur
			}
			d, err := r.ReadChanges(ctx, q, *v.wm, have)
			if err != nil {
				t.Fatalf("%s (%s): %v", s.name, v.name, err)
			}
			if d.Full {
				t.Fatalf("%s (%s): full read (%s), want a delta", s.name, v.name, d.FullReason)
			}
			if got := slices.Sorted(maps.Keys(d.Groups)); !cmp.Equal(got, slices.Sorted(slices.Values(s.groups)), cmpEmpty) {
				t.Errorf("%s (%s): recomputed %v, want %v", s.name, v.name, got, s.groups)
			}
			// P5/P6: searches and entries.
			st := d.Stats
			entries := st.Entries - st.Probes
			// DirSync reports a change, then the object is read again whole.
			perChange := 1
			if env.cfg.ChangeTracking == ChangeTrackingDirSync {
				perChange = 2
			}
			bound := perChange * s.changed
			for _, g := range d.Groups {
				bound += len(g.Members) + len(g.Unresolved) + len(d.Watermark.groupClosure(g.DN))*2
			}
			if s.changed == 0 && (st.Searches > 3 || entries != 0) {
				t.Errorf("%s (%s): %d searches and %d entries beyond the probes, want at most 3 and 0 (%+v)", s.name, v.name, st.Searches, entries, st)
			}
			if entries > bound {
				t.Errorf("%s (%s): %d entries beyond the probes, want at most %d (%+v)", s.name, v.name, entries, bound, st)
			}
			t.Logf("%s (%s): %d searches, %d entries beyond the probes, recomputed %d", s.name, v.name, st.Searches, entries, len(d.Groups))
			// (The views share the first read's maps, so only the first
			// one applied tells what changed.)
			wantChanged := !cmp.Equal(view(full), view(v.cur), cmpEmpty)
			if changed := v.cur.Apply(d); v.have && changed != wantChanged {
				t.Errorf("%s (%s): Apply reported changed %t, want %t", s.name, v.name, changed, wantChanged)
			}
			*v.wm = d.Watermark
			if diff := cmp.Diff(view(full), view(v.cur), cmpEmpty); diff != "" {
				t.Fatalf("%s (%s): delta applied to the previous view differs from a full read (-full +delta):\n%s", s.name, v.name, diff)
			}
		}
	}

	// Restoring the watermark from an old copy: a delta from it is still
	// complete (a superset of the changes), applied to the view it belongs to.
	d, err := r.ReadChanges(ctx, q, oldWM, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Full {
		t.Fatalf("old watermark: full read (%s), want a delta", d.FullReason)
	}
	oldView.Apply(d)
	full, err := r.Read(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(view(full), view(oldView), cmpEmpty); diff != "" {
		t.Errorf("delta from the old watermark differs from a full read (-full +delta):\n%s", diff)
	}

	// Watermarks that cannot serve a delta: each gives a full read.
	ahead := wm
	ahead.USN += 1 << 40
	otherDC, restored := wm, wm
	otherDC.Server = "dc9.example.test"
	restored.InvocationID = "00000000-0000-0000-0000-000000000001"
	otherQuery := q
	otherQuery.Attributes = append(slices.Clone(q.Attributes), "department")
	cases := []struct {
		name   string
		wm     Watermark
		q      Query
		reason string
	}{
		{"watermark ahead of highestCommittedUSN", ahead, q, "ahead of the DC's highestCommittedUSN"},
		{"another DC", otherDC, q, "a different domain controller answers"},
		{"restored DC", restored, q, "invocationId"},
		{"another query", wm, otherQuery, "query"},
		{"no watermark", Watermark{}, q, "no watermark"},
	}
	for _, c := range cases {
		d, err := r.ReadChanges(ctx, c.q, c.wm, withHave)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Full || !strings.Contains(d.FullReason, c.reason) || len(d.Deleted) > 0 {
			t.Errorf("%s: full %t (%q), %d deleted; want a full read because of %q and no deletion", c.name, d.Full, d.FullReason, len(d.Deleted), c.reason)
		}
		if d.Full && c.q.Attributes == nil {
			if diff := cmp.Diff(view(full), view(d.Result), cmpEmpty); diff != "" {
				t.Errorf("%s: full read differs (-want +got):\n%s", c.name, diff)
			}
		}
	}

	// The DC really changing (embedded): host name, then invocationId.
	if env.setIdentity != nil {
		_, inv := env.identity()
		newInv := slices.Clone(inv)
		newInv[0] ^= 0xff
		for _, c := range []struct {
			host   string
			inv    []byte
			reason string
		}{{"dc2.example.test", inv, "a different domain controller answers"}, {"dc2.example.test", newInv, "invocationId"}} {
			if err := env.setIdentity(c.host, c.inv); err != nil {
				t.Fatal(err)
			}
			d, err := r.ReadChanges(ctx, q, wm, withHave)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Full || !strings.Contains(d.FullReason, c.reason) {
				t.Errorf("identity %s: full %t (%q), want %q", c.host, d.Full, d.FullReason, c.reason)
			}
			wm = d.Watermark
			if d, err = r.ReadChanges(ctx, q, wm, withHave); err != nil || d.Full {
				t.Errorf("after the full read, a delta again: full %v (%v)", d != nil && d.Full, err)
			}
		}
	}
}

// cmpEmpty treats nil and empty slices and maps alike.
var cmpEmpty = cmp.Transformer("nonil", func(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
})

// groupClosure returns the closure the watermark holds for a mapped group.
func (w Watermark) groupClosure(dn string) []ClosureGroup {
	for _, g := range w.Groups {
		if g.DN == dn {
			return g.Closure
		}
	}
	return nil
}

func startDeltaEmbedded(t *testing.T, tombstones bool) (deltaEnv, *embedded.Server) {
	fx := newDeltaFixture(embeddedBase, randomSuffix())
	opts := embeddedOptions()
	opts.ShowTombstones = tombstones
	cfg, srv := startEmbedded(t, fx.asFixture(), opts)
	cfg.BaseDN = embeddedBase
	return deltaEnv{cfg: cfg, fx: fx, mut: embeddedMutator{srv}, tombstones: tombstones,
		setIdentity: srv.SetIdentity, identity: srv.Identity}, srv
}

// asFixture wraps the entries for startEmbedded.
func (f *deltaFixture) asFixture() *fixture { return &fixture{base: f.base, entries: f.entries} }

func TestDeltaEmbedded(t *testing.T) {
	env, _ := startDeltaEmbedded(t, true)
	runDeltaScenarios(t, env)
}

// TestDeltaDeleteWithoutTombstones pins the documented limit: an account
// that may not read CN=Deleted Objects does not see a deletion in a delta
// (the groups that held the user do not change their uSNChanged); the next
// full read does.
func TestDeltaDeleteWithoutTombstones(t *testing.T) {
	env, _ := startDeltaEmbedded(t, false)
	testDeleteWithoutTombstones(t, env)
}

func testDeleteWithoutTombstones(t *testing.T, env deltaEnv) {
	ctx := context.Background()
	q := env.fx.query()
	r := newReader(t, env.cfg)
	first, err := r.ReadChanges(ctx, q, Watermark{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cur := &Result{}
	cur.Apply(first)
	gone := NormalizeDN(env.fx.u[2])
	if err := env.mut.remove(env.fx.u[2]); err != nil {
		t.Fatal(err)
	}
	d, err := r.ReadChanges(ctx, q, first.Watermark, cur)
	if err != nil {
		t.Fatal(err)
	}
	if d.Full || len(d.Deleted) != 0 || len(d.Groups) != 0 {
		t.Fatalf("delta: full %t, %d deleted, %d recomputed; want nothing seen", d.Full, len(d.Deleted), len(d.Groups))
	}
	cur.Apply(d)
	if _, ok := cur.Users[gone]; !ok {
		t.Errorf("the deleted user left the view without a tombstone; the delta cannot know that")
	}
	full, err := r.Read(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := full.Users[gone]; ok {
		t.Errorf("a full read still holds the deleted user")
	}
}

// TestDeltaP5P6Embedded asserts the count goals on a directory of 3,000
// members: no change costs three searches and no entry beyond the probes;
// k attribute changes cost k entries; a membership change in a mapped
// group costs its closure, not its members, when the view is given.
func TestDeltaP5P6Embedded(t *testing.T) {
	fx := newFixture(embeddedBase, randomSuffix(), 3000)
	cfg, srv := startEmbedded(t, fx, embeddedOptions())
	cfg.BaseDN = embeddedBase
	runP5P6(t, cfg, embeddedMutator{srv}, fx)
}

func runP5P6(t *testing.T, cfg Config, mut mutator, fx *fixture) {
	ctx := context.Background()
	r := newReader(t, cfg)
	q := Query{Groups: []GroupQuery{{DN: fx.big}, {DN: fx.top, Nested: true}}, Attributes: []string{"mail"}}
	d, err := r.ReadChanges(ctx, q, Watermark{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cur := &Result{}
	cur.Apply(d)
	wm := d.Watermark
	next := func(name string) *Delta {
		t.Helper()
		d, err := r.ReadChanges(ctx, q, wm, cur)
		if err != nil {
			t.Fatal(err)
		}
		if d.Full {
			t.Fatalf("%s: full read (%s)", name, d.FullReason)
		}
		cur.Apply(d)
		wm = d.Watermark
		return d
	}
	for i := range 3 {
		d := next("no change")
		if st := d.Stats; st.Searches > 3 || st.Entries-st.Probes != 0 || st.Probes != 2 {
			t.Errorf("no change, pass %d: %+v; want at most 3 searches and no entry beyond the 2 probes", i, st)
		}
	}
	for _, k := range []int{1, 10, 100} {
		for i := range k {
			if err := mut.set(fx.bigUsers[i], "mail", fmt.Sprintf("k%d-%d@example.test", k, i)); err != nil {
				t.Fatal(err)
			}
		}
		d := next(fmt.Sprintf("%d changes", k))
		if got := d.Stats.Entries - d.Stats.Probes; got != k || len(d.Users) != k || len(d.Groups) != 0 {
			t.Errorf("%d changes: %d entries beyond the probes, %d users, %d groups recomputed; want %d, %d, 0 (%+v)", k, got, len(d.Users), len(d.Groups), k, k, d.Stats)
		}
	}
	// One member leaves the 3,000-member group: with the view, the delta
	// reads the group (ranged) and no member; without it, every member.
	if err := mut.removeMember(fx.big, fx.bigUsers[0]); err != nil {
		t.Fatal(err)
	}
	d = next("membership change")
	if got := d.Stats.Entries - d.Stats.Probes; got > 1+len(d.Groups[fx.big].Members)/1000+2 {
		t.Errorf("membership change with the view: %d entries beyond the probes (%+v)", got, d.Stats)
	}
	if len(d.Users) != 0 || len(d.Groups) != 1 || len(d.Groups[fx.big].Members) != fx.bigN-1 {
		t.Errorf("membership change: %d users read, %d groups recomputed", len(d.Users), len(d.Groups))
	}
	if err := mut.addMember(fx.big, fx.bigUsers[0]); err != nil {
		t.Fatal(err)
	}
	d, err = r.ReadChanges(ctx, q, wm, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, members := d.Stats.Entries-d.Stats.Probes, len(d.Groups[fx.big].Members); got > 1+members+members/1000+2 {
		t.Errorf("membership change without the view: %d entries beyond the probes for %d members (%+v)", got, members, d.Stats)
	}
}

// Samba: the same scenarios as a least-privilege reader.

var (
	sambaDeltaOnce sync.Once
	sambaDeltaFx   *deltaFixture
	sambaDeltaErr  error
)

// sambaTombstoneReader creates (as Administrator) a second plain domain
// user under CN=Users, to be granted the right to read tombstones, and
// returns reader with its credentials.
func sambaTombstoneReader(t *testing.T, reader Config, conn *ldap.Conn) Config {
	t.Helper()
	const name = "pandasync-reader-tombstones"
	pw := "Rd-" + randomSuffix() + "-Pw1!"
	dn := "CN=" + name + ",CN=Users," + os.Getenv("DC_BASE_DN")
	add := ldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	add.Attribute("sAMAccountName", []string{name})
	add.Attribute("userPrincipalName", []string{name + "@" + strings.ToLower(os.Getenv("DC_REALM"))})
	add.Attribute("unicodePwd", []string{unicodePwd(pw)})
	add.Attribute("userAccountControl", []string{"512"})
	err := conn.Add(add)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
		mod := ldap.NewModifyRequest(dn, nil)
		mod.Replace("unicodePwd", []string{unicodePwd(pw)})
		err = conn.Modify(mod)
	}
	if err != nil {
		t.Fatalf("creating the reader account %s: %v", dn, err)
	}
	reader.BindDN, reader.Password = dn, pw
	return reader
}

// grantTombstones gives an account List Contents and Read Property on
// CN=Deleted Objects, through samba's own Python bindings on the DC's
// sam.ldb (the container is hidden from samba-tool dsacl).
func grantTombstones(t *testing.T, dn string) {
	t.Helper()
	dir := os.Getenv("DC_DIR")
	if dir == "" {
		t.Skip("DC_DIR is not set: cannot grant the reader access to CN=Deleted Objects")
	}
	script := `
import sys
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
from samba.dcerpc import security
from samba.ndr import ndr_unpack, ndr_pack
import ldb
lp = LoadParm(); lp.load(sys.argv[1] + "/etc/smb.conf")
db = SamDB(url=lp.samdb_url(), session_info=system_session(), lp=lp)
sid = str(ndr_unpack(security.dom_sid, db.search(base=sys.argv[2], scope=ldb.SCOPE_BASE, attrs=["objectSid"])[0]["objectSid"][0]))
dn = "CN=Deleted Objects," + str(db.domain_dn())
res = db.search(base=dn, scope=ldb.SCOPE_BASE, attrs=["nTSecurityDescriptor"], controls=["show_deleted:1", "sd_flags:1:4"])
sd = ndr_unpack(security.descriptor, res[0]["nTSecurityDescriptor"][0])
ace = "(A;;RPLC;;;%s)" % sid
sddl = sd.as_sddl()
if ace not in sddl:
    sddl = sddl.replace("D:PAI", "D:PAI" + ace, 1) if "D:PAI" in sddl else sddl.replace("D:", "D:" + ace, 1)
    m = ldb.Message(); m.dn = ldb.Dn(db, dn)
    m["nTSecurityDescriptor"] = ldb.MessageElement(ndr_pack(security.descriptor.from_sddl(sddl, security.dom_sid(str(db.get_domain_sid())))), ldb.FLAG_MOD_REPLACE, "nTSecurityDescriptor")
    db.modify(m, controls=["show_deleted:1", "sd_flags:1:4"])
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, dir, dn).CombinedOutput()
	if err != nil {
		t.Skipf("granting the reader access to CN=Deleted Objects: %v\n%s", err, out)
	}
}

func sambaDeltaEnv(t *testing.T, tombstones bool) deltaEnv {
	cfg := sambaEnvConfig(t) // the least-privilege reader; BaseDN the naming context
	admin := sambaAdminConfig()
	conn, err := adminConn(admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fx := newDeltaFixture(admin.BaseDN, randomSuffix())
	if err := loadFixture(conn, fx.asFixture()); err != nil {
		t.Fatalf("loading the delta fixture: %v", err)
	}
	t.Cleanup(func() {
		if err := conn.Del(ldap.NewDelRequest(fx.base, []ldap.Control{ldap.NewControlSubtreeDelete()})); err != nil {
			t.Errorf("removing the delta fixture: %v", err)
		}
	})
	if tombstones {
		cfg = sambaTombstoneReader(t, cfg, conn)
		grantTombstones(t, cfg.BindDN)
	}
	// BaseDN is the naming context, as DirSync needs and most sites have.
	return deltaEnv{cfg: cfg, fx: fx, mut: ldapMutator{conn}, tombstones: tombstones}
}

func TestDeltaSamba(t *testing.T) {
	for _, method := range []string{ChangeTrackingUSN, ChangeTrackingDirSync} {
		t.Run(method, func(t *testing.T) {
			env := sambaDeltaEnv(t, true)
			env.cfg.ChangeTracking = method
			runDeltaScenarios(t, env)
		})
	}
}

func TestDeltaDeleteWithoutTombstonesSamba(t *testing.T) {
	testDeleteWithoutTombstones(t, sambaDeltaEnv(t, false))
}

// TestDeltaDirSyncSamba covers what only DirSync has: a refused cookie, and
// the fall back to uSNChanged where DirSync cannot serve (a BaseDN below
// the naming context).
func TestDeltaDirSyncSamba(t *testing.T) {
	env := sambaDeltaEnv(t, false)
	env.cfg.ChangeTracking = ChangeTrackingDirSync
	ctx := context.Background()
	q := env.fx.query()
	r := newReader(t, env.cfg)
	d, err := r.ReadChanges(ctx, q, Watermark{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Watermark.Method != ChangeTrackingDirSync || len(d.Watermark.Cookie) == 0 {
		t.Fatalf("watermark method %s, cookie of %d bytes; want a DirSync cookie", d.Watermark.Method, len(d.Watermark.Cookie))
	}
	refused := d.Watermark
	refused.Cookie = []byte("not a cookie")
	d2, err := r.ReadChanges(ctx, q, refused, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !d2.Full || !strings.Contains(d2.FullReason, "cookie was refused") || len(d2.Deleted) > 0 {
		t.Errorf("refused cookie: full %t (%q); want a full read", d2.Full, d2.FullReason)
	}
	if diff := cmp.Diff(view(d.Result), view(d2.Result), cmpEmpty); diff != "" {
		t.Errorf("full read after the refusal differs (-want +got):\n%s", diff)
	}

	ou := env.cfg
	ou.BaseDN = env.fx.base
	r2 := newReader(t, ou)
	d3, err := r2.ReadChanges(ctx, q, Watermark{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d3.Watermark.Method != ChangeTrackingUSN {
		t.Fatalf("base below the naming context: method %s, want the uSNChanged fallback", d3.Watermark.Method)
	}
	// With that method recorded, the DirSync-configured reader keeps deltas.
	d4, err := r2.ReadChanges(ctx, q, d3.Watermark, nil)
	if err != nil || d4.Full {
		t.Fatalf("USN delta below the naming context: %v, full %v", err, d4 != nil && d4.Full)
	}
	if st := d4.Stats; st.Searches > 4 || st.Entries != st.Probes {
		t.Errorf("no change below the naming context: %+v; want 4 searches (tombstones need their own) and no entry", st)
	}
}

func TestDeltaP5P6Samba(t *testing.T) {
	reader, fx := sambaFixture(t)
	conn, err := adminConn(sambaAdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	reader.BaseDN = os.Getenv("DC_BASE_DN")
	runP5P6(t, reader, ldapMutator{conn}, fx)
}

// hideTeamMemberOf makes memberOf of the fixture's nested group Team
// unreadable for the reader (a deny ACE on Samba).
func (f *deltaFixture) hideTeamMemberOf() {
	for _, e := range f.entries {
		if e.DN == f.team {
			e.Attributes = append(e.Attributes, &ldap.EntryAttribute{Name: "x-embedded-hidden-attribute", Values: []string{"memberOf"}})
		}
	}
}

// TestDeltaNestedGroupWithoutMemberOf: a delta finds nested groups through
// memberOf; a nested group whose memberOf the bind account cannot read is
// not found so. Its members must not vanish from the recomputed mapped
// group (a full read, which lists every group, still shows them): the
// delta becomes a full read instead.
func TestDeltaNestedGroupWithoutMemberOf(t *testing.T) {
	fx := newDeltaFixture(embeddedBase, randomSuffix())
	fx.hideTeamMemberOf()
	cfg, srv := startEmbedded(t, fx.asFixture(), embeddedOptions())
	cfg.BaseDN = embeddedBase
	testNestedGroupWithoutMemberOf(t, cfg, embeddedMutator{srv}, fx)
}

func TestDeltaNestedGroupWithoutMemberOfSamba(t *testing.T) {
	cfg := sambaEnvConfig(t)
	conn, err := adminConn(sambaAdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fx := newDeltaFixture(cfg.BaseDN, randomSuffix())
	fx.hideTeamMemberOf()
	if err := loadFixture(conn, fx.asFixture()); err != nil {
		t.Fatalf("loading the delta fixture: %v", err)
	}
	t.Cleanup(func() {
		if err := conn.Del(ldap.NewDelRequest(fx.base, []ldap.Control{ldap.NewControlSubtreeDelete()})); err != nil {
			t.Errorf("removing the delta fixture: %v", err)
		}
	})
	testNestedGroupWithoutMemberOf(t, cfg, ldapMutator{conn}, fx)
}

func testNestedGroupWithoutMemberOf(t *testing.T, cfg Config, mut mutator, fx *deltaFixture) {
	ctx := context.Background()
	q := fx.query()
	r := newReader(t, cfg)
	first, err := r.ReadChanges(ctx, q, Watermark{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cur := &Result{}
	cur.Apply(first)
	if got := len(cur.Groups[fx.all].Members); got != 4 {
		t.Fatalf("full read: %d members of All, want 4 (u1 and, through Team, u2, u3, u4)", got)
	}
	// A membership change in the mapped group recomputes it.
	if err := mut.addMember(fx.all, fx.u[8]); err != nil {
		t.Fatal(err)
	}
	d, err := r.ReadChanges(ctx, q, first.Watermark, cur)
	if err != nil {
		t.Fatal(err)
	}
	cur.Apply(d)
	full, err := r.Read(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(view(full), view(cur), cmpEmpty); diff != "" {
		t.Errorf("delta applied to the view differs from a full read (-full +delta):\n%s", diff)
	}
	if !d.Full || !strings.Contains(d.FullReason, "not found through memberOf") {
		t.Errorf("delta: full %t (%q), want a full read (the nested group was not found through memberOf)", d.Full, d.FullReason)
	}
}

// TestDeltaDNTakenByAnotherObject: a user is deleted (the reader may not
// see tombstones) and another one created with its DN and put in a mapped
// group. The view holds the first one at that DN, with its memberships; the
// new object must not inherit them (it would be granted the first one's
// roles): the delta becomes a full read.
func TestDeltaDNTakenByAnotherObject(t *testing.T) {
	env, _ := startDeltaEmbedded(t, false)
	testDNTakenByAnotherObject(t, env)
}

func TestDeltaDNTakenByAnotherObjectSamba(t *testing.T) {
	testDNTakenByAnotherObject(t, sambaDeltaEnv(t, false))
}

func testDNTakenByAnotherObject(t *testing.T, env deltaEnv) {
	ctx := context.Background()
	fx := env.fx
	q := fx.query()
	r := newReader(t, env.cfg)
	first, err := r.ReadChanges(ctx, q, Watermark{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cur := &Result{}
	cur.Apply(first)
	// u5 is in Flat; its successor at the same DN goes into Team (All).
	var again *ldap.Entry
	for _, e := range fx.entries {
		if e.DN == fx.u[5] {
			again = ldap.NewEntry(e.DN, map[string][]string{})
			for _, a := range e.Attributes {
				again.Attributes = append(again.Attributes, &ldap.EntryAttribute{Name: a.Name, Values: a.Values})
			}
		}
	}
	if err := env.mut.remove(fx.u[5]); err != nil {
		t.Fatal(err)
	}
	if err := env.mut.add(again); err != nil {
		t.Fatal(err)
	}
	if err := env.mut.addMember(fx.team, fx.u[5]); err != nil {
		t.Fatal(err)
	}
	d, err := r.ReadChanges(ctx, q, first.Watermark, cur)
	if err != nil {
		t.Fatal(err)
	}
	cur.Apply(d)
	full, err := r.Read(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(view(full), view(cur), cmpEmpty); diff != "" {
		t.Errorf("delta applied to the view differs from a full read (-full +delta):\n%s", diff)
	}
	if !d.Full {
		t.Errorf("delta: not a full read, want one (another object took a DN of the view)")
	}
}
