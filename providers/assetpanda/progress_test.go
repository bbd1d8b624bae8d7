package assetpanda

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestProgress: Config.Progress hears every page of records and the users
// list, with running totals.
func TestProgress(t *testing.T) {
	var seen []ReadProgress
	e := newEnv(t, baseSeed(2500), envOpts{cfg: func(c *Config) { c.Progress = func(p ReadProgress) { seen = append(seen, p) } }})
	col := e.people(t)
	if _, err := e.c.Records(ctx(t), col); err != nil {
		t.Fatal(err)
	}
	users, err := e.c.Users(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []ReadProgress{{Pages: 1, Objects: 1000}, {Pages: 2, Objects: 2000}, {Pages: 3, Objects: 2500}, {Pages: 4, Objects: 2500 + len(users)}}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("progress reports (-want +got):\n%s", diff)
	}
}
