package activedirectory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// startTLSOID is the StartTLS extended operation (RFC 4511 4.14).
const startTLSOID = "1.3.6.1.4.1.1466.20037"

// ErrPacketTooLarge is returned (wrapped) when the server announces an LDAP
// message larger than Config.MaxPacketBytes.
var ErrPacketTooLarge = errors.New("ldap message exceeds the configured maximum size")

// ErrMalformedMessage is returned (wrapped) when a message from the server is
// not well-formed BER: an element announces more bytes than its parent holds,
// uses an indefinite length, or nests deeper than maxBERDepth.
var ErrMalformedMessage = errors.New("malformed ldap message")

// maxBERDepth caps the nesting of constructed BER elements in a message from
// the server, counting the LDAPMessage itself as 1, and separately inside each
// control value (which go-ldap decodes on its own). The deepest element of a
// well-formed LDAP response is an attribute value of a SearchResultEntry, at
// depth 6.
const maxBERDepth = 12

// limitConn makes every LDAP message read from the connection provably
// bounded before go-ldap's BER decoder sees it, without touching
// go-asn1-ber's process-wide MaxPacketLengthBytes. It reads one whole
// message at a time (refusing a header that announces more than max bytes),
// checks that every nested element's length fits inside its parent, that no
// element uses an indefinite length and that nesting stays within
// maxBERDepth (also inside control values), and only then hands the bytes
// on. So the decoder never allocates for a length the message does not hold:
// memory per message is bounded by max (times the decoder's own copying, at
// most maxBERDepth-fold).
type limitConn struct {
	net.Conn
	max    int64
	buf    []byte // the current, validated message
	pos    int    // bytes of buf already returned
	err    error
	failed atomic.Pointer[error] // the framing error, published for other goroutines
}

// errTooDeep reports nesting beyond maxBERDepth.
var errTooDeep = fmt.Errorf("elements nest deeper than %d levels", maxBERDepth)

// keepBuffer is the largest message buffer kept for reuse between messages.
const keepBuffer = 1 << 20

// failure returns the framing error that closed the connection, if any.
func (c *limitConn) failure() error {
	if p := c.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.pos == len(c.buf) {
		if err := c.next(); err != nil {
			c.err = err
			if errors.Is(err, ErrPacketTooLarge) || errors.Is(err, ErrMalformedMessage) {
				c.failed.Store(&err)
				_ = c.Conn.Close()
			}
			return 0, err
		}
	}
	n := copy(p, c.buf[c.pos:])
	c.pos += n
	return n, nil
}

// next reads and validates the next message into c.buf.
func (c *limitConn) next() error {
	if cap(c.buf) > keepBuffer {
		c.buf = nil
	}
	var hdr [2 + 8]byte
	if _, err := io.ReadFull(c.Conn, hdr[:2]); err != nil {
		return err
	}
	if hdr[0] != 0x30 {
		return fmt.Errorf("unexpected ber tag 0x%02x at message start: %w", hdr[0], ErrMalformedMessage)
	}
	h := 2
	length := int64(hdr[1])
	if hdr[1] >= 0x80 {
		n := int(hdr[1] & 0x7f)
		switch {
		case n == 0:
			return fmt.Errorf("indefinite ber length at message start: %w", ErrMalformedMessage)
		case n > 8:
			return fmt.Errorf("ber length of %d bytes at message start: %w", n, ErrMalformedMessage)
		}
		if _, err := io.ReadFull(c.Conn, hdr[2:2+n]); err != nil {
			return err
		}
		length = 0
		for _, x := range hdr[2 : 2+n] {
			if length > c.max {
				break // already over; do not overflow
			}
			length = length<<8 | int64(x)
		}
		h += n
	}
	if length > c.max {
		return fmt.Errorf("server sent a %d-byte message, limit %d: %w", length, c.max, ErrPacketTooLarge)
	}
	total := h + int(length)
	if cap(c.buf) < total {
		c.buf = make([]byte, total)
	}
	c.buf = c.buf[:total]
	copy(c.buf, hdr[:h])
	if _, err := io.ReadFull(c.Conn, c.buf[h:]); err != nil {
		c.buf, c.pos = c.buf[:0], 0
		return err
	}
	c.pos = 0
	if err := checkMessage(c.buf[h:]); err != nil {
		c.buf = c.buf[:0]
		return fmt.Errorf("%w: %w", ErrMalformedMessage, err)
	}
	return nil
}

// berElement is one decoded TLV header.
type berElement struct {
	tag         byte // first identifier octet
	constructed bool
	content     []byte
}

