package embedded

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-ldap/ldap/v3"
)

// Options configure a Server. The zero value serves plain LDAP without AD's
// limits, with the default domain SID and nobody allowed to bind except
// entries carrying a userPassword.
type Options struct {
	// BindDN and Password are the one service account allowed to bind. BindDN
	// may be a DN or a UPN (user@realm); a simple bind by DN, or by the UPN of
	// an entry whose DN is BindDN, succeeds with Password. Entries with a
	// userPassword attribute may bind with it, by DN or UPN.
	BindDN, Password string
	// MaxPageSize mimics AD's MaxPageSize policy (1000 on Windows) when > 0:
	// an unpaged search returning more entries fails with sizeLimitExceeded
	// (4) after sending the first MaxPageSize entries, and paged requests
	// asking for more get pages of at most MaxPageSize entries.
	MaxPageSize int
	// MaxValRange mimics AD's MaxValRange policy (1500 on Windows) when > 0:
	// an attribute with more values is returned as name;range=0-(N-1) plus an
	// empty name. Explicit name;range=a-b and name;range=a-* requests are
	// always honoured, in slices of at most MaxValRange values; the last
	// slice is named name;range=a-*.
	MaxValRange int
	// DomainSID is the domain SID; users and groups without objectSid get
	// DomainSID-<RID> with RIDs from 1100 upward. Default DefaultDomainSID.
	DomainSID string
	// BaseDN is the naming context; empty derives it from a domainDNS entry
	// or from the DC= components of the first entry.
	BaseDN string
	// TLS, when set, makes Listen serve ldaps:// (or, with StartTLS,
	// ldap:// that accepts the StartTLS extended operation).
	TLS *tls.Config
	// StartTLS makes Listen serve plain ldap:// that upgrades with StartTLS
	// (needs TLS).
	StartTLS bool
	// RequireSecureBind refuses simple binds on connections without TLS with
	// strongAuthRequired (8), as a hardened DC does.
	RequireSecureBind bool
	// BindAccountState, when set, makes binds of the service account
	// (BindDN) with the right password fail the way AD refuses an account in
	// that state: invalidCredentials (49) with the AcceptSecurityContext
	// diagnostic carrying the state's sub-code. SetBindAccountState changes
	// it while the server runs.
	BindAccountState AccountState
	// ShowTombstones lets the bind account read deleted objects: searches
	// with the show-deleted control (1.2.840.113556.1.4.417) then return the
	// tombstones Delete leaves in CN=Deleted Objects. Without it they return
	// the container only, which is what AD and Samba show an account that
	// was not granted List Contents and Read Property on it.
	ShowTombstones bool
	// Logger receives connection-level diagnostics; nil discards them.
	Logger *slog.Logger
}

// String implements fmt.Stringer without revealing the password.
func (o Options) String() string {
	return fmt.Sprintf("embedded.Options{BindDN: %q, Password: %s, MaxPageSize: %d, MaxValRange: %d, DomainSID: %q, BaseDN: %q, TLS: %t, StartTLS: %t}",
		o.BindDN, redacted(o.Password), o.MaxPageSize, o.MaxValRange, o.DomainSID, o.BaseDN, o.TLS != nil, o.StartTLS)
}

// GoString implements fmt.GoStringer without revealing the password.
func (o Options) GoString() string { return o.String() }

// LogValue implements slog.LogValuer without revealing the password.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("bind_dn", o.BindDN),
		slog.String("password", redacted(o.Password)),
		slog.Int("max_page_size", o.MaxPageSize),
		slog.Int("max_val_range", o.MaxValRange),
		slog.String("base_dn", o.BaseDN),
		slog.Bool("tls", o.TLS != nil),
	)
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "[REDACTED]"
}

// Stats counts what the server did since it was created.
type Stats struct {
	Connections  int64 // accepted connections
	Binds        int64 // successful simple binds (anonymous ones excluded)
	FailedBinds  int64 // binds answered with an error
	Searches     int64 // search requests, each page of a paged search counted
	PagedPages   int64 // search requests that carried the paged results control
	Entries      int64 // search result entries sent
	SizeLimits   int64 // searches answered with sizeLimitExceeded
	RangedValues int64 // attributes returned ranged (forced or requested)
}

type counters struct {
	connections, binds, failedBinds, searches, pagedPages, entries, sizeLimits, ranged atomic.Int64
}

