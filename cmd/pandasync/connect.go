package main

import (
	"errors"
	"fmt"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/providers/assetpanda"
	"github.com/pandasync/pandasync/spec"
)

// directoryConfig resolves the spec's directory settings (reading secrets
// from the environment or files) into a reader configuration.
func directoryConfig(d spec.DirectorySpec, r spec.Resolver) (activedirectory.Config, error) {
	var errs []error
	get := func(name string, v spec.Value) string {
		if v.IsZero() {
			return ""
		}
		s, err := r.Resolve(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("directory.%s: %w", name, err))
		}
		return s
	}
	cfg := activedirectory.Config{
		BaseDN:             get("baseDN", d.BaseDN),
		BindDN:             get("bindDN", d.BindDN),
		Password:           get("password", d.Password),
		StartTLS:           d.StartTLS,
		CAFile:             get("caFile", d.CAFile),
		InsecureSkipVerify: d.InsecureSkipVerify,
		AllowCleartextBind: d.AllowCleartextBind,
		Timeout:            d.Timeout.Duration,
	}
	for i, u := range d.URLs {
		cfg.URLs = append(cfg.URLs, get(fmt.Sprintf("urls[%d]", i), u))
	}
	return cfg, errors.Join(errs...)
}

// assetPandaConfig resolves the spec's Asset Panda settings.
func assetPandaConfig(s spec.AssetPandaSpec, r spec.Resolver) (assetpanda.Config, error) {
	var errs []error
	get := func(name string, v spec.Value) string {
		if v.IsZero() {
			return ""
		}
		s, err := r.Resolve(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("assetPanda.%s: %w", name, err))
		}
		return s
	}
	cfg := assetpanda.Config{
		URL:          get("url", s.URL),
		ClientID:     get("clientID", s.ClientID),
		ClientSecret: get("clientSecret", s.ClientSecret),
		Email:        get("email", s.Email),
		Password:     get("password", s.Password),
		Rate:         assetpanda.Rate{Requests: s.RateLimit.Requests, Per: s.RateLimit.Per.Duration},
	}
	return cfg, errors.Join(errs...)
}

// connect builds both providers from the spec's Connection. Nothing is
// dialled yet: the providers connect on first use.
func (a *app) connect(set *spec.Set) (*activedirectory.Reader, *assetpanda.Client, error) {
	dcfg, derr := directoryConfig(set.Connection.Spec.Directory, a.resolver())
	acfg, aerr := assetPandaConfig(set.Connection.Spec.AssetPanda, a.resolver())
	if err := errors.Join(derr, aerr); err != nil {
		return nil, nil, fmt.Errorf("connection %q: %w", set.Connection.Metadata.Name, err)
	}
	dcfg.Logger = a.log.With("component", "activedirectory")
	acfg.Logger = a.log.With("component", "assetpanda")
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
