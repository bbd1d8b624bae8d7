// Package spectest runs spec test cases: a spec, a directory fixture in
// LDIF and an Asset Panda seed, started in a sandbox (the embedded
// directory and the Asset Panda emulator on loopback), so that the real
// planner can be run against them with no AD and no Asset Panda.
//
// A case is a directory holding some of:
//
//	spec.yaml or spec/   the spec (mappings, policy; a Connection is replaced)
//	directory.ldif       the directory fixture
//	seed.json            the Asset Panda seed, in the emulator's format
//	args                 plan flags: -mapping NAME, -allow-mass-*
//	env                  NAME=VALUE lines overriding the sandbox's secrets
//	faults.json          emulator faults, a list of emulator.Fault
//	expected.yaml        the expected plan (see Expected)
//
// A file the case lacks is taken from the directory _base next to it. A
// case with no spec there either tests the spec set under test, the one
// `pandasync -f` names. `pandasync test` and the planner's fixture cases
// (cmd/pandasync/testdata/plan) both load their cases with this package.
package spectest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/providers/sandbox"
	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/spec"
)

// The files and directories of a case.
const (
	FileSpec      = "spec.yaml"
	DirSpec       = "spec"
	FileDirectory = "directory.ldif"
	FileSeed      = "seed.json"
	FileArgs      = "args"
	FileEnv       = "env"
	FileFaults    = "faults.json"
	FileExpected  = "expected.yaml"
	// BaseDir, next to the cases, holds the files they share.
	BaseDir = "_base"
)

// caseFiles are the names whose presence makes a directory a case.
var caseFiles = []string{FileSpec, DirSpec, FileDirectory, FileSeed, FileArgs, FileEnv, FileFaults, FileExpected}

// Case is a test case loaded from its directory.
type Case struct {
	// Dir is the case's directory and Name its base name.
	Dir, Name string
	// Spec holds the case's own spec files by name, or nil when the case
	// tests the spec set under test.
	Spec map[string][]byte
	// Directory is the LDIF fixture and Seed the emulator seed.
	Directory, Seed []byte
	// Args are the plan's extra flags, Env the environment overrides and
	// Faults the emulator faults.
	Args   []string
	Env    map[string]string
	Faults []emulator.Fault
}

// Load reads the case in dir, taking what it lacks from dir/../_base. A
// directory fixture and a seed are required.
func Load(dir string) (*Case, error) {
	c := &Case{Dir: dir, Name: filepath.Base(dir), Env: map[string]string{}}
	base := filepath.Join(filepath.Dir(dir), BaseDir)
	var err error
	for _, d := range []string{dir, base} {
		if c.Spec, err = readSpec(d); err != nil {
			return nil, err
		}
		if c.Spec != nil {
			break
		}
	}
	if c.Directory, err = caseFile(dir, base, FileDirectory); err != nil {
		return nil, err
	}
	if c.Seed, err = caseFile(dir, base, FileSeed); err != nil {
		return nil, err
	}
	if c.Directory == nil || c.Seed == nil {
		var missing []string
		for name, b := range map[string][]byte{FileDirectory: c.Directory, FileSeed: c.Seed} {
			if b == nil {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		return nil, fmt.Errorf("case %s: no %s, in the case or in %s", dir, strings.Join(missing, " and no "), base)
	}
	args, err := caseFile(dir, base, FileArgs)
	if err != nil {
		return nil, err
	}
	c.Args = strings.Fields(string(args))
	env, err := caseFile(dir, base, FileEnv)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(env))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("case %s: %s line %d: want NAME=VALUE", dir, FileEnv, n)
		}
		c.Env[strings.TrimSpace(k)] = v
	}
	faults, err := caseFile(dir, base, FileFaults)
	if err != nil {
		return nil, err
	}
	if faults != nil {
		dec := json.NewDecoder(bytes.NewReader(faults))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.Faults); err != nil {
			return nil, fmt.Errorf("case %s: %s: %w", dir, FileFaults, err)
		}
	}
	if _, err := c.Options(); err != nil {
		return nil, err
	}
	return c, nil
}

// caseFile returns the case's file, or the base's, or nil when neither
// has it.
func caseFile(dir, base, name string) ([]byte, error) {
	for _, d := range []string{dir, base} {
		b, err := os.ReadFile(filepath.Join(d, name))
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("case %s: %w", dir, err)
		}
	}
	return nil, nil
}

// readSpec reads dir/spec.yaml or the spec files of dir/spec; nil when
// there is neither.
func readSpec(dir string) (map[string][]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileSpec))
	if err == nil {
		return map[string][]byte{FileSpec: b}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("case %s: %w", dir, err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, DirSpec))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", dir, err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, DirSpec, name))
		if err != nil {
			return nil, fmt.Errorf("case %s: %w", dir, err)
		}
		files[filepath.ToSlash(filepath.Join(DirSpec, name))] = b
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("case %s: %s/ holds no *.yaml file", dir, DirSpec)
	}
	return files, nil
}

