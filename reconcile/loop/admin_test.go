package loop_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// TestAdminToken checks who may POST /sync: anyone on loopback without a
// token; nobody off loopback without one; with a token, only a request
// carrying it. Read-only endpoints stay open.
func TestAdminToken(t *testing.T) {
	const token = "s3cret-admin-token"
	tests := map[string]struct {
		spec   []string // SyncPolicy lines
		env    map[string]string
		remote bool
		header string
		want   int
		access loop.Access // AdminAccess for the header's token
	}{
		"loopback, no token":     {nil, nil, false, "", http.StatusAccepted, loop.AccessOpen},
		"remote, no token":       {nil, nil, true, "", http.StatusForbidden, loop.AccessNoToken},
		"token, none sent":       {[]string{"admin: {token: {env: ADMIN_TOKEN}}"}, map[string]string{"ADMIN_TOKEN": token}, false, "", http.StatusUnauthorized, loop.AccessDenied},
		"token, wrong":           {[]string{"admin: {token: {env: ADMIN_TOKEN}}"}, map[string]string{"ADMIN_TOKEN": token}, true, "Bearer nope", http.StatusUnauthorized, loop.AccessDenied},
		"token, not bearer":      {[]string{"admin: {token: {env: ADMIN_TOKEN}}"}, map[string]string{"ADMIN_TOKEN": token}, true, "Basic " + token, http.StatusUnauthorized, loop.AccessDenied},
		"token, right":           {[]string{"admin: {token: {env: ADMIN_TOKEN}}"}, map[string]string{"ADMIN_TOKEN": token}, true, "Bearer " + token, http.StatusAccepted, loop.AccessGranted},
		"token, right, loopback": {[]string{"admin: {token: {env: ADMIN_TOKEN}}"}, map[string]string{"ADMIN_TOKEN": token}, false, "Bearer " + token, http.StatusAccepted, loop.AccessGranted},
		"token unreadable":       {[]string{"admin: {token: {env: ADMIN_TOKEN}}"}, nil, true, "Bearer " + token, http.StatusServiceUnavailable, loop.AccessUnreadable},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.writeSpec(t, "pandasync.yaml", policy(t, tc.spec...))
			ev := make(events, 1000)
			cfg := w.config(newFakeClock(t0), ev)
			cfg.Resolver = spec.Resolver{LookupEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }}
			l := startLoop(t, cfg)
			ev.wait(t, loop.EventWaiting) // the spec is in force
			admin := httptest.NewServer(l.Handler(loop.AdminOptions{RequireToken: tc.remote}))
			t.Cleanup(admin.Close)

			req, _ := http.NewRequest(http.MethodPost, admin.URL+"/sync", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("POST /sync = %d, want %d", resp.StatusCode, tc.want)
			}
			if got := l.AdminAccess(loop.AdminOptions{RequireToken: tc.remote}, loop.BearerToken(req)); got != tc.access || got.Allowed() != (tc.want == http.StatusAccepted) {
				t.Errorf("AdminAccess = %v (allowed %v), want %v", got, got.Allowed(), tc.access)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge")
			}
			for _, path := range []string{"/healthz", "/readyz", "/metrics", "/status"} {
				if code, _ := get(t, admin.URL+path); code != http.StatusOK {
					t.Errorf("GET %s = %d, want 200: read-only endpoints need no token", path, code)
				}
			}
		})
	}
}
