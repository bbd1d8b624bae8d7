package sandbox

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/spec"
)

// Connection is what ConnectionYAML loads to, defaults included: the two
// describe one Connection, and spec tests use either.
func TestConnectionMatchesConnectionYAML(t *testing.T) {
	s, err := Start(nil, &emulator.Seed{Credentials: emulator.Credentials{ClientID: "id", ClientSecret: "secret", Email: "a@example.com", Password: "pw"}}, Options{BaseDN: "DC=corp,DC=example,DC=com"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	set, err := spec.Parse(map[string][]byte{"00-connection.yaml": s.ConnectionYAML("sandbox")})
	if err != nil {
		t.Fatal(err)
	}
	want := set.Connection
	want.Source = spec.Source{} // where it was read from: Connection was read from nowhere
	if diff := cmp.Diff(want, s.Connection("sandbox"), cmpopts.IgnoreUnexported(spec.Source{})); diff != "" {
		t.Errorf("Connection differs from ConnectionYAML (-yaml +Connection):\n%s", diff)
	}
}
