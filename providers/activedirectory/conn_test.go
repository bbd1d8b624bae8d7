package activedirectory

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// tlv encodes one BER element with a definite length in minimal form.
func tlv(tag byte, content ...[]byte) []byte {
	n := 0
	for _, c := range content {
		n += len(c)
	}
	return append(berHeaderBytes(tag, n), joinBytes(content...)...)
}

// berHeaderBytes encodes a tag and a definite length n.
func berHeaderBytes(tag byte, n int) []byte {
	switch {
	case n < 0x80:
		return []byte{tag, byte(n)}
	case n <= 0xff:
		return []byte{tag, 0x81, byte(n)}
	case n <= 0xffff:
		return []byte{tag, 0x82, byte(n >> 8), byte(n)}
	case n <= 0xffffff:
		return []byte{tag, 0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return []byte{tag, 0x84, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func joinBytes(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// nested wraps inner in depth SEQUENCEs.
func nested(depth int, inner []byte) []byte {
	for range depth {
		inner = tlv(0x30, inner)
	}
	return inner
}

// bindResponse builds a BindResponse message whose LDAPResult carries extra
// after the three mandatory fields and whose message carries controls (if any).
func bindResponse(msgID byte, extra, controls []byte) []byte {
	op := tlv(0x61, tlv(0x0a, []byte{0}), tlv(0x04), tlv(0x04), extra)
	parts := [][]byte{tlv(0x02, []byte{msgID}), op}
	if controls != nil {
		parts = append(parts, tlv(0xa0, controls))
	}
	return tlv(0x30, parts...)
}

// hostileServer accepts one connection, reads the bind request and answers
// it with reply(messageID). With filler it then streams up to fillerBytes of
// well-framed top-level messages (1 MiB each), so that a decoder trusting an
// inner length keeps reading (and allocating) until the stream ends.
func hostileServer(t *testing.T, reply func(msgID byte) []byte, fillerBytes int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Built before the client measures its allocations; go-ldap numbers
	// its first request 1.
	chunk := tlv(0x30, make([]byte, 1<<20-6))
	first := reply(1)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := ber.ReadPacket(c)
		if err != nil || len(req.Children) < 1 {
			return
		}
		id, _ := req.Children[0].Value.(int64)
		msg := first
		if id != 1 {
			msg = reply(byte(id))
		}
		if _, err := c.Write(msg); err != nil {
			return
		}
		for sent := 0; sent < fillerBytes; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond) // let the client read what was sent
	}()
	return "ldap://" + ln.Addr().String()
}

// TestHostileMessages covers R29 and issue item 11: a server whose message
// is small but whose inner elements announce more than the message holds, or
// nest absurdly deep, must fail the read with a clear error and without the
// decoder allocating for what was announced.
func TestHostileMessages(t *testing.T) {
	const filler = 64 << 20
	bigLen := func(tag byte, n uint32) []byte { // header announcing n bytes, 4-byte long form
		return []byte{tag, 0x84, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	tests := []struct {
		name   string
		reply  func(id byte) []byte
		filler int
		want   error
		detail string
	}{
		{
			name: "inner element announcing 4 GiB in a small message",
			reply: func(id byte) []byte {
				return bindResponse(id, append(bigLen(0xa3, 0xffffffff), 0x04, 0x00), nil)
			},
			want: ErrMalformedMessage, detail: "announces 4294967295 bytes",
		},
		{
			name: "inner element announcing 1 GiB, followed by 64 MiB of framed data",
			reply: func(id byte) []byte {
				// The diagnostic message claims 1 GiB; the message itself is 20 bytes.
				op := joinBytes(tlv(0x0a, []byte{0}), tlv(0x04), bigLen(0x04, 1<<30), []byte("x"))
				return tlv(0x30, tlv(0x02, []byte{id}), tlv(0x61, op))
			},
			filler: filler,
			want:   ErrMalformedMessage, detail: "announces 1073741824 bytes",
		},
		{
			name: "length overrunning its parent by a few bytes",
			reply: func(id byte) []byte {
				op := joinBytes(tlv(0x0a, []byte{0}), tlv(0x04), []byte{0x04, 0x10}, []byte("short"))
				return tlv(0x30, tlv(0x02, []byte{id}), tlv(0x61, op))
			},
			want: ErrMalformedMessage, detail: "parent holds only 5 more",
		},
		{
			name: "deep nesting around 64 KiB",
			reply: func(id byte) []byte {
				return bindResponse(id, tlv(0xa3, nested(500, tlv(0x04, make([]byte, 64<<10)))), nil)
			},
			want: ErrMalformedMessage, detail: "nest deeper than 12 levels",
		},
		{
			name: "deep nesting inside a control value",
			reply: func(id byte) []byte {
				value := nested(500, tlv(0x04, make([]byte, 64<<10)))
				ctl := tlv(0x30, tlv(0x04, []byte("1.2.840.113556.1.4.319")), tlv(0x04, value))
				return bindResponse(id, nil, ctl)
			},
			want: ErrMalformedMessage, detail: "control value",
		},
		{
			name: "indefinite length inside the message",
			reply: func(id byte) []byte {
				return bindResponse(id, []byte{0xa3, 0x80, 0x04, 0x00, 0x00, 0x00}, nil)
			},
			want: ErrMalformedMessage, detail: "indefinite",
		},
		{
			name:  "top-level length over the cap",
			reply: func(id byte) []byte { return append(bigLen(0x30, 1<<30), 0x02, 0x01, id) },
			want:  ErrPacketTooLarge, detail: "1073741824-byte message",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := hostileServer(t, tt.reply, tt.filler)
			r := newReader(t, Config{URLs: []string{url}, BaseDN: "DC=example,DC=test", BindDN: "svc@example.test",
				Password: "Canary-H0stile-Secret", AllowCleartextBind: true, Timeout: 5 * time.Second})
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := r.Ping(context.Background())
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("Ping succeeded against a hostile server")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("err = %v, want %v mentioning %q", err, tt.want, tt.detail)
			}
			if strings.Contains(err.Error(), "Canary-H0stile-Secret") {
				t.Errorf("error %q contains the password", err)
			}
			grew := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s; allocated %d bytes", err, grew)
			if grew > 4<<20 {
				t.Errorf("reading the hostile message allocated %d bytes, want under 4 MiB", grew)
			}
		})
	}
}

// TestCheckMessageAcceptsRealResponses guards against the validator
// rejecting what servers really send: a search entry at the deepest
// legitimate nesting and a paged-results control.
func TestCheckMessageAcceptsRealResponses(t *testing.T) {
	attr := tlv(0x30, tlv(0x04, []byte("member")), tlv(0x31, tlv(0x04, []byte("CN=a,DC=x")), tlv(0x04, []byte("CN=b,DC=x"))))
	entry := tlv(0x30, tlv(0x02, []byte{7}), tlv(0x64, tlv(0x04, []byte("CN=g,DC=x")), tlv(0x30, attr)))
	paging := tlv(0x30, tlv(0x02, []byte{0}), tlv(0x04, []byte("cookie")))
	ctl := tlv(0x30, tlv(0x04, []byte("1.2.840.113556.1.4.319")), tlv(0x01, []byte{0}), tlv(0x04, paging))
	done := tlv(0x30, tlv(0x02, []byte{7}), tlv(0x65, tlv(0x0a, []byte{0}), tlv(0x04), tlv(0x04)), tlv(0xa0, ctl))
	for name, msg := range map[string][]byte{"entry": entry, "done with paging": done} {
		_, rest, err := nextElement(msg)
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: framing: %v", name, err)
		}
		if err := checkMessage(msg[2:]); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
