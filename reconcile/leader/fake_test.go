package leader

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is a hand-written stand-in for the Lease endpoints of a
// Kubernetes API server: bearer-token auth, create with 409 on a duplicate,
// update as compare-and-swap on resourceVersion, Status objects on errors.
type fakeAPI struct {
	token string

	mu     sync.Mutex
	rv     int
	leases map[string]map[string]any // "ns/name" → the object
	writes []fakeWrite               // successful creates and updates, in order
	reqs   map[string]int            // "GET" etc. → count
	// fail, when set, answers a request with that status instead.
	fail func(r *http.Request) int
}

// fakeWrite is one successful write: who held the Lease after it.
type fakeWrite struct {
	Method string
	Holder string
	At     time.Time
}

func newFakeAPI(t *testing.T) (*fakeAPI, *httptest.Server) {
	t.Helper()
	f := &fakeAPI{token: "fake-token", leases: map[string]map[string]any{}, reqs: map[string]int{}}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// caPEM is srv's certificate as a PEM CA bundle.
func caPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// client returns a Client for srv that trusts its certificate.
func (f *fakeAPI) client(t *testing.T, srv *httptest.Server) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{Server: srv.URL, Token: f.token, CAData: caPEM(srv)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func (f *fakeAPI) status(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": msg, "reason": reason, "code": code})
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs[r.Method]++
	if f.fail != nil {
		if code := f.fail(r); code != 0 {
			f.status(w, code, "InternalError", "injected failure")
			return
		}
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		f.status(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	}
	const prefix = "/apis/coordination.k8s.io/v1/namespaces/"
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) < 2 || parts[1] != "leases" || len(parts) > 3 {
		f.status(w, http.StatusNotFound, "NotFound", "no such path "+r.URL.Path)
		return
	}
	ns := parts[0]
	name := ""
	if len(parts) == 3 {
		name = parts[2]
	}
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			f.status(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		if body["kind"] != "Lease" || body["apiVersion"] != "coordination.k8s.io/v1" {
			f.status(w, http.StatusBadRequest, "BadRequest", "not a coordination.k8s.io/v1 Lease")
			return
		}
	}
	meta := func(o map[string]any) map[string]any {
		m, _ := o["metadata"].(map[string]any)
		if m == nil {
			m = map[string]any{}
			o["metadata"] = m
		}
		return m
	}
	switch {
	case r.Method == http.MethodGet && name != "":
		o, ok := f.leases[ns+"/"+name]
		if !ok {
			f.status(w, http.StatusNotFound, "NotFound", fmt.Sprintf("leases.coordination.k8s.io %q not found", name))
			return
		}
		json.NewEncoder(w).Encode(o)
	case r.Method == http.MethodPost && name == "":
		m := meta(body)
		name, _ = m["name"].(string)
		if _, ok := f.leases[ns+"/"+name]; ok {
			f.status(w, http.StatusConflict, "AlreadyExists", fmt.Sprintf("leases.coordination.k8s.io %q already exists", name))
			return
		}
		if _, ok := m["resourceVersion"]; ok {
			f.status(w, http.StatusInternalServerError, "InternalError", "resourceVersion should not be set on objects to be created")
			return
		}
		f.store(ns, name, body, http.MethodPost)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(body)
	case r.Method == http.MethodPut && name != "":
		cur, ok := f.leases[ns+"/"+name]
		if !ok {
			f.status(w, http.StatusNotFound, "NotFound", fmt.Sprintf("leases.coordination.k8s.io %q not found", name))
			return
		}
		if meta(body)["resourceVersion"] != meta(cur)["resourceVersion"] {
			f.status(w, http.StatusConflict, "Conflict", "Operation cannot be fulfilled on leases.coordination.k8s.io: the object has been modified; please apply your changes to the latest version and try again")
			return
		}
		f.store(ns, name, body, http.MethodPut)
		json.NewEncoder(w).Encode(body)
	default:
		f.status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" "+r.URL.Path)
	}
}

func (f *fakeAPI) store(ns, name string, o map[string]any, method string) {
	f.rv++
	m := o["metadata"].(map[string]any)
	m["resourceVersion"] = strconv.Itoa(f.rv)
	m["namespace"] = ns
	f.leases[ns+"/"+name] = o
	spec, _ := o["spec"].(map[string]any)
	holder, _ := spec["holderIdentity"].(string)
	f.writes = append(f.writes, fakeWrite{Method: method, Holder: holder, At: time.Now()})
}

// writesBy returns the successful writes that left holder in the Lease.
func (f *fakeAPI) writesBy(holder string) []fakeWrite {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ws []fakeWrite
	for _, w := range f.writes {
		if w.Holder == holder {
			ws = append(ws, w)
		}
	}
	return ws
}

func (f *fakeAPI) setFail(fn func(r *http.Request) int) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *fakeAPI) requests(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[method]
}
