package activedirectory

import "testing"

var dnCases = []string{
	"CN=Ada Lovelace,OU=People,DC=corp,DC=example,DC=com",
	"CN=Ada Lovelace, OU=People ,DC=corp,DC=example,DC=com",
	" cn = x , dc = y ",
	"cn=A  B,ou=x",
	"OU=a.b-c_d@e,DC=x",
	"CN=Lovelace\\, Ada,OU=People,DC=corp",
	"CN=José Núñez,OU=P,DC=x",
	"CN=a+SN=b,DC=x",
	"CN=#hash,DC=x",
	"CN=a=b,DC=x",
	"CN=\"quoted\",DC=x",
	"CN=x;DC=y",
	"1.2.3=x,DC=y",
	"C N=x,DC=y",
	"CN=,DC=x",
	"not a dn",
	"",
	",",
	"CN=trailing,",
}

// TestNormalizePlainDN checks that the fast path agrees with the parser
// wherever it applies.
func TestNormalizePlainDN(t *testing.T) {
	for _, dn := range dnCases {
		if got, ok := normalizePlainDN(dn); ok {
			if want := normalizeDN(dn); got != want {
				t.Errorf("normalizePlainDN(%q) = %q, the parser gives %q", dn, got, want)
			}
		}
	}
	if _, ok := normalizePlainDN("CN=Ada Lovelace,OU=People,DC=corp,DC=example,DC=com"); !ok {
		t.Error("a plain DN did not take the fast path")
	}
}

func FuzzNormalizePlainDN(f *testing.F) {
	for _, dn := range dnCases {
		f.Add(dn)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		if got, ok := normalizePlainDN(dn); ok {
			if want := normalizeDN(dn); got != want {
				t.Errorf("normalizePlainDN(%q) = %q, the parser gives %q", dn, got, want)
			}
		}
	})
}

func BenchmarkNormalizeDN(b *testing.B) {
	const dn = "CN=benchuser01234,OU=Bench,DC=example,DC=test"
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			NormalizeDN(dn)
		}
	})
	b.Run("parser", func(b *testing.B) {
		for b.Loop() {
			normalizeDN(dn)
		}
	})
}
