package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/pandasync/pandasync/examples"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/providers/sandbox"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/spec"
)

// demoWorld is the embedded directory and Asset Panda emulator the demo
// (and the end-to-end tests) run against.
type demoWorld struct {
	box     *sandbox.Sandbox
	dir     *embedded.Server
	emu     *emulator.Emulator
	ldapURL string
	apiURL  string
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
	ldif, err := examples.FS.Open(examples.DemoDirectory)
	if err != nil {
		return nil, err
	}
	defer ldif.Close()
	seed, err := examples.FS.Open(examples.DemoSeed)
	if err != nil {
		return nil, err
	}
	defer seed.Close()
	box, err := sandbox.Load(ldif, seed, sandbox.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	set.Connection.Spec.Directory.URLs = []spec.Value{{Literal: box.LDAPURL}}
	set.Connection.Spec.AssetPanda.URL = spec.Value{Literal: box.APIURL}
	return &demoWorld{box: box, dir: box.Directory, emu: box.Emulator, ldapURL: box.LDAPURL, apiURL: box.APIURL,
		set: set, env: box.Env()}, nil
}

func (w *demoWorld) Close() { w.box.Close() }

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
	fmt.Fprintf(a.stdout, "pandasync demo: an embedded Active Directory at %s and an Asset Panda emulator at %s,\n", w.ldapURL, w.apiURL)
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
			w.ldapURL, sandbox.BindDN, sandbox.BindSecret, w.apiURL, w.apiURL)
		<-ctx.Done()
	}
	return nil
}
