package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// resolving resolves spec values, collecting every failure under a path
// prefix such as "directory".
type resolving struct {
	r      spec.Resolver
	prefix string
	errs   []error
}

func (rv *resolving) get(name string, v spec.Value) string {
	if v.IsZero() {
		return ""
	}
	s, err := rv.r.Resolve(v)
	if err != nil {
		rv.errs = append(rv.errs, fmt.Errorf("%s.%s: %w", rv.prefix, name, err))
	}
	return s
}

func (rv *resolving) err() error { return errors.Join(rv.errs...) }

// directoryConfig resolves the spec's directory settings (reading secrets
// from the environment or files) into a reader configuration.
func directoryConfig(d spec.DirectorySpec, r spec.Resolver) (activedirectory.Config, error) {
	rv := &resolving{r: r, prefix: "directory"}
	cfg := activedirectory.Config{
		BaseDN:             rv.get("baseDN", d.BaseDN),
		BindDN:             rv.get("bindDN", d.BindDN),
		Password:           rv.get("password", d.Password),
		StartTLS:           d.StartTLS,
		CAFile:             rv.get("caFile", d.CAFile),
		InsecureSkipVerify: d.InsecureSkipVerify,
		AllowCleartextBind: d.AllowCleartextBind,
		Timeout:            d.Timeout.Duration,
	}
	for i, u := range d.URLs {
		cfg.URLs = append(cfg.URLs, rv.get(fmt.Sprintf("urls[%d]", i), u))
	}
	return cfg, rv.err()
}

// assetPandaConfig resolves the spec's Asset Panda settings.
func assetPandaConfig(s spec.AssetPandaSpec, r spec.Resolver) (assetpanda.Config, error) {
	rv := &resolving{r: r, prefix: "assetPanda"}
	cfg := assetpanda.Config{
		URL:          rv.get("url", s.URL),
		ClientID:     rv.get("clientID", s.ClientID),
		ClientSecret: rv.get("clientSecret", s.ClientSecret),
		Email:        rv.get("email", s.Email),
		Password:     rv.get("password", s.Password),
		Rate:         assetpanda.Rate{Requests: s.RateLimit.Requests, Per: s.RateLimit.Per.Duration},
	}
	return cfg, rv.err()
}

// connect builds both providers from the spec's Connection. Nothing is
// dialled yet: the providers connect on first use.
func (a *app) connect(set *spec.Set) (*activedirectory.Reader, *assetpanda.Client, error) {
	return a.connectWith(set, false)
}

// connectWith is connect, with a live progress line for the reads when
// progress is set.
func (a *app) connectWith(set *spec.Set, progress bool) (*activedirectory.Reader, *assetpanda.Client, error) {
	return a.newProviders(set, a.log, func(dcfg *activedirectory.Config, acfg *assetpanda.Config) {
		if progress {
			l := newLiveLine(a.stderr, time.Now)
			a.live = l
			dcfg.Progress = l.directory
			acfg.Progress = l.assetPanda
		}
	})
}

// newProviders resolves the spec's Connection and builds both providers,
// logging to log; tune, when set, adjusts the configurations first.
func (a *app) newProviders(set *spec.Set, log *slog.Logger, tune func(*activedirectory.Config, *assetpanda.Config)) (*activedirectory.Reader, *assetpanda.Client, error) {
	dcfg, derr := directoryConfig(set.Connection.Spec.Directory, a.resolver())
	acfg, aerr := assetPandaConfig(set.Connection.Spec.AssetPanda, a.resolver())
	if err := errors.Join(derr, aerr); err != nil {
		return nil, nil, fmt.Errorf("connection %q: %w", set.Connection.Metadata.Name, err)
	}
	dcfg.Logger = log.With("component", "activedirectory")
	acfg.Logger = log.With("component", "assetpanda")
	if tune != nil {
		tune(&dcfg, &acfg)
	}
	dir, err := activedirectory.New(dcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("active directory: %w", err)
	}
	ap, err := assetpanda.New(acfg)
	if err != nil {
		dir.Close()
		return nil, nil, fmt.Errorf("asset panda: %w", err)
	}
	return dir, ap, nil
}

// session is a loaded spec with both providers connected, for the commands
// that talk to AD and Asset Panda.
type session struct {
	set *spec.Set
	dir *activedirectory.Reader
	ap  *assetpanda.Client
}

func (s *session) Close() { s.dir.Close() }

// open loads the spec and connects to both sides. On a terminal, the
// reads show a live progress line on stderr until readDone.
func (a *app) open() (*session, error) {
	set, err := a.loadSpec()
	if err != nil {
		return nil, err
	}
	dir, ap, err := a.connectWith(set, a.logTTY)
	if err != nil {
		return nil, err
	}
	return &session{set: set, dir: dir, ap: ap}, nil
}

// readDone clears the read progress line, before the result is printed.
// The line stays in place, stopped, so that a log line written late by
// another goroutine still finds it.
func (a *app) readDone() {
	a.live.stop()
}
