package activedirectory

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// stubLDAP is a loopback LDAP server that answers binds with success and
// every search with what script returns for it: raw messages (with the
// request's message ID patched in) or nil to close the connection.
type stubLDAP struct {
	url string

	mu       sync.Mutex
	searches []stubSearch // what was asked
	abandons []int64
}

type stubSearch struct {
	id       int64
	base     string
	paged    bool
	cookie   string
	controls []string
}

func newStubLDAP(t *testing.T, script func(n int, s stubSearch) [][]byte) *stubLDAP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stubLDAP{url: "ldap://" + ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					p, err := ber.ReadPacket(r)
					if err != nil || len(p.Children) < 2 {
						return
					}
					id, _ := p.Children[0].Value.(int64)
					op := p.Children[1]
					switch op.Tag {
					case ldap.ApplicationBindRequest:
						resp := berTL(tagSequence, berTL(tagInteger, []byte{1}),
							berTL(0x61, berTL(tagEnumerated, []byte{0}), berStr(""), berStr("")))
						c.Write(withIDRaw(resp, id))
					case ldap.ApplicationAbandonRequest:
						s.mu.Lock()
						v, _ := berInt(op.Data.Bytes())
						s.abandons = append(s.abandons, v)
						s.mu.Unlock()
					case ldap.ApplicationSearchRequest:
						ss := stubSearch{id: id, base: op.Children[0].Value.(string)}
						if len(p.Children) > 2 {
							for _, ctl := range p.Children[2].Children {
								oid := ctl.Children[0].Value.(string)
								ss.controls = append(ss.controls, oid)
								if oid == ldap.ControlTypePaging {
									v, _ := ber.DecodePacketErr(ctl.Children[len(ctl.Children)-1].Data.Bytes())
									ss.paged, ss.cookie = true, v.Children[1].Data.String()
								}
							}
						}
						s.mu.Lock()
						n := len(s.searches)
						s.searches = append(s.searches, ss)
						s.mu.Unlock()
						msgs := script(n, ss)
						if msgs == nil {
							return
						}
						for _, m := range msgs {
							if _, err := c.Write(withIDRaw(m, id)); err != nil {
								return
							}
						}
					case ldap.ApplicationUnbindRequest:
						return
					}
				}
			}()
		}
	}()
	return s
}

// withIDRaw puts id into a message built with the one-byte ID 1 (as
// entryMsg and doneMsg build them), even when the rest is crafted; a message
// whose outer length cannot be parsed passes through unchanged.
func withIDRaw(m []byte, id int64) []byte {
	content, rest, err := expect(m, tagSequence, "")
	if err != nil || len(rest) != 0 || len(content) < 3 || content[0] != tagInteger || content[1] != 1 {
		return m
	}
	idb := ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "").Bytes()
	return berTL(tagSequence, idb, content[3:])
}

func stubReader(t *testing.T, url string) *Reader {
	return newReader(t, Config{URLs: []string{url}, BaseDN: "DC=example,DC=test", BindDN: "CN=r,DC=example,DC=test",
		Password: "Canary-Stub-Pass", AllowCleartextBind: true, MaxPacketBytes: 1 << 20})
}

// rawSearch runs a paged raw search through the reader's connection and
// returns the DNs it received.
func rawSearch(r *Reader, fn func(rawEntry) error) ([]string, ReadStats, error) {
	var dns []string
	var st ReadStats
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.withConn(context.Background(), func(*ldap.Conn) error {
		dns, st = nil, ReadStats{}
		return r.pagedSearchRaw(context.Background(), "DC=example,DC=test", ldap.ScopeWholeSubtree, present("objectClass"), []string{"mail"}, &st, func(e rawEntry) error {
			dns = append(dns, string(e.dn))
			if fn != nil {
				return fn(e)
			}
			return e.each(func(_, vals []byte) error { _, err := countValues(vals); return err })
		})
	})
	return dns, st, err
}

func TestMuxPagedSearch(t *testing.T) {
	stub := newStubLDAP(t, func(n int, s stubSearch) [][]byte {
		if s.cookie == "" {
			return [][]byte{entryMsg(1, "CN=a", attr("mail", "a@x")), entryMsg(1, "CN=b"),
				berTL(tagSequence, berTL(tagInteger, []byte{1}), berTL(opSearchRef, berStr("ldap://elsewhere/DC=x"))),
				doneMsg(1, 0, "", pagingControl("p2"))}
		}
		return [][]byte{entryMsg(1, "CN=c"), doneMsg(1, 0, "", pagingControl(""))}
	})
	r := stubReader(t, stub.url)
	dns, st, err := rawSearch(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(dns, " "); got != "CN=a CN=b CN=c" {
		t.Errorf("entries = %q", got)
	}
	if st.Searches != 1 || st.Pages != 2 || st.Entries != 3 {
		t.Errorf("stats = %+v", st)
	}
	if stub.searches[0].id < leanFirstID || stub.searches[1].cookie != "p2" {
		t.Errorf("requests = %+v", stub.searches)
	}
}

// TestMuxStopsOnHandlerError: a callback error abandons the request, the
// rest of its answer is discarded, and the connection serves the next one.
func TestMuxStopsOnHandlerError(t *testing.T) {
	many := make([][]byte, 0, 2001)
	for i := range 2000 {
		many = append(many, entryMsg(1, fmt.Sprintf("CN=u%04d", i), attr("mail", strings.Repeat("x", 100))))
	}
	many = append(many, doneMsg(1, 0, ""))
	stub := newStubLDAP(t, func(n int, s stubSearch) [][]byte {
		if n == 0 {
			return many
		}
		return [][]byte{entryMsg(1, "CN=after"), doneMsg(1, 0, "")}
	})
	r := stubReader(t, stub.url)
	stop := errors.New("stop")
	_, _, err := rawSearch(r, func(rawEntry) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the callback's", err)
	}
	dns, _, err := rawSearch(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(dns, " "); got != "CN=after" {
		t.Errorf("second search got %q", got)
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if len(stub.abandons) != 1 || stub.abandons[0] != stub.searches[0].id {
		t.Errorf("abandons = %v, searches %+v", stub.abandons, stub.searches)
	}
}

// TestMuxHostileServer: crafted answers fail the search without allocating
// what they announce, and server errors come back as *ldap.Error.
func TestMuxHostileServer(t *testing.T) {
	huge := []byte{0x84, 0x7f, 0xff, 0xff, 0xff}
	tests := []struct {
		name    string
		msgs    [][]byte
		wantErr string
	}{
		{"inner length beyond the message", [][]byte{berTL(tagSequence, berTL(tagInteger, []byte{1}),
			append([]byte{opSearchEntry, 0x0a, tagOctetString}, append(huge, "xxxxxxxxx"...)...))}, "malformed"},
		{"message over the cap", [][]byte{append([]byte{tagSequence}, huge...)}, "maximum size"},
		{"deep nesting", [][]byte{entryMsg(1, "CN=x", berTL(tagSequence, []byte(strings.Repeat("\x30\x80", 100))))}, "malformed"},
		{"connection closed mid-answer", nil, "Network Error"},
		{"server error", [][]byte{doneMsg(1, 53, "DN is not one of the naming context")}, "naming context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newStubLDAP(t, func(int, stubSearch) [][]byte { return tt.msgs })
			r := stubReader(t, stub.url)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := rawSearch(r, nil)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
				t.Errorf("allocated %d bytes", got)
			}
			if tt.name == "server error" && !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
				t.Errorf("err = %v, want result code 53", err)
			}
		})
	}
}
