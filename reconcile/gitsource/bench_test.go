package gitsource

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pandasync/pandasync/reconcile/gitsource/gittest"
)

// BenchmarkSyncNewCommit times the fetch that finds a new commit over
// smart HTTP on loopback: the ref listing, the shallow clone, the spec
// load and the switch. It is what a new commit costs on top of the wait
// for the next poll.
func BenchmarkSyncNewCommit(b *testing.B) {
	r := gittest.New(b)
	s, err := New(Config{URL: r.URL, Dir: filepath.Join(b.TempDir(), "git"), Validate: loadSpec, AllowInsecure: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		r.CommitAndPush(b, map[string]string{"pandasync.yaml": specWithRole(fmt.Sprintf("Role %d", i))})
		b.StartTimer()
		if _, changed, err := s.Sync(ctx); err != nil || !changed {
			b.Fatalf("Sync: changed %v, err %v", changed, err)
		}
	}
}

// BenchmarkSyncUnchanged times a poll that finds nothing new: one ref
// listing, no writes.
func BenchmarkSyncUnchanged(b *testing.B) {
	r := gittest.New(b)
	r.CommitAndPush(b, map[string]string{"pandasync.yaml": specWithRole("Collaborator")})
	s, err := New(Config{URL: r.URL, Dir: filepath.Join(b.TempDir(), "git"), Validate: loadSpec, AllowInsecure: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, changed, err := s.Sync(ctx); err != nil || changed {
			b.Fatalf("Sync: changed %v, err %v", changed, err)
		}
	}
}

// BenchmarkCommitToRevision10s measures, with a real 10 s interval, how
// long a pushed commit takes to become the current revision: the wait for
// the next poll (up to the interval) plus the fetch. Each iteration pushes
// at a different point of the interval. Run it with -benchtime=Nx; it
// reports the mean and the longest latency.
func BenchmarkCommitToRevision10s(b *testing.B) {
	r := gittest.New(b)
	r.CommitAndPush(b, map[string]string{"pandasync.yaml": specWithRole("Collaborator")})
	s, err := New(Config{URL: r.URL, Dir: filepath.Join(b.TempDir(), "git"), Validate: loadSpec, AllowInsecure: true, Interval: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan Revision, 1)
	go s.Run(ctx, func(u Update) { changes <- u.Revision })
	<-changes
	var total, longest time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		// Push at a different offset into the interval each time.
		time.Sleep(time.Duration(i%5) * 1700 * time.Millisecond)
		pushed := time.Now()
		c := r.CommitAndPush(b, map[string]string{"pandasync.yaml": specWithRole(fmt.Sprintf("Role %d", i))})
		rev := <-changes
		d := time.Since(pushed)
		if rev.Commit != c {
			b.Fatalf("revision %s, want %s", rev.Commit, c)
		}
		total += d
		longest = max(longest, d)
		n++
	}
	b.ReportMetric((total / time.Duration(n)).Seconds(), "s-mean/commit")
	b.ReportMetric(longest.Seconds(), "s-max/commit")
}
