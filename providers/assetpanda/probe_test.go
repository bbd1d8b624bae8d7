package assetpanda

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

var update = flag.Bool("update", false, "rewrite golden files")

// probeRoutes are the endpoints Probe reports on, in order.
var probeRoutes = []string{
	"POST /v3/session/token", "GET /v3/accounts", "GET /v3/roles", "GET /v3/groups",
	"GET /v3/groups/{id}/fields", "POST /v3/groups/{id}/search/objects", "GET /v3/users", "GET /v3/users/me",
}

func endpoints(r ProbeReport) []string {
	var out []string
	for _, c := range r.Checks {
		out = append(out, c.Endpoint)
	}
	return out
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(strings.TrimSuffix(string(want), "\n"), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestProbeEmulatorHasEveryShape(t *testing.T) {
	e := newEnv(t, baseSeed(3), envOpts{})
	before := e.emu.State()
	r := e.c.Probe(ctx(t), "Acme", "IT Assets", "People")
	if diff := cmp.Diff(probeRoutes, endpoints(r)); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	for _, c := range r.Checks {
		if !c.OK() || c.Status != http.StatusOK {
			t.Errorf("%s", c)
		}
	}
	if !r.OK() {
		t.Errorf("report not OK:\n%s", r)
	}
	golden(t, "probe-emulator.golden.txt", r.String())
	// Read-only: only reads were sent, and nothing changed.
	for route := range e.emu.Stats().Requests {
		if !strings.HasPrefix(route, "GET ") && route != "POST /v3/session/token" && route != rSearch {
			t.Errorf("Probe sent %s", route)
		}
	}
	if diff := cmp.Diff(before, e.emu.State()); diff != "" {
		t.Errorf("state changed (-before +after):\n%s", diff)
	}
	// "" picks the first account, module and collection.
	if r := e.c.Probe(ctx(t), "", "", ""); !r.OK() {
		t.Errorf("Probe with no names:\n%s", r)
	}
}

// A variant of the emulator whose replies differ: the report names exactly
// the differences, and nothing of the values.
func TestProbeNamesEachDifference(t *testing.T) {
	variant := rewrite(
		rewriter{method: "GET", suffix: "/v3/roles", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
			return map[string]any{"roles": body} // an envelope instead of a bare array
		}},
		rewriter{method: "GET", suffix: "/fields", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
			for _, f := range body.(map[string]any)["fields"].([]any) {
				m := f.(map[string]any)
				b, _ := json.Marshal(m["id"])
				m["id"] = string(b) // a type changed: ids as strings
			}
			return nil
		}},
		rewriter{method: "POST", suffix: "/search/objects", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
			delete(body.(map[string]any), "totals") // a key dropped
			return nil
		}},
		rewriter{method: "GET", suffix: "/v3/users", edit: func(_ int, _ *http.Request, h http.Header, body any) any {
			h.Del("X-Total-Count")
			return map[string]any{"users": body}
		}},
		rewriter{method: "GET", suffix: "/v3/users/me", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
			m := body.(map[string]any)
			m["perms"] = m["permissions"] // a key renamed
			delete(m, "permissions")
			return nil
		}},
	)
	e := newEnv(t, baseSeed(3), envOpts{server: variant})
	r := e.c.Probe(ctx(t), "Acme", "IT Assets", "People")
	type diff struct{ Endpoint, Path, Want, Got string }
	var got []diff
	for _, c := range r.Checks {
		if c.Error != "" || c.Status != http.StatusOK {
			t.Errorf("%s: status %d, error %q; want 200 and a checked reply", c.Endpoint, c.Status, c.Error)
		}
		for _, p := range c.Problems {
			got = append(got, diff{c.Endpoint, p.Path, p.Want, p.Got})
		}
	}
	want := []diff{
		{"GET /v3/roles", "", "array", "object"},
		{"GET /v3/groups/{id}/fields", "fields[].id", "number", "string"},
		{"POST /v3/groups/{id}/search/objects", "", "one of `totals.objects` number, `total` number", "none of them"},
		{"GET /v3/users", "", "array", "object"},
		{"GET /v3/users", "header X-Total-Count", "number", "missing"},
		{"GET /v3/users/me", "permissions", "object", "missing"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("differences (-want +got):\n%s", d)
	}
	if r.OK() {
		t.Error("report OK despite the differences")
	}
	out := r.String()
	golden(t, "probe-variant.golden.txt", out)
	for _, value := range []string{"Person", sid(0), "corp.example.com", testEmail, testSecret, testPassword} {
		if strings.Contains(out, value) {
			t.Errorf("report carries a value %q:\n%s", value, out)
		}
	}
}

