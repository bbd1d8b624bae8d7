package spec

import (
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ignoreFieldLines leaves the per-field line index of Sources out of
// comparisons; Source.Line and the problems' lines are compared.
var ignoreFieldLines = cmpopts.IgnoreUnexported(Source{})

var update = flag.Bool("update", false, "rewrite the golden files in testdata/invalid")

func ptrTo[T any](v T) *T { return &v }

// wantConnection is the defaulted Connection of testdata/valid/minimal.
func minimalSet() *Set {
	file := "testdata/valid/minimal/spec.yaml"
	return &Set{
		Connection: Connection{
			Source:   Source{File: file, Document: 1, Line: 2},
			Metadata: Metadata{Name: "corp"},
			Spec: ConnectionSpec{
				Directory: DirectorySpec{
					URLs:     []Value{{Literal: "ldaps://dc1.corp.example.com"}},
					BaseDN:   Value{Literal: "DC=corp,DC=example,DC=com"},
					BindDN:   Value{Literal: "svc-pandasync@corp.example.com"},
					Password: Value{Env: "AD_PASSWORD"},
					Timeout:  Duration{30 * time.Second},
				},
				AssetPanda: AssetPandaSpec{
					URL:          Value{Literal: "https://api.assetpanda.com"},
					ClientID:     Value{Literal: "demo-client"},
					ClientSecret: Value{File: "/run/secrets/ap-client-secret"},
					Email:        Value{Literal: "admin@example.com"},
					Password:     Value{Env: "AP_PASSWORD"},
					RateLimit:    RateLimit{Requests: 400, Per: Duration{180 * time.Second}},
				},
			},
		},
		UserMappings: []UserMapping{{
			Source:   Source{File: file, Document: 2, Line: 17},
			Metadata: Metadata{Name: "it-admins"},
			Spec: UserMappingSpec{
				Account:  "Acme",
				Module:   "IT Assets",
				Role:     "Module Admin",
				Group:    "CN=AP Admins,OU=Groups,DC=corp,DC=example,DC=com",
				Nested:   ptrTo(true),
				Fields:   UserFields{Email: "mail", FirstName: "givenName", LastName: "sn"},
				OnRemove: "deactivate",
			},
		}},
		CollectionMappings: []CollectionMapping{{
			Source:   Source{File: file, Document: 3, Line: 26},
			Metadata: Metadata{Name: "people"},
			Spec: CollectionMappingSpec{
				Account:    "Acme",
				Module:     "IT Assets",
				Collection: "People",
				Group:      "CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com",
				Nested:     ptrTo(true),
				Key:        KeyField{Field: "AD SID", Attribute: "objectSid"},
				Status:     &StatusField{Field: "Integration Status AD", Active: "Active", Inactive: "Inactive"},
				OnRemove:   "inactive",
			},
		}},
		Policy: SyncPolicy{
			Metadata: Metadata{Name: "default"},
			Spec: SyncPolicySpec{
				Schedule: Schedule{Every: Duration{time.Hour}},
				Limits: Limits{MaxDeactivations: 500, MaxDeactivationPercent: 20, MaxRoleChanges: 500, MaxRoleChangePercent: 20,
					MaxFieldClears: 500, MaxFieldClearPercent: 20, MaxCreates: Disabled, MaxCreatePercent: Disabled},
				RunAtStart:     ptrTo(true),
				DegradedAfter:  3,
				Quarantine:     Quarantine{After: 10, RetryEvery: Duration{4 * time.Hour}},
				ChangeTracking: ChangeTracking{Method: ChangeTrackingUSN, Every: Duration{time.Hour}, FullEvery: Duration{24 * time.Hour}},
			},
		},
		Files: []string{file},
	}
}

// fullSet is testdata/valid/full: every field given, several files, hidden
// and editor files that must be skipped.
func fullSet() *Set {
	dir := "testdata/valid/full"
	conn := filepath.Join(dir, "10-connection.yaml")
	users := filepath.Join(dir, "20-users.yaml")
	colls := filepath.Join(dir, "30-collections.yml")
	policy := filepath.Join(dir, "40-policy.yaml")
	return &Set{
		Connection: Connection{
			Source:   Source{File: conn, Document: 1, Line: 4},
			Metadata: Metadata{Name: "corp"},
			Spec: ConnectionSpec{
				Directory: DirectorySpec{
					URLs:     []Value{{Literal: "ldap://dc1.corp.example.com:389"}, {Env: "AD_URL"}},
					BaseDN:   Value{Literal: "DC=corp,DC=example,DC=com"},
					BindDN:   Value{Literal: "CN=svc-pandasync,OU=Service,DC=corp,DC=example,DC=com"},
					Password: Value{File: "/run/secrets/ad-password"},
					StartTLS: true,
					CAFile:   Value{File: "/etc/pandasync/ca-path"},
					Timeout:  Duration{10 * time.Second},
				},
				AssetPanda: AssetPandaSpec{
					URL:          Value{Env: "AP_URL"},
					ClientID:     Value{Env: "AP_CLIENT_ID"},
					ClientSecret: Value{Env: "AP_CLIENT_SECRET"},
					Email:        Value{Env: "AP_EMAIL"},
					Password:     Value{Env: "AP_PASSWORD"},
					RateLimit:    RateLimit{Requests: 100, Per: Duration{time.Minute}},
				},
			},
		},
		UserMappings: []UserMapping{
			{
				Source:   Source{File: users, Document: 1, Line: 1},
				Metadata: Metadata{Name: "admins"},
				Spec: UserMappingSpec{
					Account: "Acme", Module: "IT Assets", Role: "Module Admin",
					Group:    "CN=AP Admins,OU=Groups,DC=corp,DC=example,DC=com",
					Nested:   ptrTo(false),
					Fields:   UserFields{Email: "userPrincipalName", FirstName: "displayName", LastName: "surname"},
					OnRemove: "ignore",
				},
			},
			{
				Source:   Source{File: users, Document: 2, Line: 13},
				Metadata: Metadata{Name: "admins-as-users"},
				Spec: UserMappingSpec{
					Account: "Acme", Module: "IT Assets", Role: "Collaborator",
					Group:    "cn=ap admins, ou=Groups, dc=corp, dc=example, dc=com",
					Nested:   ptrTo(true),
					Fields:   UserFields{Email: "mail", FirstName: "givenName", LastName: "sn"},
					OnRemove: "deactivate",
				},
			},
			{
				Source:   Source{File: colls, Document: 2, Line: 17},
				Metadata: Metadata{Name: "helpdesk"},
				Spec: UserMappingSpec{
					Account: "Acme", Module: "Helpdesk", Role: "Agent",
					Group:    "CN=Helpdesk,OU=Groups,DC=corp,DC=example,DC=com",
					Nested:   ptrTo(true),
					Fields:   UserFields{Email: "mail", FirstName: "givenName", LastName: "sn"},
					OnRemove: "deactivate",
				},
			},
		},
		CollectionMappings: []CollectionMapping{{
			Source:   Source{File: colls, Document: 1, Line: 1},
			Metadata: Metadata{Name: "people"},
			Spec: CollectionMappingSpec{
				Account: "Acme", Module: "IT Assets", Collection: "People",
				Group:  "CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com",
				Nested: ptrTo(true),
				Key:    KeyField{Field: "Employee Key", Attribute: "objectGUID"},
				Fields: []FieldMapping{
					{Field: "Email", Attribute: "mail"},
					{Field: "Manager", Attribute: "manager"},
					{Field: "Custom", Attribute: "1.2.840.113556.1.4.7000"},
				},
				Status:   &StatusField{Field: "AD State", Active: "Enabled", Inactive: "Gone"},
				OnRemove: "ignore",
			},
		}},
		Policy: SyncPolicy{
			Source:   Source{File: policy, Document: 1, Line: 1},
			Metadata: Metadata{Name: "nightly"},
			Spec: SyncPolicySpec{
				Schedule: Schedule{Start: "2025-01-31T02:00:00+01:00", Every: Duration{24 * time.Hour}},
				Limits: Limits{MaxDeactivations: Disabled, MaxDeactivationPercent: 100, MaxRoleChanges: 10, MaxRoleChangePercent: 5,
					MaxFieldClears: Disabled, MaxFieldClearPercent: 50, MaxCreates: 1000, MaxCreatePercent: Disabled},
				Suspend:        true,
				RunAtStart:     ptrTo(false),
				DegradedAfter:  2,
				Quarantine:     Quarantine{After: Disabled, RetryEvery: Duration{12 * time.Hour}},
				ChangeTracking: ChangeTracking{Method: ChangeTrackingDirSync, Every: Duration{30 * time.Second}, FullEvery: Duration{12 * time.Hour}},
				Webhooks: []Webhook{
					{Name: "ops", URL: Value{Env: "PANDASYNC_SLACK_URL"}, Format: WebhookSlack},
					{Name: "webhook-2", URL: Value{Literal: "https://hooks.example.com/pandasync"}, Format: WebhookJSON},
				},
				Admin: Admin{Token: Value{File: "/run/secrets/pandasync-admin-token"}},
			},
		},
		Files: []string{conn, users, colls, policy},
	}
}

func TestLoadValid(t *testing.T) {
	tests := map[string]struct {
		paths []string
		want  *Set
	}{
		"minimal": {paths: []string{"testdata/valid/minimal"}, want: minimalSet()},
		"minimal file": {
			paths: []string{"testdata/valid/minimal/spec.yaml", "testdata/valid/minimal/spec.yaml"},
			want:  minimalSet(),
		},
		"full": {paths: []string{"testdata/valid/full"}, want: fullSet()},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Load(tt.paths...)
			if err != nil {
				t.Fatalf("Load(%q) error:\n%v", tt.paths, err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreFieldLines); diff != "" {
				t.Errorf("Load(%q) mismatch (-want +got):\n%s", tt.paths, diff)
			}
		})
	}
}

