package embedded

import (
	"bufio"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

const (
	startTLSOID = "1.3.6.1.4.1.1466.20037"
	// maxPagedPerConn mirrors AD's MaxResultSetsPerConn (and Samba's hard-coded
	// 10): the oldest stored paged search is evicted on the 11th.
	maxPagedPerConn = 10
	// renderChunk is how many entries are rendered per read-lock hold.
	renderChunk = 256
)

// AD-style diagnostic messages.
const (
	diagNeedBind     = "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563"
	diagBadCreds     = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563"
	diagStrongAuth   = "00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active on the connection, data 0, v4563"
	diagBadCookie    = "00000057: LdapErr: DSID-0C090A71, comment: Error processing control, data 0, v4563"
	diagSizeLimit    = "00000005: LdapErr: DSID-0C090A5E, comment: Error processing control, data 0, v4563"
	diagReadOnly     = "the embedded directory is read-only over LDAP"
	diagUnsupportedX = "unsupported extended operation"
)

// pagedSearch is the server-side state behind one paged results cookie.
type pagedSearch struct {
	entries   []*entry
	pos       int
	sel       selection
	typesOnly bool
	truncated bool // a sizeLimit cut the result; report it on the last page
}

// conn is one client connection; its requests are served in order.
type conn struct {
	s     *Server
	mu    sync.Mutex // guards nc (for close) and paged
	nc    net.Conn
	r     *bufio.Reader
	w     *bufio.Writer
	isTLS bool
	bound bool // an authenticated bind succeeded
	paged map[string]*pagedSearch
	order []string // cookies, oldest first
	buf   []byte
}

func newConn(s *Server, nc net.Conn, isTLS bool) *conn {
	return &conn{s: s, nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriterSize(nc, 64<<10),
		isTLS: isTLS, paged: make(map[string]*pagedSearch)}
}

func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.nc.Close()
}

func (c *conn) dropPaged() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.paged)
	clear(c.paged)
	c.order = nil
	return n
}

func (c *conn) serve() {
	defer c.close()
	log := c.s.log.With("remote", c.nc.RemoteAddr().String())
	defer func() {
		// A malformed request must not take the whole process down.
		if r := recover(); r != nil {
			log.Error("ldap connection closed after a panic", "panic", fmt.Sprint(r))
		}
	}()
	log.Debug("ldap connection opened")
	for {
		p, err := readMessage(c.r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
				log.Warn("ldap connection closed on a bad request", "err", err)
			}
			return
		}
		msgID, _ := p.Children[0].Value.(int64)
		op := p.Children[1]
		if op.ClassType != ber.ClassApplication {
			log.Warn("ldap connection closed: protocol operation is not application-tagged")
			return
		}
		var controls []*ber.Packet
		if len(p.Children) > 2 && p.Children[2].ClassType == ber.ClassContext && p.Children[2].Tag == 0 {
			controls = p.Children[2].Children
		}
		c.buf = c.buf[:0]
		switch op.Tag {
		case opUnbind:
			return
		case opAbandon:
			continue
		case opBind:
			c.buf = c.bind(c.buf, msgID, op)
		case opSearch:
			if err := c.search(msgID, op, controls); err != nil {
				log.Debug("ldap connection write failed", "err", err)
				return
			}
		case opExtended:
			if err := c.extended(msgID, op); err != nil {
				log.Warn("ldap connection closed after an extended operation", "err", err)
				return
			}
			continue
		case opModify, opAdd, opDelete, opModDN, opCompare:
			resp := map[ber.Tag]byte{opModify: appModifyResponse, opAdd: appAddResponse, opDelete: appDelResponse,
				opModDN: appModDNResponse, opCompare: appCompareResponse}[op.Tag]
			c.buf = appendResult(c.buf, msgID, resp, ldap.LDAPResultUnwillingToPerform, "", diagReadOnly, "", nil)
		default:
			c.buf = appendResult(c.buf, msgID, appExtendedResponse, ldap.LDAPResultProtocolError, "", "unsupported operation", "", nil)
		}
		if err := c.flush(); err != nil {
			log.Debug("ldap connection write failed", "err", err)
			return
		}
	}
}

func (c *conn) flush() error {
	if len(c.buf) > 0 {
		if _, err := c.w.Write(c.buf); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
		c.buf = c.buf[:0]
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("flush response: %w", err)
	}
	return nil
}