// nextElement splits the first element off b.
func nextElement(b []byte) (berElement, []byte, error) {
	if len(b) < 2 {
		return berElement{}, nil, fmt.Errorf("truncated element header (%d bytes left)", len(b))
	}
	el := berElement{tag: b[0], constructed: b[0]&0x20 != 0}
	i := 1
	if b[0]&0x1f == 0x1f { // high tag number form
		for {
			if i >= len(b) {
				return berElement{}, nil, errors.New("truncated element tag")
			}
			x := b[i]
			i++
			if x&0x80 == 0 {
				break
			}
			if i > 5 {
				return berElement{}, nil, errors.New("element tag longer than 4 bytes")
			}
		}
	}
	if i >= len(b) {
		return berElement{}, nil, errors.New("truncated element length")
	}
	l := b[i]
	i++
	n := uint64(l)
	if l >= 0x80 {
		k := int(l & 0x7f)
		switch {
		case k == 0:
			return berElement{}, nil, errors.New("element with an indefinite length")
		case k > 8:
			return berElement{}, nil, fmt.Errorf("element length of %d bytes", k)
		case i+k > len(b):
			return berElement{}, nil, errors.New("truncated element length")
		}
		n = 0
		for _, x := range b[i : i+k] {
			n = n<<8 | uint64(x)
		}
		i += k
	}
	if rest := uint64(len(b) - i); n > rest {
		return berElement{}, nil, fmt.Errorf("element with tag 0x%02x announces %d bytes, its parent holds only %d more", el.tag, n, rest)
	}
	el.content = b[i : i+int(n)]
	return el, b[i+int(n):], nil
}

// checkElements validates a sequence of elements at nesting depth depth.
func checkElements(b []byte, depth int) error {
	for len(b) > 0 {
		el, rest, err := nextElement(b)
		if err != nil {
			return err
		}
		if el.constructed {
			if depth+1 > maxBERDepth {
				return errTooDeep
			}
			if err := checkElements(el.content, depth+1); err != nil {
				return err
			}
		}
		b = rest
	}
	return nil
}

// checkMessage validates the content of an LDAPMessage (depth 1): every
// element, and the value of each control, which go-ldap decodes as BER of
// its own.
func checkMessage(content []byte) error {
	if err := checkElements(content, 1); err != nil {
		return err
	}
	for b := content; len(b) > 0; {
		el, rest, _ := nextElement(b) // validated above
		b = rest
		if el.tag != 0xa0 { // controls [0]
			continue
		}
		for cs := el.content; len(cs) > 0; {
			ctl, more, _ := nextElement(cs)
			cs = more
			first := true // the first OCTET STRING is the control's OID
			for fs := ctl.content; len(fs) > 0; {
				f, more, _ := nextElement(fs)
				fs = more
				if f.tag == 0x04 && !first {
					if err := checkValue(f.content); err != nil {
						return fmt.Errorf("control value: %w", err)
					}
				}
				first = first && f.tag != 0x04
			}
		}
	}
	return nil
}

// checkValue validates a control value that is itself BER. Only nesting
// depth is enforced: a value that is not well-formed BER fails in go-ldap's
// own decoding, which reads it from memory and cannot over-allocate.
func checkValue(b []byte) error {
	if err := checkElements(b, 0); errors.Is(err, errTooDeep) {
		return err
	}
	return nil
}

// dial opens, secures and binds one connection to ep.
func (r *Reader) dial(ctx context.Context, ep endpoint) (*ldap.Conn, *limitConn, *muxConn, error) {
	d := net.Dialer{Timeout: r.cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", ep.addr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connecting to %s: %w", ep.raw, err)
	}
	tc := r.tlsBase.Clone()
	tc.ServerName = r.cfg.ServerName
	if tc.ServerName == "" {
		tc.ServerName = ep.host
	}
	var c net.Conn = raw
	switch {
	case ep.tls:
		tlsConn := tls.Client(raw, tc)
		hctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		err = tlsConn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = raw.Close()
			return nil, nil, nil, fmt.Errorf("tls handshake with %s (server name %q): %w", ep.raw, tc.ServerName, err)
		}
		c = tlsConn
	case r.cfg.StartTLS:
		c, err = startTLS(ctx, raw, tc, r.cfg.Timeout)
		if err != nil {
			_ = raw.Close()
			return nil, nil, nil, fmt.Errorf("starttls with %s (server name %q): %w", ep.raw, tc.ServerName, err)
		}
	}
	lim := &limitConn{Conn: c, max: int64(r.cfg.MaxPacketBytes)}
	mux := newMux(lim, r.cfg.MaxPacketBytes)
	conn := ldap.NewConn(mux, ep.tls || r.cfg.StartTLS)
	conn.Start()
	conn.SetTimeout(r.cfg.Timeout) // for the bind; searches use context deadlines

	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	err = conn.Bind(r.cfg.BindDN, r.cfg.Password)
	if !stop() || ctx.Err() != nil {
		_ = conn.Close()
		return nil, nil, nil, fmt.Errorf("binding to %s: %w", ep.raw, context.Cause(ctx))
	}
	if f := lim.failure(); f != nil {
		_ = conn.Close()
		return nil, nil, nil, fmt.Errorf("binding to %s: reading the response: %w", ep.raw, f)
	}
	if err != nil {
		_ = conn.Close()
		return nil, nil, nil, bindError(ep.raw, r.cfg.BindDN, err)
	}
	conn.SetTimeout(0)
	return conn, lim, mux, nil
}

