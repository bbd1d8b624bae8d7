package activedirectory

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
)

// TestFind looks people up by every name Find takes, including values
// that would change a filter if they were not escaped.
func TestFind(t *testing.T) {
	fx := newFixture(embeddedBase, randomSuffix(), 0)
	cfg, _ := startEmbedded(t, fx, embedded.Options{MaxPageSize: 1000, MaxValRange: 1500})
	r := newReader(t, cfg)
	tests := map[string]struct {
		who  string
		want []string
	}{
		"sAMAccountName":       {who: fx.prefix + "-alice", want: []string{fx.alice}},
		"case-insensitive":     {who: "ALICE@example.test", want: []string{fx.alice}},
		"userPrincipalName":    {who: fx.prefix + "-carol@example.test", want: []string{fx.carol}},
		"DOMAIN\\user":         {who: `EXAMPLE\` + fx.prefix + "-bob", want: []string{fx.bob}},
		"nobody":               {who: "margret", want: nil},
		"wildcard is escaped":  {who: "*", want: nil},
		"filter is not broken": {who: "x)(objectClass=*", want: nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			found, err := r.Find(context.Background(), tt.who, []string{"mail"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range found {
				got = append(got, u.DN)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Find(%q) (-want +got):\n%s", tt.who, diff)
			}
		})
	}
}