// bind answers a BindRequest. The password never leaves this function.
func (c *conn) bind(b []byte, msgID int64, op *ber.Packet) []byte {
	c.bound = false
	if len(op.Children) < 3 {
		c.s.stats.failedBinds.Add(1)
		return appendResult(b, msgID, appBindResponse, ldap.LDAPResultProtocolError, "", "malformed bind request", "", nil)
	}
	name := string(rawBytes(op.Children[1]))
	auth := op.Children[2]
	if auth.ClassType != ber.ClassContext || auth.Tag != 0 {
		c.s.stats.failedBinds.Add(1)
		return appendResult(b, msgID, appBindResponse, ldap.LDAPResultAuthMethodNotSupported, "", "only simple bind is supported", "", nil)
	}
	password := rawBytes(auth)
	if len(password) == 0 {
		// Anonymous or unauthenticated bind: succeeds, grants rootDSE only (as AD).
		return appendResult(b, msgID, appBindResponse, ldap.LDAPResultSuccess, "", "", "", nil)
	}
	if c.s.opts.RequireSecureBind && !c.isTLS {
		c.s.stats.failedBinds.Add(1)
		return appendResult(b, msgID, appBindResponse, ldap.LDAPResultStrongAuthRequired, "", diagStrongAuth, "", nil)
	}
	code, diag := c.s.checkBind(name, password)
	if code != ldap.LDAPResultSuccess {
		c.s.stats.failedBinds.Add(1)
		c.s.log.Debug("ldap bind refused", "name", name)
		return appendResult(b, msgID, appBindResponse, code, "", diag, "", nil)
	}
	c.bound = true
	c.s.stats.binds.Add(1)
	return appendResult(b, msgID, appBindResponse, ldap.LDAPResultSuccess, "", "", "", nil)
}

// checkBind verifies a simple bind by DN or UPN. As AD does, the password
// is checked first; a right password for an account in a refused state
// (see accountState) fails with that state's sub-code, and a name that
// matches no account fails with 525.
func (s *Server) checkBind(name string, password []byte) (int, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	service := func() (int, string) {
		if code, diag := checkPassword(password, s.opts.Password); code != ldap.LDAPResultSuccess {
			return code, diag
		}
		if st, _ := s.bindState.Load().(AccountState); st != AccountUsable {
			return ldap.LDAPResultInvalidCredentials, st.diag()
		}
		return ldap.LDAPResultSuccess, ""
	}
	var target *entry
	switch {
	case strings.Contains(name, "="):
		norm, err := normDN(name)
		if err != nil {
			return ldap.LDAPResultInvalidCredentials, AccountNotFound.diag()
		}
		if s.bindNorm != "" && norm == s.bindNorm {
			return service()
		}
		target = s.dir.byNorm[norm]
	case strings.Contains(name, "@"):
		if strings.EqualFold(name, s.opts.BindDN) {
			return service()
		}
		target = s.dir.byUPN(name)
		if target != nil && s.bindNorm != "" && target.norm == s.bindNorm {
			return service()
		}
	}
	if target == nil {
		return ldap.LDAPResultInvalidCredentials, AccountNotFound.diag()
	}
	pw := target.values("userpassword")
	if len(pw) == 0 {
		return ldap.LDAPResultInvalidCredentials, diagBadCreds
	}
	if code, diag := checkPassword(password, pw[0]); code != ldap.LDAPResultSuccess {
		return code, diag
	}
	if st := accountState(target, time.Now()); st != AccountUsable {
		return ldap.LDAPResultInvalidCredentials, st.diag()
	}
	return ldap.LDAPResultSuccess, ""
}

