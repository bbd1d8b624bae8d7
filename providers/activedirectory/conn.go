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

// limitConn caps the size of every LDAP message read from the connection
// without touching go-asn1-ber's process-wide MaxPacketLengthBytes: it tracks
// the top-level BER framing of the stream and fails the read that carries a
// header announcing a message over the cap, before the decoder allocates.
type limitConn struct {
	net.Conn
	max       int64
	remaining int64  // content bytes left in the current message
	hdr       []byte // header bytes of the next message seen so far
	err       error
	failed    atomic.Pointer[error] // err, published for other goroutines
}

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
	n, err := c.Conn.Read(p)
	if serr := c.scan(p[:n]); serr != nil {
		c.err = serr
		c.failed.Store(&serr)
		_ = c.Conn.Close()
		return 0, serr
	}
	return n, err
}

// scan advances the framing state over b.
func (c *limitConn) scan(b []byte) error {
	for len(b) > 0 {
		if c.remaining > 0 {
			k := int64(len(b))
			if k > c.remaining {
				k = c.remaining
			}
			c.remaining -= k
			b = b[k:]
			continue
		}
		c.hdr = append(c.hdr, b[0])
		b = b[1:]
		length, done, err := berHeader(c.hdr)
		if err != nil {
			return err
		}
		if !done {
			continue
		}
		if length > c.max {
			return fmt.Errorf("server sent a %d-byte message, limit %d: %w", length, c.max, ErrPacketTooLarge)
		}
		c.remaining = length
		c.hdr = c.hdr[:0]
	}
	return nil
}

// berHeader decodes the header of a top-level LDAPMessage (a SEQUENCE with a
// definite length). done is false while more header bytes are needed.
func berHeader(h []byte) (length int64, done bool, err error) {
	if h[0] != 0x30 {
		return 0, false, fmt.Errorf("unexpected ber tag 0x%02x at message start", h[0])
	}
	if len(h) < 2 {
		return 0, false, nil
	}
	if h[1] < 0x80 {
		return int64(h[1]), true, nil
	}
	n := int(h[1] & 0x7f)
	if n == 0 {
		return 0, false, errors.New("indefinite ber length in ldap message")
	}
	if n > 7 {
		return 0, false, fmt.Errorf("ber length of %d bytes: %w", n, ErrPacketTooLarge)
	}
	if len(h) < 2+n {
		return 0, false, nil
	}
	for _, x := range h[2 : 2+n] {
		length = length<<8 | int64(x)
	}
	return length, true, nil
}

// dial opens, secures and binds one connection to ep.
func (r *Reader) dial(ctx context.Context, ep endpoint) (*ldap.Conn, *limitConn, error) {
	d := net.Dialer{Timeout: r.cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", ep.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", ep.raw, err)
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
			return nil, nil, fmt.Errorf("tls handshake with %s (server name %q): %w", ep.raw, tc.ServerName, err)
		}
		c = tlsConn
	case r.cfg.StartTLS:
		c, err = startTLS(ctx, raw, tc, r.cfg.Timeout)
		if err != nil {
			_ = raw.Close()
			return nil, nil, fmt.Errorf("starttls with %s (server name %q): %w", ep.raw, tc.ServerName, err)
		}
	}
	lim := &limitConn{Conn: c, max: int64(r.cfg.MaxPacketBytes)}
	conn := ldap.NewConn(lim, ep.tls || r.cfg.StartTLS)
	conn.Start()
	conn.SetTimeout(r.cfg.Timeout) // for the bind; searches use context deadlines

	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	err = conn.Bind(r.cfg.BindDN, r.cfg.Password)
	if !stop() || ctx.Err() != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("binding to %s: %w", ep.raw, context.Cause(ctx))
	}
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("binding to %s as %s: %w", ep.raw, r.cfg.BindDN, err)
	}
	conn.SetTimeout(0)
	return conn, lim, nil
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
// Wrong credentials stop the failover: another DC would refuse them too.
func (r *Reader) connect(ctx context.Context) error {
	var errs []error
	for _, ep := range r.endpoints {
		conn, lim, err := r.dial(ctx, ep)
		if err == nil {
			r.conn, r.lim, r.url = conn, lim, ep.raw
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultStrongAuthRequired, ldap.LDAPResultConfidentialityRequired) {
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
	r.conn, r.lim, r.url = nil, nil, ""
}

// isConnError reports whether err means the connection is unusable.
func isConnError(err error) bool {
	var ne net.Error
	return ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}
