package activedirectory

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
)

// TestProgressPerPage: Config.Progress hears every page of a read, with
// counts that only grow and end at the read's own stats.
func TestProgressPerPage(t *testing.T) {
	fx := newFixture(embeddedBase, randomSuffix(), 2500)
	cfg, _ := startEmbedded(t, fx, embedded.Options{MaxPageSize: 1000, MaxValRange: 1500})
	var seen []ReadStats
	cfg.Progress = func(st ReadStats) { seen = append(seen, st) }
	res, err := newReader(t, cfg).Read(context.Background(), Query{Groups: []GroupQuery{{DN: fx.big}}})
	if err != nil {
		t.Fatal(err)
	}
	// The big group's 2,500 members come in three pages of at most 1,000.
	if len(seen) < 3 {
		t.Fatalf("Progress was called %d times, want at least once per page (3)", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Pages <= seen[i-1].Pages || seen[i].Entries < seen[i-1].Entries {
			t.Errorf("progress went backwards: %+v after %+v", seen[i], seen[i-1])
		}
	}
	last := seen[len(seen)-1]
	if diff := cmp.Diff(res.Stats.Entries, last.Entries); diff != "" {
		t.Errorf("entries in the last progress report (-want +got):\n%s", diff)
	}
}
