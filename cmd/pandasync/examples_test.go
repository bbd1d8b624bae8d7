package main

import (
	"context"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pandasync/pandasync/examples"
	"github.com/pandasync/pandasync/spec"
)

// TestProductionMatchesUnit keeps examples/production, the systemd unit
// and the README's systemd section in agreement: the Connection reads its
// secrets from variables the unit's EnvironmentFile is documented to hold,
// reads no file the service cannot read, and the unit's command line is
// one pandasync accepts.
func TestProductionMatchesUnit(t *testing.T) {
	set, err := spec.LoadFS(examples.FS, "production")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../examples/pandasync.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	directive := func(name string) []string {
		var vs []string
		for _, l := range strings.Split(unit, "\n") {
			if v, ok := strings.CutPrefix(l, name+"="); ok {
				vs = append(vs, v)
			}
		}
		return vs
	}
	if got := directive("EnvironmentFile"); !slices.Equal(got, []string{"/etc/pandasync/secrets.env"}) {
		t.Errorf("EnvironmentFile = %q, want /etc/pandasync/secrets.env", got)
	}
	if got := directive("LoadCredential"); len(got) > 0 {
		t.Errorf("the unit loads credentials %q, but the example reads its secrets from the environment", got)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#   (PANDASYNC_[A-Z_]+)=`).FindAllStringSubmatch(unit, -1) {
		documented[m[1]] = true
	}
	readOnly := directive("ReadOnlyPaths")
	c := set.Connection.Spec
	values := map[string]spec.Value{
		"directory.password": c.Directory.Password, "directory.caFile": c.Directory.CAFile,
		"assetPanda.clientID": c.AssetPanda.ClientID, "assetPanda.clientSecret": c.AssetPanda.ClientSecret,
		"assetPanda.email": c.AssetPanda.Email, "assetPanda.password": c.AssetPanda.Password,
	}
	envs := map[string]bool{}
	for path, v := range values {
		switch {
		case v.Env != "":
			envs[v.Env] = true
			if !documented[v.Env] {
				t.Errorf("%s reads $%s, which the unit does not list as a line of secrets.env", path, v.Env)
			}
		case v.File != "":
			t.Errorf("%s reads the file %s: the example takes its secrets from the environment", path, v.File)
		case path == "directory.caFile" && v.Literal != "":
			if !slices.ContainsFunc(readOnly, func(p string) bool { return strings.HasPrefix(v.Literal, p+"/") }) {
				t.Errorf("caFile %s is outside the unit's ReadOnlyPaths %q", v.Literal, readOnly)
			}
		}
	}
	for name := range documented {
		if !envs[name] {
			t.Errorf("the unit lists %s, which the example's Connection does not read", name)
		}
	}
	readmeSystemd := section(t, readme(t), "### As a systemd service")
	for name := range envs {
		if !strings.Contains(readmeSystemd, name) {
			t.Errorf("README's systemd section does not name %s", name)
		}
	}

	// ExecStart is a command line pandasync accepts, over the spec
	// directory the unit may read.
	exec := directive("ExecStart")
	if len(exec) != 1 {
		t.Fatalf("ExecStart = %q", exec)
	}
	words := strings.Fields(exec[0])[1:]
	a, _, _ := testApp(nil)
	global := a.globalFlagSet()
	global.SetOutput(io.Discard)
	if err := global.Parse(words); err != nil {
		t.Fatalf("ExecStart %q: %v", exec[0], err)
	}
	paths := global.Lookup("f").Value.String()
	if paths == "" || strings.Contains(paths, ",") || !slices.ContainsFunc(readOnly, func(p string) bool { return strings.HasPrefix(paths, p+"/") }) {
		t.Errorf("ExecStart reads the spec from %q, not one directory under the unit's ReadOnlyPaths %q", paths, readOnly)
	}
	rest := global.Args()
	fs := a.describe(context.Background(), rest[0])
	if fs == nil {
		t.Fatalf("ExecStart runs %q, which is not a command", rest[0])
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(rest[1:]); err != nil {
		t.Errorf("ExecStart %q: %v", exec[0], err)
	}
}
