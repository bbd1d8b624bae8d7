package reconcile

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/spec"
)

// fixtureBase is the base DN the test fixture is written for.
const fixtureBase = "DC=corp,DC=example,DC=com"

// world is a directory and an Asset Panda emulator, connected through the
// real providers over real sockets, with the spec in testdata/world.
type world struct {
	t   *testing.T
	set *spec.Set
	dir *activedirectory.Reader
	ap  *assetpanda.Client
	emu *emulator.Emulator
	// apURL is the emulator's address, for a second client.
	apURL string
	// base is where the fixture lives: fixtureBase in the embedded
	// directory, a fresh OU in Samba.
	base string
	// mutate changes the directory.
	mutate directoryMutator
	// upnSuffix makes userPrincipalNames unique in a shared Samba domain.
	upnSuffix string
}

// upn is the userPrincipalName the fixture's user has in this world.
func (w *world) upn(user string) string {
	return user + w.upnSuffix + "@corp.example.com"
}

// directoryMutator changes entries of the directory under test.
type directoryMutator interface {
	Replace(dn, attr string, values ...string) error
	Delete(dn string) error
}

// dn rewrites a fixture DN to where the fixture lives.
func (w *world) dn(fixtureDN string) string {
	if w.base == fixtureBase {
		return fixtureDN
	}
	return strings.TrimSuffix(fixtureDN, fixtureBase) + w.base
}

func (w *world) replace(dn, attr string, values ...string) {
	w.t.Helper()
	if err := w.mutate.Replace(w.dn(dn), attr, values...); err != nil {
		w.t.Fatalf("replace %s of %s: %v", attr, dn, err)
	}
}

func (w *world) delete(dn string) {
	w.t.Helper()
	if err := w.mutate.Delete(w.dn(dn)); err != nil {
		w.t.Fatalf("delete %s: %v", dn, err)
	}
}

// loadFixture loads the fixture; edits change the Asset Panda seed before
// the emulator starts.
func loadFixture(t *testing.T, edits ...func(*emulator.Seed)) ([]*ldap.Entry, *spec.Set, *emulator.Emulator) {
	t.Helper()
	f, err := os.Open("testdata/world/directory.ldif")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := embedded.ParseLDIF(f)
	if err != nil {
		t.Fatalf("parse fixture: %v", err)
	}
	set, err := spec.Load("testdata/world")
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	sf, err := os.Open("testdata/world/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	seed, err := emulator.LoadSeed(sf)
	if err != nil {
		t.Fatalf("load seed: %v", err)
	}
	for _, edit := range edits {
		edit(seed)
	}
	emu, err := emulator.New(seed, emulator.Options{Rate: emulator.Rate{Requests: -1}})
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	return entries, set, emu
}

func (w *world) connectAssetPanda(emu *emulator.Emulator) {
	api := httptest.NewServer(emu)
	w.t.Cleanup(api.Close)
	ap, err := assetpanda.New(assetpanda.Config{URL: api.URL, ClientID: "test-client", ClientSecret: "test-secret",
		Email: "admin@example.com", Password: "test-password", Rate: assetpanda.Rate{Requests: -1}})
	if err != nil {
		w.t.Fatalf("asset panda client: %v", err)
	}
	w.ap, w.emu, w.apURL = ap, emu, api.URL
}

// newWorld serves the fixture from the embedded directory.
func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t)
}

// newWorldWith is newWorld with edits to the Asset Panda seed.
func newWorldWith(t *testing.T, edits ...func(*emulator.Seed)) *world {
	t.Helper()
	entries, set, emu := loadFixture(t, edits...)
	const bindDN, password = "CN=pandasync,DC=corp,DC=example,DC=com", "test-ad-password"
	srv, err := embedded.New(entries, embedded.Options{BindDN: bindDN, Password: password, MaxPageSize: 1000, MaxValRange: 1500})
	if err != nil {
		t.Fatalf("embedded directory: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	url, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	dir, err := activedirectory.New(activedirectory.Config{URLs: []string{url}, BaseDN: fixtureBase, BindDN: bindDN,
		Password: password, AllowCleartextBind: true})
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	t.Cleanup(func() { dir.Close() })
	w := &world{t: t, set: set, dir: dir, base: fixtureBase, mutate: srv}
	w.connectAssetPanda(emu)
	return w
}

