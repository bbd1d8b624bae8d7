package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Source is what the pages read from the loop, and the one thing they do
// to it. *loop.Loop implements it.
type Source interface {
	Status() loop.Status
	Spec() *spec.Set
	History() *loop.History
	// Trigger asks for a pass (Sync now).
	Trigger(reason string)
	// AdminAccess says whether a token may change something.
	AdminAccess(opts loop.AdminOptions, candidate string) loop.Access
}

// Options configure the status page.
type Options struct {
	// Source is the loop the pages show. Required.
	Source Source
	// Admin serves every path the pages do not: the loop's /healthz,
	// /readyz, /metrics, /status, and POST /sync from scripts. Required.
	Admin http.Handler
	// AdminOptions are the admin listener's (RequireToken off loopback).
	AdminOptions loop.AdminOptions
	// Explainer answers the People page; nil turns it off.
	Explainer Explainer
	// StateDir is where the audit trail is read from; empty: no audit
	// history on the People page.
	StateDir string
	// SpecPaths are run's -f paths, for the commands the pages show;
	// empty means the files of the spec set in force (as for run -git,
	// whose spec is a checkout).
	SpecPaths []string
	// RefreshEvery is how often the overview and the pass list reload
	// themselves (with JavaScript; there is a link otherwise); default
	// 15 s, negative: never.
	RefreshEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the page's own errors; nil discards them.
	Logger *slog.Logger
}

// SyncReason is the reason a pass asked for with Sync now carries.
const SyncReason = "Sync now"

// handler serves the pages.
type handler struct {
	opts     Options
	src      Source
	now      func() time.Time
	log      *slog.Logger
	pages    map[string]*template.Template
	auth     *auth
	assets   http.Handler
	security *http.CrossOriginProtection
}

// New returns the handler of the status page and the admin endpoints.
func New(opts Options) (http.Handler, error) {
	if opts.Source == nil || opts.Admin == nil {
		return nil, fmt.Errorf("ui: Source and Admin are required")
	}
	if opts.RefreshEvery == 0 {
		opts.RefreshEvery = 15 * time.Second
	}
	h := &handler{opts: opts, src: opts.Source, now: opts.Now, log: opts.Logger, pages: map[string]*template.Template{}}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range []string{"overview", "passes", "pass", "explain", "login", "message"} {
		t, err := template.New("layout.html").Funcs(funcs(h.now)).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", p, err)
		}
		h.pages[p] = t
	}
	var err error
	if h.auth, err = newAuth(opts.Source, opts.AdminOptions, h.now); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("ui: assets: %w", err)
	}
	h.assets = http.StripPrefix("/assets/", http.FileServerFS(sub))
	h.security = http.NewCrossOriginProtection()
	h.security.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.message(w, r, http.StatusForbidden, "Refused", "This request came from another site. pandasync accepts actions only from its own pages.")
	}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.page(h.overview))
	mux.HandleFunc("GET /passes", h.page(h.passes))
	mux.HandleFunc("GET /passes/{id}", h.page(h.pass))
	mux.HandleFunc("GET /explain", h.page(h.explain))
	mux.HandleFunc("GET /login", h.loginForm)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("POST /logout", h.logout)
	mux.HandleFunc("POST /sync", h.sync)
	mux.Handle("GET /assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.assets.ServeHTTP(w, r)
	}))
	mux.Handle("/", opts.Admin)
	return h.security.Handler(mux), nil
}

// page wraps a page handler with the access check.
func (h *handler) page(serve func(w http.ResponseWriter, r *http.Request, v *viewer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := h.auth.view(w, r, h)
		if !ok {
			return
		}
		serve(w, r, v)
	}
}

// viewer is who looks at a page, and what the layout needs.
type viewer struct {
	// CSRF is the token the page's forms carry.
	CSRF string
	// SignedIn is set for a browser session (it may sign out).
	SignedIn bool
}

// layout is what every page's layout shows.
type layout struct {
	Title   string
	Nav     string
	Viewer  *viewer
	State   loop.State
	Refresh int // seconds; 0: none
	Now     time.Time
	Page    any
}

// render writes a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, l layout) {
	l.Now = h.now()
	var buf bytes.Buffer
	if err := h.pages[name].Execute(&buf, l); err != nil {
		h.log.Error("status page: rendering failed", "page", name, "path", r.URL.Path, "error", err)
		http.Error(w, "the page could not be rendered (see the logs)", http.StatusInternalServerError)
		return
	}
	headers(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away: nothing to do
}

// headers sets what every page carries: nothing from elsewhere, no
// framing, no caching, no sniffing, no referrer.
func headers(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
}

// message shows a page with one message.
func (h *handler) message(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	h.render(w, r, status, "message", layout{Title: title, Page: struct{ Title, Text string }{title, text}})
}

// refresh is the auto-refresh period of a page, in seconds.
func (h *handler) refresh() int {
	if h.opts.RefreshEvery < 0 {
		return 0
	}
	return max(int(h.opts.RefreshEvery/time.Second), 1)
}

// sync is POST /sync. A form from the pages (it carries the CSRF field)
// asks for a pass and goes back to the overview; anything else is a
// script's request, which the loop's own handler serves (bearer token).
// Both passed the cross-origin check.
func (h *handler) sync(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" || !isForm(r) {
		h.opts.Admin.ServeHTTP(w, r)
		return
	}
	if _, ok := h.auth.act(w, r, h); !ok {
		return
	}
	h.src.Trigger(SyncReason)
	http.Redirect(w, r, "/?sync=requested", http.StatusSeeOther)
}

func isForm(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return len(ct) >= 33 && ct[:33] == "application/x-www-form-urlencoded" || len(ct) >= 19 && ct[:19] == "multipart/form-data"
}
