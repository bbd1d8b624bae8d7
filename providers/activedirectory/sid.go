package activedirectory

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FormatSID renders a binary security identifier (as stored in objectSid)
// in its string form, e.g. S-1-5-21-1004336348-1177238915-682003330-1105.
func FormatSID(b []byte) (string, error) {
	if len(b) < 8 {
		return "", fmt.Errorf("sid of %d bytes is too short", len(b))
	}
	n := int(b[1])
	if n > 15 || len(b) != 8+4*n {
		return "", fmt.Errorf("sid of %d bytes does not hold %d sub-authorities", len(b), n)
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	var sb strings.Builder
	sb.Grow(16 + 11*n)
	sb.WriteString("S-")
	sb.WriteString(strconv.Itoa(int(b[0])))
	sb.WriteByte('-')
	if auth >= 1<<32 {
		fmt.Fprintf(&sb, "0x%012X", auth)
	} else {
		sb.WriteString(strconv.FormatUint(auth, 10))
	}
	for i := range n {
		sb.WriteByte('-')
		sb.WriteString(strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10))
	}
	return sb.String(), nil
}

// ParseSID converts the string form of a security identifier to the binary
// form stored in objectSid.
func ParseSID(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "S") {
		return nil, fmt.Errorf("%q is not a sid", s)
	}
	rev, err := strconv.ParseUint(parts[1], 10, 8)
	if err != nil {
		return nil, fmt.Errorf("sid %q: revision: %w", s, err)
	}
	var auth uint64
	if a := parts[2]; strings.HasPrefix(a, "0x") || strings.HasPrefix(a, "0X") {
		auth, err = strconv.ParseUint(a[2:], 16, 48)
	} else {
		auth, err = strconv.ParseUint(a, 10, 48)
	}
	if err != nil {
		return nil, fmt.Errorf("sid %q: authority: %w", s, err)
	}
	subs := parts[3:]
	if len(subs) > 15 {
		return nil, fmt.Errorf("sid %q has more than 15 sub-authorities", s)
	}
	b := make([]byte, 8+4*len(subs))
	b[0], b[1] = byte(rev), byte(len(subs))
	for i := range 6 {
		b[7-i] = byte(auth >> (8 * i))
	}
	for i, p := range subs {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("sid %q: sub-authority %d: %w", s, i+1, err)
		}
		binary.LittleEndian.PutUint32(b[8+4*i:], uint32(v))
	}
	return b, nil
}

// FormatGUID renders a binary objectGUID in the canonical lower-case
// 8-4-4-4-12 form (the first three groups are little-endian on the wire).
func FormatGUID(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("guid of %d bytes, want 16", len(b))
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16]), nil
}

// neverExpires is accountExpires' "never" value besides 0.
const neverExpires = 0x7FFFFFFFFFFFFFFF

// parseAccountExpires converts accountExpires (100 ns intervals since
// 1601-01-01 UTC) to a time; the zero time means never.
func parseAccountExpires(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("accountExpires %q: %w", s, err)
	}
	if v <= 0 || v == neverExpires {
		return time.Time{}, nil
	}
	// Seconds between 1601-01-01 and 1970-01-01.
	const epochDelta = 11644473600
	secs := v/10_000_000 - epochDelta
	return time.Unix(secs, (v%10_000_000)*100).UTC(), nil
}
