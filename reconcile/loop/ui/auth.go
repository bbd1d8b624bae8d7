package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pandasync/pandasync/reconcile/loop"
)

// Session and sign-in limits.
const (
	sessionTTL     = 12 * time.Hour
	maxSessions    = 100
	maxLoginFails  = 10 // wrong tokens per minute before sign-in pauses
	sessionCookie  = "pandasync_session"
	csrfCookie     = "pandasync_csrf"
	csrfField      = "csrf"
	loginFailSpell = time.Minute
)

// auth holds the browser sessions and the key that binds CSRF tokens to
// their cookie. Sessions live in memory: a restart signs everyone out.
type auth struct {
	src  Source
	opts loop.AdminOptions
	now  func() time.Time
	key  []byte

	mu       sync.Mutex
	sessions map[string]*session
	fails    []time.Time
}

// session is a signed-in browser: the token it signed in with, checked
// against the token in force on every request.
type session struct {
	token   string
	expires time.Time
}

func newAuth(src Source, opts loop.AdminOptions, now func() time.Time) (*auth, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	return &auth{src: src, opts: opts, now: now, key: key, sessions: map[string]*session{}}, nil
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand does not fail on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrfFor is the form token bound to a CSRF cookie value.
func (a *auth) csrfFor(cookie string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte("csrf\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrf returns the page's form token, setting the cookie it is bound to
// when the browser has none.
func (a *auth) csrf(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return a.csrfFor(c.Value)
	}
	v := randomID()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return a.csrfFor(v)
}

// checkCSRF reports whether a form carries the token of its CSRF cookie.
func (a *auth) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	return hmac.Equal([]byte(r.PostFormValue(csrfField)), []byte(a.csrfFor(c.Value)))
}

// session returns the browser's valid session, if any.
func (a *auth) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s == nil {
		return nil
	}
	if !a.now().Before(s.expires) {
		delete(a.sessions, c.Value)
		return nil
	}
	return s
}

// access is what a request may do: with a bearer header, that token
// decides; else a session's token; else no token.
func (a *auth) access(r *http.Request) (loop.Access, *session) {
	if r.Header.Get("Authorization") != "" {
		return a.src.AdminAccess(a.opts, loop.BearerToken(r)), nil
	}
	if s := a.session(r); s != nil {
		acc := a.src.AdminAccess(a.opts, s.token)
		if acc == loop.AccessGranted {
			return acc, s
		}
		// The token changed since this browser signed in: it signs in again.
	}
	return a.src.AdminAccess(a.opts, ""), nil
}

// view checks that a page may be shown, and answers the request when it
// may not: a browser without a session is sent to sign in.
func (a *auth) view(w http.ResponseWriter, r *http.Request, h *handler) (*viewer, bool) {
	acc, s := a.access(r)
	switch acc {
	case loop.AccessOpen, loop.AccessGranted:
		return &viewer{CSRF: a.csrf(w, r), SignedIn: s != nil}, true
	case loop.AccessDenied:
		if r.Header.Get("Authorization") != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pandasync"`)
			h.message(w, r, http.StatusUnauthorized, "Wrong admin token", "The Authorization header does not carry the admin token in force.")
			return nil, false
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return nil, false
	}
	a.refuse(w, r, h, acc)
	return nil, false
}

// act checks a form that changes something: the cross-origin check has
// passed; the CSRF token and the access must hold too.
func (a *auth) act(w http.ResponseWriter, r *http.Request, h *handler) (*session, bool) {
	if !a.checkCSRF(r) {
		h.message(w, r, http.StatusForbidden, "Refused", "The form is out of date or did not come from this page: reload the page and try again.")
		return nil, false
	}
	acc, s := a.access(r)
	switch acc {
	case loop.AccessOpen, loop.AccessGranted:
		return s, true
	case loop.AccessDenied:
		h.message(w, r, http.StatusUnauthorized, "Sign in first", "Sign in with the admin token to do this.")
		return nil, false
	}
	a.refuse(w, r, h, acc)
	return nil, false
}

func (a *auth) refuse(w http.ResponseWriter, r *http.Request, h *handler, acc loop.Access) {
	if acc == loop.AccessUnreadable {
		h.message(w, r, http.StatusServiceUnavailable, "Admin token unreadable",
			"The SyncPolicy sets an admin token that cannot be read (see the logs), so the status page is closed until it can. GET /status still answers.")
		return
	}
	h.message(w, r, http.StatusForbidden, "Admin token required",
		"This listener is reachable from other hosts and the spec in force sets no admin token (SyncPolicy spec.admin.token), so the status page is closed.")
}

// loginPage is the sign-in form.
type loginPage struct {
	Next, Error string
}

func (h *handler) loginForm(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if acc, _ := h.auth.access(r); acc.Allowed() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", layout{Title: "Sign in", Viewer: &viewer{CSRF: h.auth.csrf(w, r)}, Page: loginPage{Next: next}})
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	a := h.auth
	next := localPath(r.PostFormValue("next"))
	if !a.checkCSRF(r) {
		h.message(w, r, http.StatusForbidden, "Refused", "The form is out of date or did not come from this page: reload the page and try again.")
		return
	}
	if !a.mayTry() {
		w.Header().Set("Retry-After", "60")
		h.message(w, r, http.StatusTooManyRequests, "Too many attempts", "Too many wrong tokens in the last minute; try again in a minute.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	acc := a.src.AdminAccess(a.opts, token)
	switch acc {
	case loop.AccessGranted:
	case loop.AccessOpen:
		http.Redirect(w, r, next, http.StatusSeeOther) // no token is needed
		return
	case loop.AccessDenied:
		a.failed()
		h.render(w, r, http.StatusUnauthorized, "login", layout{Title: "Sign in", Viewer: &viewer{CSRF: a.csrf(w, r)},
			Page: loginPage{Next: next, Error: "That is not the admin token in force."}})
		return
	default:
		a.refuse(w, r, h, acc)
		return
	}
	id := a.newSession(token)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second)})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.auth.checkCSRF(r) {
		h.message(w, r, http.StatusForbidden, "Refused", "The form is out of date or did not come from this page: reload the page and try again.")
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		h.auth.mu.Lock()
		delete(h.auth.sessions, c.Value)
		h.auth.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, MaxAge: -1, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// newSession starts a session, dropping expired ones and, past
// maxSessions, the one that expires first.
func (a *auth) newSession(token string) string {
	id := randomID()
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	var oldest string
	for k, s := range a.sessions {
		if !now.Before(s.expires) {
			delete(a.sessions, k)
			continue
		}
		if oldest == "" || s.expires.Before(a.sessions[oldest].expires) {
			oldest = k
		}
	}
	if len(a.sessions) >= maxSessions {
		delete(a.sessions, oldest)
	}
	a.sessions[id] = &session{token: token, expires: now.Add(sessionTTL)}
	return id
}

// mayTry reports whether sign-in is open: fewer than maxLoginFails wrong
// tokens in the last minute.
func (a *auth) mayTry() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	cut := a.now().Add(-loginFailSpell)
	kept := a.fails[:0]
	for _, t := range a.fails {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	a.fails = kept
	return len(a.fails) < maxLoginFails
}

func (a *auth) failed() {
	a.mu.Lock()
	a.fails = append(a.fails, a.now())
	a.mu.Unlock()
}

// localPath keeps a redirect target on this site: a path, never another
// host ("//evil", "/\evil", "https://…").
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}
