package station

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa"
)

// Webhook limits.
const (
	webhookQueue      = 1000             // changes waiting; beyond it the oldest is dropped
	webhookAttempts   = 6                // per change: 1 + 5 retries
	webhookFirstRetry = time.Second      // doubled after each failure
	webhookMaxBackoff = 30 * time.Second // cap of the doubling
	webhookTimeout    = 10 * time.Second // one POST
)

// AlarmWebhook POSTs every alarm raise and clear, as JSON
// {"event":"raised"|"cleared","alarm":{...}}, to one URL. Enqueue never
// blocks the alarm evaluator: changes wait in a bounded queue (the oldest
// dropped and counted when it is full), and one sender goroutine delivers
// them in order, retrying failures (network errors, 5xx, 429) with backoff.
type AlarmWebhook struct {
	url    string
	client *http.Client
	log    *slog.Logger

	mu     sync.Mutex
	queue  []loa.AlarmChange
	wake   chan struct{}
	closed bool

	stop    chan struct{}
	stopped chan struct{}

	sent, failed, dropped prometheus.Counter
}

// WebhookConfig configures an AlarmWebhook.
type WebhookConfig struct {
	URL    string       // http:// or https://
	Client *http.Client // nil: one with a 10 s timeout per POST
	Logger *slog.Logger
}

// NewAlarmWebhook validates the URL and starts the sender; Close stops it.
func NewAlarmWebhook(cfg WebhookConfig) (*AlarmWebhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alarm-webhook %q: want an http:// or https:// URL", cfg.URL)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: webhookTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &AlarmWebhook{url: cfg.URL, client: cfg.Client, log: cfg.Logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "loa_alarm_webhook_sent_total",
			Help: "Alarm changes the webhook accepted (2xx)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "loa_alarm_webhook_failed_total",
			Help: "Alarm changes given up after every retry or refused with a 4xx."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "loa_alarm_webhook_dropped_total",
			Help: "Alarm changes dropped, oldest first, because the webhook queue was full."}),
	}
	go w.run()
	return w, nil
}

// Enqueue queues a change for delivery without blocking.
func (w *AlarmWebhook) Enqueue(c loa.AlarmChange) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	if len(w.queue) >= webhookQueue {
		w.queue = w.queue[1:]
		w.dropped.Inc()
	}
	w.queue = append(w.queue, c)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *AlarmWebhook) next() (loa.AlarmChange, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return loa.AlarmChange{}, false
	}
	c := w.queue[0]
	w.queue = w.queue[1:]
	return c, true
}

func (w *AlarmWebhook) run() {
	defer close(w.stopped)
	for {
		for c, ok := w.next(); ok; c, ok = w.next() {
			if !w.deliver(c) {
				return // stopping
			}
		}
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
	}
}

// deliver POSTs one change with retries; it reports false when Close
// interrupted it.
func (w *AlarmWebhook) deliver(c loa.AlarmChange) bool {
	body, err := json.Marshal(c)
	if err != nil {
		w.log.Error("alarm webhook: encoding", "err", err)
		return true
	}
	wait := webhookFirstRetry
	for attempt := 1; ; attempt++ {
		retry, err := w.post(body)
		if err == nil {
			w.sent.Inc()
			return true
		}
		if !retry || attempt == webhookAttempts {
			w.failed.Inc()
			w.log.Error("alarm webhook: giving up on a change", "event", c.Event, "device", c.Alarm.Device,
				"kind", c.Alarm.Kind, "attempts", attempt, "err", err)
			return true
		}
		w.log.Warn("alarm webhook: delivery failed; retrying", "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-w.stop:
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, webhookMaxBackoff)
	}
}

// post sends body once; retry says whether a failure may succeed later.
func (w *AlarmWebhook) post(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "loa-alarm-webhook/1")
	resp, err := w.client.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("HTTP %d", resp.StatusCode)
	default:
		return false, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
}

// Close stops the sender; changes still queued are not delivered.
func (w *AlarmWebhook) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.stopped
}

// Collectors returns the webhook's counters.
func (w *AlarmWebhook) Collectors() []prometheus.Collector {
	return []prometheus.Collector{w.sent, w.failed, w.dropped}
}