// Options parses the case's args into plan options. Only -mapping and the
// -allow-mass-* overrides are allowed.
func (c *Case) Options() (reconcile.Options, error) {
	var opts reconcile.Options
	fs := flag.NewFlagSet(FileArgs, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("mapping", "", func(v string) error { opts.Mappings = append(opts.Mappings, v); return nil })
	set := map[string]*bool{}
	for _, o := range reconcile.Overrides() {
		set[o] = fs.Bool(strings.TrimPrefix(reconcile.OverrideFlag(o), "-"), false, "")
	}
	if err := fs.Parse(c.Args); err != nil {
		return opts, fmt.Errorf("case %s: %s: %w (allowed: -mapping NAME and the -allow-mass-* overrides)", c.Dir, FileArgs, err)
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("case %s: %s: unexpected %q", c.Dir, FileArgs, fs.Arg(0))
	}
	for _, o := range reconcile.Overrides() {
		if *set[o] {
			opts.Overrides = append(opts.Overrides, o)
		}
	}
	return opts, nil
}

// Find returns the case directories under each of dirs, in name order: a
// directory that holds any file of a case is a case; any other directory
// is searched. Directories whose names start with "_" or "." are not.
func Find(dirs ...string) ([]string, error) {
	var out []string
	for _, root := range dirs {
		st, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", root)
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				return nil
			}
			if path != root && (strings.HasPrefix(d.Name(), "_") || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if isCase(path) {
				out = append(out, path)
				return filepath.SkipDir
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func isCase(dir string) bool {
	for _, name := range caseFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// World is a case started in a sandbox.
type World struct {
	Case *Case
	Box  *sandbox.Sandbox
	// Set is the case's spec, or the spec set under test, with its
	// Connection pointed at the sandbox.
	Set *spec.Set
	// Env holds the values of the environment variables the Connection
	// reads: the sandbox's secrets and the case's overrides.
	Env map[string]string
}

// Start starts the case's sandbox, with its faults, and loads its spec:
// its own, or else the spec set under test at paths. The Connection of
// the spec, if it has one, is replaced by the sandbox's.
func (c *Case) Start(paths []string) (*World, error) {
	box, err := sandbox.Load(bytes.NewReader(c.Directory), bytes.NewReader(c.Seed),
		sandbox.Options{Emulator: emulator.Options{Rate: emulator.Rate{Requests: -1}}})
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", c.Dir, err)
	}
	for _, f := range c.Faults {
		box.Emulator.Fault(f)
	}
	w := &World{Case: c, Box: box, Env: box.Env()}
	for k, v := range c.Env {
		w.Env[k] = v
	}
	if w.Set, err = c.loadSpec(box, paths); err != nil {
		box.Close()
		return nil, err
	}
	return w, nil
}

// Close stops the sandbox.
func (w *World) Close() { w.Box.Close() }

// ConnectionName names the sandbox's Connection.
const ConnectionName = "sandbox"

func (c *Case) loadSpec(box *sandbox.Sandbox, paths []string) (*spec.Set, error) {
	conn := box.ConnectionYAML(ConnectionName)
	var load func(withConnection bool) (*spec.Set, error)
	what := "the case's spec"
	if c.Spec != nil {
		load = func(withConnection bool) (*spec.Set, error) {
			files := map[string][]byte{}
			for k, v := range c.Spec {
				files[filepath.ToSlash(filepath.Join(c.Dir, k))] = v
			}
			if withConnection {
				files[filepath.ToSlash(filepath.Join(c.Dir, "00-sandbox-connection.yaml"))] = conn
			}
			return spec.Parse(files)
		}
	} else {
		if len(paths) == 0 {
			return nil, fmt.Errorf("case %s has no spec (%s or %s/), and no spec set is under test", c.Dir, FileSpec, DirSpec)
		}
		what = "the spec set under test (" + strings.Join(paths, ", ") + ")"
		load = func(withConnection bool) (*spec.Set, error) {
			if !withConnection {
				return spec.Load(paths...)
			}
			f, err := os.CreateTemp("", "pandasync-sandbox-connection-*.yaml")
			if err != nil {
				return nil, err
			}
			defer os.Remove(f.Name())
			if _, err := f.Write(conn); err != nil {
				f.Close()
				return nil, err
			}
			if err := f.Close(); err != nil {
				return nil, err
			}
			return spec.Load(append(append([]string{}, paths...), f.Name())...)
		}
	}
	set, err := load(false)
	if err == nil {
		// The spec's own Connection: replaced by the sandbox's.
		set.Connection = box.Connection(ConnectionName)
		return set, nil
	}
	if lacksConnection(err) {
		set, err = load(true)
	}
	if err != nil {
		return nil, fmt.Errorf("case %s: %s does not load:\n%w", c.Dir, what, err)
	}
	return set, nil
}

// lacksConnection reports whether a load failed (among other things)
// because the set has no Connection, which the sandbox supplies.
func lacksConnection(err error) bool {
	var ps spec.Problems
	if !errors.As(err, &ps) {
		return false
	}
	for _, p := range ps {
		if p.File == "" && strings.HasPrefix(p.Message, "no Connection document") {
			return true
		}
	}
	return false
}
