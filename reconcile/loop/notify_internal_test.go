package loop

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// stepClock is a clock the test sets; its timers never fire.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *stepClock) NewTimer(time.Duration) Timer { return systemTimer{time.NewTimer(time.Hour)} }

// TestNotifyRateLimit: a webhook gets at most NotifyBurst notifications per
// NotifyWindow; later ones are dropped until the window moves on. A repeat
// of the last notification of an event is never sent.
func TestNotifyRateLimit(t *testing.T) {
	var mu sync.Mutex
	got := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got++
		mu.Unlock()
	}))
	defer srv.Close()
	clock := &stepClock{now: time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)}
	n := newNotifier(clock, slog.New(slog.DiscardHandler), nil, newMetrics())
	n.configure([]webhook{{name: "ops", url: srv.URL, format: "json"}})

	for i := range NotifyBurst + 5 {
		n.notify(Notification{Event: NotifyPassFailed, Message: fmt.Sprint(i)}, fmt.Sprint("error ", i))
		clock.add(time.Minute)
	}
	n.notify(Notification{Event: NotifyPassFailed}, fmt.Sprint("error ", NotifyBurst+4)) // a repeat
	clock.add(NotifyWindow)
	n.notify(Notification{Event: NotifyPassFailed}, "a new error, an hour later")
	n.close(waitLimit)

	mu.Lock()
	defer mu.Unlock()
	if want := NotifyBurst + 1; got != want {
		t.Errorf("the webhook received %d notifications, want %d (the burst, then one after the window)", got, want)
	}
}

// waitLimit bounds waits in this package's internal tests.
const waitLimit = 10 * time.Second
