package spectest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/pandasync/pandasync/reconcile"
)

// production is the example spec set and its test cases.
var (
	production      = filepath.Join("..", "..", "examples", "production")
	productionTests = filepath.Join(production, "tests")
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyCases copies the example cases to a temporary directory.
func copyCases(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(productionTests)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{
		"a/expected.yaml", "b/directory.ldif", "group/c/seed.json", "group/d/spec/x.yaml",
		"_base/directory.ldif", ".hidden/expected.yaml", "group/_shared/seed.json", "notacase/README",
	} {
		write(t, filepath.Join(root, f), "")
	}
	got, err := Find(root)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i], _ = filepath.Rel(root, got[i])
	}
	want := []string{"a", "b", filepath.Join("group", "c"), filepath.Join("group", "d")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Find (-want +got):\n%s", diff)
	}
	if _, err := Find(filepath.Join(root, "missing")); err == nil {
		t.Error("Find of a missing directory: no error")
	}
}

// TestLoad: a case takes what it lacks from _base, and bad args, env or
// faults are errors naming the case.
func TestLoad(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, BaseDir, FileDirectory), "base ldif")
	write(t, filepath.Join(root, BaseDir, FileSeed), "base seed")
	write(t, filepath.Join(root, "own", FileSeed), "own seed")
	write(t, filepath.Join(root, "own", FileSpec), "own spec")
	write(t, filepath.Join(root, "own", FileArgs), "-mapping people -allow-mass-deactivation\n")
	write(t, filepath.Join(root, "own", FileEnv), "# a comment\nPANDASYNC_AP_PASSWORD=wrong=value\n")
	write(t, filepath.Join(root, "own", FileFaults), `[{"route": "GET /v3/users", "kind": "status", "status": 500}]`)
	write(t, filepath.Join(root, "dir", "spec", "10-users.yaml"), "users")
	write(t, filepath.Join(root, "dir", "spec", "README.md"), "not a spec file")
	write(t, filepath.Join(root, "badargs", FileArgs), "-auto-approve")
	write(t, filepath.Join(root, "badenv", FileEnv), "NOEQUALS")
	write(t, filepath.Join(root, "badfaults", FileFaults), `[{"nope": 1}]`)

	c, err := Load(filepath.Join(root, "own"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"spec": string(c.Spec[FileSpec]), "dir": string(c.Directory), "seed": string(c.Seed), "env": c.Env, "faults": len(c.Faults)}
	want := map[string]any{"spec": "own spec", "dir": "base ldif", "seed": "own seed", "env": map[string]string{"PANDASYNC_AP_PASSWORD": "wrong=value"}, "faults": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	opts, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reconcile.Options{Mappings: []string{"people"}, Overrides: []string{reconcile.OverrideDeactivations}}, opts); diff != "" {
		t.Errorf("Options (-want +got):\n%s", diff)
	}

	c, err = Load(filepath.Join(root, "dir"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"spec/10-users.yaml": []byte("users")}, c.Spec); diff != "" {
		t.Errorf("spec/ (-want +got):\n%s", diff)
	}

	for _, name := range []string{"badargs", "badenv", "badfaults"} {
		if _, err := Load(filepath.Join(root, name)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Load(%s): err = %v, want an error naming the case", name, err)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "lonely")); err == nil || !strings.Contains(err.Error(), "no directory.ldif and no seed.json") {
		t.Errorf("Load of a case with no fixtures: err = %v", err)
	}
}

// TestScalarRoundTrip: every value Marshal writes reads back as itself.
func TestScalarRoundTrip(t *testing.T) {
	e := &Expected{Changes: []ExpectedChange{}, Blocked: []ExpectedBlocked{}, Problems: []ExpectedProblem{}}
	for i, v := range []string{
		"plain", "Module Admin", "ada@corp.example.com", "yes", "No", "null", "~", "123", "1e3", "0x1F", "true",
		"a: b", "a #b", "#x", "- x", "[x]", "{x}", "x,y", "CN=Nomail\\, Ned,OU=People,DC=corp", "  padded ", "", "quote\"d", "it's",
		"tab\there", "new\nline", "Zoë", "*star", "&anchor", "!tag", "%pct", "@at", "`tick`", "S-1-5-21-1-2-3-1105", "end:",
	} {
		e.Changes = append(e.Changes, ExpectedChange{Mapping: "m", Kind: "user", Action: "update", Person: string(rune('a'+i%26)) + v, Fields: map[string]string{v + "k": v}})
		e.Problems = append(e.Problems, ExpectedProblem{Code: "c", Object: v})
	}
	var back Expected
	if err := yaml.UnmarshalStrict(e.Marshal(), &back); err != nil {
		t.Fatalf("%v\n%s", err, e.Marshal())
	}
	e.sort()
	if diff := cmp.Diff(e, &back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDiff(t *testing.T) {
	ch := func(person, action string, fields map[string]string) ExpectedChange {
		return ExpectedChange{Mapping: "people", Kind: "record", Action: action, Person: person, Fields: fields}
	}
	want := &Expected{Changes: []ExpectedChange{ch("b@x", "create", nil), ch("a@x", "update", map[string]string{"Title": "Boss"}), ch("c@x", "deactivate", nil)}}
	got := &Expected{Changes: []ExpectedChange{ch("a@x", "update", map[string]string{"Title": "Clerk"}), ch("b@x", "create", nil), ch("d@x", "create", nil)},
		Problems: []ExpectedProblem{{Mapping: "people", Code: "member_no_key", Object: "CN=X"}}}
	wantDiff := `  changes:
- {mapping: people, kind: record, action: update, person: a@x, fields: {Title: Boss}}
+ {mapping: people, kind: record, action: update, person: a@x, fields: {Title: Clerk}}
- {mapping: people, kind: record, action: deactivate, person: c@x}
+ {mapping: people, kind: record, action: create, person: d@x}
  problems:
+ {mapping: people, code: member_no_key, object: CN=X}
`
	got.sort()
	if diff := cmp.Diff(wantDiff, Diff(want, got)); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
	if d := Diff(got, got); d != "" {
		t.Errorf("Diff of a plan with itself: %q", d)
	}
	if want.Changes[0].Person != "b@x" {
		t.Error("Diff reordered the caller's expectations")
	}
}

// TestFromPlan: the plan seen through the expectations keeps the fields
// the case lists, Unchanged for one the change does not write.
func TestFromPlan(t *testing.T) {
	p := &reconcile.Plan{
		Changes: []reconcile.Change{
			{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionUpdate, Key: "S-1", Name: "ada@x",
				Before: map[string]string{"Title": "a", "Office": "HQ"}, After: map[string]string{"Title": "b", "Office": ""}},
			{Mapping: "users", Kind: reconcile.KindUser, Action: reconcile.ActionCreate, Key: "S-2", After: map[string]string{"role": "Collaborator"}},
		},
		Blocked: []reconcile.Blocked{{Change: reconcile.Change{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionDeactivate, Key: "S-3", Name: "ken@x"}, Limit: reconcile.LimitMaxDeactivations}},
		Errors:  []reconcile.Problem{{Code: reconcile.ProblemMemberNoKey, Mapping: "people", Object: "CN=N"}, {Code: reconcile.ProblemReadFailed, Key: "S-9"}},
	}
	like := &Expected{Changes: []ExpectedChange{{Mapping: "people", Kind: "record", Action: "update", Person: "ada@x", Fields: map[string]string{"Title": "", "Office": "", "Department": ""}}}}
	want := &Expected{
		Changes: []ExpectedChange{
			{Mapping: "people", Kind: "record", Action: "update", Person: "ada@x", Fields: map[string]string{"Title": "b", "Office": "", "Department": Unchanged}},
			{Mapping: "users", Kind: "user", Action: "create", Person: "S-2"},
		},
		Blocked:  []ExpectedBlocked{{ExpectedChange: ExpectedChange{Mapping: "people", Kind: "record", Action: "deactivate", Person: "ken@x"}, Limit: reconcile.LimitMaxDeactivations}},
		Problems: []ExpectedProblem{{Code: "read_failed", Object: "S-9"}, {Mapping: "people", Code: "member_no_key", Object: "CN=N"}},
	}
	if diff := cmp.Diff(want, FromPlan(p, like)); diff != "" {
		t.Errorf("FromPlan (-want +got):\n%s", diff)
	}
}

// TestStartSpecUnderTest: a case without a spec of its own runs the spec
// set under test, whose Connection is replaced by the sandbox's; a case
// with its own spec and no Connection gets the sandbox's.
func TestStartSpecUnderTest(t *testing.T) {
	c, err := Load(filepath.Join(productionTests, "joiner"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Spec != nil {
		t.Fatalf("the joiner case has a spec of its own: %v", c.Spec)
	}
	if _, err := c.Start(nil); err == nil || !strings.Contains(err.Error(), "no spec set is under test") {
		t.Errorf("Start without a spec set under test: err = %v", err)
	}
	w, err := c.Start([]string{production})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := w.Set.Connection.Metadata.Name; got != ConnectionName {
		t.Errorf("Connection %q, want the sandbox's", got)
	}
	if got := w.Set.Connection.Spec.AssetPanda.URL.Literal; got != w.Box.APIURL {
		t.Errorf("Asset Panda URL %q, want the sandbox's %q", got, w.Box.APIURL)
	}
	if got := len(w.Set.UserMappings) + len(w.Set.CollectionMappings); got != 3 {
		t.Errorf("%d mappings, want the production spec's 3", got)
	}

	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "own"), os.DirFS(filepath.Join(productionTests, "joiner"))); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(root, BaseDir), os.DirFS(filepath.Join(productionTests, BaseDir))); err != nil {
		t.Fatal(err)
	}
	users, err := os.ReadFile(filepath.Join(production, "10-users.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "own", FileSpec), string(users))
	c, err = Load(filepath.Join(root, "own"))
	if err != nil {
		t.Fatal(err)
	}
	w2, err := c.Start([]string{production})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if got := len(w2.Set.UserMappings) + len(w2.Set.CollectionMappings); got != 2 || w2.Set.Connection.Metadata.Name != ConnectionName {
		t.Errorf("own spec: %d mappings and Connection %q, want 2 and the sandbox's", got, w2.Set.Connection.Metadata.Name)
	}

	write(t, filepath.Join(root, "own", FileSpec), "apiVersion: pandasync.dev/v1alpha1\nkind: UserMapping\nmetadata: {name: x}\nspec: {acount: Acme}\n")
	c, err = Load(filepath.Join(root, "own"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(nil); err == nil || !strings.Contains(err.Error(), "acount") || strings.Contains(err.Error(), "no Connection") {
		t.Errorf("Start with an invalid spec: err = %v, want its problems without the missing Connection", err)
	}
}

// TestExpectedFiles: ReadExpected reads what WriteExpected wrote, a case
// without the file says how to make it, and unknown keys are errors.
func TestExpectedFiles(t *testing.T) {
	root := copyCases(t)
	c, err := Load(filepath.Join(root, "mover"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.ReadExpected()
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Changes) != 2 || e.Changes[0].Fields["role"] != "Module Admin" {
		t.Fatalf("mover expects %+v", e.Changes)
	}
	if err := c.WriteExpected(e); err != nil {
		t.Fatal(err)
	}
	back, err := c.ReadExpected()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, back); diff != "" {
		t.Errorf("after a write (-want +got):\n%s", diff)
	}
	write(t, filepath.Join(root, "mover", FileExpected), "changes:\n- {mapping: x, kind: user, action: create, persn: y}\n")
	if _, err := c.ReadExpected(); err == nil || !strings.Contains(err.Error(), "persn") {
		t.Errorf("unknown key: err = %v", err)
	}
	if err := os.Remove(filepath.Join(root, "mover", FileExpected)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadExpected(); err != ErrNoExpected {
		t.Errorf("no expected.yaml: err = %v, want ErrNoExpected", err)
	}
}
