package activedirectory

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSID(t *testing.T) {
	tests := map[string]struct {
		bin  []byte
		text string
	}{
		"domain user": {
			bin:  []byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46, 0x82, 0x8b, 0xa6, 0x28, 0x51, 0x04, 0, 0},
			text: "S-1-5-21-1004336348-1177238915-682003330-1105",
		},
		"well-known everyone": {bin: []byte{1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, text: "S-1-1-0"},
		"no sub-authority":    {bin: []byte{1, 0, 0, 0, 0, 0, 0, 5}, text: "S-1-5"},
		"max rid":             {bin: []byte{1, 1, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff}, text: "S-1-5-4294967295"},
		"large authority":     {bin: []byte{1, 1, 0x01, 0, 0, 0, 0, 5, 1, 0, 0, 0}, text: "S-1-0x010000000005-1"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := FormatSID(tt.bin)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.text {
				t.Errorf("FormatSID = %q, want %q", got, tt.text)
			}
			back, err := ParseSID(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.bin, back); diff != "" {
				t.Errorf("ParseSID (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range [][]byte{nil, {1, 2, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0}, {1, 0, 0}} {
		if s, err := FormatSID(bad); err == nil {
			t.Errorf("FormatSID(%v) = %q, want an error", bad, s)
		}
	}
	for _, bad := range []string{"", "S-1", "X-1-5-21", "S-1-5-x", "S-1-5-4294967296", "S-256-5-1"} {
		if b, err := ParseSID(bad); err == nil {
			t.Errorf("ParseSID(%q) = %v, want an error", bad, b)
		}
	}
}

func FuzzSIDRoundTrip(f *testing.F) {
	f.Add([]byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := FormatSID(b)
		if err != nil {
			return
		}
		back, err := ParseSID(s)
		if err != nil {
			t.Fatalf("ParseSID(FormatSID(%v) = %q): %v", b, s, err)
		}
		if string(back) != string(b) {
			t.Fatalf("round trip of %v via %q gave %v", b, s, back)
		}
	})
}

func TestFormatGUID(t *testing.T) {
	// Administrator's objectGUID as samba-tool prints it: 5fc1bd1d-a1f4-489c-b6e2-4cf297415865.
	b := []byte{0x1d, 0xbd, 0xc1, 0x5f, 0xf4, 0xa1, 0x9c, 0x48, 0xb6, 0xe2, 0x4c, 0xf2, 0x97, 0x41, 0x58, 0x65}
	got, err := FormatGUID(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := "5fc1bd1d-a1f4-489c-b6e2-4cf297415865"; got != want {
		t.Errorf("FormatGUID = %q, want %q", got, want)
	}
	if _, err := FormatGUID(b[:15]); err == nil {
		t.Error("FormatGUID of 15 bytes succeeded")
	}
}

func TestAccountExpires(t *testing.T) {
	tests := map[string]time.Time{
		"":                    {},
		"0":                   {},
		"9223372036854775807": {},
		"130000000000000000":  time.Date(2012, 12, 14, 23, 6, 40, 0, time.UTC),
		"116444736000000000":  time.Unix(0, 0).UTC(),
	}
	for in, want := range tests {
		got, err := parseAccountExpires(in)
		if err != nil {
			t.Fatalf("parseAccountExpires(%q): %v", in, err)
		}
		if !got.Equal(want) {
			t.Errorf("parseAccountExpires(%q) = %v, want %v", in, got, want)
		}
	}
	if _, err := parseAccountExpires("soon"); err == nil {
		t.Error("parseAccountExpires(soon) succeeded")
	}
}

func TestNormalizeDN(t *testing.T) {
	tests := map[string]string{
		"CN=Alice Able,OU=Users,DC=Example,DC=Test":    "cn=alice able,ou=users,dc=example,dc=test",
		"cn=alice able, ou=users , dc=example,dc=test": "cn=alice able,ou=users,dc=example,dc=test",
		`CN=O'Brien\, \"Zoë\" Ærø,OU=U,DC=x`:           `cn=o'brien\, \"zo\c3\ab\" \c3\a6r\c3\b8,ou=u,dc=x`,
		`CN=O'Brien\2C \22ZOË\22 ÆRØ,OU=U,DC=x`:        `cn=o'brien\, \"zo\c3\ab\" \c3\a6r\c3\b8,ou=u,dc=x`,
		`CN=O'Brien\, "Zoë" Ærø,OU=U,DC=x`:             `cn=o'brien\, \"zo\c3\ab\" \c3\a6r\c3\b8,ou=u,dc=x`,
		"not a dn":                                     "not a dn",
	}
	for in, want := range tests {
		if got := NormalizeDN(in); got != want {
			t.Errorf("NormalizeDN(%q) = %q, want %q", in, got, want)
		}
	}
}
