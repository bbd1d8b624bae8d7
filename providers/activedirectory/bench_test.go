package activedirectory

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

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

// BenchmarkReadChangesEmbedded times a delta read of the 10,000-member
// group when nothing changed and when one member's attribute changed: the
// cost must not grow with the group (P5, P6).
func BenchmarkReadChangesEmbedded(b *testing.B) {
	fx := newFixture(embeddedBase, "bench", 10000)
	cfg, srv := startEmbedded(b, fx, embedded.Options{MaxPageSize: 1000, MaxValRange: 1500})
	cfg.BaseDN = embeddedBase // the naming context: tombstones come with the changes
	r := newReader(b, cfg)
	ctx := context.Background()
	q := Query{Groups: []GroupQuery{{DN: fx.big}}, Attributes: benchAttrs}
	first, err := r.ReadChanges(ctx, q, Watermark{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	view := &Result{}
	view.Apply(first)
	for _, change := range []bool{false, true} {
		name := "nochange"
		if change {
			name = "onechange"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			wm := first.Watermark
			var st ReadStats
			i := 0
			for b.Loop() {
				if change {
					b.StopTimer()
					if err := srv.Replace(fx.bigUsers[i%len(fx.bigUsers)], "mail", fmt.Sprintf("n%d@example.test", i)); err != nil {
						b.Fatal(err)
					}
					i++
					b.StartTimer()
				}
				d, err := r.ReadChanges(ctx, q, wm, view)
				if err != nil {
					b.Fatal(err)
				}
				if d.Full {
					b.Fatalf("full read: %s", d.FullReason)
				}
				view.Apply(d)
				wm, st = d.Watermark, d.Stats
			}
			b.ReportMetric(float64(st.Searches), "searches/op")
			b.ReportMetric(float64(st.Entries-st.Probes), "entries/op")
		})
	}
}

// BenchmarkReadChangesSamba times delta reads of the group named by
// PANDASYNC_BENCH_GROUP on the Samba DC after one full read (not timed):
// with nothing changed (P5: the cost must not grow with the group) and
// after k members' mail changed (P6: in proportion to k). The changes are
// made as Administrator between the timed reads.
func BenchmarkReadChangesSamba(b *testing.B) {
	group := os.Getenv("PANDASYNC_BENCH_GROUP")
	if group == "" {
		b.Skip("set PANDASYNC_BENCH_GROUP and the DC_* variables (see .ci/bench-ad.sh)")
	}
	cfg := sambaEnvConfig(b)
	r := newReader(b, cfg)
	ctx := context.Background()
	q := Query{Groups: []GroupQuery{{DN: group}}, Attributes: benchAttrs}
	first, err := r.ReadChanges(ctx, q, Watermark{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	view := &Result{}
	view.Apply(first)
	wm := first.Watermark
	conn, err := adminConn(sambaAdminConfig()) // the changes are made as Administrator
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	members := view.Groups[group].Members
	round := 0
	for _, k := range []int{0, 1, 10, 100, 1000} {
		if k > len(members) {
			break
		}
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			b.ReportAllocs()
			var st ReadStats
			for b.Loop() {
				b.StopTimer()
				round++
				for i := range k {
					mod := ldap.NewModifyRequest(view.Users[members[i]].DN, nil)
					mod.Replace("mail", []string{fmt.Sprintf("r%d-%d@example.test", round, i)})
					if err := conn.Modify(mod); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				d, err := r.ReadChanges(ctx, q, wm, view)
				if err != nil {
					b.Fatal(err)
				}
				if d.Full {
					b.Fatalf("full read: %s", d.FullReason)
				}
				view.Apply(d)
				wm, st = d.Watermark, d.Stats
			}
			b.ReportMetric(float64(st.Searches), "searches/op")
			b.ReportMetric(float64(st.Entries-st.Probes), "entries/op")
		})
	}
	// A membership change in the mapped group: the group is recomputed; with
	// the view its members are not read again, without it they are.
	toggled, isMember := view.Users[members[0]].DN, true
	defer func() { // leave the group as it was
		mod := ldap.NewModifyRequest(group, nil)
		mod.Add("member", []string{toggled})
		if err := conn.Modify(mod); err != nil && !ldap.IsErrorAnyOf(err, ldap.LDAPResultAttributeOrValueExists, ldap.LDAPResultEntryAlreadyExists) {
			b.Error(err)
		}
	}()
	for _, withView := range []bool{true, false} {
		b.Run(fmt.Sprintf("member/view=%t", withView), func(b *testing.B) {
			var st ReadStats
			for b.Loop() {
				b.StopTimer()
				mod := ldap.NewModifyRequest(group, nil)
				if isMember {
					mod.Delete("member", []string{toggled})
				} else {
					mod.Add("member", []string{toggled})
				}
				isMember = !isMember
				if err := conn.Modify(mod); err != nil {
					b.Fatal(err)
				}
				have := view
				if !withView {
					have = nil
				}
				b.StartTimer()
				d, err := r.ReadChanges(ctx, q, wm, have)
				if err != nil {
					b.Fatal(err)
				}
				if d.Full || len(d.Groups) != 1 {
					b.Fatalf("full %t (%s), %d groups recomputed", d.Full, d.FullReason, len(d.Groups))
				}
				view.Apply(d)
				wm, st = d.Watermark, d.Stats
			}
			b.ReportMetric(float64(st.Searches), "searches/op")
			b.ReportMetric(float64(st.Entries-st.Probes), "entries/op")
		})
	}
}
