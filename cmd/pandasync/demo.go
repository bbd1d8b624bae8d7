package main

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/pandasync/pandasync/examples"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/spec"
)

// The demo's service account in the embedded directory.
const (
	demoBindDN     = "CN=pandasync,OU=Service,DC=corp,DC=example,DC=com"
	demoADPassword = "demo-ad-password"
)

// demoEnv holds the environment variables the demo spec reads its secrets
// from. The Asset Panda values are the demo seed's credentials.
func demoEnv(seed *emulator.Seed) map[string]string {
	c := seed.Credentials
	return map[string]string{
		"PANDASYNC_AD_PASSWORD":      demoADPassword,
		"PANDASYNC_AP_CLIENT_ID":     c.ClientID,
		"PANDASYNC_AP_CLIENT_SECRET": c.ClientSecret,
		"PANDASYNC_AP_EMAIL":         c.Email,
		"PANDASYNC_AP_PASSWORD":      c.Password,
	}
}

// demoWorld is the embedded directory and Asset Panda emulator the demo
// (and the end-to-end tests) run against.
type demoWorld struct {
	dir     *embedded.Server
	emu     *emulator.Emulator
	api     *httptest.Server
	ldapURL string
	set     *spec.Set
	env     map[string]string
}

// startDemoWorld starts the embedded directory and the emulator seeded
// from examples/demo, and loads the demo spec pointed at them.
func startDemoWorld(a *app) (*demoWorld, error) {
	set, err := spec.LoadFS(examples.FS, examples.DemoSpecDir)
	if err != nil {
		return nil, fmt.Errorf("load the demo spec: %w", err)
	}
	f, err := examples.FS.Open(examples.DemoDirectory)
	if err != nil {
		return nil, err
	}
	entries, err := embedded.ParseLDIF(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("demo directory: %w", err)
	}
	dir, err := embedded.New(entries, embedded.Options{BindDN: demoBindDN, Password: demoADPassword, MaxPageSize: 1000, MaxValRange: 1500})
	if err != nil {
		return nil, fmt.Errorf("demo directory: %w", err)
	}
	ldapURL, err := dir.Listen("127.0.0.1:0")
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("demo directory: %w", err)
	}
	sf, err := examples.FS.Open(examples.DemoSeed)
	if err != nil {
		dir.Close()
		return nil, err
	}
	seed, err := emulator.LoadSeed(sf)
	sf.Close()
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("demo seed: %w", err)
	}
	emu, err := emulator.New(seed, emulator.Options{})
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("demo emulator: %w", err)
	}
	api := httptest.NewServer(emu)
	set.Connection.Spec.Directory.URLs = []spec.Value{{Literal: ldapURL}}
	set.Connection.Spec.AssetPanda.URL = spec.Value{Literal: api.URL}
	return &demoWorld{dir: dir, emu: emu, api: api, ldapURL: ldapURL, set: set, env: demoEnv(seed)}, nil
}

func (w *demoWorld) Close() {
	w.api.Close()
	w.dir.Close()
}

// lookupEnv answers the demo's variables, then the real environment.
func (w *demoWorld) lookupEnv(next func(string) (string, bool)) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := w.env[k]; ok {
			return v, true
		}
		return next(k)
	}
}

// demo runs validate, plan, apply and a second plan against an embedded
// directory and Asset Panda emulator, printing each step.
func (a *app) demo(ctx context.Context, args []string) error {
	fs := a.flags("demo", "[-serve]")
	serve := fs.Bool("serve", false, "keep the embedded directory and emulator running after the demo, until interrupted")
	if err := parse(fs, args); err != nil {
		return err
	}
	w, err := startDemoWorld(a)
	if err != nil {
		return err
	}
	defer w.Close()
	a.lookupEnv = w.lookupEnv(a.lookupEnv)
	set := w.set

	step := func(s string) { fmt.Fprintf(a.stdout, "\n%s\n\n", a.paint(colorBold+";"+colorCyan, "==> "+s)) }
	fmt.Fprintf(a.stdout, "pandasync demo: an embedded Active Directory at %s and an Asset Panda emulator at %s,\n", w.ldapURL, w.api.URL)
	fmt.Fprintf(a.stdout, "seeded from the examples/demo directory built into this binary.\n")

	step("pandasync validate")
	fmt.Fprintf(a.stdout, "%s connection %q, %d user mapping(s), %d collection mapping(s).\n",
		a.paint(colorGreen, "The spec is valid:"), set.Connection.Metadata.Name, len(set.UserMappings), len(set.CollectionMappings))

	dir, ap, err := a.connect(set)
	if err != nil {
		return err
	}
	defer dir.Close()

	step("pandasync plan")
	p, err := reconcile.MakePlan(ctx, set, dir, ap, reconcile.Options{})
	if err != nil {
		return err
	}
	renderPlan(a.stdout, p, a.paint)

	step("pandasync apply -auto-approve")
	res, err := a.applyPlan(ctx, p, set, ap)
	if err != nil {
		return err
	}
	if err := planOutcome(p, res); err != nil {
		return err
	}

	step("pandasync plan   (again: Asset Panda now matches AD)")
	p2, err := reconcile.MakePlan(ctx, set, dir, ap, reconcile.Options{})
	if err != nil {
		return err
	}
	renderPlan(a.stdout, p2, a.paint)
	stats := w.emu.Stats()
	fmt.Fprintf(a.stdout, "\nThe emulator served %d API requests in all.\n", stats.Total())
	if !p2.InSync() {
		return errors.New("the second plan should be in sync")
	}
	if *serve {
		fmt.Fprintf(a.stdout, "\nServing until interrupted: LDAP %s (bind %s / %s), Asset Panda %s (state: %s/_emulator/state)\n",
			w.ldapURL, demoBindDN, demoADPassword, w.api.URL, w.api.URL)
		<-ctx.Done()
	}
	return nil
}
