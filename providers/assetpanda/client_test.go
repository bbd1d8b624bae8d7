package assetpanda

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{URL: "https://api.assetpanda.com", ClientID: "id", ClientSecret: "s", Email: "e@x", Password: "p"}
	tests := map[string]struct {
		mod  func(*Config)
		want string // substring of the error; "" = no error
	}{
		"valid https":         {mod: func(c *Config) {}},
		"loopback http":       {mod: func(c *Config) { c.URL = "http://127.0.0.1:8080" }},
		"cleartext elsewhere": {mod: func(c *Config) { c.URL = "http://api.assetpanda.com" }, want: "refusing cleartext http"},
		"not a url":           {mod: func(c *Config) { c.URL = "api.assetpanda.com" }, want: "want an absolute http(s) URL"},
		"missing secrets":     {mod: func(c *Config) { c.ClientSecret, c.Password = "", "" }, want: "missing client secret, password"},
		"bad rate":            {mod: func(c *Config) { c.Rate = Rate{Requests: 5} }, want: "per must be positive"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			_, err := New(cfg)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.want == "" && err != nil || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("New() error = %q, want containing %q", got, tc.want)
			}
		})
	}
}

func TestTokenFetchedOnceAndReused(t *testing.T) {
	e := newEnv(t, baseSeed(3), envOpts{})
	col := e.people(t)
	for range 3 {
		if _, err := e.c.Records(ctx(t), col); err != nil {
			t.Fatalf("Records: %v", err)
		}
	}
	if got := e.emu.Stats().Requests["POST /v3/session/token"]; got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
	if got := e.c.Stats().Requests["POST /v3/groups/{id}/search/objects"]; got != 3 {
		t.Errorf("search requests = %d, want 3", got)
	}
}

// The token may be named "token" instead of "access_token".
func TestTokenFieldAlias(t *testing.T) {
	onlyToken := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v3/session/token" {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var m map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &m)
			delete(m, "access_token")
			delete(m, "expires_in")
			w.WriteHeader(rec.Code)
			_ = json.NewEncoder(w).Encode(m)
		})
	}
	e := newEnv(t, baseSeed(1), envOpts{server: onlyToken})
	if _, err := e.c.Collection(ctx(t), "Acme", "IT Assets", "People"); err != nil {
		t.Fatalf("Collection with a token-only reply: %v", err)
	}
}

func TestReauthenticatesOnceOn401(t *testing.T) {
	e := newEnv(t, baseSeed(1), envOpts{})
	col := e.people(t)
	e.emu.RevokeTokens() // as a password change would
	if _, err := e.c.Records(ctx(t), col); err != nil {
		t.Fatalf("Records after token revocation: %v", err)
	}
	e.emu.Fault(emulator.Fault{Route: "POST /v3/groups/{id}/search/objects", Kind: emulator.FaultStatus, Status: 401})
	if _, err := e.c.Records(ctx(t), col); err != nil {
		t.Fatalf("Records after a scripted 401: %v", err)
	}
	st := e.c.Stats()
	if st.Reauths != 2 || st.Requests["POST /v3/session/token"] != 3 {
		t.Errorf("reauths = %d, token requests = %d; want 2 and 3", st.Reauths, st.Requests["POST /v3/session/token"])
	}
	// A second 401 right after re-authenticating is terminal, not a loop.
	e.emu.Fault(emulator.Fault{Route: "POST /v3/groups/{id}/search/objects", Kind: emulator.FaultStatus, Status: 401, Count: 2})
	_, err := e.c.Records(ctx(t), col)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 401 || IsRetryable(err) {
		t.Errorf("Records with a persistent 401: err = %v, want a terminal 401 *Error", err)
	}
}

func TestBadCredentialsAreTerminalAndSecretFree(t *testing.T) {
	e := newEnv(t, baseSeed(1), envOpts{cfg: func(c *Config) {
		c.Password = "canary-wrong-password-1c9d"
		c.ClientSecret = "canary-wrong-secret-8d2e"
	}})
	_, err := e.c.Collection(ctx(t), "Acme", "IT Assets", "People")
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if ae.Status != 401 || IsRetryable(err) {
		t.Errorf("status = %d, retryable = %v; want 401, terminal", ae.Status, IsRetryable(err))
	}
	if !strings.HasPrefix(err.Error(), "asset panda refused the credentials (client id/secret or admin email/password): ") || !isTerminal(err) {
		t.Errorf("err = %q (terminal %v), want a terminal error that says which credentials to fix", err, isTerminal(err))
	}
	if got := e.emu.Stats().Requests["POST /v3/session/token"]; got != 1 {
		t.Errorf("token requests = %d, want 1 (bad credentials are not retried)", got)
	}
	assertNoSecrets(t, e, err.Error(), "canary-wrong-password-1c9d", "canary-wrong-secret-8d2e")
}

