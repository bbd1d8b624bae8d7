package assetpanda

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket of Requests tokens in which a spent token comes
// back exactly one window (Per, plus a 1 % margin for network delay) after
// it was spent. Unlike a bucket refilled at a steady rate, which can let up
// to twice the limit through within one window, it never exceeds the
// service's sliding window of Requests per Per, while still allowing the
// full rate. A 429 pauses it for every caller until Retry-After.
type limiter struct {
	n   int
	per time.Duration
	now func() time.Time

	mu          sync.Mutex
	spent       []time.Time // ring of the last n spend times
	head        int         // oldest entry once the ring is full
	pausedUntil time.Time
}

// newLimiter builds the limiter of r; Requests < 0 means no limit (a 429
// still pauses it).
func newLimiter(r Rate, now func() time.Time) *limiter {
	if r.Requests < 0 {
		return &limiter{now: now}
	}
	return &limiter{n: r.Requests, per: r.Per + r.Per/100, now: now}
}

// wait blocks until a request may be sent, or ctx is done.
func (l *limiter) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := l.now()
		until := l.pausedUntil
		if !now.Before(until) {
			if l.n <= 0 {
				l.mu.Unlock()
				return ctx.Err()
			}
			if len(l.spent) < l.n {
				l.spent = append(l.spent, now)
				l.mu.Unlock()
				return nil
			}
			until = l.spent[l.head].Add(l.per)
			if !now.Before(until) {
				l.spent[l.head] = now
				l.head = (l.head + 1) % l.n
				l.mu.Unlock()
				return nil
			}
		}
		l.mu.Unlock()
		if err := sleep(ctx, until.Sub(now)); err != nil {
			return err
		}
	}
}

// pause holds every request back for d (a 429's Retry-After).
func (l *limiter) pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.now().Add(d); t.After(l.pausedUntil) {
		l.pausedUntil = t
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