// accountState derives the bind state of an entry from its attributes:
// lockoutTime > 0 is locked (775), userAccountControl bit 0x2 disabled (533),
// accountExpires in the past expired (701), userAccountControl bit 0x800000
// (PASSWORD_EXPIRED, which AD computes) a password that has expired (532)
// and pwdLastSet 0 a password that must be changed (773).
func accountState(e *entry, now time.Time) AccountState {
	num := func(name string) (int64, bool) {
		v := e.values(name)
		if len(v) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
		return n, err == nil
	}
	uac, _ := num("useraccountcontrol")
	if n, ok := num("lockouttime"); ok && n > 0 {
		return AccountLocked
	}
	if uac&0x2 != 0 {
		return AccountDisabled
	}
	if n, ok := num("accountexpires"); ok && n > 0 && n != 0x7FFFFFFFFFFFFFFF {
		// 100-nanosecond intervals since 1601-01-01 UTC.
		const epochDiff = 116444736000000000
		if t := time.Unix((n-epochDiff)/1e7, (n-epochDiff)%1e7*100); t.Before(now) {
			return AccountExpired
		}
	}
	if uac&0x800000 != 0 {
		return AccountPasswordExpired
	}
	if n, ok := num("pwdlastset"); ok && n == 0 {
		return AccountMustChangePassword
	}
	return AccountUsable
}

func checkPassword(got []byte, want string) (int, string) {
	if want == "" || subtle.ConstantTimeCompare(got, []byte(want)) != 1 {
		return ldap.LDAPResultInvalidCredentials, diagBadCreds
	}
	return ldap.LDAPResultSuccess, ""
}

// byUPN finds an entry by userPrincipalName, or by sAMAccountName@realm.
func (d *directory) byUPN(upn string) *entry {
	user, domain, _ := strings.Cut(upn, "@")
	for _, e := range d.entries {
		for _, v := range e.values("userprincipalname") {
			if strings.EqualFold(v, upn) {
				return e
			}
		}
	}
	if strings.EqualFold(domain, d.realm) {
		for _, e := range d.entries {
			for _, v := range e.values("samaccountname") {
				if strings.EqualFold(v, user) {
					return e
				}
			}
		}
	}
	return nil
}

// extended answers an ExtendedRequest; StartTLS upgrades the connection.
func (c *conn) extended(msgID int64, op *ber.Packet) error {
	var name string
	if len(op.Children) > 0 {
		name = string(rawBytes(op.Children[0]))
	}
	if name != startTLSOID || !c.s.opts.StartTLS {
		c.buf = appendResult(c.buf, msgID, appExtendedResponse, ldap.LDAPResultProtocolError, "", diagUnsupportedX, "", nil)
		return c.flush()
	}
	if c.isTLS {
		c.buf = appendResult(c.buf, msgID, appExtendedResponse, ldap.LDAPResultOperationsError, "", "TLS is already active", "", nil)
		return c.flush()
	}
	c.buf = appendResult(c.buf, msgID, appExtendedResponse, ldap.LDAPResultSuccess, "", "", startTLSOID, nil)
	if err := c.flush(); err != nil {
		return err
	}
	c.mu.Lock()
	tc := tls.Server(c.nc, c.s.opts.TLS)
	c.nc = tc
	c.mu.Unlock()
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("starttls handshake: %w", err)
	}
	c.r = bufio.NewReader(tc)
	c.w = bufio.NewWriterSize(tc, 64<<10)
	c.isTLS = true
	return nil
}

// searchRequest is a decoded SearchRequest.
type searchRequest struct {
	baseNorm  string
	scope     int64
	sizeLimit int64
	typesOnly bool
	filter    *ber.Packet
	attrs     []string
	paged     bool
	pageSize  int
	cookie    string
	showDel   bool // the show-deleted control (1.2.840.113556.1.4.417)
}

func decodeSearch(op *ber.Packet, controls []*ber.Packet) (*searchRequest, error) {
	if len(op.Children) < 8 {
		return nil, protocolErr("malformed search request")
	}
	base := string(rawBytes(op.Children[0]))
	norm, err := normDN(base)
	if err != nil {
		return nil, &resultError{code: ldap.LDAPResultInvalidDNSyntax, msg: "invalid base dn"}
	}
	r := &searchRequest{baseNorm: norm, filter: op.Children[6]}
	r.scope, _ = op.Children[1].Value.(int64)
	r.sizeLimit, _ = op.Children[3].Value.(int64)
	r.typesOnly, _ = op.Children[5].Value.(bool)
	for _, a := range op.Children[7].Children {
		r.attrs = append(r.attrs, string(rawBytes(a)))
	}
	for _, ctl := range controls {
		if len(ctl.Children) == 0 {
			continue
		}
		oid := string(rawBytes(ctl.Children[0]))
		var critical bool
		var value []byte
		for _, ch := range ctl.Children[1:] {
			switch ch.Tag {
			case ber.TagBoolean:
				critical, _ = ch.Value.(bool)
			case ber.TagOctetString:
				value = rawBytes(ch)
			}
		}
		switch {
		case oid == pagingOID:
			v, err := ber.DecodePacketErr(value)
			if err != nil || len(v.Children) != 2 {
				return nil, protocolErr("malformed paged results control")
			}
			size, _ := v.Children[0].Value.(int64)
			r.paged, r.pageSize, r.cookie = true, int(size), string(rawBytes(v.Children[1]))
		case oid == showDeletedOID:
			r.showDel = true
		case critical:
			return nil, &resultError{code: ldap.LDAPResultUnavailableCriticalExtension, msg: "unsupported critical control " + oid}
		}
	}
	return r, nil
}

