package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

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

// demoData says what the demo world starts from and where it listens; the
// zero value is the built-in demo data on random loopback ports.
type demoData struct {
	ldif, seed            string // files; empty: the built-in demo data
	ldapListen, apiListen string // addresses; empty: any free port
}

// startDemoWorld starts the embedded directory and the emulator seeded
// from examples/demo, and loads the demo spec pointed at them.
func startDemoWorld(a *app) (*demoWorld, error) {
	return startDemoWorldWith(a, demoData{})
}

// startDemoWorldWith starts the demo world from d.
func startDemoWorldWith(a *app, d demoData) (*demoWorld, error) {
	set, err := spec.LoadFS(examples.FS, examples.DemoSpecDir)
	if err != nil {
		return nil, fmt.Errorf("load the demo spec: %w", err)
	}
	open := func(file, builtIn string) (io.ReadCloser, error) {
		if file == "" {
			return examples.FS.Open(builtIn)
		}
		return os.Open(file)
	}
	ldif, err := open(d.ldif, examples.DemoDirectory)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	defer ldif.Close()
	seed, err := open(d.seed, examples.DemoSeed)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	defer seed.Close()
	box, err := sandbox.Load(ldif, seed, sandbox.Options{LDAPListen: d.ldapListen, APIListen: d.apiListen})
	if err != nil {
		if d.ldapListen != "" || d.apiListen != "" {
			return nil, fmt.Errorf("demo: %w (choose other addresses with -ldap-listen and -api-listen; port 0 picks a free one)", err)
		}
		return nil, fmt.Errorf("demo: %w", err)
	}
	set.Connection.Spec.Directory.URLs = []spec.Value{{Literal: box.LDAPURL}}
	set.Connection.Spec.Directory.BaseDN = spec.Value{Literal: box.BaseDN}
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

// demoArgs are the flags of `pandasync demo`.
type demoArgs struct {
	serve bool
	dir   string
	data  demoData
}

// The addresses `demo -serve` listens on by default: the ones the demo
// spec in examples/demo names.
const (
	demoLDAPListen = "127.0.0.1:3389"
	demoAPIListen  = "127.0.0.1:8080"
)

func parseDemoArgs(a *app, args []string) (demoArgs, error) {
	var da demoArgs
	fs := a.flags("demo", "[-serve [-dir DIR] [-ldap-listen ADDR] [-api-listen ADDR]] [-ldif FILE] [-seed FILE]")
	fs.BoolVar(&da.serve, "serve", false, "instead of applying, serve the directory and Asset Panda until interrupted, and write demo.d/ and demo.env to try plan and apply by hand")
	fs.StringVar(&da.dir, "dir", ".", "with -serve: write demo.d/ and demo.env into `DIR`")
	fs.StringVar(&da.data.ldapListen, "ldap-listen", "", "the embedded directory's `ADDR` (default "+demoLDAPListen+" with -serve, else any free port)")
	fs.StringVar(&da.data.apiListen, "api-listen", "", "the Asset Panda emulator's `ADDR` (default "+demoAPIListen+" with -serve, else any free port)")
	fs.StringVar(&da.data.ldif, "ldif", "", "start the directory from this LDIF `FILE` instead of examples/demo/directory.ldif")
	fs.StringVar(&da.data.seed, "seed", "", "start Asset Panda from this seed `FILE` (the emulator's JSON) instead of examples/demo/assetpanda-seed.json")
	if err := parse(fs, args); err != nil {
		return da, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		return da, errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !da.serve && set["dir"] {
		fmt.Fprintln(a.stderr, "demo: -dir is for -serve")
		return da, errUsage
	}
	if da.serve {
		if da.data.ldapListen == "" {
			da.data.ldapListen = demoLDAPListen
		}
		if da.data.apiListen == "" {
			da.data.apiListen = demoAPIListen
		}
	}
	return da, nil
}

// demo runs validate, plan, apply and a second plan against an embedded
// directory and Asset Panda emulator, printing each step. With -serve it
// runs validate and plan, writes a spec set and its environment pointed at
// the servers, and serves them, unapplied, until interrupted.
func (a *app) demo(ctx context.Context, args []string) error {
	da, err := parseDemoArgs(a, args)
	if err != nil {
		return err
	}
	w, err := startDemoWorldWith(a, da.data)
	if err != nil {
		return err
	}
	defer w.Close()
	a.lookupEnv = w.lookupEnv(a.lookupEnv)
	set := w.set

	step := func(s string) { fmt.Fprintf(a.stdout, "\n%s\n\n", a.paint(colorBold+";"+colorCyan, "==> "+s)) }
	fmt.Fprintf(a.stdout, "pandasync demo: an embedded Active Directory at %s and an Asset Panda emulator at %s,\n", w.ldapURL, w.apiURL)
	fmt.Fprintf(a.stdout, "seeded from %s and %s.\n", dataName(da.data.ldif, "examples/demo/directory.ldif (built in)"), dataName(da.data.seed, "examples/demo/assetpanda-seed.json (built in)"))

	if da.serve {
		files, err := writeDemoFiles(da.dir, w)
		if err != nil {
			return err
		}
		if set, err = spec.Load(filepath.Join(da.dir, demoSpecDirName)); err != nil {
			return fmt.Errorf("load the demo spec written to %s: %w", filepath.Join(da.dir, demoSpecDirName), err)
		}
		fmt.Fprintf(a.stdout, "Wrote %s.\n", strings.Join(files, ", "))
	}

	step("pandasync validate")
	fmt.Fprintf(a.stdout, "%s connection %q, %s, %s.\n",
		a.paint(colorGreen, "The spec is valid:"), set.Connection.Metadata.Name, count(len(set.UserMappings), "user mapping"), count(len(set.CollectionMappings), "collection mapping"))

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

	if da.serve {
		return a.serveDemo(ctx, da, w)
	}

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
	fmt.Fprintf(a.stdout, "\nTo try plan and apply yourself against these servers: pandasync demo -serve\n")
	return nil
}

// serveDemo prints how to continue and serves the world until ctx ends.
func (a *app) serveDemo(ctx context.Context, da demoArgs, w *demoWorld) error {
	where := func(name string) string {
		if filepath.Clean(da.dir) == "." {
			return name
		}
		return shellQuote(filepath.Join(da.dir, name))
	}
	fmt.Fprintf(a.stdout, "\n%s\n\n", a.paint(colorBold+";"+colorCyan, "==> Your turn"))
	fmt.Fprintf(a.stdout, "Nothing has been applied: the directory and Asset Panda are served as they are, so the plan\n"+
		"above is what apply would do. In another terminal, in this directory:\n\n")
	d := where(demoSpecDirName)
	lines := [][2]string{
		{fmt.Sprintf("source %s; pandasync -f %s plan", where(demoEnvName), d), "what apply would do"},
		{fmt.Sprintf("pandasync -f %s apply", d), "asks for yes"},
		{fmt.Sprintf("pandasync -f %s explain grace", d), "how one person maps"},
		{fmt.Sprintf("curl -s %s/_emulator/state", w.apiURL), "what Asset Panda holds"},
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l[0]))
	}
	for _, l := range lines {
		fmt.Fprintf(a.stdout, "    %-*s  # %s\n", width, l[0], l[1])
	}
	fmt.Fprintln(a.stdout)
	if da.data.ldif != "" || da.data.seed != "" {
		fmt.Fprintf(a.stdout, "%s holds the demo's mappings: edit them to name the groups and collections of your data.\n\n", where(filepath.Join(demoSpecDirName, demoMappingsName)))
	}
	fmt.Fprintf(a.stdout, "Serving until interrupted (Ctrl-C): LDAP %s (bind %s), Asset Panda %s.\n", w.ldapURL, sandbox.BindDN, w.apiURL)
	<-ctx.Done()
	fmt.Fprintln(a.stdout, "Stopped.")
	return nil
}

