package activedirectory

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// conformanceEnv is what the suite needs to know about a server.
type conformanceEnv struct {
	cfg           Config   // admin connection to the server, BaseDN = fixture OU
	fx            *fixture // what was loaded
	forcedRanging bool     // the server caps plain member at 1,500 values (AD)
	maxPageSize   bool     // the server refuses unpaged searches over 1,000 entries (AD)
}

func newReader(t testing.TB, cfg Config) *Reader {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func normAll(dns ...string) []string {
	out := make([]string, len(dns))
	for i, d := range dns {
		out[i] = NormalizeDN(d)
	}
	return out
}

var sidRE = regexp.MustCompile(`^S-1-5-21-\d+-\d+-\d+-\d+$`)
var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// runConformance is the one suite run against every server.
func runConformance(t *testing.T, env conformanceEnv) {
	fx := env.fx
	ctx := context.Background()
	attrs := []string{"mail", "givenName", "sn", "objectSid", "displayName"}

	t.Run("Ping", func(t *testing.T) {
		if err := newReader(t, env.cfg).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("NestedCycleDisabledNoMailSpecialDN", func(t *testing.T) {
		r := newReader(t, env.cfg)
		res, err := r.Read(ctx, Query{
			Groups: []GroupQuery{
				{DN: fx.top, Nested: true},
				{DN: fx.special, Nested: true},
				{DN: fx.flat, Nested: false},
				{DN: fx.missing, Nested: true},
			},
			Attributes: attrs,
		})
		if err != nil {
			t.Fatal(err)
		}
		type groupView struct {
			Exists     bool
			Members    []string
			Via        map[string][]string
			Unresolved []Unresolved
		}
		got := map[string]groupView{}
		for k, g := range res.Groups {
			v := groupView{Exists: g.Exists, Members: g.Members, Via: map[string][]string{}, Unresolved: g.Unresolved}
			for m, chain := range g.Via {
				v.Via[m] = normAll(chain...)
			}
			got[k] = v
		}
		n := NormalizeDN
		sorted := func(dns ...string) []string { s := normAll(dns...); slices.Sort(s); return s }
		want := map[string]groupView{
			fx.top: {Exists: true, Members: sorted(fx.alice, fx.bob, fx.carol, fx.obrien, fx.expired), Via: map[string][]string{
				n(fx.alice):   normAll(fx.top),
				n(fx.bob):     normAll(fx.top, fx.mid),
				n(fx.carol):   normAll(fx.top, fx.mid, fx.low),
				n(fx.obrien):  normAll(fx.top, fx.mid, fx.low),
				n(fx.expired): normAll(fx.top, fx.mid, fx.low),
			}},
			fx.special: {Exists: true, Members: sorted(fx.alice, fx.obrien), Via: map[string][]string{
				n(fx.alice): normAll(fx.special), n(fx.obrien): normAll(fx.special),
			}},
			fx.flat:    {Exists: true, Members: sorted(fx.alice), Via: map[string][]string{n(fx.alice): normAll(fx.flat)}},
			fx.missing: {Exists: false, Members: []string{}, Via: map[string][]string{}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("groups (-want +got):\n%s", diff)
		}
		// The contact (in G-Top) and G-Mid (in the non-nested G-Flat) are
		// readable non-users: read once each, not unresolved.
		if res.Stats.MemberReads != 2 {
			t.Errorf("member reads = %d, want 2 (the contact and G-Mid)", res.Stats.MemberReads)
		}

		type userView struct {
			SAM, UPN          string
			Disabled, Expired bool
			Attrs             map[string][]string
		}
		gotUsers := map[string]userView{}
		sids := map[string]bool{}
		for k, u := range res.Users {
			if !sidRE.MatchString(u.SID) || !guidRE.MatchString(u.GUID) {
				t.Errorf("user %s: SID %q GUID %q not in canonical form", u.DN, u.SID, u.GUID)
			}
			if sids[u.SID] {
				t.Errorf("duplicate SID %s", u.SID)
			}
			sids[u.SID] = true
			if got := u.Attr("objectSid"); len(got) != 1 || got[0] != u.SID {
				t.Errorf("user %s: Attrs[objectSid] = %v, want [%s]", u.DN, got, u.SID)
			}
			if NormalizeDN(u.DN) != k {
				t.Errorf("user keyed %q has DN %q", k, u.DN)
			}
			a := u.Attrs()
			delete(a, "objectSid")
			gotUsers[k] = userView{SAM: u.SAMAccountName, UPN: u.UPN, Disabled: u.Disabled, Expired: u.Expired, Attrs: a}
		}
		p := fx.prefix
		wantUsers := map[string]userView{
			n(fx.alice):   {SAM: p + "-alice", UPN: p + "-alice@example.test", Attrs: map[string][]string{"mail": {"alice@example.test"}, "givenName": {"Alice"}, "sn": {"Able"}}},
			n(fx.bob):     {SAM: p + "-bob", UPN: p + "-bob@example.test", Disabled: true, Attrs: map[string][]string{"mail": {"bob@example.test"}, "givenName": {"Bob"}, "sn": {"Baker"}}},
			n(fx.carol):   {SAM: p + "-carol", UPN: p + "-carol@example.test", Attrs: map[string][]string{"givenName": {"Carol"}, "sn": {"Cole"}}},
			n(fx.obrien):  {SAM: p + "-obrien", UPN: p + "-obrien@example.test", Attrs: map[string][]string{"mail": {"zoe@example.test"}, "givenName": {"Zoë"}, "sn": {"O'Brien"}}},
			n(fx.expired): {SAM: p + "-eve", UPN: p + "-eve@example.test", Expired: true, Attrs: map[string][]string{"mail": {"eve@example.test"}}},
		}
		if diff := cmp.Diff(wantUsers, gotUsers); diff != "" {
			t.Errorf("users (-want +got):\n%s", diff)
		}

		t.Run("Lookup", func(t *testing.T) {
			alice, bob := res.Users[n(fx.alice)], res.Users[n(fx.bob)]
			gone := "S-1-5-21-1-2-3-987654"
			got, err := r.Lookup(ctx, []string{alice.SID, bob.SID, gone}, []string{"mail"})
			if err != nil {
				t.Fatal(err)
			}
			gotDNs := map[string]string{}
			for sid, u := range got {
				gotDNs[sid] = NormalizeDN(u.DN)
			}
			if diff := cmp.Diff(map[string]string{alice.SID: n(fx.alice), bob.SID: n(fx.bob)}, gotDNs); diff != "" {
				t.Errorf("Lookup (-want +got):\n%s", diff)
			}
		})
	})

	t.Run("UnreadableAndOutsideMembers", func(t *testing.T) {
		// Issue 8 item 6, R30: members the bind account cannot read, or
		// that lie outside baseDN, are reported per group, never dropped.
		r := newReader(t, env.cfg)
		res, err := r.Read(ctx, Query{
			Groups:     []GroupQuery{{DN: fx.partial, Nested: true}, {DN: fx.partialSub}, {DN: fx.top, Nested: true}},
			Attributes: []string{"mail"},
		})
		if err != nil {
			t.Fatal(err)
		}
		type unresolvedView struct {
			DN     string
			Reason UnresolvedReason
			Via    []string
		}
		view := func(g *Group) (members []string, unresolved []unresolvedView) {
			for _, u := range g.Unresolved {
				unresolved = append(unresolved, unresolvedView{NormalizeDN(u.DN), u.Reason, normAll(u.Via...)})
			}
			return g.Members, unresolved
		}
		n := NormalizeDN
		sorted := func(dns ...string) []string { s := normAll(dns...); slices.Sort(s); return s }
		sortedU := func(us ...unresolvedView) []unresolvedView {
			slices.SortFunc(us, func(a, b unresolvedView) int { return strings.Compare(a.DN, b.DN) })
			return us
		}
		for _, tt := range []struct {
			group          string
			wantMembers    []string
			wantUnresolved []unresolvedView
		}{
			{fx.partial, sorted(fx.alice, fx.sidless, fx.bob), sortedU(
				unresolvedView{n(fx.hiddenGroup), UnresolvedUnreadable, normAll(fx.partial)},
				unresolvedView{n(fx.hidden), UnresolvedUnreadable, normAll(fx.partial, fx.partialSub)},
				unresolvedView{n(fx.outside), UnresolvedOutsideBase, normAll(fx.partial)},
			)},
			{fx.partialSub, sorted(fx.bob), []unresolvedView{{n(fx.hidden), UnresolvedUnreadable, normAll(fx.partialSub)}}},
			{fx.top, sorted(fx.alice, fx.bob, fx.carol, fx.obrien, fx.expired), nil},
		} {
			members, unresolved := view(res.Groups[tt.group])
			if diff := cmp.Diff(tt.wantMembers, members); diff != "" {
				t.Errorf("%s members (-want +got):\n%s", tt.group, diff)
			}
			if diff := cmp.Diff(tt.wantUnresolved, unresolved); diff != "" {
				t.Errorf("%s unresolved (-want +got):\n%s", tt.group, diff)
			}
		}
		// The contact, G-Hidden and Hidden Hannah get one base read each;
		// Olga, outside baseDN, is never read.
		if res.Stats.MemberReads != 3 {
			t.Errorf("member reads = %d, want 3", res.Stats.MemberReads)
		}
		if _, ok := res.Users[n(fx.outside)]; ok {
			t.Error("the member outside baseDN was read")
		}
		// A user whose objectSid is unreadable is a user without a SID.
		sam := res.Users[n(fx.sidless)]
		if sam == nil {
			t.Fatal("the user with an unreadable objectSid is missing")
		}
		if sam.SID != "" || sam.Attr("objectSid") != nil || !guidRE.MatchString(sam.GUID) || sam.Attr("mail")[0] != "sam@example.test" {
			t.Errorf("user with an unreadable objectSid: SID %q objectSid %v GUID %q mail %v", sam.SID, sam.Attr("objectSid"), sam.GUID, sam.Attr("mail"))
		}
		for _, u := range res.Groups[fx.partial].Unresolved {
			if !strings.Contains(u.String(), u.DN) || u.Explanation() == "" {
				t.Errorf("Unresolved %v renders as %q", u, u.String())
			}
		}

		t.Run("NotNested", func(t *testing.T) {
			res, err := r.Read(ctx, Query{Groups: []GroupQuery{{DN: fx.partial}}})
			if err != nil {
				t.Fatal(err)
			}
			members, unresolved := view(res.Groups[fx.partial])
			if diff := cmp.Diff(sorted(fx.alice, fx.sidless), members); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			want := sortedU(
				unresolvedView{n(fx.hiddenGroup), UnresolvedUnreadable, normAll(fx.partial)},
				unresolvedView{n(fx.outside), UnresolvedOutsideBase, normAll(fx.partial)},
			)
			if diff := cmp.Diff(want, unresolved); diff != "" {
				t.Errorf("unresolved (-want +got):\n%s", diff)
			}
		})

		t.Run("BaseDNIsOneOU", func(t *testing.T) {
			// Read with baseDN narrowed to the users' OU: the mapped group
			// is still read, but every member outside the OU is outside_base.
			cfg := env.cfg
			cfg.BaseDN = "OU=Users," + fx.base
			res, err := newReader(t, cfg).Read(ctx, Query{Groups: []GroupQuery{{DN: fx.special}}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sorted(fx.alice, fx.obrien), res.Groups[fx.special].Members); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			cfg.BaseDN = "OU=Big," + fx.base
			res, err = newReader(t, cfg).Read(ctx, Query{Groups: []GroupQuery{{DN: fx.special}}})
			if err != nil {
				t.Fatal(err)
			}
			_, unresolved := view(res.Groups[fx.special])
			want := sortedU(
				unresolvedView{n(fx.alice), UnresolvedOutsideBase, normAll(fx.special)},
				unresolvedView{n(fx.obrien), UnresolvedOutsideBase, normAll(fx.special)},
			)
			if diff := cmp.Diff(want, unresolved); diff != "" {
				t.Errorf("unresolved (-want +got):\n%s", diff)
			}
			if len(res.Groups[fx.special].Members) != 0 || res.Stats.MemberReads != 0 {
				t.Errorf("members %v, member reads %d, want none", res.Groups[fx.special].Members, res.Stats.MemberReads)
			}
		})
	})

	t.Run("Schema", func(t *testing.T) {
		r := newReader(t, env.cfg)
		res, err := r.Read(ctx, Query{Groups: []GroupQuery{{DN: fx.special}}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, schema := range map[string]*Schema{"Result.Schema": res.Schema, "Reader.Schema": s} {
			for _, a := range []string{"title", "TITLE", "mail", "givenName", "sn", "department", "employeeID", "objectSid", "memberOf", "userPrincipalName", "2.5.4.12", "member;range=0-*"} {
				if !schema.HasAttribute(a) {
					t.Errorf("%s: HasAttribute(%q) = false", name, a)
				}
			}
			for _, a := range []string{"titel", "x-embedded-hidden", "", "mial"} {
				if schema.HasAttribute(a) {
					t.Errorf("%s: HasAttribute(%q) = true", name, a)
				}
			}
			if got := schema.Suggest("titel"); !slices.Contains(got, "title") {
				t.Errorf("%s: Suggest(titel) = %v, want title among them", name, got)
			}
			if got := schema.Suggest("departmnet"); len(got) == 0 || got[0] != "department" {
				t.Errorf("%s: Suggest(departmnet) = %v, want department first", name, got)
			}
		}
	})

	t.Run("BindRefusals", func(t *testing.T) {
		for code, dn := range fx.binders {
			t.Run("data "+code, func(t *testing.T) {
				cfg := env.cfg
				cfg.BindDN, cfg.Password = dn, fixtureBindPassword
				err := newReader(t, cfg).Ping(ctx)
				if code == "" {
					if err != nil {
						t.Fatalf("usable account: %v", err)
					}
					cfg.Password = "Canary-Wr0ng-Passw0rd"
					code, err = "52e", newReader(t, cfg).Ping(ctx)
				}
				var e *Error
				if !errors.As(err, &e) || e.Subcode != code || !e.Terminal() || e.Reason == "" || !strings.Contains(err.Error(), e.Reason) {
					t.Fatalf("err = %v, want a terminal *Error with sub-code %s in plain words", err, code)
				}
				if strings.Contains(err.Error(), cfg.Password) {
					t.Errorf("error %q contains the password", err)
				}
			})
		}
	})

	t.Run("NotNested", func(t *testing.T) {
		res, err := newReader(t, env.cfg).Read(ctx, Query{Groups: []GroupQuery{{DN: fx.top}}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{NormalizeDN(fx.alice)}, res.Groups[fx.top].Members); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
	})

	t.Run("DepthCap", func(t *testing.T) {
		r := newReader(t, env.cfg)
		res, err := r.Read(ctx, Query{Groups: []GroupQuery{{DN: fx.chain[1], Nested: true}}})
		if err != nil {
			t.Fatalf("%d levels: %v", MaxNestingDepth, err)
		}
		if diff := cmp.Diff([]string{NormalizeDN(fx.alice)}, res.Groups[fx.chain[1]].Members); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		if got := len(res.Groups[fx.chain[1]].Via[NormalizeDN(fx.alice)]); got != MaxNestingDepth+1 {
			t.Errorf("via chain has %d groups, want %d", got, MaxNestingDepth+1)
		}
		_, err = r.Read(ctx, Query{Groups: []GroupQuery{{DN: fx.chain[0], Nested: true}}})
		if err == nil || !strings.Contains(err.Error(), "nests deeper") {
			t.Fatalf("%d levels: err = %v, want a nesting error", MaxNestingDepth+1, err)
		}
	})

	bigWant := normAll(fx.bigUsers...)
	slices.Sort(bigWant)
	t.Run("BigGroup", func(t *testing.T) {
		res, err := newReader(t, env.cfg).Read(ctx, Query{Groups: []GroupQuery{{DN: fx.big}}, Attributes: []string{"mail"}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(bigWant, res.Groups[fx.big].Members); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		st := res.Stats
		if env.forcedRanging && st.RangeRequests == 0 {
			t.Errorf("server forces ranging but no range request was made: %+v", st)
		}
		// rootDSE + schema + group (+ ranges) + one paged user search.
		if want := 4 + st.RangeRequests; st.Searches != want {
			t.Errorf("searches = %d, want %d (%+v)", st.Searches, want, st)
		}
		if maxPages := 3 + st.RangeRequests + (fx.bigN+999)/1000 + 1; st.Pages > maxPages {
			t.Errorf("pages = %d, want at most %d (%+v)", st.Pages, maxPages, st)
		}
	})

	t.Run("ExplicitRanges", func(t *testing.T) {
		r := newReader(t, env.cfg)
		r.rangeStep = 1000
		res, err := r.Read(ctx, Query{Groups: []GroupQuery{{DN: fx.big}}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(bigWant, res.Groups[fx.big].Members); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		if want := (fx.bigN+999)/1000 - 1; res.Stats.RangeRequests < want {
			t.Errorf("range requests = %d, want at least %d", res.Stats.RangeRequests, want)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := newReader(t, env.cfg).Read(cctx, Query{Groups: []GroupQuery{{DN: fx.big}}}); err == nil {
			t.Fatal("Read with a cancelled context succeeded")
		}
	})

	t.Run("CutConnectionFailsWholeRead", func(t *testing.T) {
		// R3: the connection dies part-way through the user pages.
		p := newProxy(t, env.cfg.URLs[0], 150_000)
		cfg := env.cfg
		cfg.URLs = []string{p.url}
		res, err := newReader(t, cfg).Read(ctx, Query{Groups: []GroupQuery{{DN: fx.big}}, Attributes: []string{"mail"}})
		if err == nil {
			t.Fatalf("read over a cut connection succeeded with %d members", len(res.Groups[fx.big].Members))
		}
	})

	t.Run("ReconnectAfterServerClose", func(t *testing.T) {
		p := newProxy(t, env.cfg.URLs[0], 0)
		cfg := env.cfg
		cfg.URLs = []string{p.url}
		r := newReader(t, cfg)
		q := Query{Groups: []GroupQuery{{DN: fx.special}}}
		if _, err := r.Read(ctx, q); err != nil {
			t.Fatal(err)
		}
		p.closeAll()
		res, err := r.Read(ctx, q)
		if err != nil {
			t.Fatalf("read after the server closed the connection: %v", err)
		}
		if got := len(res.Groups[fx.special].Members); got != 2 {
			t.Errorf("members = %d, want 2", got)
		}
		if got := p.accepted.Load(); got != 2 {
			t.Errorf("connections = %d, want 2", got)
		}
	})

	t.Run("PacketCap", func(t *testing.T) {
		cfg := env.cfg
		cfg.MaxPacketBytes = 4096 // the big group's member list is far larger
		_, err := newReader(t, cfg).Read(ctx, Query{Groups: []GroupQuery{{DN: fx.big}}})
		if err == nil || !strings.Contains(err.Error(), "maximum size") {
			t.Fatalf("err = %v, want the packet cap", err)
		}
	})
}

// proxy is a loopback TCP forwarder that can cut the server-to-client
// stream after a number of bytes and close every connection on demand.
type proxy struct {
	url      string
	target   string
	cutAfter int64
	accepted atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t testing.TB, target string, cutAfter int64) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: u.Host, cutAfter: cutAfter, url: u.Scheme + "://" + ln.Addr().String()}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				if p.cutAfter > 0 {
					io.CopyN(c, s, p.cutAfter)
				} else {
					io.Copy(c, s)
				}
				c.Close()
				s.Close()
			}()
		}
	}()
	return p
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
