package activedirectory

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

func TestFilterBuilder(t *testing.T) {
	tests := map[string]struct {
		f    filter
		want string
	}{
		"eq plain":     {eq("cn", "alice"), "(cn=alice)"},
		"eq injection": {eq("cn", "*)(objectClass=*"), `(cn=\2a\29\28objectClass=\2a)`},
		"eq nul":       {eq("cn", "a\x00b"), `(cn=a\00b)`},
		"eq backslash": {eq("cn", `a\b`), `(cn=a\5cb)`},
		"eq non-ascii": {eq("givenName", "Zoë"), `(givenName=Zo\c3\ab)`},
		"eq DN":        {eq("memberOf", `CN=Grp+(x)\, "Ü" #1*,OU=G,DC=x`), `(memberOf=CN=Grp+\28x\29\5c, "\c3\9c" #1\2a,OU=G,DC=x)`},
		"eq bytes":     {eqBytes("objectSid", []byte{1, 5, 0, 0x2a, 0xff}), `(objectSid=\01\05\00\2a\ff)`},
		"present":      {present("objectClass"), "(objectClass=*)"},
		"and or not":   {and(eq("objectClass", "user"), or(eq("a", "1"), eq("b", "2")), not(eq("c", "3"))), "(&(objectClass=user)(|(a=1)(b=2))(!(c=3)))"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := filterString(tt.f)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
			if _, err := ldap.CompileFilter(got); err != nil {
				t.Errorf("CompileFilter(%q): %v", got, err)
			}
		})
	}
}

// checkSingleEquality asserts that filter compiles to exactly one equality
// assertion of attr with the given raw value (R27: no value can add
// structure to a filter).
func checkSingleEquality(t *testing.T, f string, attr string, value []byte) {
	t.Helper()
	p, err := ldap.CompileFilter(f)
	if err != nil {
		t.Fatalf("CompileFilter(%q): %v", f, err)
	}
	if p.Tag != ldap.FilterEqualityMatch || p.ClassType != ber.ClassContext || len(p.Children) != 2 {
		t.Fatalf("filter %q compiled to tag %d with %d children, want one equality match", f, p.Tag, len(p.Children))
	}
	if got := p.Children[0].Data.String(); got != attr {
		t.Errorf("attribute = %q, want %q", got, attr)
	}
	if got := p.Children[1].Data.Bytes(); string(got) != string(value) {
		t.Errorf("value = %q, want %q", got, value)
	}
	back, err := ldap.DecompileFilter(p)
	if err != nil {
		t.Fatalf("DecompileFilter: %v", err)
	}
	p2, err := ldap.CompileFilter(back)
	if err != nil {
		t.Fatalf("CompileFilter(DecompileFilter) %q: %v", back, err)
	}
	if got := p2.Children[1].Data.Bytes(); p2.Tag != ldap.FilterEqualityMatch || string(got) != string(value) {
		t.Errorf("after decompile and recompile: tag %d value %q, want equality of %q", p2.Tag, got, value)
	}
}

func FuzzFilterEq(f *testing.F) {
	for _, s := range []string{"alice", "*)(objectClass=*", "a\x00b", `\`, "Zoë", ")(|(cn=*", "\xff\xfe", "(", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		checkSingleEquality(t, filterString(eq("cn", v)), "cn", []byte(v))
		checkSingleEquality(t, filterString(eqBytes("objectSid", []byte(v))), "objectSid", []byte(v))
	})
}
