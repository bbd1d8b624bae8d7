package leader

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Errors the Lease API answers that the election acts on. Test with
// errors.Is; the error also carries the API server's status as *APIError.
var (
	// ErrNotFound: the Lease does not exist yet (404).
	ErrNotFound = errors.New("lease not found")
	// ErrConflict: a create of an existing Lease, or an update with a stale
	// resourceVersion (409). Another candidate wrote first.
	ErrConflict = errors.New("lease conflict")
)

// APIError is an answer of the API server other than success, with the
// reason and message of its Status object.
type APIError struct {
	Code    int    // HTTP status code
	Reason  string // Status.reason, such as "Conflict" or "Forbidden"
	Message string // Status.message
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("kubernetes API: %d %s: %s", e.Code, e.Reason, msg)
}

// Is lets errors.Is match ErrNotFound and ErrConflict.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == http.StatusNotFound
	case ErrConflict:
		return e.Code == http.StatusConflict
	}
	return false
}

// ClientConfig says how to reach the API server and who to be.
type ClientConfig struct {
	// Server is the API server's base URL, https://host:port.
	Server string
	// Token is a bearer token; TokenFile names a file holding one, read
	// again for every request so that a rotated service-account token is
	// picked up. At most one of them is set.
	Token     string
	TokenFile string
	// CAData is a PEM bundle of the CAs that sign the server's certificate;
	// empty means the system roots.
	CAData []byte
	// CertData and KeyData are a PEM client certificate and key, used
	// instead of a token.
	CertData, KeyData []byte
	// TLSServerName overrides the name checked in the server's certificate.
	TLSServerName string
	// InsecureSkipVerify skips the server certificate check. It is refused
	// unless Server is a loopback address.
	InsecureSkipVerify bool
	// Namespace is the namespace the config names (the pod's own, or the
	// kubeconfig context's), for a Lease whose namespace is not given.
	Namespace string
}

// LogValue keeps credentials out of logs.
func (c ClientConfig) LogValue() slog.Value {
	auth := "none"
	switch {
	case c.Token != "":
		auth = "token"
	case c.TokenFile != "":
		auth = "token file " + c.TokenFile
	case len(c.CertData) > 0:
		auth = "client certificate"
	}
	return slog.GroupValue(slog.String("server", c.Server), slog.String("auth", auth),
		slog.Bool("insecure_skip_verify", c.InsecureSkipVerify), slog.String("namespace", c.Namespace))
}

// Client reads and writes Leases through the Kubernetes API. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL
	http      *http.Client
	token     string
	tokenFile string
}

// requestTimeout bounds one request when the caller's context has no
// earlier deadline.
const requestTimeout = 30 * time.Second

// NewClient checks cfg and returns a client for it.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("kubernetes API server %q: %w", cfg.Server, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("kubernetes API server %q: want an https:// URL", cfg.Server)
	}
	if cfg.InsecureSkipVerify && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("kubernetes API server %q: insecure-skip-tls-verify is allowed on loopback addresses only; give the cluster's CA instead", cfg.Server)
	}
	if cfg.Token != "" && cfg.TokenFile != "" {
		return nil, errors.New("kubernetes credentials: both a token and a token file")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if len(cfg.CAData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CAData) {
			return nil, errors.New("kubernetes CA: no PEM certificate found")
		}
		tc.RootCAs = pool
	}
	if len(cfg.CertData) > 0 || len(cfg.KeyData) > 0 {
		cert, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, http: &http.Client{Transport: tr}, token: cfg.Token, tokenFile: cfg.TokenFile}, nil
}

// CloseIdleConnections closes the client's idle connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Lease is a coordination.k8s.io/v1 Lease. Fields pandasync does not know
// (labels, annotations, owner references, newer spec fields) are kept as
// read and written back unchanged.
type Lease struct {
	Namespace       string
	Name            string
	ResourceVersion string // empty for a Lease not yet created
	Spec            LeaseSpec

	// The object as read, for the fields not above.
	rawMeta map[string]json.RawMessage
	rawSpec map[string]json.RawMessage
}

// LeaseSpec is the part of a Lease's spec the election uses. Times are
// informative only: candidates never compare them with their own clock.
type LeaseSpec struct {
	HolderIdentity       string
	LeaseDurationSeconds int32
	AcquireTime          time.Time // zero when unset
	RenewTime            time.Time // zero when unset
	LeaseTransitions     int32
}

// microTime is the API's MicroTime format.
const microTime = "2006-01-02T15:04:05.000000Z07:00"

type leaseWire struct {
	APIVersion string                     `json:"apiVersion"`
	Kind       string                     `json:"kind"`
	Metadata   map[string]json.RawMessage `json:"metadata"`
	Spec       map[string]json.RawMessage `json:"spec"`
}

