package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValueJSON(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    Value
		wantErr string
		out     string // MarshalJSON result; "" means same as in
	}{
		"literal":         {in: `"https://api.assetpanda.com"`, want: Value{Literal: "https://api.assetpanda.com"}},
		"empty literal":   {in: `""`, want: Value{}},
		"env":             {in: `{"env":"AD_PASSWORD"}`, want: Value{Env: "AD_PASSWORD"}},
		"file":            {in: `{"file":"/run/secrets/x"}`, want: Value{File: "/run/secrets/x"}},
		"null":            {in: `null`, want: Value{}, out: `""`},
		"two keys":        {in: `{"env":"A","file":"B"}`, wantErr: "must be a string, {env: NAME} or {file: PATH}: an object must have exactly one key, env or file, found 2"},
		"no keys":         {in: `{}`, wantErr: "must be a string, {env: NAME} or {file: PATH}: an object must have exactly one key, env or file, found 0"},
		"unknown key":     {in: `{"secret":"CANARY"}`, wantErr: "must be a string, {env: NAME} or {file: PATH}: an object's only key must be env or file"},
		"empty env":       {in: `{"env":""}`, wantErr: "must be a string, {env: NAME} or {file: PATH}: env must not be empty"},
		"env not string":  {in: `{"env":["CANARY"]}`, wantErr: "must be a string, {env: NAME} or {file: PATH}: env must be a string, got a list"},
		"number":          {in: `12345`, wantErr: "must be a string, {env: NAME} or {file: PATH}"},
		"list":            {in: `["CANARY"]`, wantErr: "must be a string, {env: NAME} or {file: PATH}"},
		"literal escaped": {in: `"a\"b"`, want: Value{Literal: `a"b`}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got Value
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Unmarshal(%s) = %+v, want error %q", tt.in, got, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
					t.Errorf("error mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Unmarshal(%s) mismatch (-want +got):\n%s", tt.in, diff)
			}
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.out
			if want == "" {
				want = tt.in
			}
			if diff := cmp.Diff(want, string(out)); diff != "" {
				t.Errorf("Marshal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValueString(t *testing.T) {
	tests := map[string]struct {
		v    Value
		want string
	}{
		"literal": {Value{Literal: "DC=corp"}, "DC=corp"},
		"env":     {Value{Env: "X"}, "{env: X}"},
		"file":    {Value{File: "/a b"}, "{file: /a b}"},
		"zero":    {Value{}, ""},
	}
	for name, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%s: String() = %q, want %q", name, got, tt.want)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		"seconds":  {in: `"90s"`, want: 90 * time.Second},
		"compound": {in: `"1h30m"`, want: 90 * time.Minute},
		"null":     {in: `null`},
		"number":   {in: `90`, wantErr: `must be a duration such as "90s", "15m" or "1h"`},
		"no unit":  {in: `"90"`, wantErr: `must be a duration such as "90s", "15m" or "1h", got "90"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got Duration
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Unmarshal(%s) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Duration != tt.want {
				t.Errorf("Unmarshal(%s) = %s, want %s", tt.in, got.Duration, tt.want)
			}
		})
	}
	out, err := json.Marshal(Duration{90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`"1m30s"`, string(out)); diff != "" {
		t.Errorf("Marshal mismatch (-want +got):\n%s", diff)
	}
}

// fakeEnv and fakeFiles are hand-written stand-ins for the environment and
// the file system.
type fakeEnv map[string]string

func (e fakeEnv) lookup(name string) (string, bool) { v, ok := e[name]; return v, ok }

type fakeFiles map[string]string

func (f fakeFiles) read(name string) ([]byte, error) {
	v, ok := f[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(v), nil
}

func TestResolver(t *testing.T) {
	r := Resolver{
		LookupEnv: fakeEnv{"SET": "CANARY-env", "EMPTY": ""}.lookup,
		ReadFile: fakeFiles{
			"/s/plain":   "CANARY-file",
			"/s/newline": "CANARY-file\n",
			"/s/crlf":    "CANARY-file\r\n",
			"/s/two":     "CANARY-file\n\n",
			"/s/space":   " CANARY-file \n",
			"/s/empty":   "",
			"/s/nl-only": "\n",
		}.read,
	}
	tests := map[string]struct {
		v       Value
		want    string
		wantErr string
	}{
		"literal":      {v: Value{Literal: "demo-client"}, want: "demo-client"},
		"env":          {v: Value{Env: "SET"}, want: "CANARY-env"},
		"env unset":    {v: Value{Env: "UNSET"}, wantErr: "environment variable UNSET is not set"},
		"env empty":    {v: Value{Env: "EMPTY"}, wantErr: "environment variable EMPTY is empty"},
		"file":         {v: Value{File: "/s/plain"}, want: "CANARY-file"},
		"file newline": {v: Value{File: "/s/newline"}, want: "CANARY-file"},
		"file crlf":    {v: Value{File: "/s/crlf"}, want: "CANARY-file"},
		"file two nl":  {v: Value{File: "/s/two"}, want: "CANARY-file\n"},
		"file spaces":  {v: Value{File: "/s/space"}, want: " CANARY-file "},
		"file empty":   {v: Value{File: "/s/empty"}, wantErr: "file /s/empty is empty"},
		"file nl only": {v: Value{File: "/s/nl-only"}, wantErr: "file /s/nl-only is empty"},
		"file missing": {v: Value{File: "/s/missing"}, wantErr: "reading secret file: open /s/missing: file does not exist"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := r.Resolve(tt.v)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Resolve(%v) = %q, want error %q", tt.v, got, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
					t.Errorf("error mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%v): %v", tt.v, err)
			}
			if got != tt.want {
				t.Errorf("Resolve(%v) = %q, want %q", tt.v, got, tt.want)
			}
		})
	}
}

// TestResolverDefaults uses the real environment and file system through
// the zero Resolver.
func TestResolverDefaults(t *testing.T) {
	t.Setenv("PANDASYNC_SPEC_TEST_SECRET", "from-env")
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var r Resolver
	got := make([]string, 0, 2)
	for _, v := range []Value{{Env: "PANDASYNC_SPEC_TEST_SECRET"}, {File: path}} {
		s, err := r.Resolve(v)
		if err != nil {
			t.Fatalf("Resolve(%v): %v", v, err)
		}
		got = append(got, s)
	}
	if diff := cmp.Diff([]string{"from-env", "from-file"}, got); diff != "" {
		t.Errorf("Resolve mismatch (-want +got):\n%s", diff)
	}
	_, err := r.Resolve(Value{File: filepath.Join(t.TempDir(), "missing")})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Resolve(missing file) error = %v, want fs.ErrNotExist", err)
	}
}

// TestRedaction checks that a literal secret (which Load refuses, but a
// hand-built spec may hold) never shows in String, %v, %#v or slog output,
// while references do.
func TestRedaction(t *testing.T) {
	c := Connection{
		Metadata: Metadata{Name: "corp"},
		Spec: ConnectionSpec{
			Directory: DirectorySpec{
				URLs:     []Value{{Literal: "ldaps://dc1"}},
				BindDN:   Value{Literal: "svc@corp"},
				Password: Value{Literal: "CANARY-ad"},
			},
			AssetPanda: AssetPandaSpec{
				URL:          Value{Literal: "https://api.assetpanda.com"},
				ClientSecret: Value{Literal: "CANARY-secret"},
				Password:     Value{Env: "AP_PASSWORD"},
			},
		},
	}
	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	logger.Info("connection", "conn", c, "dir", c.Spec.Directory, "ap", c.Spec.AssetPanda, "spec", c.Spec)
	outputs := map[string]string{
		"String":   c.String(),
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"%#v":      fmt.Sprintf("%#v", c),
		"%#v spec": fmt.Sprintf("%#v %#v %#v", c.Spec, c.Spec.Directory, c.Spec.AssetPanda),
		"%v set":   fmt.Sprintf("%v %+v", Set{Connection: c}, &Set{Connection: c}),
		"slog":     logged.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, "CANARY") {
			t.Errorf("%s output contains a secret: %s", name, out)
		}
		for _, want := range []string{"[redacted]", "{env: AP_PASSWORD}", "ldaps://dc1"} {
			if name != "%v set" && !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q: %s", name, want, out)
			}
		}
	}
}

// TestWebhookRedacted checks that a webhook's URL, which often holds a
// token, never shows in its string forms or logs.
func TestWebhookRedacted(t *testing.T) {
	w := Webhook{Name: "ops", URL: Value{Literal: "https://hooks.example.com/CANARY"}, Format: WebhookSlack}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("webhook", "webhook", w)
	for _, out := range []string{w.String(), fmt.Sprintf("%v %+v %#v %s", w, w, w, w), logs.String()} {
		if strings.Contains(out, "CANARY") {
			t.Errorf("the webhook URL shows in %q", out)
		}
		if !strings.Contains(out, "ops") {
			t.Errorf("the webhook name is missing from %q", out)
		}
	}
}
