package embedded

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

const demoLDIF = "../../../examples/demo/directory.ldif"

// TestDemoDirectory keeps examples/demo/directory.ldif parseable, servable and
// true to the story its header tells.
func TestDemoDirectory(t *testing.T) {
	f, err := os.Open(filepath.FromSlash(demoLDIF))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ParseLDIF(f)
	if err != nil {
		t.Fatalf("ParseLDIF: %v", err)
	}
	const base = "DC=corp,DC=example,DC=com"
	svc := "CN=svc-pandasync,OU=Service Accounts," + base
	s, err := New(entries, Options{BindDN: svc, Password: "demo-password", MaxPageSize: 1000, MaxValRange: 1500})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if s.BaseDN() != base {
		t.Errorf("BaseDN = %q, want %q", s.BaseDN(), base)
	}
	url, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ldap.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("svc-pandasync@corp.example.com", "demo-password"); err != nil {
		t.Fatalf("bind by UPN: %v", err)
	}

	got := demoMembership(t, c, base)
	want := map[string][]string{
		"AP Admins":         {"ada", "margaret"},
		"AP Users":          {"dennis", "grace", "ken", "margaret"},
		"AP Users enabled":  {"dennis", "grace", "margaret"},
		"Engineering":       {"ada", "barbara", "jose", "linus"},
		"All Staff":         {"ada", "annie", "barbara", "dennis", "edsger", "grace", "jose", "katherine", "linus"},
		"All Staff enabled": {"ada", "annie", "barbara", "dennis", "grace", "jose", "katherine", "linus"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("group membership (-want +got):\n%s", diff)
	}

	// Facts the demo seed relies on.
	lookup := func(filter string, attrs ...string) *ldap.Entry {
		t.Helper()
		res, err := c.Search(searchReq(base, ldap.ScopeWholeSubtree, filter, attrs...))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("search %s: %v (%d entries)", filter, err, len(res.Entries))
		}
		return res.Entries[0]
	}
	k := lookup("(objectSid=S-1-5-21-1004336348-1177238915-682003330-1107)", "sAMAccountName", "memberOf")
	if k.GetAttributeValue("sAMAccountName") != "katherine" || !slices.Contains(k.GetAttributeValues("memberOf"), "CN=All Staff,OU=Groups,"+base) {
		t.Errorf("RID 1107 = %s, memberOf %v; want katherine in All Staff", k.GetAttributeValue("sAMAccountName"), k.GetAttributeValues("memberOf"))
	}
	g := lookup("(mail=grace@corp.example.com)", "memberOf")
	if !slices.Contains(g.GetAttributeValues("memberOf"), "CN=AP Users,OU=Groups,"+base) {
		t.Errorf("grace memberOf %v, want AP Users", g.GetAttributeValues("memberOf"))
	}
	jose := lookup("(sAMAccountName=jose)", "cn", "givenName", "sn")
	if jose.DN != "CN=José Núñez,OU=People,"+base || jose.GetAttributeValue("givenName") != "José" || jose.GetAttributeValue("sn") != "Núñez" {
		t.Errorf("José: dn %q, givenName %q, sn %q", jose.DN, jose.GetAttributeValue("givenName"), jose.GetAttributeValue("sn"))
	}
	adaGroups, err := c.Search(searchReq(base, ldap.ScopeWholeSubtree, "(member="+ldap.EscapeFilter(`CN=Lovelace\, Ada,OU=People,`+base)+")", "1.1"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"CN=AP Admins,OU=Groups," + base, "CN=Engineering,OU=Groups," + base}, dns(adaGroups)); diff != "" {
		t.Errorf("groups of Ada (-want +got):\n%s", diff)
	}
	if b := lookup("(sAMAccountName=barbara)", "mail"); len(b.GetAttributeValues("mail")) != 0 {
		t.Errorf("barbara has mail %v, want none", b.GetAttributeValues("mail"))
	}

	// Every user has the documented SID: domain SID plus RID 1101.. in file order.
	res, err := c.Search(searchReq("OU=People,"+base, ldap.ScopeSingleLevel, "(objectClass=user)", "objectSid"))
	if err != nil {
		t.Fatal(err)
	}
	var rids []string
	for _, e := range res.Entries {
		sid, err := FormatSID(e.GetRawAttributeValue("objectSid"))
		if err != nil {
			t.Fatal(err)
		}
		rids = append(rids, sid[len(DefaultDomainSID)+1:])
	}
	wantRIDs := []string{"1101", "1102", "1103", "1104", "1105", "1106", "1107", "1108", "1109", "1110", "1111", "1112"}
	if diff := cmp.Diff(wantRIDs, rids); diff != "" {
		t.Errorf("People RIDs (-want +got):\n%s", diff)
	}
}