// search answers a SearchRequest, writing entries as it goes.
func (c *conn) search(msgID int64, op *ber.Packet, controls []*ber.Packet) error {
	s := c.s
	s.stats.searches.Add(1)
	fail := func(err error) error {
		var re *resultError
		if !errors.As(err, &re) {
			re = &resultError{code: ldap.LDAPResultOperationsError, msg: err.Error()}
		}
		c.buf = appendResult(c.buf, msgID, appSearchDone, re.code, "", re.msg, "", nil)
		return nil
	}
	req, err := decodeSearch(op, controls)
	if err != nil {
		return fail(err)
	}
	if req.paged {
		s.stats.pagedPages.Add(1)
	}
	sel := parseSelection(req.attrs)
	if req.baseNorm == "" && req.scope == int64(ldap.ScopeBaseObject) {
		return c.searchRootDSE(msgID, req, sel)
	}
	if !c.bound {
		return fail(&resultError{code: ldap.LDAPResultOperationsError, msg: diagNeedBind})
	}
	if req.baseNorm == s.dir.schemaNorm && req.scope == int64(ldap.ScopeBaseObject) {
		return c.searchSubschema(msgID, req, sel)
	}
	if req.paged && req.cookie != "" {
		c.mu.Lock()
		ps, ok := c.paged[req.cookie]
		if ok {
			delete(c.paged, req.cookie)
			c.order = slices.DeleteFunc(c.order, func(k string) bool { return k == req.cookie })
		}
		c.mu.Unlock()
		if !ok {
			return fail(&resultError{code: ldap.LDAPResultUnwillingToPerform, msg: diagBadCookie})
		}
		if req.pageSize == 0 { // RFC 2696: size 0 abandons the paged search
			c.buf = appendResult(c.buf, msgID, appSearchDone, ldap.LDAPResultSuccess, "", "", "",
				[]control{{oid: pagingOID, value: pagingValue("")}})
			return nil
		}
		return c.sendPage(msgID, ps, req.pageSize)
	}
	m, err := s.dir.compileFilter(req.filter)
	if err != nil {
		return fail(err)
	}
	s.mu.RLock()
	matched, err := s.dir.find(req.baseNorm, req.scope, m, req.showDel, s.opts.ShowTombstones)
	s.mu.RUnlock()
	if err != nil {
		return fail(err)
	}
	truncated := false
	if req.sizeLimit > 0 && int64(len(matched)) > req.sizeLimit {
		matched, truncated = matched[:req.sizeLimit], true
	}
	ps := &pagedSearch{entries: matched, sel: sel, typesOnly: req.typesOnly, truncated: truncated}
	if req.paged {
		return c.sendPage(msgID, ps, req.pageSize)
	}
	if limit := s.opts.MaxPageSize; limit > 0 && len(ps.entries) > limit {
		ps.entries, ps.truncated = ps.entries[:limit], true
	}
	if err := c.sendEntries(msgID, ps, len(ps.entries)); err != nil {
		return err
	}
	code, diag := ldap.LDAPResultSuccess, ""
	if ps.truncated {
		code, diag = ldap.LDAPResultSizeLimitExceeded, diagSizeLimit
		s.stats.sizeLimits.Add(1)
	}
	c.buf = appendResult(c.buf, msgID, appSearchDone, code, "", diag, "", nil)
	return nil
}

