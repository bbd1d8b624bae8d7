package activedirectory

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultPageSize       = 1000
	DefaultMaxPacketBytes = 32 << 20
)

const redacted = "[REDACTED]"

// Config describes how to reach and authenticate to the directory.
// Password is a secret: String, GoString and LogValue redact it.
type Config struct {
	URLs               []string      // ldap:// or ldaps:// URLs, tried in order (failover)
	BaseDN             string        // subtree searched for groups and users
	BindDN             string        // DN or UPN (user@realm) of the service account
	Password           string        // bind password; redacted in String/LogValue
	StartTLS           bool          // upgrade ldap:// connections with StartTLS before binding
	CAFile             string        // PEM bundle; system roots when empty
	CAPEM              []byte        // PEM bundle given inline (alternative to CAFile)
	ServerName         string        // TLS server name; default: host of the URL
	InsecureSkipVerify bool          // skip certificate verification (logged loudly)
	AllowCleartextBind bool          // required to bind over ldap:// without StartTLS
	Timeout            time.Duration // per request (and per page); default 30s
	PageSize           int           // entries per page; default 1000
	MaxPacketBytes     int           // largest accepted LDAP message; default 32 MiB
	ChangeTracking     string        // ReadChanges' method: ChangeTrackingUSN (default) or ChangeTrackingDirSync
	Logger             *slog.Logger  // nil means discard
	// Progress, when set, is called after every page of a search with the
	// counts of the Read or Lookup so far, for a live progress line. It
	// runs on the reading goroutine: it must be quick.
	Progress func(ReadStats)
}

// String describes the configuration with the password redacted.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = redacted
	}
	return fmt.Sprintf("activedirectory.Config{URLs:%v BaseDN:%q BindDN:%q Password:%q StartTLS:%t CAFile:%q ServerName:%q InsecureSkipVerify:%t AllowCleartextBind:%t Timeout:%s PageSize:%d MaxPacketBytes:%d}",
		c.URLs, c.BaseDN, c.BindDN, pw, c.StartTLS, c.CAFile, c.ServerName, c.InsecureSkipVerify, c.AllowCleartextBind, c.Timeout, c.PageSize, c.MaxPacketBytes)
}

// GoString is String, so %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// LogValue renders the configuration for slog with the password redacted.
func (c Config) LogValue() slog.Value {
	pw := ""
	if c.Password != "" {
		pw = redacted
	}
	return slog.GroupValue(
		slog.Any("urls", c.URLs),
		slog.String("baseDN", c.BaseDN),
		slog.String("bindDN", c.BindDN),
		slog.String("password", pw),
		slog.Bool("startTLS", c.StartTLS),
		slog.String("caFile", c.CAFile),
		slog.String("serverName", c.ServerName),
		slog.Bool("insecureSkipVerify", c.InsecureSkipVerify),
		slog.Bool("allowCleartextBind", c.AllowCleartextBind),
		slog.Duration("timeout", c.Timeout),
		slog.Int("pageSize", c.PageSize),
	)
}

// endpoint is one parsed directory URL.
type endpoint struct {
	raw  string // as configured
	tls  bool   // ldaps://
	addr string // host:port
	host string // host without port
}

// prepare validates c, applies defaults and returns the endpoints and the
// base TLS configuration (without ServerName, which is set per endpoint).
func (c *Config) prepare() ([]endpoint, *tls.Config, error) {
	var errs []error
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("no directory URL configured"))
	}
	var eps []endpoint
	for _, raw := range c.URLs {
		ep, err := parseEndpoint(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ep.tls && c.StartTLS {
			errs = append(errs, fmt.Errorf("url %s: startTLS cannot be combined with ldaps://", raw))
		}
		if !ep.tls && !c.StartTLS && !c.AllowCleartextBind {
			errs = append(errs, fmt.Errorf("url %s: refusing to send the bind password over cleartext ldap://; use ldaps:// or startTLS, or set allowCleartextBind to accept the risk", raw))
		}
		eps = append(eps, ep)
	}
	if c.BaseDN == "" {
		errs = append(errs, errors.New("baseDN is empty"))
	} else if _, err := ldap.ParseDN(c.BaseDN); err != nil {
		errs = append(errs, fmt.Errorf("baseDN %q is not a valid DN: %w", c.BaseDN, err))
	}
	if c.BindDN == "" {
		errs = append(errs, errors.New("bindDN is empty (anonymous binds are not supported)"))
	} else if strings.Contains(c.BindDN, "=") {
		if _, err := ldap.ParseDN(c.BindDN); err != nil {
			errs = append(errs, fmt.Errorf("bindDN %q is neither a valid DN nor a UPN: %w", c.BindDN, err))
		}
	}
	if c.Password == "" {
		errs = append(errs, errors.New("bind password is empty"))
	}
	if c.InsecureSkipVerify && (c.CAFile != "" || len(c.CAPEM) > 0) {
		errs = append(errs, errors.New("insecureSkipVerify contradicts a configured CA; remove one of them"))
	}
	if c.Timeout < 0 || c.PageSize < 0 || c.MaxPacketBytes < 0 {
		errs = append(errs, errors.New("timeout, pageSize and maxPacketBytes must not be negative"))
	}
	switch c.ChangeTracking {
	case "", ChangeTrackingUSN, ChangeTrackingDirSync:
	default:
		errs = append(errs, fmt.Errorf("changeTracking %q is neither %q nor %q", c.ChangeTracking, ChangeTrackingUSN, ChangeTrackingDirSync))
	}
	if c.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("pageSize %d exceeds Active Directory's MaxPageSize of 1000", c.PageSize))
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.MaxPacketBytes == 0 {
		c.MaxPacketBytes = DefaultMaxPacketBytes
	}

	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in, logged
	pem := c.CAPEM
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading caFile: %w", err))
		}
		pem = append(append([]byte(nil), pem...), b...)
	}
	if len(pem) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			errs = append(errs, errors.New("the CA bundle holds no PEM certificate"))
		}
		tc.RootCAs = pool
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("invalid directory configuration: %w", err)
	}
	return eps, tc, nil
}

func parseEndpoint(raw string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("url %q: %w", raw, err)
	}
	ep := endpoint{raw: raw}
	port := ""
	switch strings.ToLower(u.Scheme) {
	case "ldap":
		port = "389"
	case "ldaps":
		ep.tls, port = true, "636"
	default:
		return endpoint{}, fmt.Errorf("url %q: scheme must be ldap or ldaps", raw)
	}
	if u.Hostname() == "" {
		return endpoint{}, fmt.Errorf("url %q: no host", raw)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	ep.host = u.Hostname()
	ep.addr = net.JoinHostPort(ep.host, port)
	return ep, nil
}
