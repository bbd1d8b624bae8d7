package embedded

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// testTLS returns a server config with a self-signed certificate for
// 127.0.0.1 and a client config that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "embedded test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return server, client
}

func TestLDAPS(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	_, url := serve(t, manyUsers(2), Options{TLS: serverTLS, RequireSecureBind: true})
	if !strings.HasPrefix(url, "ldaps://127.0.0.1:") {
		t.Fatalf("url = %q, want ldaps://127.0.0.1:port", url)
	}
	c, err := ldap.DialURL(url, ldap.DialWithTLSConfig(clientTLS))
	if err != nil {
		t.Fatalf("dial ldaps: %v", err)
	}
	defer c.Close()
	if err := c.Bind(testBindDN, testPassword); err != nil {
		t.Fatalf("bind over ldaps: %v", err)
	}
	res, err := c.Search(searchReq(testBase, ldap.ScopeWholeSubtree, "(objectClass=user)", "cn"))
	if err != nil || len(res.Entries) != 2 {
		t.Errorf("search over ldaps: err %v, entries %v", err, res)
	}

	// A client that does not trust the certificate fails the handshake.
	bad, err := ldap.DialURL(url, ldap.DialWithTLSConfig(&tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	if err == nil {
		err = bad.Bind(testBindDN, testPassword)
		bad.Close()
	}
	if err == nil {
		t.Error("untrusted certificate accepted")
	}
}

func TestStartTLS(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	_, url := serve(t, manyUsers(2), Options{TLS: serverTLS, StartTLS: true, RequireSecureBind: true})
	if !strings.HasPrefix(url, "ldap://") {
		t.Fatalf("url = %q, want ldap://", url)
	}

	plain := dial(t, url, false)
	if err := plain.Bind(testBindDN, testPassword); resultCode(err) != ldap.LDAPResultStrongAuthRequired {
		t.Errorf("cleartext bind with RequireSecureBind: err = %v, want strongAuthRequired", err)
	}

	c := dial(t, url, false)
	if err := c.StartTLS(clientTLS); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Bind(testBindDN, testPassword); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}
	res, err := c.Search(searchReq(testBase, ldap.ScopeWholeSubtree, "(objectClass=user)", "cn"))
	if err != nil || len(res.Entries) != 2 {
		t.Errorf("search after StartTLS: err %v, entries %v", err, res)
	}
	root, err := c.Search(searchReq("", ldap.ScopeBaseObject, "(objectClass=*)", "supportedExtension"))
	if err != nil || root.Entries[0].GetAttributeValue("supportedExtension") != "1.3.6.1.4.1.1466.20037" {
		t.Errorf("rootDSE supportedExtension: err %v, %v", err, root)
	}
}

func TestStartTLSUnavailable(t *testing.T) {
	_, url := serve(t, manyUsers(1), Options{})
	c := dial(t, url, false)
	_, clientTLS := testTLS(t)
	if err := c.StartTLS(clientTLS); resultCode(err) != ldap.LDAPResultProtocolError {
		t.Errorf("StartTLS without a server TLS config: err = %v, want protocolError", err)
	}
}
