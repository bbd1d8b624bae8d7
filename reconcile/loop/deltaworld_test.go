package loop_test

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// deltaWorld is the demo directory in a real directory server (the
// embedded one, or a Samba AD DC), the demo Asset Panda in an emulator,
// and the loop tests' spec pointed at both, for the change tracking tests
// that run on either.
type deltaWorld struct {
	name string
	set  *spec.Set
	emu  *emulator.Emulator
	url  string // Asset Panda
	// dn turns a DN of the demo directory into this directory's.
	dn func(string) string
	// reader builds a reader bound as the least-privileged account.
	reader func(t testing.TB) *activedirectory.Reader
	// the directory's changes, made as its administrator
	replace func(dn, attr string, values ...string) error
	rename  func(dn, newDN string) error
	remove  func(dn string) error
	entry   func(dn string) *ldap.Entry
	// enabled and disabled are userAccountControl values.
	enabled, disabled string
	// add adds a user (for the counting tests' extra staff).
	add func(dn string, attrs map[string][]string) error
	// setIdentity makes another DC answer; nil where it cannot (Samba).
	setIdentity func(host string, invocationID []byte) error
	// tag makes account names unique in a shared domain.
	tag string
	// clock is the emulator's clock (updated_at, Date); tests move it.
	clock *apClock
	// method is the reader's change tracking method ("" is usn).
	method string
}

// apClock is the emulator's clock: real time plus what the test added, so
// that a test can let the change probe's margin pass without waiting.
type apClock struct {
	mu  sync.Mutex
	add time.Duration
}

func (c *apClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.add)
}

// Advance moves the clock on by d.
func (c *apClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.add += d
	c.mu.Unlock()
}

// providers connects both sides for one pass.
func (w *deltaWorld) providers(t testing.TB) *loop.Providers {
	t.Helper()
	ap, err := assetpanda.New(assetpanda.Config{URL: w.url, ClientID: "demo-client", ClientSecret: "demo-secret",
		Email: "admin@example.com", Password: "demo-password"})
	if err != nil {
		t.Fatal(err)
	}
	return loop.NewProviders(w.reader(t), ap)
}

func (w *deltaWorld) members(t testing.TB, group string) []string {
	t.Helper()
	e := w.entry(w.dn(group))
	if e == nil {
		t.Fatalf("no group %s", group)
	}
	return e.GetAttributeValues("member")
}