func TestNoSecretInDumpsOrLogs(t *testing.T) {
	e := newEnv(t, baseSeed(2), envOpts{})
	col := e.people(t)
	e.emu.Fault(emulator.Fault{Route: "POST /v3/groups/{id}/search/objects", Kind: emulator.FaultStatus, Status: 500})
	if _, err := e.c.Records(ctx(t), col); err != nil {
		t.Fatalf("Records: %v", err)
	}
	e.c.mu.Lock()
	token := e.c.token
	e.c.mu.Unlock()
	if token == "" {
		t.Fatal("no token after a successful call")
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("dump", "config", e.c.cfg, "client", e.c)
	dumps := strings.Join([]string{
		fmt.Sprintf("%v %+v %#v %s", e.c.cfg, e.c.cfg, e.c.cfg, e.c.cfg),
		fmt.Sprintf("%v %+v %#v %s", e.c, e.c, e.c, e.c),
		fmt.Sprintf("%v %#v", e.emu.State().Credentials, e.emu.State()),
		logged.String(),
	}, "\n")
	assertNoSecrets(t, e, dumps, testSecret, testPassword, token)
	if !strings.Contains(dumps, "REDACTED") {
		t.Errorf("dumps do not show REDACTED markers:\n%s", dumps)
	}
	resp, err := http.Get(e.srv.URL + "/_emulator/state")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assertNoSecrets(t, e, string(body), testSecret, testPassword)
}

// assertNoSecrets checks text and the client's debug log for the canaries.
func assertNoSecrets(t *testing.T, e *env, text string, canaries ...string) {
	t.Helper()
	logs := e.log.String()
	if logs == "" {
		t.Error("the client logged nothing at debug level; the log check would be vacuous")
	}
	for _, c := range canaries {
		if strings.Contains(text, c) {
			t.Errorf("secret %q appears in:\n%s", c, text)
		}
		if strings.Contains(logs, c) {
			t.Errorf("secret %q appears in the client log", c)
		}
	}
}

func TestLookupsByName(t *testing.T) {
	e := newEnv(t, baseSeed(0), envOpts{})
	tests := map[string]struct {
		call func() error
		want string
	}{
		"unknown account": {
			call: func() error { _, err := e.c.Collection(ctx(t), "Acmee", "IT Assets", "People"); return err },
			want: `account "Acmee" not found (have: "Acme")`,
		},
		"unknown module": {
			call: func() error { _, err := e.c.Collection(ctx(t), "Acme", "IT Asets", "People"); return err },
			want: `module "IT Asets" not found in account "Acme" (have: "IT Assets", "Facilities")`,
		},
		"unknown collection": {
			call: func() error { _, err := e.c.Collection(ctx(t), "Acme", "IT Assets", "Peeple"); return err },
			want: `collection "Peeple" not found in module "IT Assets" of account "Acme" (have: "People")`,
		},
		"unknown role": {
			call: func() error { _, err := e.c.Role(ctx(t), "Acme", "Facilities", "Module Admin"); return err },
			want: `role "Module Admin" not found in module "Facilities" of account "Acme" (have: "Collaborator")`,
		},
		"unknown field": {
			call: func() error { _, err := e.people(t).Field("Mail"); return err },
			want: `field "Mail" not found in collection "People" (have: "AD SID", "First Name", "Email", "Integration Status AD")`,
		},
		"unknown option": {
			call: func() error {
				f, err := e.people(t).Field("Integration Status AD")
				if err != nil {
					return err
				}
				_, err = f.Option("Gone")
				return err
			},
			want: `option "Gone" not found in field "Integration Status AD" (have: "Active", "Inactive", "None")`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v\nwant   %s", err, tc.want)
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("errors.Is(err, ErrNotFound) = false")
			}
		})
	}

	col := e.people(t)
	type fieldShape struct {
		Name, Type   string
		Unique, Keyd bool
		Options      []string
	}
	var got []fieldShape
	for _, f := range col.Fields {
		fs := fieldShape{Name: f.Name, Type: f.Type, Unique: f.Unique, Keyd: strings.HasPrefix(f.Key, "field_")}
		for _, o := range f.Options {
			fs.Options = append(fs.Options, o.Name)
		}
		got = append(got, fs)
	}
	want := []fieldShape{
		{Name: "AD SID", Type: "text", Unique: true, Keyd: true},
		{Name: "First Name", Type: "text", Keyd: true},
		{Name: "Email", Type: "text", Keyd: true},
		{Name: "Integration Status AD", Type: "list", Keyd: true, Options: []string{"Active", "Inactive", "None"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("People fields (-want +got):\n%s", diff)
	}
	if col.Account != "Acme" || col.Module != "IT Assets" || col.ID == 0 || col.ModuleID == 0 {
		t.Errorf("collection = %+v, want scoped ids and names", col)
	}
	role, err := e.c.Role(ctx(t), "acme", "it assets", "collaborator") // a unique case-insensitive match is accepted
	if err != nil || role.Name != "Collaborator" || role.ModuleID != col.ModuleID {
		t.Errorf("Role = %+v, %v; want Collaborator of IT Assets", role, err)
	}
	before := e.c.Stats().Total()
	if _, err := e.c.Collection(ctx(t), "Acme", "IT Assets", "People"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Role(ctx(t), "Acme", "IT Assets", "Collaborator"); err != nil {
		t.Fatal(err)
	}
	if after := e.c.Stats().Total(); after != before {
		t.Errorf("cached lookups sent %d requests, want 0", after-before)
	}
}

func TestPermissions(t *testing.T) {
	seed := baseSeed(0)
	seed.Permissions = &emulator.Permissions{Read: true, Write: true}
	e := newEnv(t, seed, envOpts{})
	got, err := e.c.Permissions(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Permissions{Read: true, Write: true}, got); diff != "" {
		t.Errorf("Permissions (-want +got):\n%s", diff)
	}
	if n := e.emu.Stats().Total() - e.emu.Stats().Requests["GET /v3/users/me"] - e.emu.Stats().Requests["POST /v3/session/token"]; n != 0 {
		t.Errorf("Permissions sent %d other requests", n)
	}
}

func TestUsersLifecycle(t *testing.T) {
	e := newEnv(t, baseSeed(0), envOpts{})
	users, err := e.c.Users(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	grace := EmailIndex(users)["grace@corp.example.com"]
	if grace == nil {
		t.Fatalf("grace not found case-insensitively in %+v", users)
	}
	if r, ok := grace.RoleIn(grace.Roles[0].ModuleID); !ok || r.Role != "Collaborator" || r.Module != "IT Assets" || r.Account != "Acme" {
		t.Errorf("grace's role = %+v, want Collaborator in Acme / IT Assets", grace.Roles)
	}

	admin, err := e.c.Role(ctx(t), "Acme", "IT Assets", "Module Admin")
	if err != nil {
		t.Fatal(err)
	}
	facil, err := e.c.Role(ctx(t), "Acme", "Facilities", "Collaborator")
	if err != nil {
		t.Fatal(err)
	}
	ada, err := e.c.CreateUser(ctx(t), NewUser{Email: "ada@corp.example.com", FirstName: "Ada", LastName: "L", ADSID: sid(1), Role: admin})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if e.emu.Stats().Requests["POST /v3/users/invite"] != 1 {
		t.Errorf("CreateUser took %d invite requests, want 1", e.emu.Stats().Requests["POST /v3/users/invite"])
	}
	newMail, last := "ada.lovelace@corp.example.com", "Lovelace"
	if _, err := e.c.UpdateUser(ctx(t), ada.ID, UserUpdate{Email: &newMail, LastName: &last, Role: facil}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if u, err := e.c.DeactivateUser(ctx(t), ada.ID); err != nil || u.Active {
		t.Fatalf("DeactivateUser = %+v, %v", u, err)
	}
	got := stateUser(t, e, newMail)
	want := emulator.SeedUser{Email: newMail, FirstName: "Ada", LastName: "Lovelace", Active: false, ADSID: sid(1),
		Roles: []emulator.SeedUserRole{
			{Account: "Acme", Module: "Facilities", Role: "Collaborator"},
			{Account: "Acme", Module: "IT Assets", Role: "Module Admin"},
		}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("user after update and deactivate (-want +got):\n%s", diff)
	}
	if u, err := e.c.ReactivateUser(ctx(t), ada.ID); err != nil || !u.Active {
		t.Fatalf("ReactivateUser = %+v, %v", u, err)
	}
	if !stateUser(t, e, newMail).Active {
		t.Error("user still inactive after ReactivateUser")
	}

	// Duplicate email: a terminal 422 naming the email.
	_, err = e.c.CreateUser(ctx(t), NewUser{Email: "GRACE@corp.example.com", Role: admin})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 422 || ae.Key != "GRACE@corp.example.com" || IsRetryable(err) {
		t.Errorf("duplicate CreateUser err = %v, want terminal 422 keyed by the email", err)
	}
}

func stateUser(t *testing.T, e *env, email string) emulator.SeedUser {
	t.Helper()
	for _, u := range e.emu.State().Users {
		if strings.EqualFold(u.Email, email) {
			return u
		}
	}
	t.Fatalf("user %s not in emulator state", email)
	return emulator.SeedUser{}
}

func TestCreateUserNotGranted(t *testing.T) {
	seed := baseSeed(0)
	seed.Permissions = &emulator.Permissions{Read: true, Write: true, CreateUsers: false}
	e := newEnv(t, seed, envOpts{})
	role, err := e.c.Role(ctx(t), "Acme", "IT Assets", "Collaborator")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.c.CreateUser(ctx(t), NewUser{Email: "new@corp.example.com", Role: role})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 403 || IsRetryable(err) {
		t.Fatalf("err = %v, want terminal 403", err)
	}
	if !strings.Contains(err.Error(), "user creation not granted") {
		t.Errorf("err = %q, want it to say user creation is not granted", err)
	}
	p, err := e.c.Permissions(ctx(t))
	if err != nil || p.CreateUsers {
		t.Errorf("Permissions = %+v, %v; want CreateUsers false", p, err)
	}
}

func TestCreateUserCommitThenDrop(t *testing.T) {
	e := newEnv(t, baseSeed(0), envOpts{})
	role, err := e.c.Role(ctx(t), "Acme", "IT Assets", "Collaborator")
	if err != nil {
		t.Fatal(err)
	}
	e.emu.Fault(emulator.Fault{Route: "POST /v3/users/invite", Kind: emulator.FaultCommitDrop})
	u, err := e.c.CreateUser(ctx(t), NewUser{Email: "linus@corp.example.com", FirstName: "Linus", Role: role})
	if err != nil || u.Email != "linus@corp.example.com" {
		t.Fatalf("CreateUser = %+v, %v; want the committed user found by email", u, err)
	}
	if n := e.emu.Stats().Requests["POST /v3/users/invite"]; n != 1 {
		t.Errorf("invite requests = %d, want 1 (never re-sent blindly)", n)
	}
	count := 0
	for _, su := range e.emu.State().Users {
		if su.Email == "linus@corp.example.com" {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d users with the email, want 1", count)
	}
}

// A user write is reported applied only when the reply shows it: a
// service that answers 200 but ignores is_active (the assumed extension)
// or the role, or answers with another user or none, fails the write.
func TestUserWritesTrustOnlyAReplyThatShowsThem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		invite bool // edit the reply of the invite, else of PUT /v3/users/{id}
		edit   func(u map[string]any) any
		write  func(t *testing.T, e *env, graceID int, role *Role) error
		want   string // substring of the error; "" = success
	}{
		{
			name: "deactivation shown",
			write: func(t *testing.T, e *env, id int, _ *Role) error {
				_, err := e.c.DeactivateUser(ctx(t), id)
				return err
			},
		},
		{
			name: "is_active ignored",
			edit: func(u map[string]any) any { u["is_active"] = true; return nil },
			write: func(t *testing.T, e *env, id int, _ *Role) error {
				_, err := e.c.DeactivateUser(ctx(t), id)
				return err
			},
			want: "the service's reply does not show the update applied (it does not carry the is_active sent)",
		},
		{
			name: "role ignored",
			edit: func(u map[string]any) any { u["roles"] = []any{}; return nil },
			write: func(t *testing.T, e *env, id int, r *Role) error {
				_, err := e.c.UpdateUser(ctx(t), id, UserUpdate{Role: r})
				return err
			},
			want: "it does not carry the role sent",
		},
		{
			name: "an empty object",
			edit: func(map[string]any) any { return map[string]any{} },
			write: func(t *testing.T, e *env, id int, _ *Role) error {
				_, err := e.c.ReactivateUser(ctx(t), id)
				return err
			},
			want: "the reply is not user",
		},
		{
			name: "an error body with status 200",
			edit: func(map[string]any) any { return map[string]any{"message": "not done"} },
			write: func(t *testing.T, e *env, id int, _ *Role) error {
				_, err := e.c.DeactivateUser(ctx(t), id)
				return err
			},
			want: "the reply is not user",
		},
		{
			name: "invite answered with no user", invite: true,
			edit: func(map[string]any) any { return map[string]any{"status": "invited"} },
			write: func(t *testing.T, e *env, _ int, r *Role) error {
				_, err := e.c.CreateUser(ctx(t), NewUser{Email: "new@corp.example.com", Role: r})
				return err
			},
			want: "the service's reply is not the user asked for",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// PUT is only the user update here; POST also the token and search.
			rw := rewriter{method: "PUT", edit: func(_ int, _ *http.Request, _ http.Header, body any) any {
				return tc.edit(body.(map[string]any))
			}}
			if tc.invite {
				rw.method, rw.suffix = "POST", "/v3/users/invite"
			}
			var wrap func(http.Handler) http.Handler
			if tc.edit != nil {
				wrap = rewrite(rw)
			}
			e := newEnv(t, baseSeed(0), envOpts{server: wrap})
			users, err := e.c.Users(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			role, err := e.c.Role(ctx(t), "Acme", "IT Assets", "Module Admin")
			if err != nil {
				t.Fatal(err)
			}
			err = tc.write(t, e, EmailIndex(users)["grace@corp.example.com"].ID, role)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("err = %v, want success", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}
