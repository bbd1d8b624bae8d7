package assetpanda

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
)

// Refused credentials and permissions are terminal; everything a retry
// may fix is not. The runtime sees the error wrapped, as here.
func TestTerminalErrors(t *testing.T) {
	t.Parallel()
	const wrongPassword = "canary-wrong-password-41af"
	tests := []struct {
		name     string
		seed     func(*emulator.Seed)
		cfg      func(*Config)
		fault    *emulator.Fault
		call     func(t *testing.T, e *env) error
		terminal bool
		want     string // substring of the message; "" = not checked
	}{
		{
			name: "token refused: wrong password (401)",
			cfg:  func(c *Config) { c.Password = wrongPassword },
			call: readRecords, terminal: true,
			want: "asset panda refused the credentials (client id/secret or admin email/password): get asset panda token: status 401",
		},
		{
			name:  "token refused: 400",
			fault: &emulator.Fault{Route: "POST /v3/session/token", Kind: emulator.FaultStatus, Status: 400, Message: "missing or invalid API key"},
			call:  readRecords, terminal: true,
			want: "asset panda refused the credentials (client id/secret or admin email/password): get asset panda token: status 400: missing or invalid API key",
		},
		{
			name:  "token refused: 403",
			fault: &emulator.Fault{Route: "POST /v3/session/token", Kind: emulator.FaultStatus, Status: 403},
			call:  readRecords, terminal: true, want: "asset panda refused the credentials",
		},
		{
			name:  "401 after the one re-authentication",
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultStatus, Status: 401, Count: 2},
			call:  readRecords, terminal: true,
			want: "asset panda refused a freshly issued token (401 after re-authenticating)",
		},
		{
			name: "403 on a read",
			seed: func(s *emulator.Seed) { s.Permissions = &emulator.Permissions{Write: true, CreateUsers: true} },
			call: readRecords, terminal: true,
			want: "asset panda refused the permission for GET /v3/accounts (403): grant the API client read access",
		},
		{
			name: "403 on a write",
			seed: func(s *emulator.Seed) { s.Permissions = &emulator.Permissions{Read: true, CreateUsers: true} },
			call: func(t *testing.T, e *env) error {
				_, err := e.c.CreateRecords(ctx(t), e.people(t), "AD SID", []map[string]string{{"AD SID": sid(99)}})
				return err
			},
			terminal: true, want: "grant the API client write access",
		},
		{
			name: "403 on user creation",
			seed: func(s *emulator.Seed) { s.Permissions = &emulator.Permissions{Read: true, Write: true} },
			call: func(t *testing.T, e *env) error {
				role, err := e.c.Role(ctx(t), "Acme", "IT Assets", "Collaborator")
				if err != nil {
					return fmt.Errorf("role: %w", err)
				}
				_, err = e.c.CreateUser(ctx(t), NewUser{Email: "new@corp.example.com", Role: role})
				return err
			},
			terminal: true, want: "grant the API client user creation access",
		},
		{
			name:  "429 that does not end",
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultStatus, Status: 429, RetryAfter: "0", Count: -1},
			call:  readRecords,
		},
		{
			name:  "5xx that does not end",
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultStatus, Status: 503, Count: -1},
			call:  readRecords,
		},
		{
			name:  "timeout",
			cfg:   func(c *Config) { c.RequestTimeout = 30 * time.Millisecond },
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultLatency, Delay: 200 * time.Millisecond, Count: -1},
			call:  readRecords,
		},
		{
			name:  "dropped connection",
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultCommitDrop, Count: -1},
			call:  readRecords,
		},
		{
			name: "404 on a single object",
			call: func(t *testing.T, e *env) error {
				_, err := e.c.UpdateUser(ctx(t), 999999, UserUpdate{})
				return err
			},
		},
		{
			name: "422 on a single object",
			call: func(t *testing.T, e *env) error {
				res, err := e.c.CreateRecords(ctx(t), e.people(t), "AD SID", []map[string]string{{"AD SID": sid(0)}})
				if err != nil {
					return err
				}
				return res[0].Err
			},
		},
		{
			name:  "incomplete read",
			fault: &emulator.Fault{Route: rSearch, Kind: emulator.FaultNoTotal},
			call:  readRecords,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seed := baseSeed(1)
			if tc.seed != nil {
				tc.seed(seed)
			}
			e := newEnv(t, seed, envOpts{cfg: tc.cfg})
			if tc.fault != nil {
				e.emu.Fault(*tc.fault)
			}
			err := tc.call(t, e)
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			err = fmt.Errorf("plan: %w", err)
			if got := isTerminal(err); got != tc.terminal {
				t.Errorf("Terminal() = %v, want %v; err = %v", got, tc.terminal, err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant containing %q", err, tc.want)
			}
			for _, secret := range []string{testSecret, testPassword, wrongPassword} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("err carries a secret: %v", err)
				}
			}
		})
	}
}

func readRecords(t *testing.T, e *env) error {
	col, err := e.c.Collection(ctx(t), "Acme", "IT Assets", "People")
	if err != nil {
		return err
	}
	_, err = e.c.Records(ctx(t), col)
	return err
}

// A service that echoes the password or the token in its messages does
// not get them into our errors.
func TestSecretsEchoedByTheServiceAreBlanked(t *testing.T) {
	const echoed = "canary-echoed-password-3b7c"
	var mu sync.Mutex
	var lastToken string
	token := func() string {
		mu.Lock()
		defer mu.Unlock()
		return lastToken
	}
	echo := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/v3/session/token" && strings.Contains(r.Header.Get("X-Test"), "refuse"):
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprintf(w, `{"message":"password %s is wrong"}`, echoed)
			case r.URL.Path == "/v3/accounts":
				tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				mu.Lock()
				lastToken = tok
				mu.Unlock()
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"message":"token %s is odd"}`, tok)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
	e := newEnv(t, baseSeed(0), envOpts{server: echo})
	_, err := e.c.Collection(ctx(t), "Acme", "IT Assets", "People")
	if err == nil || token() == "" {
		t.Fatalf("err = %v, token seen %q; want a 400 that echoes the token", err, token())
	}
	if strings.Contains(err.Error(), token()) || !strings.Contains(err.Error(), "token REDACTED is odd") {
		t.Errorf("err = %v, want the token blanked", err)
	}

	refuse := newEnv(t, baseSeed(0), envOpts{server: echo, cfg: func(c *Config) {
		c.Password = echoed
		c.HTTPClient = &http.Client{Transport: headerTransport{base: http.DefaultTransport, key: "X-Test", value: "refuse"}}
	}})
	_, err = refuse.c.Collection(ctx(t), "Acme", "IT Assets", "People")
	if err == nil || strings.Contains(err.Error(), echoed) || !strings.Contains(err.Error(), "password REDACTED is wrong") {
		t.Errorf("err = %v, want the echoed password blanked", err)
	}
}

// headerTransport adds a header to every request.
type headerTransport struct {
	base       http.RoundTripper
	key, value string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.key, h.value)
	return h.base.RoundTrip(r)
}