// The names demo -serve writes.
const (
	demoSpecDirName  = "demo.d"
	demoEnvName      = "demo.env"
	demoMappingsName = "10-mappings.yaml"
)

// writeDemoFiles writes DIR/demo.d (the Connection to w, and the demo's
// mappings unless the file is there already, so that edits survive a
// restart) and DIR/demo.env (the secrets, as export lines). It returns
// the paths written.
func writeDemoFiles(dir string, w *demoWorld) ([]string, error) {
	specDir := filepath.Join(dir, demoSpecDirName)
	if err := os.MkdirAll(specDir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var written []string
	write := func(path string, data []byte, mode os.FileMode) error {
		if err := os.WriteFile(path, data, mode); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		written = append(written, path)
		return nil
	}
	conn := append([]byte("# Written by `pandasync demo -serve`: the Connection to the demo's servers,\n"+
		"# rewritten at every start. The secrets come from demo.env.\n"), w.box.ConnectionYAML("demo")...)
	if err := write(filepath.Join(specDir, "00-connection.yaml"), conn, 0o644); err != nil {
		return nil, err
	}
	mappings := filepath.Join(specDir, demoMappingsName)
	if _, err := os.Stat(mappings); errors.Is(err, fs.ErrNotExist) {
		b, err := demoMappings()
		if err != nil {
			return nil, err
		}
		if err := write(mappings, b, 0o644); err != nil {
			return nil, err
		}
	}
	var env bytes.Buffer
	env.WriteString("# Written by `pandasync demo -serve`: the demo servers' credentials (demo values, not secrets\n# of yours). Use: source demo.env\n")
	keys := make([]string, 0, len(w.env))
	for k := range w.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&env, "export %s=%s\n", k, shellQuote(w.env[k]))
	}
	if err := write(filepath.Join(dir, demoEnvName), env.Bytes(), 0o600); err != nil {
		return nil, err
	}
	return written, nil
}

// demoMappings is the demo spec without its Connection (the first
// document).
func demoMappings() ([]byte, error) {
	b, err := examples.FS.ReadFile(examples.DemoSpecDir + "/pandasync.yaml")
	if err != nil {
		return nil, err
	}
	_, rest, ok := bytes.Cut(b, []byte("\n---\n"))
	if !ok {
		return nil, errors.New("demo: the demo spec has no mappings after its Connection")
	}
	return append([]byte("# The demo's mappings and policy (from examples/demo/pandasync.yaml). Edit them\n# freely: demo -serve keeps this file.\n"), rest...), nil
}

// dataName names the data a demo world starts from.
func dataName(file, builtIn string) string {
	if file == "" {
		return builtIn
	}
	return file
}
