package loop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pandasync/pandasync/spec"
)

// NotificationEvent says what a notification reports.
type NotificationEvent string

// The notification events.
const (
	// NotifyPassFailed: a pass failed, or finished with changes that
	// failed or with problems.
	NotifyPassFailed NotificationEvent = "pass_failed"
	// NotifyChangesBlocked: a limit or guard blocked changes; a person has
	// to look.
	NotifyChangesBlocked NotificationEvent = "changes_blocked"
	// NotifyDegraded and NotifyQuarantined: the loop entered that state.
	NotifyDegraded    NotificationEvent = "degraded"
	NotifyQuarantined NotificationEvent = "quarantined"
	// NotifyRecovered: a green pass after any of the above was notified.
	NotifyRecovered NotificationEvent = "recovered"
)

// Notification limits. A notification that repeats the last one of its
// event (the same error, the same set of blocked changes) is not sent
// again until the loop recovers; beyond NotifyBurst notifications per
// NotifyWindow a webhook gets no more until the window moves on.
const (
	NotifyBurst   = 10
	NotifyWindow  = time.Hour
	NotifyTimeout = 10 * time.Second
	// notifyQueue bounds the notifications waiting for one webhook.
	notifyQueue = 32
	// maxDetails bounds the detail lines of a notification.
	maxDetails = 10
)

// Notification is what a webhook of format json receives. It holds no
// secret: no URL, token or credential, only what /status shows.
type Notification struct {
	Event   NotificationEvent `json:"event"`
	Time    time.Time         `json:"time"`
	Host    string            `json:"host"`
	Message string            `json:"message"`
	// Details are a few lines more: blocked changes by mapping and limit,
	// failed changes, problems.
	Details             []string     `json:"details,omitempty"`
	State               State        `json:"state"`
	ConsecutiveFailures int          `json:"consecutive_failures"`
	NextRun             time.Time    `json:"next_run,omitzero"`
	NextRunReason       string       `json:"next_run_reason,omitempty"`
	Revision            string       `json:"revision,omitempty"`
	Dirty               bool         `json:"dirty,omitempty"`
	Pass                *PassSummary `json:"pass,omitempty"`
}

// PassSummary is the part of a PassReport a notification carries.
type PassSummary struct {
	ID       string  `json:"id"`
	Reason   string  `json:"reason"`
	Outcome  Outcome `json:"outcome"`
	Error    string  `json:"error,omitempty"`
	Terminal bool    `json:"terminal,omitempty"`
	Counts   Counts  `json:"counts"`
}

// webhook is a configured webhook with its URL resolved.
type webhook struct {
	name, url, format string
}

