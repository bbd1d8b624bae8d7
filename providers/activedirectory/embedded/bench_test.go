package embedded

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// BenchmarkPagedSubtreeSearch reads 10,000 users in pages of 1,000 over a
// real loopback socket, the way the reader does.
func BenchmarkPagedSubtreeSearch(b *testing.B) {
	const n = 10000
	s, url := serve(b, manyUsers(n), Options{MaxPageSize: 1000, MaxValRange: 1500})
	c := dial(b, url, true)
	req := searchReq(testBase, ldap.ScopeWholeSubtree, "(&(objectCategory=person)(objectClass=user))",
		"objectSid", "objectGUID", "sAMAccountName", "userPrincipalName", "mail", "givenName", "sn",
		"userAccountControl", "memberOf", "uSNChanged")
	b.ReportAllocs()
	for b.Loop() {
		got := 0
		var cookie []byte
		for {
			pc := ldap.NewControlPaging(1000)
			pc.SetCookie(cookie)
			r := *req
			r.Controls = []ldap.Control{pc}
			res, err := c.Search(&r)
			if err != nil {
				b.Fatal(err)
			}
			got += len(res.Entries)
			cookie = ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging).Cookie
			if len(cookie) == 0 {
				break
			}
		}
		if got != n {
			b.Fatalf("read %d entries, want %d", got, n)
		}
	}
	b.ReportMetric(float64(s.Stats().Entries)/float64(b.N), "entries/op")
}

// BenchmarkServerSide measures the server alone: filter evaluation and
// encoding of 10,000 entries, without a client decoding them.
func BenchmarkServerSide(b *testing.B) {
	const n = 10000
	s, err := New(manyUsers(n), Options{})
	if err != nil {
		b.Fatal(err)
	}
	f, err := ldap.CompileFilter("(&(objectCategory=person)(objectClass=user))")
	if err != nil {
		b.Fatal(err)
	}
	sel := parseSelection([]string{"objectSid", "sAMAccountName", "mail", "givenName", "sn", "userAccountControl", "memberOf"})
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		m, err := s.dir.compileFilter(f)
		if err != nil {
			b.Fatal(err)
		}
		s.mu.RLock()
		matched, err := s.dir.find(s.dir.baseNorm, int64(ldap.ScopeWholeSubtree), m, false, false)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range matched {
			buf = appendEntry(buf[:0], 1, e.dn, s.dir.render(e, sel, 0, false))
		}
		s.mu.RUnlock()
		if len(matched) != n {
			b.Fatalf("matched %d", len(matched))
		}
	}
}
