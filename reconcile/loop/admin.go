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
// (opts.RequireToken) when it does not.
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

// RequireAdmin guards a handler that changes something: it lets a request
// through only with the admin token of the spec in force, or, without a
// token configured, on a loopback listener (opts.RequireToken unset). The
// status page's own actions go through it too.
func (l *Loop) RequireAdmin(opts AdminOptions, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		token, set, terr := l.token, l.tokenSet, l.tokenErr
		l.mu.Unlock()
		switch {
		case set && terr != nil:
			http.Error(w, "the admin token cannot be read (see the logs); requests that change something are refused", http.StatusServiceUnavailable)
			return
		case !set && opts.RequireToken:
			http.Error(w, "this listener is reachable from other hosts: set the SyncPolicy's spec.admin.token to allow requests that change something", http.StatusForbidden)
			return
		case !set:
			next.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pandasync"`)
			http.Error(w, "missing or wrong admin token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