func (w *deltaWorld) client(t testing.TB) *assetpanda.Client {
	t.Helper()
	c, err := assetpanda.New(assetpanda.Config{URL: w.url, ClientID: "demo-client", ClientSecret: "demo-secret",
		Email: "admin@example.com", Password: "demo-password"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// demoSeedEmulator serves the demo Asset Panda seed.
func demoSeedEmulator(t testing.TB, clock *apClock) (*emulator.Emulator, string) {
	t.Helper()
	sf, err := os.Open(filepath.FromSlash("../../examples/demo/assetpanda-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := emulator.LoadSeed(sf)
	sf.Close()
	if err != nil {
		t.Fatal(err)
	}
	emu, err := emulator.New(seed, emulator.Options{Rate: emulator.Rate{Requests: -1}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	return emu, hs.URL
}

func demoSpec(t testing.TB, dn func(string) string) *spec.Set {
	t.Helper()
	set, err := spec.Parse(map[string][]byte{"pandasync.yaml": []byte(readFile(t, "testdata/pandasync.yaml"))})
	if err != nil {
		t.Fatal(err)
	}
	for i := range set.UserMappings {
		set.UserMappings[i].Spec.Group = dn(set.UserMappings[i].Spec.Group)
	}
	for i := range set.CollectionMappings {
		set.CollectionMappings[i].Spec.Group = dn(set.CollectionMappings[i].Spec.Group)
	}
	return set
}

// embeddedDeltaWorld is the demo in the embedded directory.
func embeddedDeltaWorld(t testing.TB) *deltaWorld {
	t.Helper()
	clock := &apClock{}
	w := newWorldWith(t, worldOptions{emulator: emulator.Options{Rate: emulator.Rate{Requests: -1}, Now: clock.Now}})
	return &deltaWorld{
		clock: clock,
		name:  "embedded", set: demoSpec(t, func(s string) string { return s }), emu: w.emu, url: w.apURL,
		dn: func(s string) string { return s },
		reader: func(t testing.TB) *activedirectory.Reader {
			r, err := activedirectory.New(activedirectory.Config{URLs: []string{w.ldapURL}, BaseDN: demoBase,
				BindDN: demoBindDN, Password: demoPassword, AllowCleartextBind: true})
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		replace: w.dir.Replace, rename: w.dir.Rename, remove: w.dir.Delete, entry: w.dir.Entry,
		enabled: "512", disabled: "514",
		add: func(dn string, attrs map[string][]string) error {
			return w.dir.Add(ldap.NewEntry(dn, attrs))
		},
		setIdentity: w.dir.SetIdentity,
	}
}

// sambaDeltaWorld is the demo loaded into an OU of its own on the Samba DC
// the DC_* environment names (Administrator makes the changes), read as
// the least-privileged reader with the domain as baseDN; the test skips
// when it is not set.
func sambaDeltaWorld(t testing.TB) *deltaWorld {
	t.Helper()
	url := os.Getenv("DC_LDAPS_URL")
	if url == "" || os.Getenv("DC_READER_UPN") == "" {
		t.Skip("set DC_LDAPS_URL, DC_BASE_DN, DC_BIND_UPN, DC_BIND_PASSWORD, DC_READER_UPN, DC_READER_PASSWORD and DC_CA_CERT (.ci/run does) to run against a real Samba AD DC")
	}
	base := os.Getenv("DC_BASE_DN")
	ca, err := os.ReadFile(os.Getenv("DC_CA_CERT"))
	if err != nil {
		t.Fatalf("read DC_CA_CERT: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	conn, err := ldap.DialURL(url, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatalf("dial samba: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Bind(os.Getenv("DC_BIND_UPN"), os.Getenv("DC_BIND_PASSWORD")); err != nil {
		t.Fatalf("bind samba: %v", err)
	}
	var b [4]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	ou := "OU=pandasync-loop-" + suffix + "," + base
	dn := func(s string) string {
		if strings.HasSuffix(s, demoBase) {
			return strings.TrimSuffix(s, demoBase) + ou
		}
		return s
	}
	add := func(dn string, attrs map[string][]string) error {
		req := ldap.NewAddRequest(dn, nil)
		names := make([]string, 0, len(attrs))
		for k := range attrs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			req.Attribute(k, attrs[k])
		}
		return conn.Add(req)
	}
	if err := add(ou, map[string][]string{"objectClass": {"organizationalUnit"}}); err != nil {
		t.Fatalf("create %s: %v", ou, err)
	}
	t.Cleanup(func() { deleteTree(conn, ou) })

	f, err := os.Open(filepath.FromSlash("../../examples/demo/directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := embedded.ParseLDIF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	uac := map[string]string{"512": "544", "514": "546", "66048": "66080"}
	for _, e := range entries {
		if strings.EqualFold(e.DN, demoBase) {
			continue
		}
		attrs := map[string][]string{}
		for _, a := range e.Attributes {
			vals := a.Values
			switch strings.ToLower(a.Name) {
			case "member":
				vals = nil
				for _, v := range a.Values {
					vals = append(vals, dn(v))
				}
			case "samaccountname":
				vals = []string{a.Values[0][:min(len(a.Values[0]), 10)] + suffix[:4]}
			case "userprincipalname":
				local, domain, _ := strings.Cut(a.Values[0], "@")
				vals = []string{local + "-" + suffix + "@" + domain}
			case "useraccountcontrol":
				if v, ok := uac[a.Values[0]]; ok {
					vals = []string{v}
				}
			case "objectsid", "objectguid", "memberof":
				continue
			}
			attrs[a.Name] = vals
		}
		if err := add(dn(e.DN), attrs); err != nil {
			t.Fatalf("add %s: %v", dn(e.DN), err)
		}
	}
	clock := &apClock{}
	emu, apURL := demoSeedEmulator(t, clock)
	w := &deltaWorld{}
	*w = deltaWorld{
		clock: clock,
		name:  "samba", set: demoSpec(t, dn), emu: emu, url: apURL, dn: dn,
		reader: func(t testing.TB) *activedirectory.Reader {
			r, err := activedirectory.New(activedirectory.Config{URLs: []string{url}, BaseDN: base,
				BindDN: os.Getenv("DC_READER_UPN"), Password: os.Getenv("DC_READER_PASSWORD"), CAPEM: ca, ChangeTracking: w.method})
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		replace: func(dn, attr string, values ...string) error {
			req := ldap.NewModifyRequest(dn, nil)
			req.Replace(attr, values)
			return conn.Modify(req)
		},
		rename: func(dn, newDN string) error {
			p, err := ldap.ParseDN(newDN)
			if err != nil {
				return err
			}
			rdn := (&ldap.DN{RDNs: p.RDNs[:1]}).String()
			parent := (&ldap.DN{RDNs: p.RDNs[1:]}).String()
			return conn.ModifyDN(ldap.NewModifyDNRequest(dn, rdn, true, parent))
		},
		remove: func(dn string) error { return conn.Del(ldap.NewDelRequest(dn, nil)) },
		entry: func(dn string) *ldap.Entry {
			res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
				"(objectClass=*)", []string{"member", "userAccountControl"}, nil))
			if err != nil || len(res.Entries) == 0 {
				return nil
			}
			return res.Entries[0]
		},
		enabled: "544", disabled: "546",
		add: add, tag: suffix[:4],
	}
	return w
}

func deleteTree(conn *ldap.Conn, dn string) {
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		return
	}
	dns := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	sort.Slice(dns, func(i, j int) bool { return len(dns[i]) > len(dns[j]) }) // children first
	for _, d := range dns {
		conn.Del(ldap.NewDelRequest(d, nil))
	}
}

// addStaff adds n enabled people to All Staff: CN=Staff 0000 and on, in
// OU=People.
func (w *deltaWorld) addStaff(t testing.TB, n int) []string {
	t.Helper()
	var dns []string
	for i := range n {
		dn := w.dn(staffDN(i))
		name := fmt.Sprintf("st%04d%s", i, w.tag)
		err := w.add(dn, map[string][]string{
			"objectClass": {"top", "person", "organizationalPerson", "user"}, "cn": {fmt.Sprintf("Staff %04d", i)},
			"givenName": {"Staff"}, "sn": {fmt.Sprintf("%04d", i)}, "sAMAccountName": {name},
			"userPrincipalName": {name + "@corp.example.com"}, "mail": {fmt.Sprintf("staff%04d@corp.example.com", i)},
			"userAccountControl": {w.enabled},
		})
		if err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
		dns = append(dns, dn)
	}
	group := w.dn(allStaff)
	if err := w.replace(group, "member", append(w.members(t, allStaff), dns...)...); err != nil {
		t.Fatal(err)
	}
	return dns
}
