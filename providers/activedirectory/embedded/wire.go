package embedded

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// BER identifiers used in responses.
const (
	tagInteger    = 0x02
	tagOctets     = 0x04
	tagEnumerated = 0x0a
	tagSequence   = 0x30
	tagSet        = 0x31
	tagControls   = 0xa0 // [0] constructed
	tagRespName   = 0x8a // [10] primitive, ExtendedResponse.responseName

	appBindResponse     = 0x61
	appSearchEntry      = 0x64
	appSearchDone       = 0x65
	appModifyResponse   = 0x67
	appAddResponse      = 0x69
	appDelResponse      = 0x6b
	appModDNResponse    = 0x6d
	appCompareResponse  = 0x6f
	appExtendedResponse = 0x78
)

// LDAP protocol operation numbers of requests.
const (
	opBind     = 0
	opUnbind   = 2
	opSearch   = 3
	opModify   = 6
	opAdd      = 8
	opDelete   = 10
	opModDN    = 12
	opCompare  = 14
	opAbandon  = 16
	opExtended = 23
)

// maxRequestBytes caps one request message; larger ones end the connection.
const maxRequestBytes = 4 << 20

const (
	pagingOID      = "1.2.840.113556.1.4.319"
	showDeletedOID = "1.2.840.113556.1.4.417"
)

func lenLen(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffff:
		return 4
	}
	return 5
}

func tlvLen(n int) int { return 1 + lenLen(n) + n }

func appendHeader(b []byte, tag byte, n int) []byte {
	b = append(b, tag)
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n <= 0xff:
		return append(b, 0x81, byte(n))
	case n <= 0xffff:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendString(b []byte, tag byte, s string) []byte {
	return append(appendHeader(b, tag, len(s)), s...)
}

// intContent is the minimal two's complement encoding of v.
func intContent(v int64) []byte {
	n := 1
	for x := v; x > 127 || x < -128; x >>= 8 {
		n++
	}
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out
}

// outAttr is an attribute as it goes on the wire.
type outAttr struct {
	name string
	vals []string
}

// appendEntry appends a SearchResultEntry message to b.
func appendEntry(b []byte, msgID int64, dn string, attrs []outAttr) []byte {
	attrsC := 0
	for _, a := range attrs {
		attrsC += tlvLen(attrContentLen(a))
	}
	opC := tlvLen(len(dn)) + tlvLen(attrsC)
	mid := intContent(msgID)
	b = appendHeader(b, tagSequence, tlvLen(len(mid))+tlvLen(opC))
	b = append(appendHeader(b, tagInteger, len(mid)), mid...)
	b = appendHeader(b, appSearchEntry, opC)
	b = appendString(b, tagOctets, dn)
	b = appendHeader(b, tagSequence, attrsC)
	for _, a := range attrs {
		b = appendHeader(b, tagSequence, attrContentLen(a))
		b = appendString(b, tagOctets, a.name)
		vc := 0
		for _, v := range a.vals {
			vc += tlvLen(len(v))
		}
		b = appendHeader(b, tagSet, vc)
		for _, v := range a.vals {
			b = appendString(b, tagOctets, v)
		}
	}
	return b
}

func attrContentLen(a outAttr) int {
	vc := 0
	for _, v := range a.vals {
		vc += tlvLen(len(v))
	}
	return tlvLen(len(a.name)) + tlvLen(vc)
}

// control is a response control.
type control struct {
	oid   string
	value []byte
}

// appendResult appends an LDAPResult-shaped response message to b.
func appendResult(b []byte, msgID int64, app byte, code int, matched, diag, respName string, controls []control) []byte {
	code8 := intContent(int64(code))
	opC := tlvLen(len(code8)) + tlvLen(len(matched)) + tlvLen(len(diag))
	if respName != "" {
		opC += tlvLen(len(respName))
	}
	ctlC := 0
	for _, c := range controls {
		ctlC += tlvLen(tlvLen(len(c.oid)) + tlvLen(len(c.value)))
	}
	mid := intContent(msgID)
	msgC := tlvLen(len(mid)) + tlvLen(opC)
	if len(controls) > 0 {
		msgC += tlvLen(ctlC)
	}
	b = appendHeader(b, tagSequence, msgC)
	b = append(appendHeader(b, tagInteger, len(mid)), mid...)
	b = appendHeader(b, app, opC)
	b = append(appendHeader(b, tagEnumerated, len(code8)), code8...)
	b = appendString(b, tagOctets, matched)
	b = appendString(b, tagOctets, diag)
	if respName != "" {
		b = appendString(b, tagRespName, respName)
	}
	if len(controls) > 0 {
		b = appendHeader(b, tagControls, ctlC)
		for _, c := range controls {
			b = appendHeader(b, tagSequence, tlvLen(len(c.oid))+tlvLen(len(c.value)))
			b = appendString(b, tagOctets, c.oid)
			b = appendString(b, tagOctets, string(c.value))
		}
	}
	return b
}

// pagingValue encodes the value of a paged results response control.
func pagingValue(cookie string) []byte {
	size := intContent(0)
	b := appendHeader(nil, tagSequence, tlvLen(len(size))+tlvLen(len(cookie)))
	b = append(appendHeader(b, tagInteger, len(size)), size...)
	return appendString(b, tagOctets, cookie)
}

// readMessage reads one LDAPMessage, refusing oversized ones before reading them.
func readMessage(r *bufio.Reader) (*ber.Packet, error) {
	hdr := make([]byte, 2, 6)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	if hdr[0] != tagSequence {
		return nil, fmt.Errorf("not an ldap message (first byte %#x)", hdr[0])
	}
	n := int(hdr[1])
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 {
			return nil, fmt.Errorf("unsupported length encoding %#x", hdr[1])
		}
		lb := make([]byte, k)
		if _, err := io.ReadFull(r, lb); err != nil {
			return nil, err
		}
		hdr = append(hdr, lb...)
		n = 0
		for _, x := range lb {
			n = n<<8 | int(x)
		}
	}
	if n > maxRequestBytes {
		return nil, fmt.Errorf("request of %d bytes exceeds the %d byte limit", n, maxRequestBytes)
	}
	buf := make([]byte, len(hdr)+n)
	copy(buf, hdr)
	if _, err := io.ReadFull(r, buf[len(hdr):]); err != nil {
		return nil, err
	}
	p, err := ber.DecodePacketErr(buf)
	if err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	if len(p.Children) < 2 {
		return nil, errors.New("ldap message without an operation")
	}
	return p, nil
}
