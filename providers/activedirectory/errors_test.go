package activedirectory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
)

// terminal is what the runtime asks of an error.
func terminal(err error) (is, classified bool) {
	var t interface{ Terminal() bool }
	if !errors.As(err, &t) {
		return false, false
	}
	return t.Terminal(), true
}

// TestBindRefusalsInPlainWords binds as an account AD refuses, over a
// socket to the embedded server, and checks the decoded reason, the
// classification and that the password stays out of the message.
func TestBindRefusalsInPlainWords(t *testing.T) {
	fx := newFixture(embeddedBase, randomSuffix(), 0)
	tests := []struct {
		state    embedded.AccountState
		password string
		subcode  string
		words    string
	}{
		{password: "Canary-Wr0ng-Password", subcode: "52e", words: "the password is wrong"},
		{state: embedded.AccountLocked, subcode: "775", words: "locked out"},
		{state: embedded.AccountPasswordExpired, subcode: "532", words: "password has expired"},
		{state: embedded.AccountDisabled, subcode: "533", words: "disabled"},
		{state: embedded.AccountExpired, subcode: "701", words: "account has expired"},
		{state: embedded.AccountMustChangePassword, subcode: "773", words: "must change its password"},
		{state: embedded.AccountLogonHours, subcode: "530", words: "logon hours"},
		{state: embedded.AccountWorkstation, subcode: "531", words: "logon workstations"},
		{state: embedded.AccountNotFound, subcode: "525", words: "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.subcode, func(t *testing.T) {
			cfg, _ := startEmbedded(t, fx, embedded.Options{BindAccountState: tt.state})
			if tt.password != "" {
				cfg.Password = tt.password
			}
			err := newReader(t, cfg).Ping(context.Background())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want an *Error", err, err)
			}
			if e.Code != ldap.LDAPResultInvalidCredentials || e.Subcode != tt.subcode || !strings.Contains(e.Reason, tt.words) {
				t.Errorf("Code %d Subcode %q Reason %q, want 49 %q %q", e.Code, e.Subcode, e.Reason, tt.subcode, tt.words)
			}
			if is, ok := terminal(err); !ok || !is {
				t.Errorf("Terminal = %t (classified %t), want true", is, ok)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.words) || !strings.Contains(msg, "AD data "+tt.subcode) {
				t.Errorf("message %q lacks %q / the sub-code", msg, tt.words)
			}
			if strings.Contains(msg, cfg.Password) {
				t.Errorf("message %q contains the password", msg)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	fx := newFixture(embeddedBase, randomSuffix(), 0)
	ctx := context.Background()

	t.Run("certificate that does not verify", func(t *testing.T) {
		cfg, _ := startEmbedded(t, fx, embedded.Options{})
		cfg.CAPEM = nil // system roots do not know the test CA
		err := newReader(t, cfg).Ping(ctx)
		if is, ok := terminal(err); !ok || !is {
			t.Fatalf("err = %v: terminal %t classified %t, want terminal", err, is, ok)
		}
	})
	t.Run("strongAuthRequired", func(t *testing.T) {
		caPEM, cert := testCA(t)
		cfg, _ := startEmbedded(t, fx, embedded.Options{StartTLS: true, RequireSecureBind: true,
			TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
		cfg.CAPEM, cfg.AllowCleartextBind = caPEM, true
		err := newReader(t, cfg).Ping(ctx)
		var e *Error
		if !errors.As(err, &e) || !e.Terminal() || e.Code != ldap.LDAPResultStrongAuthRequired || !strings.Contains(err.Error(), "encrypted connection") {
			t.Fatalf("err = %v, want a terminal strongAuthRequired in plain words", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cfg := Config{URLs: []string{"ldaps://" + addr}, BaseDN: embeddedBase, BindDN: embeddedBindDN, Password: embeddedPass, Timeout: 2 * time.Second}
		err = newReader(t, cfg).Ping(ctx)
		if is, ok := terminal(err); !ok || is {
			t.Fatalf("err = %v: terminal %t classified %t, want classified, not terminal", err, is, ok)
		}
	})
	t.Run("invalid query", func(t *testing.T) {
		cfg, _ := startEmbedded(t, fx, embedded.Options{})
		_, err := newReader(t, cfg).Read(ctx, Query{Groups: []GroupQuery{{DN: "not a dn"}}})
		if is, ok := terminal(err); !ok || !is {
			t.Fatalf("err = %v: terminal %t classified %t, want terminal", err, is, ok)
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		_, err := New(Config{})
		if is, ok := terminal(err); !ok || !is {
			t.Fatalf("err = %v: terminal %t classified %t, want terminal", err, is, ok)
		}
	})

	ldapErr := func(code uint16, diag string) error { return ldap.NewError(code, errors.New(diag)) }
	for name, tt := range map[string]struct {
		err      error
		terminal bool
		code     int
	}{
		"insufficient access":            {ldapErr(ldap.LDAPResultInsufficientAccessRights, "00002098: SecErr"), true, 50},
		"confidentiality required":       {ldapErr(ldap.LDAPResultConfidentialityRequired, ""), true, 13},
		"inappropriate authentication":   {ldapErr(ldap.LDAPResultInappropriateAuthentication, ""), true, 48},
		"busy":                           {ldapErr(ldap.LDAPResultBusy, ""), false, 51},
		"unavailable":                    {ldapErr(ldap.LDAPResultUnavailable, ""), false, 52},
		"network":                        {ldap.NewError(ldap.ErrorNetwork, errors.New("connection reset")), false, int(ldap.ErrorNetwork)},
		"timeout":                        {errRequestTimeout, false, int(ldap.ErrorNetwork)},
		"deadline":                       {fmt.Errorf("searching: %w", context.DeadlineExceeded), false, 0},
		"unreachable then refused creds": {errors.Join(errors.New("dial tcp: refused"), fmt.Errorf("binding: %w", ldapErr(49, "AcceptSecurityContext error, data 775, v4563"))), true, 49},
	} {
		t.Run(name, func(t *testing.T) {
			var e *Error
			if !errors.As(classify(tt.err), &e) {
				t.Fatal("classify did not return an *Error")
			}
			if e.Terminal() != tt.terminal || e.Code != tt.code {
				t.Errorf("Terminal %t Code %d, want %t %d", e.Terminal(), e.Code, tt.terminal, tt.code)
			}
			if !errors.Is(e, tt.err) {
				t.Error("the original error is not in the chain")
			}
		})
	}
}
