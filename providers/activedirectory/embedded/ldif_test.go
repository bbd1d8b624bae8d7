package embedded

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

func attr(name string, vals ...string) *ldap.EntryAttribute {
	a := &ldap.EntryAttribute{Name: name, Values: vals}
	for _, v := range vals {
		a.ByteValues = append(a.ByteValues, []byte(v))
	}
	return a
}

func TestParseLDIF(t *testing.T) {
	tests := map[string]struct {
		in   string
		want []*ldap.Entry
	}{
		"two records with comments, folding and base64": {
			in: "version: 1\n" +
				"# a comment\n" +
				"#  folded comment continuation\n" +
				"\n" +
				"dn: CN=Lovelace\\, Ada,OU=People,DC=corp,DC=example,DC=com\n" +
				"changetype: add\n" +
				"objectClass: top\n" +
				"objectClass: user\n" +
				"description: a long value that\n" +
				"  is folded\n" +
				"cn:: Sm9zw6kgTsO6w7Fleg==\n" +
				"objectSid:: AQUAAAAAAAUVAAAA3PTcO4M9K0aCi6YoTQQAAA==\n" +
				"\r\n" +
				"\n" +
				"dn:: Q049Sm9zw6kgTsO6w7FleixPVT1QZW9wbGUsREM9Y29ycCxEQz1leGFtcGxlLERDPWNvbQ==\r\n" +
				"mail:   jose@corp.example.com\r\n",
			want: []*ldap.Entry{
				{DN: `CN=Lovelace\, Ada,OU=People,DC=corp,DC=example,DC=com`, Attributes: []*ldap.EntryAttribute{
					attr("objectClass", "top", "user"),
					attr("description", "a long value that is folded"),
					attr("cn", "José Núñez"),
					attr("objectSid", "\x01\x05\x00\x00\x00\x00\x00\x05\x15\x00\x00\x00\xdc\xf4\xdc\x3b\x83\x3d\x2b\x46\x82\x8b\xa6\x28\x4d\x04\x00\x00"),
				}},
				{DN: "CN=José Núñez,OU=People,DC=corp,DC=example,DC=com", Attributes: []*ldap.EntryAttribute{
					attr("mail", "jose@corp.example.com"),
				}},
			},
		},
		"empty input":   {in: "", want: nil},
		"only comments": {in: "# nothing\n\n# here\n", want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseLDIF(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("ParseLDIF: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseLDIF (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLDIFErrors(t *testing.T) {
	tests := map[string]struct {
		in   string
		want string
	}{
		"record without dn":            {in: "cn: x\n", want: `ldif line 1: record must start with "dn:", got "cn"`},
		"missing colon":                {in: "dn: CN=a,DC=x\nnot an attribute\n", want: `ldif line 2: expected "attribute: value"`},
		"attribute after a blank line": {in: "dn: CN=a,DC=x\n\ncn: ok\n", want: `ldif line 3: record must start with "dn:"`},
		"invalid base64":               {in: "dn: CN=a,DC=x\ncn:: !!!\n", want: "ldif line 2: attribute cn: invalid base64"},
		"invalid dn":                   {in: "# c\ndn: not a dn\n", want: `ldif line 2: invalid dn "not a dn"`},
		"duplicate dn":                 {in: "dn: CN=a,DC=x\n\ndn: cn=A, dc=X\n", want: `ldif line 3: dn "cn=A, dc=X" already defined on line 1`},
		"modify changetype":            {in: "dn: CN=a,DC=x\nchangetype: modify\n", want: `ldif line 2: changetype "modify" is not supported`},
		"url value":                    {in: "dn: CN=a,DC=x\njpegPhoto:< file:///etc/passwd\n", want: "ldif line 2: attribute jpegPhoto: URL values are not supported"},
		"bad attribute name":           {in: "dn: CN=a,DC=x\nc n: x\n", want: `ldif line 2: invalid attribute description "c n"`},
		"leading continuation":         {in: " folded\n", want: "ldif line 1: continuation line without a preceding line"},
		"second dn":                    {in: "dn: CN=a,DC=x\ndn: CN=b,DC=x\n", want: "ldif line 2: second dn in one record"},
		"bad version":                  {in: "version: 2\n", want: `ldif line 1: unsupported version "2"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseLDIF(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("ParseLDIF succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseLDIF error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
