package activedirectory

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
)

// testCA returns a CA (PEM) and a server certificate for 127.0.0.1 signed by it.
func testCA(t testing.TB) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pandasync test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dc1.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"dc1.example.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

const (
	embeddedBase   = "DC=example,DC=test"
	embeddedBindDN = "CN=svc-pandasync,CN=Users,DC=example,DC=test"
	embeddedPass   = "Canary-Emb3dded-Secret"
)

// startEmbedded serves fx over ldaps with AD's limits and returns a config.
func startEmbedded(t testing.TB, fx *fixture, opts embedded.Options) (Config, *embedded.Server) {
	t.Helper()
	caPEM, cert := testCA(t)
	opts.BindDN, opts.Password, opts.BaseDN = embeddedBindDN, embeddedPass, embeddedBase
	if opts.TLS == nil {
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := embedded.New(fx.entries, opts)
	if err != nil {
		t.Fatalf("embedded.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	u, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return Config{URLs: []string{u}, BaseDN: fx.base, BindDN: embeddedBindDN, Password: embeddedPass, CAPEM: caPEM}, srv
}

func TestConformanceEmbedded(t *testing.T) {
	fx := newFixture(embeddedBase, randomSuffix(), 3000)
	cfg, _ := startEmbedded(t, fx, embedded.Options{MaxPageSize: 1000, MaxValRange: 1500})
	runConformance(t, conformanceEnv{cfg: cfg, fx: fx, forcedRanging: true, maxPageSize: true})
}

// TestCookieLossFailsRead covers R4: the server drops the paged-search
// cookie between pages; the read must fail, never return the first page.
func TestCookieLossFailsRead(t *testing.T) {
	fx := newFixture(embeddedBase, randomSuffix(), 2500)
	cfg, srv := startEmbedded(t, fx, embedded.Options{MaxPageSize: 1000, MaxValRange: 1500})
	r := newReader(t, cfg)
	r.afterPage = func(int) { srv.ExpireCookies() }
	res, err := r.Read(context.Background(), Query{Groups: []GroupQuery{{DN: fx.big}}})
	if err == nil {
		t.Fatalf("read after cookie loss succeeded with %d members", len(res.Groups[fx.big].Members))
	}
	r.afterPage = nil
	res, err = r.Read(context.Background(), Query{Groups: []GroupQuery{{DN: fx.big}}})
	if err != nil {
		t.Fatalf("read after recovery: %v", err)
	}
	if got := len(res.Groups[fx.big].Members); got != 2500 {
		t.Errorf("members = %d, want 2500", got)
	}
}

// TestStartTLSEmbedded checks StartTLS against the embedded server and that a
// hardened server's refusal of cleartext binds is reported.
func TestStartTLSEmbedded(t *testing.T) {
	fx := newFixture(embeddedBase, randomSuffix(), 0)
	caPEM, cert := testCA(t)
	cfg, _ := startEmbedded(t, fx, embedded.Options{StartTLS: true, RequireSecureBind: true,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	cfg.CAPEM = caPEM
	cfg.StartTLS = true
	if err := newReader(t, cfg).Ping(context.Background()); err != nil {
		t.Fatalf("Ping with StartTLS: %v", err)
	}
	cfg.StartTLS, cfg.AllowCleartextBind, cfg.CAPEM = false, true, nil
	err := newReader(t, cfg).Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Strong Auth Required") {
		t.Fatalf("cleartext bind on a hardened server: err = %v, want strongAuthRequired", err)
	}
}