// Server is an AD-shaped LDAP directory served from memory. It is safe for
// concurrent use; mutations are visible to searches immediately.
type Server struct {
	opts     Options
	log      *slog.Logger
	bindNorm string // normalized Options.BindDN when it is a DN

	mu  sync.RWMutex // guards dir
	dir *directory

	stats     counters
	cookieSeq atomic.Uint64
	bindState atomic.Value // AccountState of the service account

	lmu       sync.Mutex // guards listeners, conns, closed
	listeners []net.Listener
	conns     map[*conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// New builds a server over entries (typically from ParseLDIF). It copies the
// entries and synthesizes AD attributes; see the package documentation.
func New(entries []*ldap.Entry, opts Options) (*Server, error) {
	if opts.DomainSID == "" {
		opts.DomainSID = DefaultDomainSID
	}
	if opts.MaxPageSize < 0 || opts.MaxValRange < 0 {
		return nil, errors.New("MaxPageSize and MaxValRange must not be negative")
	}
	if opts.StartTLS && opts.TLS == nil {
		return nil, errors.New("StartTLS needs a TLS config")
	}
	dir, err := newDirectory(entries, opts.BaseDN, opts.DomainSID)
	if err != nil {
		return nil, fmt.Errorf("build directory: %w", err)
	}
	if !opts.BindAccountState.valid() {
		return nil, fmt.Errorf("unknown BindAccountState %q", opts.BindAccountState)
	}
	s := &Server{opts: opts, log: opts.Logger, dir: dir, conns: make(map[*conn]struct{})}
	s.bindState.Store(opts.BindAccountState)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if strings.Contains(opts.BindDN, "=") {
		if s.bindNorm, err = normDN(opts.BindDN); err != nil {
			return nil, fmt.Errorf("bind dn: %w", err)
		}
	}
	return s, nil
}

// BaseDN returns the naming context the server serves.
func (s *Server) BaseDN() string {
	return s.dir.base
}

// Listen starts serving on addr (for example "127.0.0.1:0") in the
// background and returns the URL clients dial, such as ldap://127.0.0.1:40123
// or ldaps://... when Options.TLS is set. It may be called more than once.
func (s *Server) Listen(addr string) (string, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.closed {
		return "", errors.New("server is closed")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	scheme := "ldap"
	if s.opts.TLS != nil && !s.opts.StartTLS {
		ln = tls.NewListener(ln, s.opts.TLS)
		scheme = "ldaps"
	}
	s.listeners = append(s.listeners, ln)
	s.wg.Add(1)
	go s.accept(ln)
	url := scheme + "://" + ln.Addr().String()
	s.log.Info("embedded directory listening", "url", url, "base_dn", s.dir.base)
	return url, nil
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("embedded directory stopped accepting", "err", err)
			}
			return
		}
		_, isTLS := nc.(*tls.Conn)
		c := newConn(s, nc, isTLS)
		s.lmu.Lock()
		if s.closed {
			s.lmu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.lmu.Unlock()
		s.stats.connections.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.lmu.Lock()
			delete(s.conns, c)
			s.lmu.Unlock()
		}()
	}
}

// Close stops the listeners, disconnects every client and waits for the
// connection goroutines to finish. It is safe to call more than once.
func (s *Server) Close() error {
	s.lmu.Lock()
	if s.closed {
		s.lmu.Unlock()
		return nil
	}
	s.closed = true
	var errs []error
	for _, ln := range s.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for c := range s.conns {
		c.close()
	}
	s.lmu.Unlock()
	s.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close embedded directory: %w", err)
	}
	return nil
}