// MarshalJSON writes the Lease as the API expects it.
func (l *Lease) MarshalJSON() ([]byte, error) {
	w := leaseWire{APIVersion: "coordination.k8s.io/v1", Kind: "Lease",
		Metadata: map[string]json.RawMessage{}, Spec: map[string]json.RawMessage{}}
	for k, v := range l.rawMeta {
		w.Metadata[k] = v
	}
	for k, v := range l.rawSpec {
		w.Spec[k] = v
	}
	set := func(m map[string]json.RawMessage, k string, v any, omit bool) {
		if omit {
			delete(m, k)
			return
		}
		b, _ := json.Marshal(v) // strings, ints: cannot fail
		m[k] = b
	}
	set(w.Metadata, "name", l.Name, false)
	set(w.Metadata, "namespace", l.Namespace, l.Namespace == "")
	set(w.Metadata, "resourceVersion", l.ResourceVersion, l.ResourceVersion == "")
	s := l.Spec
	set(w.Spec, "holderIdentity", s.HolderIdentity, s.HolderIdentity == "")
	set(w.Spec, "leaseDurationSeconds", s.LeaseDurationSeconds, s.LeaseDurationSeconds == 0)
	set(w.Spec, "acquireTime", s.AcquireTime.UTC().Format(microTime), s.AcquireTime.IsZero())
	set(w.Spec, "renewTime", s.RenewTime.UTC().Format(microTime), s.RenewTime.IsZero())
	set(w.Spec, "leaseTransitions", s.LeaseTransitions, s.LeaseTransitions == 0)
	return json.Marshal(w)
}

// UnmarshalJSON reads a Lease as the API returns it.
func (l *Lease) UnmarshalJSON(b []byte) error {
	var w leaseWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.Kind != "" && w.Kind != "Lease" {
		return fmt.Errorf("got a %s, not a Lease", w.Kind)
	}
	*l = Lease{rawMeta: w.Metadata, rawSpec: w.Spec}
	get := func(m map[string]json.RawMessage, k string, v any) error {
		raw, ok := m[k]
		if !ok || string(raw) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("lease %s: %w", k, err)
		}
		return nil
	}
	var acquire, renew string
	for _, f := range []struct {
		m map[string]json.RawMessage
		k string
		v any
	}{
		{w.Metadata, "name", &l.Name},
		{w.Metadata, "namespace", &l.Namespace},
		{w.Metadata, "resourceVersion", &l.ResourceVersion},
		{w.Spec, "holderIdentity", &l.Spec.HolderIdentity},
		{w.Spec, "leaseDurationSeconds", &l.Spec.LeaseDurationSeconds},
		{w.Spec, "acquireTime", &acquire},
		{w.Spec, "renewTime", &renew},
		{w.Spec, "leaseTransitions", &l.Spec.LeaseTransitions},
	} {
		if err := get(f.m, f.k, f.v); err != nil {
			return err
		}
	}
	var err error
	if l.Spec.AcquireTime, err = parseMicroTime(acquire); err != nil {
		return fmt.Errorf("lease acquireTime: %w", err)
	}
	if l.Spec.RenewTime, err = parseMicroTime(renew); err != nil {
		return fmt.Errorf("lease renewTime: %w", err)
	}
	return nil
}

func parseMicroTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func (c *Client) leasePath(ns, name string) string {
	p := "/apis/coordination.k8s.io/v1/namespaces/" + url.PathEscape(ns) + "/leases"
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// GetLease reads a Lease. A Lease that does not exist is ErrNotFound.
func (c *Client) GetLease(ctx context.Context, ns, name string) (*Lease, error) {
	return c.do(ctx, http.MethodGet, c.leasePath(ns, name), nil)
}

// CreateLease creates l. If it exists already, the error is ErrConflict.
func (c *Client) CreateLease(ctx context.Context, l *Lease) (*Lease, error) {
	if l.ResourceVersion != "" {
		return nil, errors.New("create lease: a new lease has no resourceVersion")
	}
	return c.do(ctx, http.MethodPost, c.leasePath(l.Namespace, ""), l)
}

// UpdateLease replaces l if its ResourceVersion is still the current one;
// otherwise the error is ErrConflict.
func (c *Client) UpdateLease(ctx context.Context, l *Lease) (*Lease, error) {
	if l.ResourceVersion == "" {
		return nil, errors.New("update lease: no resourceVersion to compare")
	}
	return c.do(ctx, http.MethodPut, c.leasePath(l.Namespace, l.Name), l)
}

func (c *Client) do(ctx context.Context, method, path string, body *Lease) (*Lease, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "pandasync-leader-election")
	tok, err := c.bearer()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error names the URL and the cause; no credentials are in it.
		return nil, fmt.Errorf("%s lease: %w", strings.ToLower(method), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s lease: read the answer: %w", strings.ToLower(method), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, apiError(resp.StatusCode, b)
	}
	var l Lease
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s lease: decode the answer: %w", strings.ToLower(method), err)
	}
	return &l, nil
}

func (c *Client) bearer() (string, error) {
	if c.tokenFile == "" {
		return c.token, nil
	}
	b, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return "", fmt.Errorf("kubernetes token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("kubernetes token: %s is empty", c.tokenFile)
	}
	return tok, nil
}

// apiError reads the Status object the API server sends with an error.
func apiError(code int, body []byte) error {
	e := &APIError{Code: code}
	var st struct {
		Kind    string `json:"kind"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		e.Reason, e.Message = st.Reason, st.Message
	} else {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	if e.Reason == "" {
		e.Reason = strings.ReplaceAll(http.StatusText(code), " ", "")
	}
	return e
}