// notifier deduplicates and rate-limits notifications and delivers them to
// the webhooks, one goroutine per webhook, never blocking the loop.
type notifier struct {
	clock   Clock
	log     *slog.Logger
	client  *http.Client
	metrics *metrics

	mu      sync.Mutex
	senders map[string]*sender
	last    map[NotificationEvent]string // dedupe key of the last sent, by event
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

type sender struct {
	webhook
	queue chan Notification
	sent  []time.Time // within the window
	// droppedSince is when the sender started dropping for the rate limit;
	// zero when it is not.
	droppedSince time.Time
}

func newNotifier(clock Clock, log *slog.Logger, client *http.Client, m *metrics) *notifier {
	if client == nil {
		client = &http.Client{Timeout: NotifyTimeout}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{clock: clock, log: log, client: client, metrics: m,
		senders: map[string]*sender{}, last: map[NotificationEvent]string{}, ctx: ctx, cancel: cancel}
}

// configure replaces the webhooks. A webhook that keeps its name keeps its
// rate-limit window.
func (n *notifier) configure(hooks []webhook) {
	n.mu.Lock()
	defer n.mu.Unlock()
	keep := map[string]bool{}
	for _, h := range hooks {
		keep[h.name] = true
		old, ok := n.senders[h.name]
		if ok && old.webhook == h {
			continue
		}
		s := &sender{webhook: h, queue: make(chan Notification, notifyQueue)}
		if ok {
			close(old.queue) // its goroutine delivers what is queued, then ends
			s.sent = old.sent
		}
		n.senders[h.name] = s
		n.wg.Add(1)
		go n.deliver(s)
	}
	for name, s := range n.senders {
		if !keep[name] {
			close(s.queue)
			delete(n.senders, name)
		}
	}
}

// notify sends ev unless it repeats the last notification of its event
// (same key). A NotifyRecovered is sent only when something was notified
// since the last recovery, and clears the dedupe state.
func (n *notifier) notify(ev Notification, key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ev.Event == NotifyRecovered {
		if len(n.last) == 0 {
			return
		}
		clear(n.last)
	} else {
		if last, ok := n.last[ev.Event]; ok && last == key {
			n.metrics.notifications.WithLabelValues(string(ev.Event), "deduplicated").Inc()
			return
		}
		n.last[ev.Event] = key
	}
	now := n.clock.Now()
	for _, s := range n.senders {
		// Rate limit: at most NotifyBurst per NotifyWindow.
		kept := s.sent[:0]
		for _, t := range s.sent {
			if now.Sub(t) < NotifyWindow {
				kept = append(kept, t)
			}
		}
		s.sent = kept
		if len(s.sent) >= NotifyBurst {
			n.metrics.notifications.WithLabelValues(string(ev.Event), "rate_limited").Inc()
			if s.droppedSince.IsZero() {
				s.droppedSince = now
				n.log.Warn("webhook rate limit reached; dropping notifications for now", "webhook", s.name,
					"limit", fmt.Sprintf("%d per %s", NotifyBurst, NotifyWindow), "dropped_event", ev.Event)
			}
			continue
		}
		s.droppedSince = time.Time{}
		s.sent = append(s.sent, now)
		select {
		case s.queue <- ev:
		default:
			n.metrics.notifications.WithLabelValues(string(ev.Event), "dropped").Inc()
			n.log.Warn("webhook queue full; notification dropped", "webhook", s.name, "event", ev.Event)
		}
	}
}

// deliver posts the sender's notifications until its queue is closed.
func (n *notifier) deliver(s *sender) {
	defer n.wg.Done()
	for ev := range s.queue {
		body, err := encodeNotification(s.format, ev)
		if err != nil {
			n.log.Error("webhook notification not encoded", "webhook", s.name, "error", err)
			continue
		}
		err = n.post(s.url, body)
		result := "sent"
		if err != nil {
			result = "failed"
			// The error never shows the URL: it may hold a token.
			n.log.Warn("webhook notification failed", "webhook", s.name, "event", ev.Event, "error", err)
		}
		n.metrics.notifications.WithLabelValues(string(ev.Event), result).Inc()
	}
}

// post sends body; errors name the failure, never the URL.
func (n *notifier) post(url string, body []byte) error {
	ctx, cancel := context.WithTimeout(n.ctx, NotifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pandasync")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %s", stripURL(err))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}

// stripURL returns the cause of a client error without the URL that
// *url.Error adds.
func stripURL(err error) string {
	type urlError interface{ Unwrap() error }
	if u, ok := err.(urlError); ok && u.Unwrap() != nil {
		return u.Unwrap().Error()
	}
	return "request failed"
}

// close stops the senders, waiting up to wait for the notifications queued
// to go out; then it cancels what is in flight.
func (n *notifier) close(wait time.Duration) {
	n.mu.Lock()
	for name, s := range n.senders {
		close(s.queue)
		delete(n.senders, name)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		n.cancel()
		<-done
	}
	n.cancel()
}

// encodeNotification renders ev for a webhook format.
func encodeNotification(format string, ev Notification) ([]byte, error) {
	switch format {
	case spec.WebhookSlack:
		text := "*" + slackEscape(ev.title()) + "*"
		for _, d := range ev.Details {
			text += "\n• " + slackEscape(d)
		}
		return json.Marshal(map[string]string{"text": text})
	case spec.WebhookTeams:
		body := []map[string]any{{"type": "TextBlock", "text": ev.title(), "weight": "Bolder", "wrap": true}}
		for _, d := range ev.Details {
			body = append(body, map[string]any{"type": "TextBlock", "text": "- " + d, "wrap": true, "spacing": "None"})
		}
		facts := []map[string]string{{"title": "State", "value": string(ev.State)}}
		if !ev.NextRun.IsZero() {
			facts = append(facts, map[string]string{"title": "Next run", "value": ev.NextRun.UTC().Format(time.RFC3339) + " (" + ev.NextRunReason + ")"})
		}
		if ev.Revision != "" {
			rev := ev.Revision
			if ev.Dirty {
				rev += " (dirty)"
			}
			facts = append(facts, map[string]string{"title": "Revision", "value": rev})
		}
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
		return json.Marshal(map[string]any{
			"type": "message",
			"attachments": []map[string]any{{
				"contentType": "application/vnd.microsoft.card.adaptive",
				"content": map[string]any{
					"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
					"type":    "AdaptiveCard",
					"version": "1.4",
					"body":    body,
				},
			}},
		})
	default:
		return json.Marshal(ev)
	}
}

func (ev Notification) title() string { return "pandasync on " + ev.Host + ": " + ev.Message }

// slackEscape escapes the characters Slack's mrkdwn treats as markup.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// digest is a short, order-independent key for a set of lines.
func digest(lines []string) string {
	s := append([]string(nil), lines...)
	sort.Strings(s)
	h := sha256.New()
	for _, l := range s {
		h.Write([]byte(l))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
