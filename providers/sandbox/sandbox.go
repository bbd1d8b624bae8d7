// Package sandbox runs an embedded Active Directory and an Asset Panda
// emulator side by side on loopback sockets, seeded from an LDIF directory
// fixture and an emulator seed, so that pandasync can plan and apply with
// no AD and no Asset Panda: for the demo, for spec tests and for the
// planner's fixture cases.
//
// The sandbox hands out a Connection that points at its two servers, with
// the secrets given as {env: NAME} references whose values Env returns, so
// that a spec set under test can be run unchanged but for its Connection.
package sandbox

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/spec"
)

// The sandbox's service account in the embedded directory.
const (
	BindDN     = "CN=pandasync,OU=Service,DC=corp,DC=example,DC=com"
	BindSecret = "sandbox-ad-password"
)

// Names of the environment variables the sandbox's Connection reads its
// secrets from.
const (
	EnvADPassword     = "PANDASYNC_AD_PASSWORD"
	EnvAPClientID     = "PANDASYNC_AP_CLIENT_ID"
	EnvAPClientSecret = "PANDASYNC_AP_CLIENT_SECRET"
	EnvAPEmail        = "PANDASYNC_AP_EMAIL"
	EnvAPPassword     = "PANDASYNC_AP_PASSWORD"
)

// Options configure a sandbox. The zero value listens on random loopback
// ports.
type Options struct {
	// LDAPListen and APIListen are the addresses to listen on; empty
	// means 127.0.0.1:0.
	LDAPListen, APIListen string
	// BaseDN is the directory's naming context; empty derives it from the
	// entries (see embedded.Options.BaseDN).
	BaseDN string
	// Emulator configures the emulator (rate limit, token lifetime).
	Emulator emulator.Options
	// Logger receives the servers' diagnostics; nil discards them.
	Logger *slog.Logger
}

// Sandbox is a running embedded directory and Asset Panda emulator.
type Sandbox struct {
	Directory *embedded.Server
	Emulator  *emulator.Emulator
	// LDAPURL and APIURL are where the two servers answer.
	LDAPURL, APIURL string
	// BaseDN is the directory's naming context.
	BaseDN string

	seed *emulator.Seed
	http *http.Server
	done chan struct{}
}

// Start starts the two servers. The directory's bind account is BindDN
// with BindSecret; Asset Panda's credentials are the seed's.
func Start(entries []*ldap.Entry, seed *emulator.Seed, opts Options) (*Sandbox, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := embedded.New(entries, embedded.Options{BindDN: BindDN, Password: BindSecret, MaxPageSize: 1000, MaxValRange: 1500,
		BaseDN: opts.BaseDN, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("embedded directory: %w", err)
	}
	ldapURL, err := dir.Listen(orDefault(opts.LDAPListen))
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("embedded directory: %w", err)
	}
	emu, err := emulator.New(seed, opts.Emulator)
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("asset panda emulator: %w", err)
	}
	ln, err := net.Listen("tcp", orDefault(opts.APIListen))
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("asset panda emulator: %w", err)
	}
	s := &Sandbox{Directory: dir, Emulator: emu, LDAPURL: ldapURL, APIURL: "http://" + ln.Addr().String(),
		BaseDN: dir.BaseDN(), seed: seed, done: make(chan struct{}),
		http: &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("asset panda emulator stopped", "error", err)
		}
	}()
	return s, nil
}

// Load parses an LDIF fixture and an emulator seed and starts a sandbox.
func Load(ldif, seed io.Reader, opts Options) (*Sandbox, error) {
	entries, err := embedded.ParseLDIF(ldif)
	if err != nil {
		return nil, fmt.Errorf("directory fixture: %w", err)
	}
	sd, err := emulator.LoadSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("asset panda seed: %w", err)
	}
	return Start(entries, sd, opts)
}

func orDefault(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// Close stops both servers.
func (s *Sandbox) Close() {
	s.http.Close()
	<-s.done
	s.Directory.Close()
}

// Connection returns a Connection that points at the sandbox, reading its
// secrets from the environment variables Env names.
func (s *Sandbox) Connection(name string) spec.Connection {
	env := func(n string) spec.Value { return spec.Value{Env: n} }
	lit := func(v string) spec.Value { return spec.Value{Literal: v} }
	c := spec.Connection{Metadata: spec.Metadata{Name: name}, Spec: spec.ConnectionSpec{
		Directory: spec.DirectorySpec{URLs: []spec.Value{lit(s.LDAPURL)}, BaseDN: lit(s.BaseDN), BindDN: lit(BindDN),
			Password: env(EnvADPassword), AllowCleartextBind: true, Timeout: spec.Duration{Duration: spec.DefaultTimeout}},
		AssetPanda: spec.AssetPandaSpec{URL: lit(s.APIURL), ClientID: env(EnvAPClientID), ClientSecret: env(EnvAPClientSecret),
			Email: env(EnvAPEmail), Password: env(EnvAPPassword),
			RateLimit: spec.RateLimit{Requests: spec.DefaultRateLimitRequests, Per: spec.Duration{Duration: spec.DefaultRateLimitPer}}},
	}}
	return c
}

// ConnectionYAML is Connection as a spec document, to write next to the
// mappings of a spec set under test.
func (s *Sandbox) ConnectionYAML(name string) []byte {
	return fmt.Appendf(nil, `apiVersion: %s
kind: Connection
metadata: {name: %s}
spec:
  directory:
    urls: [%q]
    baseDN: %q
    bindDN: %q
    password: {env: %s}
    allowCleartextBind: true   # loopback only: the sandbox's directory has no TLS
  assetPanda:
    url: %q
    clientID: {env: %s}
    clientSecret: {env: %s}
    email: {env: %s}
    password: {env: %s}
`, spec.APIVersion, name, s.LDAPURL, s.BaseDN, BindDN, EnvADPassword, s.APIURL, EnvAPClientID, EnvAPClientSecret, EnvAPEmail, EnvAPPassword)
}

// Env returns the values of the environment variables the Connection
// reads: the directory's bind password and the seed's credentials.
func (s *Sandbox) Env() map[string]string {
	c := s.seed.Credentials
	return map[string]string{
		EnvADPassword:     BindSecret,
		EnvAPClientID:     c.ClientID,
		EnvAPClientSecret: c.ClientSecret,
		EnvAPEmail:        c.Email,
		EnvAPPassword:     c.Password,
	}
}

// Providers returns clients of the two servers, as pandasync would build
// them from Connection. The caller closes the directory reader.
func (s *Sandbox) Providers() (*activedirectory.Reader, *assetpanda.Client, error) {
	dir, err := activedirectory.New(activedirectory.Config{URLs: []string{s.LDAPURL}, BaseDN: s.BaseDN, BindDN: BindDN,
		Password: BindSecret, AllowCleartextBind: true})
	if err != nil {
		return nil, nil, err
	}
	c := s.seed.Credentials
	ap, err := assetpanda.New(assetpanda.Config{URL: s.APIURL, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		Email: c.Email, Password: c.Password, Rate: assetpanda.Rate{Requests: -1}})
	if err != nil {
		dir.Close()
		return nil, nil, err
	}
	return dir, ap, nil
}