// startTLS performs the StartTLS extended operation on raw and the TLS
// handshake. It never falls back to cleartext: any failure is an error.
func startTLS(ctx context.Context, raw net.Conn, tc *tls.Config, timeout time.Duration) (net.Conn, error) {
	if err := raw.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("setting deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	packet := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	packet.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(1), "MessageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "Start TLS")
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, startTLSOID, "TLS Extended Command"))
	packet.AppendChild(req)
	if _, err := raw.Write(packet.Bytes()); err != nil {
		return nil, fmt.Errorf("sending request: %w", err)
	}
	resp, err := ber.ReadPacket(io.Reader(&limitConn{Conn: raw, max: 64 << 10}))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if len(resp.Children) < 2 || resp.Children[1].Tag != ldap.ApplicationExtendedResponse {
		return nil, errors.New("unexpected response to the starttls request")
	}
	if err := ldap.GetLDAPError(resp); err != nil {
		return nil, fmt.Errorf("server refused starttls: %w", err)
	}
	tlsConn := tls.Client(raw, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("clearing deadline: %w", err)
	}
	return tlsConn, nil
}

// connect tries every URL in order and returns the first bound connection.
// A bind refused for a reason no retry can fix (wrong credentials, an
// account state, a demand for encryption) stops the failover: another DC
// would refuse it too, and every attempt counts towards a lockout.
func (r *Reader) connect(ctx context.Context) error {
	var errs []error
	for _, ep := range r.endpoints {
		conn, lim, mux, err := r.dial(ctx, ep)
		if err == nil {
			r.conn, r.lim, r.mux, r.url = conn, lim, mux, ep.raw
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultStrongAuthRequired,
			ldap.LDAPResultConfidentialityRequired, ldap.LDAPResultInappropriateAuthentication, ldap.LDAPResultInsufficientAccessRights) {
			break
		}
		r.log.Warn("directory server unavailable, trying the next one", "url", ep.raw, "error", err)
	}
	return errors.Join(errs...)
}

// withConn runs fn on the shared connection, dialing it when absent or
// closed by the server (AD closes idle connections after MaxConnIdleTime).
// When fn fails with a network error on a reused connection, the connection
// is replaced and fn runs once more from the start. The caller holds r.mu.
func (r *Reader) withConn(ctx context.Context, fn func(*ldap.Conn) error) error {
	fresh := false
	if r.conn == nil || r.conn.IsClosing() {
		r.dropConn()
		if err := r.connect(ctx); err != nil {
			return err
		}
		fresh = true
	}
	err := r.run(fn)
	if err == nil || !r.broken(err) || ctx.Err() != nil {
		return err
	}
	r.dropConn()
	if fresh {
		return err
	}
	r.log.Info("directory connection lost, reconnecting", "error", err)
	if cerr := r.connect(ctx); cerr != nil {
		return errors.Join(err, cerr)
	}
	err = r.run(fn)
	if err != nil && r.broken(err) {
		r.dropConn()
	}
	return err
}

// broken reports whether err left the connection unusable. go-ldap reports
// a connection closed by the server as a plain error, so the connection's
// own state is checked too.
func (r *Reader) broken(err error) bool {
	return isConnError(err) || (r.conn != nil && r.conn.IsClosing())
}

// run calls fn and replaces a network error caused by the packet size cap
// with the cap's own error.
func (r *Reader) run(fn func(*ldap.Conn) error) error {
	err := fn(r.conn)
	if err != nil {
		if f := r.lim.failure(); f != nil {
			r.dropConn()
			return fmt.Errorf("reading from %s: %w", r.url, f)
		}
	}
	return err
}

func (r *Reader) dropConn() {
	if r.conn != nil {
		_ = r.conn.Close()
	}
	r.conn, r.lim, r.mux, r.url = nil, nil, nil, ""
}

// isConnError reports whether err means the connection is unusable.
func isConnError(err error) bool {
	var ne net.Error
	return ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}