// TestLoadInvalid loads every testdata/invalid/<case>.yaml (or directory)
// and compares the problems with <case>.golden. Run with -update to rewrite
// the golden files. No golden file may contain a CANARY secret.
func TestLoadInvalid(t *testing.T) {
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() && !strings.HasSuffix(name, ".yaml") {
			continue
		}
		cases++
		caseName := strings.TrimSuffix(name, ".yaml")
		t.Run(caseName, func(t *testing.T) {
			set, err := Load(filepath.Join("testdata/invalid", name))
			if err == nil {
				t.Fatalf("Load succeeded, want problems; got %+v", set)
			}
			if set != nil {
				t.Errorf("Load returned a set along with the error")
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error is %T, want Problems: %v", err, err)
			}
			got := err.Error() + "\n"
			if strings.Contains(got, "CANARY") {
				t.Errorf("error text contains a secret:\n%s", got)
			}
			golden := filepath.Join("testdata/invalid", caseName+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if cases < 10 {
		t.Errorf("found only %d invalid cases", cases)
	}
}

// TestExamples requires every example spec set to be valid.
func TestExamples(t *testing.T) {
	entries, err := os.ReadDir("../examples")
	if err != nil {
		t.Fatal(err)
	}
	// Directories of other YAML, whose own tests load the spec they carry.
	notSpecSets := map[string]string{
		"kubernetes": "Kubernetes manifests; examples/kubernetes_test.go loads the spec of their ConfigMap",
	}
	sets := 0
	for _, e := range entries {
		if !e.IsDir() || notSpecSets[e.Name()] != "" {
			continue
		}
		dir := filepath.Join("../examples", e.Name())
		yamls, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		ymls, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
		if len(yamls)+len(ymls) == 0 {
			continue
		}
		sets++
		t.Run(e.Name(), func(t *testing.T) {
			set, err := Load(dir)
			if err != nil {
				t.Fatalf("example %s is invalid:\n%v", dir, err)
			}
			if len(set.UserMappings)+len(set.CollectionMappings) == 0 {
				t.Errorf("example %s has no mappings", dir)
			}
		})
	}
	if sets < 2 {
		t.Errorf("found %d example spec sets, want at least 2 (demo, production)", sets)
	}
}

// TestDemoExample pins what the built-in demo relies on.
func TestDemoExample(t *testing.T) {
	set, err := Load("../examples/demo")
	if err != nil {
		t.Fatal(err)
	}
	d := set.Connection.Spec.Directory
	got := []string{
		d.URLs[0].String(), d.Password.String(), set.Connection.Spec.AssetPanda.URL.String(),
		set.Connection.Spec.AssetPanda.ClientSecret.String(),
	}
	want := []string{"ldap://127.0.0.1:3389", "{env: PANDASYNC_AD_PASSWORD}", "http://127.0.0.1:8080", "{env: PANDASYNC_AP_CLIENT_SECRET}"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("demo connection mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"it-admins", "it-users", "people"}, set.MappingNames()); diff != "" {
		t.Errorf("demo mappings mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadFS(t *testing.T) {
	minimal, err := os.ReadFile("testdata/valid/minimal/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"specs/spec.yaml":   {Data: minimal},
		"specs/.spec.yaml":  {Data: []byte("broken: [")},
		"specs/notes.md":    {Data: []byte("# notes")},
		"specs/spec.yaml~":  {Data: []byte("broken: [")},
		"other/empty.yaml":  {Data: []byte("# nothing here\n---\n")},
		"other/ignored.txt": {Data: []byte("x")},
	}
	got, err := LoadFS(fsys, "specs", "other/empty.yaml")
	if err != nil {
		t.Fatalf("LoadFS: %v", err)
	}
	want := minimalSet()
	for _, ms := range []*Source{&want.Connection.Source, &want.UserMappings[0].Source, &want.CollectionMappings[0].Source} {
		ms.File = "specs/spec.yaml"
	}
	want.Files = []string{"specs/spec.yaml", "other/empty.yaml"}
	if diff := cmp.Diff(want, got, ignoreFieldLines); diff != "" {
		t.Errorf("LoadFS mismatch (-want +got):\n%s", diff)
	}
}

func TestParse(t *testing.T) {
	minimal, err := os.ReadFile("testdata/valid/minimal/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(map[string][]byte{"testdata/valid/minimal/spec.yaml": minimal})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(minimalSet(), got, ignoreFieldLines); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

// TestLoadErrors covers problems that have no fixture file: missing paths,
// no paths, and size limits.
func TestLoadErrors(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	for i := range big {
		big[i] = '#'
	}
	almostBig := big[:MaxFileSize]
	many := make(map[string][]byte)
	for i := range MaxSetSize/MaxFileSize + 1 {
		many[string(rune('a'+i))+".yaml"] = almostBig
	}
	tests := map[string]struct {
		load func() (*Set, error)
		want string
	}{
		"no paths": {
			load: func() (*Set, error) { return Load() },
			want: "spec set: no spec files or directories given",
		},
		"missing path": {
			load: func() (*Set, error) { return Load("testdata/does-not-exist") },
			want: "testdata/does-not-exist: cannot read: no such file or directory",
		},
		"oversized file": {
			load: func() (*Set, error) { return Parse(map[string][]byte{"big.yaml": big}) },
			want: "big.yaml: file is larger than the 1 MiB limit",
		},
		"endless file": {
			load: func() (*Set, error) { return LoadFS(endlessFS{}, "huge.yaml") },
			want: "huge.yaml: file is larger than the 1 MiB limit",
		},
		"oversized set": {
			load: func() (*Set, error) { return Parse(many) },
			want: "q.yaml: spec set is larger than the 16 MiB limit; stopped reading\n" +
				"spec set: no Connection document; exactly one is required",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			set, err := tt.load()
			if err == nil {
				t.Fatalf("no error; got %+v", set)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// endlessFS serves one file that never ends, like a 100 GB file or
// /dev/zero; reading it must stop at the size limit.
type endlessFS struct{}

func (endlessFS) Open(name string) (fs.File, error) {
	if name != "huge.yaml" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &endlessFile{}, nil
}

type endlessFile struct{ read int64 }

func (f *endlessFile) Stat() (fs.FileInfo, error) { return endlessInfo{}, nil }
func (f *endlessFile) Close() error               { return nil }
func (f *endlessFile) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	f.read += int64(len(p))
	return len(p), nil
}

type endlessInfo struct{}

func (endlessInfo) Name() string       { return "huge.yaml" }
func (endlessInfo) Size() int64        { return 100 << 30 }
func (endlessInfo) Mode() fs.FileMode  { return 0o644 }
func (endlessInfo) ModTime() time.Time { return time.Time{} }
func (endlessInfo) IsDir() bool        { return false }
func (endlessInfo) Sys() any           { return nil }

var _ io.Reader = (*endlessFile)(nil)

// TestAliasBomb checks that go-yaml's alias limit rejects a billion-laughs
// document and that rejecting it allocates little. The allocation bound is
// generous (the expanded document would need gigabytes) and independent of
// time.
func TestAliasBomb(t *testing.T) {
	data, err := os.ReadFile("testdata/invalid/alias-bomb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = Parse(map[string][]byte{"bomb.yaml": data})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Fatalf("Parse(alias bomb) error = %v, want excessive aliasing", err)
	}
	const limit = 64 << 20
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit {
		t.Errorf("rejecting the alias bomb allocated %d bytes, want at most %d", alloc, limit)
	}
}

// TestLiteralSecretsNeverInErrors puts canaries in every secret field, in
// forms that fail in different places, and checks no error repeats them.
func TestLiteralSecretsNeverInErrors(t *testing.T) {
	docs := []string{
		"spec: {directory: {password: CANARY1}, assetPanda: {clientSecret: CANARY2, password: CANARY3}}",
		"spec: {directory: {password: [CANARY1]}, assetPanda: {clientSecret: {env: CANARY-2}, password: {CANARY3: x}}}",
		"spec: {directory: {password: {env: X, file: CANARY1}}, assetPanda: {clientSecret: {file: [CANARY2]}, password: 3}}",
		"spec: {directory: {urls: ['ldap://u:CANARY1@h'], password: {env: X}}, assetPanda: {url: 'https://u:CANARY2@h', password: {env: X}}}",
		"spec: {directory: {urls: ['ldap://u:CANARY1@h/%zz'], password: {env: X}}, assetPanda: {url: 'https://u:CANARY2@h/%zz', password: {env: X}}}",
	}
	for i, d := range docs {
		src := "apiVersion: pandasync.dev/v1alpha1\nkind: Connection\nmetadata: {name: c}\n" + d + "\n"
		_, err := Parse(map[string][]byte{"c.yaml": []byte(src)})
		if err == nil {
			t.Fatalf("case %d: no error", i)
		}
		if strings.Contains(err.Error(), "CANARY") {
			t.Errorf("case %d: error contains a secret:\n%v", i, err)
		}
	}
}

func TestSplitDocuments(t *testing.T) {
	tests := map[string]struct {
		in   string
		want []document
	}{
		"single":        {in: "a: 1\n", want: []document{{text: []byte("a: 1\n")}}},
		"no newline":    {in: "a: 1", want: []document{{text: []byte("a: 1")}}},
		"leading":       {in: "---\na: 1\n", want: []document{{text: []byte("   \na: 1\n")}}},
		"empty skipped": {in: "# c\n---\n\n---\n# only\n---\nb: 2\n", want: []document{{text: []byte("   \nb: 2\n"), lineOffset: 5}}},
		"inline": {in: "a: 1\n--- {b: 2}\n", want: []document{
			{text: []byte("a: 1\n")},
			{text: []byte("    {b: 2}\n"), lineOffset: 1},
		}},
		"not a marker": {in: "a: |\n  ---\nb: ---x\n----\n", want: []document{{text: []byte("a: |\n  ---\nb: ---x\n----\n")}}},
		"end marker":   {in: "a: 1\n...\n", want: []document{{text: []byte("a: 1\n")}}},
		"crlf and bom": {in: "\xef\xbb\xbfa: 1\r\n---\r\nb: 2\r\n", want: []document{
			{text: []byte("a: 1\r\n")},
			{text: []byte("   \r\nb: 2\r\n"), lineOffset: 1},
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := splitDocuments([]byte(tt.in))
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(document{})); diff != "" {
				t.Errorf("splitDocuments(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestIsSpecFileName(t *testing.T) {
	tests := map[string]bool{
		"spec.yaml": true, "spec.yml": true, "SPEC.YAML": true,
		".spec.yaml": false, "spec.yaml~": false, ".#spec.yaml": false, "#spec.yaml#": false,
		".spec.yaml.swp": false, "spec.yaml.swp": false, "spec.json": false, "yaml": false,
	}
	for name, want := range tests {
		if got := isSpecFileName(name); got != want {
			t.Errorf("isSpecFileName(%q) = %t, want %t", name, got, want)
		}
	}
}

// BenchmarkLoad measures loading the production example set from disk.
func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load("../examples/production"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseLargeSet measures a set of 500 mappings in one file.
func BenchmarkParseLargeSet(b *testing.B) {
	conn, err := os.ReadFile("testdata/valid/minimal/spec.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	sb.Write(conn)
	for i := range 500 {
		sb.WriteString("---\napiVersion: pandasync.dev/v1alpha1\nkind: UserMapping\n")
		sb.WriteString("metadata: {name: m" + strconv.Itoa(i) + "}\n")
		sb.WriteString("spec: {account: Acme, module: IT Assets, role: Collaborator, group: \"CN=G" + strconv.Itoa(i) + ",OU=Groups,DC=corp,DC=example,DC=com\"}\n")
	}
	files := map[string][]byte{"big.yaml": []byte(sb.String())}
	b.SetBytes(int64(sb.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(files); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejectAliasBomb measures how fast the alias bomb is refused.
func BenchmarkRejectAliasBomb(b *testing.B) {
	data, err := os.ReadFile("testdata/invalid/alias-bomb.yaml")
	if err != nil {
		b.Fatal(err)
	}
	files := map[string][]byte{"bomb.yaml": data}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(files); err == nil {
			b.Fatal("alias bomb accepted")
		}
	}
}

// TestProblemCap checks that hostile input with endless problems is cut
// short: after maxProblems problems Parse stops and says so.
func TestProblemCap(t *testing.T) {
	var fields strings.Builder
	for range 300 {
		fields.WriteString("    - {field: F}\n")
	}
	tests := map[string]struct {
		data string
		last string
	}{
		"many documents": {
			data: strings.Repeat("---\na: 1\n", 100000),
			last: "spec set: stopped after 200 problems",
		},
		"one document": {
			data: "apiVersion: pandasync.dev/v1alpha1\nkind: CollectionMapping\nmetadata: {name: m}\nspec:\n  fields:\n" + fields.String(),
			last: "spec set: 405 more problems not shown",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(map[string][]byte{"x.yaml": []byte(tt.data)})
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error = %v, want Problems", err)
			}
			if len(ps) != maxProblems+1 {
				t.Errorf("got %d problems, want %d", len(ps), maxProblems+1)
			}
			if got := ps[len(ps)-1].String(); got != tt.last {
				t.Errorf("last problem = %q, want %q", got, tt.last)
			}
		})
	}
}
