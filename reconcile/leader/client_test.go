package leader

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLeaseJSONKeepsUnknownFields(t *testing.T) {
	in := `{"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
	  "metadata":{"name":"pandasync","namespace":"ops","resourceVersion":"42","uid":"u-1",
	    "labels":{"team":"it"},"annotations":{"note":"keep me"}},
	  "spec":{"holderIdentity":"pod-a_1","leaseDurationSeconds":15,
	    "acquireTime":"2026-01-02T03:04:05.123456Z","renewTime":"2026-01-02T03:04:07.000001Z",
	    "leaseTransitions":3,"preferredHolder":"pod-b_2"}}`
	var l Lease
	if err := json.Unmarshal([]byte(in), &l); err != nil {
		t.Fatal(err)
	}
	wantSpec := LeaseSpec{HolderIdentity: "pod-a_1", LeaseDurationSeconds: 15,
		AcquireTime: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC),
		RenewTime:   time.Date(2026, 1, 2, 3, 4, 7, 1000, time.UTC), LeaseTransitions: 3}
	if diff := cmp.Diff(wantSpec, l.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if l.Namespace != "ops" || l.Name != "pandasync" || l.ResourceVersion != "42" {
		t.Errorf("metadata = %s/%s rv %s, want ops/pandasync rv 42", l.Namespace, l.Name, l.ResourceVersion)
	}

	// A renewal changes the spec and keeps everything else.
	l.Spec.HolderIdentity = "pod-c_3"
	l.Spec.RenewTime = time.Date(2026, 1, 2, 3, 4, 9, 500000000, time.FixedZone("CET", 3600))
	out, err := json.Marshal(&l)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(strings.Replace(strings.Replace(in, `"pod-a_1"`, `"pod-c_3"`, 1),
		`"2026-01-02T03:04:07.000001Z"`, `"2026-01-02T02:04:09.500000Z"`, 1)), &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("marshalled lease (-want +got):\n%s", diff)
	}
}

func TestLeaseJSONOmitsUnset(t *testing.T) {
	l := Lease{Namespace: "ops", Name: "pandasync"}
	out, err := json.Marshal(&l)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"pandasync","namespace":"ops"},"spec":{}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if err := json.Unmarshal([]byte(`{"kind":"Secret"}`), &l); err == nil {
		t.Error("a Secret decoded as a Lease")
	}
}

func TestClientCompareAndSwap(t *testing.T) {
	f, srv := newFakeAPI(t)
	c := f.client(t, srv)
	ctx := context.Background()

	if _, err := c.GetLease(ctx, "ops", "pandasync"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetLease of a missing lease: err = %v, want ErrNotFound", err)
	}
	created, err := c.CreateLease(ctx, &Lease{Namespace: "ops", Name: "pandasync", Spec: LeaseSpec{HolderIdentity: "a", LeaseDurationSeconds: 15}})
	if err != nil {
		t.Fatal(err)
	}
	if created.ResourceVersion == "" || created.Spec.HolderIdentity != "a" {
		t.Fatalf("created = %+v, want a resourceVersion and holder a", created)
	}
	if _, err := c.CreateLease(ctx, &Lease{Namespace: "ops", Name: "pandasync"}); !errors.Is(err, ErrConflict) {
		t.Errorf("second create: err = %v, want ErrConflict", err)
	}

	// Two candidates read the same version; only the first update wins.
	first, second := *created, *created
	first.Spec.HolderIdentity, second.Spec.HolderIdentity = "b", "c"
	updated, err := c.UpdateLease(ctx, &first)
	if err != nil {
		t.Fatal(err)
	}
	if updated.ResourceVersion == created.ResourceVersion {
		t.Errorf("update kept resourceVersion %s", updated.ResourceVersion)
	}
	_, err = c.UpdateLease(ctx, &second)
	var apiErr *APIError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &apiErr) || apiErr.Reason != "Conflict" {
		t.Errorf("stale update: err = %v, want a 409 Conflict", err)
	}
	got, err := c.GetLease(ctx, "ops", "pandasync")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.HolderIdentity != "b" {
		t.Errorf("holder = %q after the race, want b", got.Spec.HolderIdentity)
	}
}

func TestClientErrorsCarryNoToken(t *testing.T) {
	f, srv := newFakeAPI(t)
	c, err := NewClient(ClientConfig{Server: srv.URL, Token: "wrong-secret-token", CAData: caPEM(srv)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetLease(context.Background(), "ops", "pandasync")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusUnauthorized {
		t.Fatalf("err = %v, want 401", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-token") || strings.Contains(err.Error(), f.token) {
		t.Errorf("error names a token: %v", err)
	}
	cfg := ClientConfig{Server: srv.URL, Token: "wrong-secret-token"}
	if v := cfg.LogValue().String(); strings.Contains(v, "wrong-secret-token") {
		t.Errorf("LogValue names the token: %s", v)
	}
}

func TestClientRereadsTokenFile(t *testing.T) {
	f, srv := newFakeAPI(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	write := func(s string) {
		if err := os.WriteFile(tokenFile, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("old-token")
	c, err := NewClient(ClientConfig{Server: srv.URL, TokenFile: tokenFile, CAData: caPEM(srv)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.GetLease(ctx, "ops", "x"); !strings.Contains(errString(err), "401") {
		t.Errorf("with the old token: err = %v, want 401", err)
	}
	write(f.token) // the kubelet rotated it
	if _, err := c.GetLease(ctx, "ops", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("with the rotated token: err = %v, want ErrNotFound", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestNewClientRefuses(t *testing.T) {
	tests := map[string]struct {
		cfg  ClientConfig
		want string
	}{
		"plain http":               {ClientConfig{Server: "http://127.0.0.1:6443", Token: "t"}, "want an https:// URL"},
		"no host":                  {ClientConfig{Server: "https://", Token: "t"}, "want an https:// URL"},
		"skip verify off loopback": {ClientConfig{Server: "https://kube.corp.example.com:6443", Token: "t", InsecureSkipVerify: true}, "loopback addresses only"},
		"bad CA":                   {ClientConfig{Server: "https://10.0.0.1", Token: "t", CAData: []byte("not pem")}, "no PEM certificate"},
		"token and file":           {ClientConfig{Server: "https://10.0.0.1", Token: "t", TokenFile: "/f"}, "both a token and a token file"},
		"bad client cert":          {ClientConfig{Server: "https://10.0.0.1", CertData: []byte("x"), KeyData: []byte("y")}, "client certificate"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewClient(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewClient: err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	for _, server := range []string{"https://127.0.0.1:6443", "https://[::1]:6443", "https://localhost:6443"} {
		if _, err := NewClient(ClientConfig{Server: server, Token: "t", InsecureSkipVerify: true}); err != nil {
			t.Errorf("NewClient(%s, skip verify): %v", server, err)
		}
	}
}