// newSambaWorld loads the fixture, as Administrator, into a fresh OU of the
// Samba AD DC named by DC_LDAPS_URL (see .ci/run), and reads it as the
// least-privilege reader account DC_READER_UPN; or skips.
func newSambaWorld(t *testing.T) *world {
	t.Helper()
	url := os.Getenv("DC_LDAPS_URL")
	if url == "" || os.Getenv("DC_READER_UPN") == "" {
		t.Skip("set DC_LDAPS_URL, DC_BASE_DN, DC_BIND_UPN, DC_BIND_PASSWORD, DC_READER_UPN, DC_READER_PASSWORD and DC_CA_CERT (.ci/run does) to run against a real Samba AD DC")
	}
	base, bind, password := os.Getenv("DC_BASE_DN"), os.Getenv("DC_BIND_UPN"), os.Getenv("DC_BIND_PASSWORD")
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
	if err := conn.Bind(bind, password); err != nil {
		t.Fatalf("bind samba: %v", err)
	}
	var b [4]byte
	rand.Read(b[:])
	ou := "OU=pandasync-reconcile-" + hex.EncodeToString(b[:]) + "," + base

	entries, set, emu := loadFixture(t)
	m := &sambaMutator{conn: conn}
	if err := m.add(ou, map[string][]string{"objectClass": {"organizationalUnit"}}); err != nil {
		t.Fatalf("create %s: %v", ou, err)
	}
	t.Cleanup(func() { m.deleteTree(ou) })
	w := &world{t: t, set: set, base: ou, mutate: m, upnSuffix: "-" + hex.EncodeToString(b[:])}
	for _, e := range entries {
		attrs := map[string][]string{}
		for _, a := range e.Attributes {
			vals := a.Values
			if strings.EqualFold(a.Name, "member") {
				vals = nil
				for _, v := range a.Values {
					vals = append(vals, w.dn(v))
				}
			}
			switch {
			case strings.EqualFold(a.Name, "sAMAccountName"):
				// sAMAccountName and userPrincipalName are unique in the
				// domain: make them unique per run.
				vals = []string{a.Values[0] + hex.EncodeToString(b[:2])}
			case strings.EqualFold(a.Name, "userPrincipalName"):
				local, domain, _ := strings.Cut(a.Values[0], "@")
				vals = []string{local + w.upnSuffix + "@" + domain}
			}
			attrs[a.Name] = vals
		}
		if err := m.add(w.dn(e.DN), attrs); err != nil {
			t.Fatalf("add %s: %v", e.DN, err)
		}
	}
	for i := range set.UserMappings {
		set.UserMappings[i].Spec.Group = w.dn(set.UserMappings[i].Spec.Group)
	}
	for i := range set.CollectionMappings {
		set.CollectionMappings[i].Spec.Group = w.dn(set.CollectionMappings[i].Spec.Group)
	}
	dir, err := activedirectory.New(activedirectory.Config{URLs: []string{url}, BaseDN: ou, BindDN: os.Getenv("DC_READER_UPN"),
		Password: os.Getenv("DC_READER_PASSWORD"), CAPEM: ca})
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	t.Cleanup(func() { dir.Close() })
	w.dir = dir
	w.connectAssetPanda(emu)
	return w
}

// sambaMutator changes Samba over LDAP.
type sambaMutator struct{ conn *ldap.Conn }

func (m *sambaMutator) add(dn string, attrs map[string][]string) error {
	req := ldap.NewAddRequest(dn, nil)
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		req.Attribute(k, attrs[k])
	}
	return m.conn.Add(req)
}

func (m *sambaMutator) Replace(dn, attr string, values ...string) error {
	req := ldap.NewModifyRequest(dn, nil)
	if len(values) == 0 {
		req.Delete(attr, nil)
	} else {
		req.Replace(attr, values)
	}
	return m.conn.Modify(req)
}

func (m *sambaMutator) Delete(dn string) error {
	return m.conn.Del(ldap.NewDelRequest(dn, nil))
}

func (m *sambaMutator) deleteTree(dn string) {
	res, err := m.conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		return
	}
	dns := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	// Children before parents: longer DNs first.
	sort.Slice(dns, func(i, j int) bool { return len(dns[i]) > len(dns[j]) })
	for _, d := range dns {
		m.conn.Del(ldap.NewDelRequest(d, nil))
	}
}

func (w *world) plan(opts Options) *Plan {
	w.t.Helper()
	p, err := MakePlan(context.Background(), w.set, w.dir, w.ap, opts)
	if err != nil {
		w.t.Fatalf("plan: %v", err)
	}
	return p
}

func (w *world) apply(p *Plan) *ApplyResult {
	w.t.Helper()
	res, err := Apply(context.Background(), p, w.set, w.ap, nil)
	if err != nil {
		w.t.Fatalf("apply: %v", err)
	}
	for _, o := range res.Outcomes {
		if o.Err != nil {
			w.t.Errorf("apply %s %s %s: %v", o.Change.Action, o.Change.Kind, o.Change.Name, o.Err)
		}
	}
	return res
}

// converge plans and applies, then checks that a second plan is empty.
func (w *world) converge() {
	w.t.Helper()
	w.apply(w.plan(Options{}))
	if p := w.plan(Options{}); p.HasChanges() {
		w.t.Fatalf("plan after apply has changes: %v", rows(p.Changes))
	}
}

// canon rewrites rows of this world into the fixture's terms: DNs under
// fixtureBase and the fixture's userPrincipalNames, so that one table of
// expectations serves the embedded directory and Samba.
func (w *world) canon(rs []row) []row {
	for i := range rs {
		if w.upnSuffix != "" {
			rs[i].Name = strings.Replace(rs[i].Name, w.upnSuffix+"@", "@", 1)
		}
		if w.base != fixtureBase {
			rs[i].Reason = strings.ReplaceAll(rs[i].Reason, w.base, fixtureBase)
		}
	}
	return rs
}

// row is the part of a change the scenario tests compare.
type row struct {
	Mapping string
	Kind    Kind
	Action  Action
	Name    string
	Reason  string
}

func rows(cs []Change) []row {
	var rs []row
	for _, c := range cs {
		rs = append(rs, row{c.Mapping, c.Kind, c.Action, c.Name, c.Reason})
	}
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Mapping != b.Mapping {
			return a.Mapping < b.Mapping
		}
		if a.Action != b.Action {
			return a.Action < b.Action
		}
		return a.Name < b.Name
	})
	return rs
}

func blockedRows(bs []Blocked) []row {
	var cs []Change
	for _, b := range bs {
		c := b.Change
		c.Reason = b.Limit
		cs = append(cs, c)
	}
	return rows(cs)
}
