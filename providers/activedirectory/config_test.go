package activedirectory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

func validConfig() Config {
	return Config{URLs: []string{"ldaps://dc1.example.test"}, BaseDN: "DC=example,DC=test",
		BindDN: "svc@example.test", Password: "Canary-S3cret-Value"}
}

func TestNewValidates(t *testing.T) {
	tests := map[string]struct {
		mod     func(*Config)
		wantErr string
	}{
		"valid ldaps":              {func(*Config) {}, ""},
		"valid starttls":           {func(c *Config) { c.URLs = []string{"ldap://dc1"}; c.StartTLS = true }, ""},
		"bind by DN":               {func(c *Config) { c.BindDN = "CN=svc,CN=Users,DC=example,DC=test" }, ""},
		"cleartext refused":        {func(c *Config) { c.URLs = []string{"ldap://dc1"} }, "refusing to send the bind password over cleartext"},
		"cleartext allowed":        {func(c *Config) { c.URLs = []string{"ldap://dc1"}; c.AllowCleartextBind = true }, ""},
		"one cleartext URL of two": {func(c *Config) { c.URLs = append(c.URLs, "ldap://dc2") }, "ldap://dc2: refusing"},
		"starttls with ldaps":      {func(c *Config) { c.StartTLS = true }, "startTLS cannot be combined with ldaps"},
		"no URL":                   {func(c *Config) { c.URLs = nil }, "no directory URL"},
		"bad scheme":               {func(c *Config) { c.URLs = []string{"http://dc1"} }, "scheme must be ldap or ldaps"},
		"bad base":                 {func(c *Config) { c.BaseDN = "DC=example,,=" }, "baseDN"},
		"bad bind DN":              {func(c *Config) { c.BindDN = "CN=svc,=x" }, "bindDN"},
		"no password":              {func(c *Config) { c.Password = "" }, "password is empty"},
		"skip verify with CA":      {func(c *Config) { c.InsecureSkipVerify = true; c.CAPEM = []byte("x") }, "insecureSkipVerify contradicts"},
		"CA without certificates":  {func(c *Config) { c.CAPEM = []byte("not pem") }, "no PEM certificate"},
		"missing CA file":          {func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "reading caFile"},
		"page size over AD's max":  {func(c *Config) { c.PageSize = 5000 }, "MaxPageSize"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := validConfig()
			tt.mod(&c)
			_, err := New(c)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
			if err != nil && c.Password != "" && strings.Contains(err.Error(), c.Password) {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

// TestSecretsRedacted covers R26 for the reader's configuration.
func TestSecretsRedacted(t *testing.T) {
	c := validConfig()
	var logs bytes.Buffer
	c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.URLs = []string{"ldap://127.0.0.1:1"}
	c.AllowCleartextBind = true
	r, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	c.Logger.Info("config", "cfg", c, "reader", r)
	_, err = r.Read(context.Background(), Query{Groups: []GroupQuery{{DN: "CN=G,DC=example,DC=test"}}})
	if err == nil {
		t.Fatal("read from a closed port succeeded")
	}
	outputs := map[string]string{
		"String":   c.String(),
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"%#v":      fmt.Sprintf("%#v", c),
		"reader":   fmt.Sprintf("%v %+v %#v", r, r, r),
		"logs":     logs.String(),
		"read err": err.Error(),
	}
	for name, out := range outputs {
		if strings.Contains(out, c.Password) {
			t.Errorf("%s leaks the password: %s", name, out)
		}
	}
	if !strings.Contains(outputs["logs"], redacted) || !strings.Contains(outputs["%#v"], redacted) {
		t.Errorf("password not shown as %s:\n%s\n%s", redacted, outputs["logs"], outputs["%#v"])
	}
}

// trickleConn serves a byte stream step bytes per Read.
type trickleConn struct {
	net.Conn
	data []byte
	step int
}

func (c *trickleConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.step, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func (c *trickleConn) Close() error { return nil }

func TestLimitConnFraming(t *testing.T) {
	msg := func(n int) []byte {
		p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, strings.Repeat("x", n), ""))
		return p.Bytes()
	}
	stream := append(append(append([]byte{}, msg(10)...), msg(200)...), msg(70_000)...)
	tests := map[string]struct {
		max     int64
		wantErr bool
	}{
		"under the cap":     {max: 1 << 20, wantErr: false},
		"over the cap":      {max: 1000, wantErr: true},
		"exactly the cap":   {max: int64(len(msg(70_000)) - 5), wantErr: false},
		"one under the cap": {max: int64(len(msg(70_000)) - 6), wantErr: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			// Feed the stream in awkward slices so headers straddle reads, and
			// read it back in awkward sizes too.
			for _, step := range []int{1, 2, 3, 7, 4096, len(stream)} {
				c := &limitConn{Conn: &trickleConn{data: stream, step: step}, max: tt.max}
				var got []byte
				buf := make([]byte, 5+step%13)
				var err error
				for {
					var n int
					n, err = c.Read(buf)
					got = append(got, buf[:n]...)
					if err != nil {
						break
					}
				}
				if tt.wantErr {
					if !errors.Is(err, ErrPacketTooLarge) || c.failure() == nil {
						t.Fatalf("step %d: err = %v, failure = %v, want ErrPacketTooLarge", step, err, c.failure())
					}
					continue
				}
				if err != io.EOF || !bytes.Equal(got, stream) {
					t.Fatalf("step %d: err = %v, read %d of %d bytes intact = %t", step, err, len(got), len(stream), bytes.Equal(got, stream))
				}
			}
		})
	}
	for name, stream := range map[string][]byte{
		"indefinite length":  {0x30, 0x80, 0x00, 0x00},
		"not a SEQUENCE":     {0x04, 0x01, 0x00},
		"inner overrun":      {0x30, 0x03, 0x04, 0x05, 0x00},
		"inner indefinite":   {0x30, 0x04, 0x30, 0x80, 0x00, 0x00},
		"truncated inner tl": {0x30, 0x01, 0x04},
	} {
		c := &limitConn{Conn: &trickleConn{data: stream, step: 1}, max: 1 << 20}
		if _, err := c.Read(make([]byte, 16)); !errors.Is(err, ErrMalformedMessage) {
			t.Errorf("%s: err = %v, want ErrMalformedMessage", name, err)
		}
	}
}

// stubServer accepts one connection on 127.0.0.1 and runs serve on it.
func stubServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	return ln.Addr().String()
}

// TestHostileLength covers R29: a server announcing a 2 GiB message.
func TestHostileLength(t *testing.T) {
	addr := stubServer(t, func(c net.Conn) {
		_, _ = ber.ReadPacket(c) // the bind request
		_, _ = c.Write([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01})
		time.Sleep(time.Second)
	})
	c := validConfig()
	c.URLs, c.AllowCleartextBind, c.Timeout = []string{"ldap://" + addr}, true, 5*time.Second
	err := newReader(t, c).Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "maximum size") {
		t.Fatalf("err = %v, want the packet cap", err)
	}
}