// sendPage sends the next page of ps and stores it under a new cookie when
// entries remain.
func (c *conn) sendPage(msgID int64, ps *pagedSearch, size int) error {
	if limit := c.s.opts.MaxPageSize; limit > 0 && (size <= 0 || size > limit) {
		size = limit
	}
	if size <= 0 {
		size = len(ps.entries)
	}
	if err := c.sendEntries(msgID, ps, size); err != nil {
		return err
	}
	cookie, code, diag := "", ldap.LDAPResultSuccess, ""
	if ps.pos < len(ps.entries) {
		cookie = fmt.Sprintf("%016x", c.s.cookieSeq.Add(1))
		c.mu.Lock()
		c.paged[cookie] = ps
		c.order = append(c.order, cookie)
		if len(c.order) > maxPagedPerConn {
			delete(c.paged, c.order[0])
			c.order = c.order[1:]
		}
		c.mu.Unlock()
	} else if ps.truncated {
		code, diag = ldap.LDAPResultSizeLimitExceeded, diagSizeLimit
		c.s.stats.sizeLimits.Add(1)
	}
	c.buf = appendResult(c.buf, msgID, appSearchDone, code, "", diag, "",
		[]control{{oid: pagingOID, value: pagingValue(cookie)}})
	return nil
}

// sendEntries renders and writes up to n entries from ps.pos onwards.
func (c *conn) sendEntries(msgID int64, ps *pagedSearch, n int) error {
	s := c.s
	end := min(ps.pos+n, len(ps.entries))
	for ps.pos < end {
		chunkEnd := min(ps.pos+renderChunk, end)
		sent, ranged := 0, 0
		s.mu.RLock()
		for _, e := range ps.entries[ps.pos:chunkEnd] {
			if e.deleted {
				continue
			}
			attrs := s.dir.renderCounting(e, ps.sel, s.opts.MaxValRange, ps.typesOnly, &ranged)
			c.buf = appendEntry(c.buf, msgID, e.dn, attrs)
			sent++
		}
		s.mu.RUnlock()
		ps.pos = chunkEnd
		s.stats.entries.Add(int64(sent))
		s.stats.ranged.Add(int64(ranged))
		if _, err := c.w.Write(c.buf); err != nil {
			return fmt.Errorf("write entries: %w", err)
		}
		c.buf = c.buf[:0]
	}
	return nil
}

// searchSubschema answers a base search of the subschema entry.
func (c *conn) searchSubschema(msgID int64, req *searchRequest, sel selection) error {
	s := c.s
	m, err := s.dir.compileFilter(req.filter)
	if err != nil {
		c.buf = appendResult(c.buf, msgID, appSearchDone, ldap.LDAPResultProtocolError, "", err.Error(), "", nil)
		return nil
	}
	s.mu.RLock()
	e := s.dir.subschemaEntry()
	matched := m(e)
	var attrs []outAttr
	if matched {
		attrs = s.dir.render(e, sel, s.opts.MaxValRange, req.typesOnly)
	}
	s.mu.RUnlock()
	if matched {
		c.buf = appendEntry(c.buf, msgID, e.dn, attrs)
		s.stats.entries.Add(1)
	}
	var ctls []control
	if req.paged {
		ctls = []control{{oid: pagingOID, value: pagingValue("")}}
	}
	c.buf = appendResult(c.buf, msgID, appSearchDone, ldap.LDAPResultSuccess, "", "", "", ctls)
	return nil
}

func (c *conn) searchRootDSE(msgID int64, req *searchRequest, sel selection) error {
	s := c.s
	m, err := s.dir.compileFilter(req.filter)
	if err != nil {
		c.buf = appendResult(c.buf, msgID, appSearchDone, ldap.LDAPResultProtocolError, "", err.Error(), "", nil)
		return nil
	}
	s.mu.RLock()
	root := s.dir.rootDSE()
	if s.opts.StartTLS {
		root.set("supportedExtension", []string{startTLSOID})
	}
	matched := m(root)
	var attrs []outAttr
	if matched {
		attrs = s.dir.render(root, sel, 0, req.typesOnly)
	}
	s.mu.RUnlock()
	if matched {
		c.buf = appendEntry(c.buf, msgID, "", attrs)
		s.stats.entries.Add(1)
	}
	var ctls []control
	if req.paged {
		ctls = []control{{oid: pagingOID, value: pagingValue("")}}
	}
	c.buf = appendResult(c.buf, msgID, appSearchDone, ldap.LDAPResultSuccess, "", "", "", ctls)
	return nil
}