// demoMembership returns, per demo group, the sAMAccountNames of its nested
// members (all, and enabled only), read the way the reader does: paged, with
// the in-chain and bitwise matching rules.
func demoMembership(t *testing.T, c *ldap.Conn, base string) map[string][]string {
	t.Helper()
	members := func(group string, enabledOnly bool) []string {
		t.Helper()
		f := "(&(objectCategory=person)(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=" +
			ldap.EscapeFilter("CN="+group+",OU=Groups,"+base) + "))"
		if enabledOnly {
			f = "(&" + f + "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
		}
		res, err := c.SearchWithPaging(searchReq(base, ldap.ScopeWholeSubtree, f, "sAMAccountName"), 1000)
		if err != nil {
			t.Fatalf("members of %s: %v", group, err)
		}
		var out []string
		for _, e := range res.Entries {
			out = append(out, e.GetAttributeValue("sAMAccountName"))
		}
		slices.Sort(out)
		return out
	}
	return map[string][]string{
		"AP Admins":         members("AP Admins", false),
		"AP Users":          members("AP Users", false),
		"AP Users enabled":  members("AP Users", true),
		"Engineering":       members("Engineering", false),
		"All Staff":         members("All Staff", false),
		"All Staff enabled": members("All Staff", true),
	}
}

// TestDemoDirectoryMatchesSamba compares the embedded demo directory with a
// real Samba AD DC into which the demo LDIF was loaded:
//
//	bash .ci/samba-dc.sh DIR up && bash .ci/samba-dc.sh DIR load examples/demo/directory.ldif
//	set -a; . DIR/dc.env; set +a; go test ./providers/activedirectory/embedded -run Samba
func TestDemoDirectoryMatchesSamba(t *testing.T) {
	url, base := os.Getenv("DC_LDAPS_URL"), os.Getenv("DC_BASE_DN")
	if url == "" || base == "" {
		t.Skip("no Samba DC: DC_LDAPS_URL and DC_BASE_DN are unset (see .ci/samba-dc.sh)")
	}
	pem, err := os.ReadFile(os.Getenv("DC_CA_CERT"))
	if err != nil {
		t.Fatalf("DC_CA_CERT: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("DC_CA_CERT holds no certificate")
	}
	host := strings.TrimPrefix(url, "ldaps://")
	host, _, _ = strings.Cut(host, ":")
	real, err := ldap.DialURL(url, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer real.Close()
	if err := real.Bind(os.Getenv("DC_BIND_UPN"), os.Getenv("DC_BIND_PASSWORD")); err != nil {
		t.Fatalf("bind to Samba: %v", err)
	}
	probe, err := real.Search(searchReq(base, ldap.ScopeWholeSubtree, "(&(objectClass=group)(cn=All Staff))", "1.1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(probe.Entries) == 0 {
		t.Skip("the demo directory is not loaded into the Samba DC (bash .ci/samba-dc.sh DIR load examples/demo/directory.ldif)")
	}

	f, err := os.Open(filepath.FromSlash(demoLDIF))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ParseLDIF(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(entries, Options{BindDN: "CN=svc-pandasync,OU=Service Accounts,DC=corp,DC=example,DC=com", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	eurl, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emb, err := ldap.DialURL(eurl)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	if err := emb.Bind("svc-pandasync@corp.example.com", "pw"); err != nil {
		t.Fatal(err)
	}
	want := demoMembership(t, real, base)
	got := demoMembership(t, emb, s.BaseDN())
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("embedded vs Samba membership (-samba +embedded):\n%s", diff)
	}

	// Shapes of the attributes the reader depends on.
	shape := func(c *ldap.Conn, base string) map[string]string {
		t.Helper()
		res, err := c.Search(searchReq(base, ldap.ScopeWholeSubtree, "(sAMAccountName=jose)",
			"objectSid", "objectGUID", "memberOf", "uSNChanged", "userAccountControl", "cn"))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("jose: %v", err)
		}
		e := res.Entries[0]
		return map[string]string{
			"dn prefix":  strings.TrimSuffix(e.DN, base),
			"cn":         e.GetAttributeValue("cn"),
			"sid bytes":  strconv.Itoa(len(e.GetRawAttributeValue("objectSid"))),
			"guid bytes": strconv.Itoa(len(e.GetRawAttributeValue("objectGUID"))),
			"memberOf":   strings.TrimSuffix(strings.Join(e.GetAttributeValues("memberOf"), ";"), base),
			"uac":        e.GetAttributeValue("userAccountControl"),
			"has usn":    strconv.FormatBool(e.GetAttributeValue("uSNChanged") != ""),
		}
	}
	if diff := cmp.Diff(shape(real, base), shape(emb, s.BaseDN())); diff != "" {
		t.Errorf("entry shape (-samba +embedded):\n%s", diff)
	}
}