func TestProbeWhenCallsFail(t *testing.T) {
	t.Run("credentials refused", func(t *testing.T) {
		e := newEnv(t, baseSeed(1), envOpts{cfg: func(c *Config) { c.Password = "canary-wrong-9c1e" }})
		r := e.c.Probe(ctx(t), "Acme", "IT Assets", "People")
		if diff := cmp.Diff(probeRoutes, endpoints(r)); diff != "" {
			t.Fatalf("endpoints (-want +got):\n%s", diff)
		}
		tok := r.Checks[0]
		if tok.Status != 401 || !strings.HasPrefix(tok.Error, "asset panda refused the credentials") {
			t.Errorf("token check = %+v, want 401 and the credentials named", tok)
		}
		for _, c := range r.Checks[1:] {
			if c.Status != 0 || c.Error != "not called: the token request did not succeed" {
				t.Errorf("%s", c)
			}
		}
		if n := e.emu.Stats().Total(); n != 1 {
			t.Errorf("requests = %d, want 1 (only the token)", n)
		}
		if strings.Contains(r.String(), "canary-wrong-9c1e") {
			t.Errorf("report carries the password:\n%s", r)
		}
	})
	t.Run("module not found", func(t *testing.T) {
		e := newEnv(t, baseSeed(1), envOpts{})
		r := e.c.Probe(ctx(t), "Acme", "IT Asets", "People")
		got := map[string]string{}
		for _, c := range r.Checks {
			got[c.Endpoint] = c.Error
		}
		skipped := `not called: module "IT Asets" not found in the account`
		want := map[string]string{
			"POST /v3/session/token": "", "GET /v3/accounts": "", "GET /v3/users": "", "GET /v3/users/me": "",
			"GET /v3/roles": skipped, "GET /v3/groups": skipped, "GET /v3/groups/{id}/fields": skipped,
			"POST /v3/groups/{id}/search/objects": skipped,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("errors by endpoint (-want +got):\n%s", diff)
		}
	})
	t.Run("read not granted", func(t *testing.T) {
		seed := baseSeed(1)
		seed.Permissions = &emulator.Permissions{Write: true}
		e := newEnv(t, seed, envOpts{})
		r := e.c.Probe(ctx(t), "Acme", "IT Assets", "People")
		acc := r.Checks[1]
		if acc.Status != 403 || !strings.Contains(acc.Error, "grant the API client read access") {
			t.Errorf("accounts check = %+v, want 403 with the fix", acc)
		}
	})
}

// The shapes come from the client's own reply types; spot-check the
// checker on the tricky parts.
func TestCheckShape(t *testing.T) {
	type pd struct{ Path, Want, Got string }
	tests := []struct {
		name string
		typ  reflect.Type
		body string
		want []pd
	}{
		{"token as access_token", reflect.TypeFor[tokenResponse](), `{"access_token":"x","expires_in":"3600"}`, nil},
		{"token as token", reflect.TypeFor[tokenResponse](), `{"token":"x"}`, nil},
		{"no token", reflect.TypeFor[tokenResponse](), `{"jwt":"x","expires_in":true}`, []pd{
			{"expires_in", "number", "boolean"},
			{"", "one of `access_token` string, `token` string", "none of them"},
		}},
		{"total at the top", reflect.TypeFor[searchResponse](), `{"total":0,"objects":[]}`, nil},
		{"totals without objects", reflect.TypeFor[searchResponse](), `{"totals":{"limit":5},"objects":[{"id":"a"}]}`, []pd{
			{"", "one of `totals.objects` number, `total` number", "none of them"},
		}},
		{"record ids", reflect.TypeFor[searchResponse](), `{"total":2,"objects":[{"id":7},{"is_archived":"no"}]}`, []pd{
			{"objects[].id", "string", "number"},
			{"objects[].id", "string", "missing"},
			{"objects[].is_archived", "boolean", "string"},
		}},
		{"null where required", reflect.TypeFor[[]wireUser](), `[{"id":1,"email":null,"is_active":true,"roles":[{"module_id":"2"}]}]`, []pd{
			{"[].email", "string", "null"},
			{"[].roles[].account_id", "number", "missing"},
			{"[].roles[].module_id", "number", "string"},
			{"[].roles[].role_id", "number", "missing"},
		}},
		{"not JSON", reflect.TypeFor[wireGroups](), `<html>`, []pd{{"", "object", "not JSON"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []pd
			for _, p := range checkShape([]byte(tc.body), shapeOf(tc.typ), "the reply") {
				got = append(got, pd{p.Path, p.Want, p.Got})
				if p.Fix == "" {
					t.Errorf("%+v has no fix", p)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