// TestStartTLSRefused covers R24: the server answers StartTLS with an error;
// the reader aborts and never sends the bind.
func TestStartTLSRefused(t *testing.T) {
	sawBind := make(chan bool, 1)
	addr := stubServer(t, func(c net.Conn) {
		if _, err := ber.ReadPacket(c); err != nil {
			return
		}
		resp := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		resp.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(1), ""))
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedResponse, nil, "")
		op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(ldap.LDAPResultUnavailable), ""))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "no tls here", ""))
		resp.AppendChild(op)
		_, _ = c.Write(resp.Bytes())
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := ber.ReadPacket(c)
		sawBind <- err == nil
	})
	c := validConfig()
	c.URLs, c.StartTLS = []string{"ldap://" + addr}, true
	err := newReader(t, c).Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refused starttls") {
		t.Fatalf("err = %v, want a starttls refusal", err)
	}
	if <-sawBind {
		t.Error("the reader sent a request after StartTLS was refused")
	}
}

// TestRequestTimeout covers R11: a server that binds and then never answers.
// The read fails with a timeout instead of hanging.
func TestRequestTimeout(t *testing.T) {
	addr := stubServer(t, func(c net.Conn) {
		req, err := ber.ReadPacket(c)
		if err != nil || len(req.Children) < 1 {
			return
		}
		resp := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		resp.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, req.Children[0].Value, ""))
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindResponse, nil, "")
		op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(0), ""))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
		resp.AppendChild(op)
		_, _ = c.Write(resp.Bytes())
		_, _ = io.Copy(io.Discard, c) // swallow requests, answer nothing
	})
	c := validConfig()
	c.URLs, c.AllowCleartextBind, c.Timeout = []string{"ldap://" + addr}, true, 200*time.Millisecond
	_, err := newReader(t, c).Read(context.Background(), Query{Groups: []GroupQuery{{DN: "CN=G,DC=example,DC=test"}}})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a request timeout", err)
	}
}
