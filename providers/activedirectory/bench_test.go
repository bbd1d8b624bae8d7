package activedirectory

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
)

// benchAttrs is the attribute list .ci/bench-ad.sh also gives ldapsearch.
var benchAttrs = []string{"mail", "givenName", "sn"}

func benchRead(b *testing.B, r *Reader, group string, want int) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	var st ReadStats
	for b.Loop() {
		res, err := r.Read(ctx, Query{Groups: []GroupQuery{{DN: group}}, Attributes: benchAttrs})
		if err != nil {
			b.Fatal(err)
		}
		if got := len(res.Groups[group].Members); want > 0 && got != want {
			b.Fatalf("members = %d, want %d", got, want)
		}
		st = res.Stats
	}
	b.ReportMetric(float64(st.Searches), "searches/op")
	b.ReportMetric(float64(st.Pages), "pages/op")
	b.ReportMetric(float64(st.Entries), "entries/op")

	// What one read keeps alive: the result's heap per member.
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := r.Read(ctx, Query{Groups: []GroupQuery{{DN: group}}, Attributes: benchAttrs})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := len(res.Groups[group].Members); n > 0 {
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "retained-B/member")
	}
	runtime.KeepAlive(res)
}

// BenchmarkReadSamba reads the group named by PANDASYNC_BENCH_GROUP from the
// Samba DC (see .ci/bench-ad.sh, which compares it with ldapsearch).
func BenchmarkReadSamba(b *testing.B) {
	group := os.Getenv("PANDASYNC_BENCH_GROUP")
	if group == "" {
		b.Skip("set PANDASYNC_BENCH_GROUP and the DC_* variables (see .ci/bench-ad.sh)")
	}
	cfg := sambaEnvConfig(b)
	if u := os.Getenv("PANDASYNC_BENCH_URL"); u != "" {
		cfg.URLs = strings.Fields(u)
	}
	r := newReader(b, cfg)
	benchRead(b, r, group, 0)
}

// BenchmarkReadEmbedded reads a 10,000-member group from the embedded
// server with AD's limits (forced ranging, pages of 1,000).
func BenchmarkReadEmbedded(b *testing.B) {
	fx := newFixture(embeddedBase, "bench", 10000)
	cfg, _ := startEmbedded(b, fx, embedded.Options{MaxPageSize: 1000, MaxValRange: 1500})
	benchRead(b, newReader(b, cfg), fx.big, 10000)
}
