package reconcile

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the loop's admin endpoints:
//
//	GET  /healthz  200 while the process serves (liveness)
//	GET  /readyz   200 once the first pass has finished, else 503
//	GET  /metrics  Prometheus metrics
//	GET  /status   the loop's Status as JSON
//	POST /sync     ask for a pass now (202 Accepted)
func (l *Loop) Handler() http.Handler {
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
			fmt.Fprintf(w, "not ready: no pass has finished yet (state %s)\n", st.State)
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
	mux.HandleFunc("POST /sync", func(w http.ResponseWriter, r *http.Request) {
		l.Trigger("POST /sync")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, `{"triggered": true}`)
	})
	return mux
}