// Add adds an entry, synthesizing AD attributes as New does (a new RID, GUID
// and USN), and updates memberOf of the entry's members.
func (s *Server) Add(e *ldap.Entry) error {
	if e == nil {
		return errors.New("add: nil entry")
	}
	ne, err := fromLDAPEntry(e)
	if err != nil {
		return fmt.Errorf("add: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.dir.insert(ne); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	return nil
}

// Replace sets attr of the entry dn to values (none removes the attribute)
// and bumps the entry's uSNChanged. Replacing member keeps memberOf of the
// affected entries consistent (their uSNChanged does not move, as in AD).
// memberOf, distinguishedName and the USNs cannot be replaced.
func (s *Server) Replace(dn, attr string, values ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.dir.replace(dn, attr, values); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	return nil
}

// Delete removes a leaf entry and, as AD does, removes it from the member
// lists of the groups that held it. As on Samba 4.17 (measured), those
// groups' uSNChanged does not move; the deletion is visible only as the
// tombstone it leaves in CN=Deleted Objects (see Options.ShowTombstones),
// which gets a new uSNChanged.
func (s *Server) Delete(dn string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.dir.remove(dn); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}

// Rename gives a leaf entry a new DN (a rename, a move to another
// container, or both), keeping its GUID and SID. Only the entry's own
// uSNChanged moves: the groups that list it show the new DN without being
// modified, as in AD and Samba.
func (s *Server) Rename(dn, newDN string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.dir.rename(dn, newDN); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	return nil
}

// Identity returns the DC identity the server reports: the rootDSE's
// dnsHostName and the invocationId (16 bytes) of its NTDS Settings object.
func (s *Server) Identity() (dnsHostName string, invocationID []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id := s.dir.ntdsSettings().values("invocationid")
	return s.dir.hostName, []byte(id[0])
}

// SetIdentity changes the DC identity the server reports, as when another
// domain controller answers (a new dnsHostName) or the same one was
// restored from a backup (a new invocationId). invocationID must be 16
// bytes.
func (s *Server) SetIdentity(dnsHostName string, invocationID []byte) error {
	if dnsHostName == "" || len(invocationID) != 16 {
		return errors.New("set identity: want a host name and a 16-byte invocationId")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir.hostName = dnsHostName
	s.dir.ntdsSettings().set("invocationId", []string{string(invocationID)})
	return nil
}

// Entry returns a copy of the entry dn with computed attributes (memberOf),
// or nil when it does not exist. It is the directory's own view: hidden
// entries and hidden attributes (x-embedded-hidden, ...) are included.
func (s *Server) Entry(dn string) *ldap.Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, err := s.dir.lookup(dn)
	if err != nil {
		return nil
	}
	out := &ldap.Entry{DN: e.dn}
	for _, a := range s.dir.render(e, selection{all: true, admin: true}, 0, false) {
		out.Attributes = append(out.Attributes, ldap.NewEntryAttribute(a.name, a.vals))
	}
	return out
}

// AccountState is the state of an account as AD's bind sees it, named by
// the sub-code AD reports in the diagnostic message of an invalidCredentials
// bind ("... AcceptSecurityContext error, data 775, v4563").
type AccountState string

// Account states. AccountUsable ("") binds normally.
const (
	AccountUsable             AccountState = ""
	AccountNotFound           AccountState = "525" // no such user
	AccountLogonHours         AccountState = "530" // not permitted to log on at this time
	AccountWorkstation        AccountState = "531" // not permitted to log on from this workstation
	AccountPasswordExpired    AccountState = "532"
	AccountDisabled           AccountState = "533"
	AccountExpired            AccountState = "701"
	AccountMustChangePassword AccountState = "773"
	AccountLocked             AccountState = "775"
)

func (a AccountState) valid() bool {
	switch a {
	case AccountUsable, AccountNotFound, AccountLogonHours, AccountWorkstation, AccountPasswordExpired,
		AccountDisabled, AccountExpired, AccountMustChangePassword, AccountLocked:
		return true
	}
	return false
}

// diag is AD's diagnostic message for a bind refused in this state.
func (a AccountState) diag() string {
	return "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data " + string(a) + ", v4563"
}

// SetBindAccountState changes Options.BindAccountState while the server
// runs; the next bind of the service account sees it.
func (s *Server) SetBindAccountState(a AccountState) error {
	if !a.valid() {
		return fmt.Errorf("unknown account state %q", a)
	}
	s.bindState.Store(a)
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Connections:  c.connections.Load(),
		Binds:        c.binds.Load(),
		FailedBinds:  c.failedBinds.Load(),
		Searches:     c.searches.Load(),
		PagedPages:   c.pagedPages.Load(),
		Entries:      c.entries.Load(),
		SizeLimits:   c.sizeLimits.Load(),
		RangedValues: c.ranged.Load(),
	}
}

// HighestUSN returns the highest committed update sequence number, as the
// rootDSE's highestCommittedUSN reports it.
func (s *Server) HighestUSN() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dir.usn
}

// ExpireCookies drops every stored paged search on every connection, as a
// DC does when its cookie cache overflows; the next page request with an old
// cookie fails. It returns how many were dropped.
func (s *Server) ExpireCookies() int {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	n := 0
	for c := range s.conns {
		n += c.dropPaged()
	}
	return n
}
