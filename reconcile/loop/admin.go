package loop

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminOptions tune the admin handler.
type AdminOptions struct {
	// RequireToken is set when the listener is reachable from other hosts:
	// every request that is not read-only is refused unless the spec in
	// force sets an admin token and the request carries it. On loopback
	// without a token such requests are allowed.
	RequireToken bool
}

// Handler serves the loop's admin endpoints:
//
//	GET  /healthz  200 while the process serves (liveness)
//	GET  /readyz   200 while a valid spec is in force and the last pass did
//	               not fail terminally, else 503 with the reason
//	GET  /metrics  Prometheus metrics
//	GET  /status   the loop's Status as JSON
//	POST /sync     ask for a pass now (202 Accepted)
//
// The GET endpoints are read-only and open. Everything else (POST /sync)
// needs "Authorization: Bearer TOKEN" when the SyncPolicy sets
// spec.admin.token, and is refused on a listener that other hosts can reach
// (opts.RequireToken) when it does not. `pandasync run` serves it behind the
// status page (package ui), which adds a cross-origin check to every POST.
func (l *Loop) Handler(opts AdminOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := l.Status()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !st.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			reason := st.ReadyReason
			if reason == "" {
				reason = "the spec has not loaded yet"
			}
			fmt.Fprintf(w, "not ready: %s (state %s)\n", reason, st.State)
			return
		}
		fmt.Fprintf(w, "ready (state %s)\n", st.State)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(l.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(l.Status()) // the client went away; nothing to do
	})
	mux.Handle("POST /sync", l.RequireAdmin(opts, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.Trigger("POST /sync")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, `{"triggered": true}`)
	})))
	return mux
}

// Access is what the admin token in force allows a request that changes
// something.
type Access int

// The answers of AdminAccess.
const (
	// AccessOpen: no token is set and the listener is on loopback; the
	// request is allowed without one.
	AccessOpen Access = iota
	// AccessGranted: the request carries the token in force.
	AccessGranted
	// AccessDenied: a token is set and the request does not carry it.
	AccessDenied
	// AccessNoToken: the listener is reachable from other hosts and the
	// spec in force sets no token; nothing that changes something is
	// allowed.
	AccessNoToken
	// AccessUnreadable: the spec sets a token that cannot be read; nothing
	// that changes something is allowed.
	AccessUnreadable
)

// Allowed reports whether the request may go ahead.
func (a Access) Allowed() bool { return a == AccessOpen || a == AccessGranted }

// AdminAccess says whether a request carrying candidate as its admin token
// ("" for none) may change something, under the spec in force. The
// comparison takes constant time.
func (l *Loop) AdminAccess(opts AdminOptions, candidate string) Access {
	l.mu.Lock()
	token, set, terr := l.token, l.tokenSet, l.tokenErr
	l.mu.Unlock()
	switch {
	case set && terr != nil:
		return AccessUnreadable
	case !set && opts.RequireToken:
		return AccessNoToken
	case !set:
		return AccessOpen
	case candidate != "" && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(candidate)), []byte(token)) == 1:
		return AccessGranted
	}
	return AccessDenied
}

// BearerToken returns the token of an "Authorization: Bearer TOKEN"
// header, or "".
func BearerToken(r *http.Request) string {
	got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if got == r.Header.Get("Authorization") {
		return ""
	}
	return strings.TrimSpace(got)
}

// RequireAdmin guards a handler that changes something: it lets a request
// through only with the admin token of the spec in force, or, without a
// token configured, on a loopback listener (opts.RequireToken unset). The
// status page's own actions go through AdminAccess too.
func (l *Loop) RequireAdmin(opts AdminOptions, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch l.AdminAccess(opts, BearerToken(r)) {
		case AccessUnreadable:
			http.Error(w, "the admin token cannot be read (see the logs); requests that change something are refused", http.StatusServiceUnavailable)
		case AccessNoToken:
			http.Error(w, "this listener is reachable from other hosts: set the SyncPolicy's spec.admin.token to allow requests that change something", http.StatusForbidden)
		case AccessDenied:
			w.Header().Set("WWW-Authenticate", `Bearer realm="pandasync"`)
			http.Error(w, "missing or wrong admin token", http.StatusUnauthorized)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
