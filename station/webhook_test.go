package station

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/loa-broadcast/loa"
)

func alarmChange(i int) loa.AlarmChange {
	return loa.AlarmChange{Event: loa.AlarmRaised, Alarm: loa.Alarm{ID: fmt.Sprint(i), Device: "rx", Kind: loa.AlarmOffline}}
}

func counted(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// fakeSink is the user's webhook receiver as an in-memory transport, so
// the sender runs inside a synctest bubble on its fake clock. answer
// returns the status for each POST, in arrival order.
type fakeSink struct {
	answer func(c loa.AlarmChange, call int) int

	mu    sync.Mutex
	calls []sinkCall
}

type sinkCall struct {
	at     time.Time
	change loa.AlarmChange
	status int
}

func (s *fakeSink) RoundTrip(r *http.Request) (*http.Response, error) {
	var c loa.AlarmChange
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		return nil, err
	}
	s.mu.Lock()
	call := len(s.calls) + 1
	s.mu.Unlock()
	code := s.answer(c, call)
	s.mu.Lock()
	s.calls = append(s.calls, sinkCall{at: time.Now(), change: c, status: code})
	s.mu.Unlock()
	return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
}

// accepted lists the ids the sink answered 2xx, in order.
func (s *fakeSink) accepted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, c := range s.calls {
		if c.status < 300 {
			ids = append(ids, c.change.Alarm.ID)
		}
	}
	return ids
}

func (s *fakeSink) webhook(t *testing.T) *AlarmWebhook {
	t.Helper()
	w, err := NewAlarmWebhook(WebhookConfig{URL: "http://sink.invalid/hook", Client: &http.Client{Transport: s}, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Deliveries keep their order, a 5xx is retried after the first backoff,
// a 4xx is not retried.
func TestAlarmWebhookRetriesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &fakeSink{answer: func(c loa.AlarmChange, call int) int {
			switch {
			case c.Alarm.ID == "1" && call == 1:
				return http.StatusBadGateway // retried
			case c.Alarm.ID == "2":
				return http.StatusBadRequest // the receiver refuses it: not retried
			}
			return http.StatusNoContent
		}}
		w := sink.webhook(t)
		defer w.Close()
		start := time.Now()
		for i := 1; i <= 3; i++ {
			w.Enqueue(alarmChange(i))
		}
		time.Sleep(time.Minute) // on the bubble's clock: every retry falls due
		synctest.Wait()
		if got := sink.accepted(); fmt.Sprint(got) != "[1 3]" || len(sink.calls) != 4 {
			t.Errorf("delivered %v in %d calls, want [1 3] in 4 (1 retried, 2 refused)", got, len(sink.calls))
		}
		if s, f := counted(t, w.sent), counted(t, w.failed); s != 2 || f != 1 {
			t.Errorf("sent %v failed %v, want 2 and 1", s, f)
		}
		if d := sink.calls[1].at.Sub(start); d != webhookFirstRetry {
			t.Errorf("the 502 was retried after %v, want %v", d, webhookFirstRetry)
		}
	})
}

// A sink failing every time gets webhookAttempts tries with doubling
// waits, then the change counts as failed and the next one goes.
func TestAlarmWebhookBackoffThenGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &fakeSink{answer: func(c loa.AlarmChange, call int) int {
			if c.Alarm.ID == "1" {
				if call%2 == 0 {
					return http.StatusTooManyRequests
				}
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}}
		w := sink.webhook(t)
		defer w.Close()
		w.Enqueue(alarmChange(1))
		w.Enqueue(alarmChange(2))
		time.Sleep(5 * time.Minute) // on the bubble's clock
		synctest.Wait()
		if len(sink.calls) != webhookAttempts+1 {
			t.Fatalf("%d calls, want %d attempts for change 1 and one for change 2", len(sink.calls), webhookAttempts+1)
		}
		want := webhookFirstRetry
		for i := 1; i < webhookAttempts; i++ {
			if gap := sink.calls[i].at.Sub(sink.calls[i-1].at); gap != want {
				t.Errorf("wait before attempt %d: %v, want %v", i+1, gap, want)
			}
			want = min(2*want, webhookMaxBackoff)
		}
		if last := sink.calls[webhookAttempts]; last.change.Alarm.ID != "2" || !last.at.Equal(sink.calls[webhookAttempts-1].at) {
			t.Errorf("after giving up: %+v, want change 2 at once", last)
		}
		if s, f := counted(t, w.sent), counted(t, w.failed); s != 1 || f != 1 {
			t.Errorf("sent %v failed %v, want 1 and 1", s, f)
		}
	})
}

// A webhook that hangs never blocks Enqueue: the queue keeps the newest
// changes and counts the oldest it drops.
func TestAlarmWebhookQueueDropsOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		sink := &fakeSink{answer: func(loa.AlarmChange, int) int {
			<-release
			return http.StatusOK
		}}
		w := sink.webhook(t)
		defer w.Close()
		w.Enqueue(alarmChange(0))
		synctest.Wait() // change 0 is in flight, the queue empty

		// Each Enqueue returns at once although the receiver hangs.
		for i := 1; i <= webhookQueue+5; i++ {
			w.Enqueue(alarmChange(i))
		}
		if d := counted(t, w.dropped); d != 5 {
			t.Errorf("dropped %v, want 5", d)
		}
		close(release)
		synctest.Wait()
		if s := counted(t, w.sent); s != webhookQueue+1 {
			t.Fatalf("sent %v, want %d", s, webhookQueue+1)
		}
		got := sink.accepted()
		if got[0] != "0" || got[1] != "6" || got[len(got)-1] != fmt.Sprint(webhookQueue+5) {
			t.Errorf("delivered %v … %v, want 0, then 6 (1–5 dropped) through %d", got[:2], got[len(got)-1], webhookQueue+5)
		}
	})
}

// Close interrupts a POST in flight and a retry wait alike, and later
// changes are ignored.
func TestAlarmWebhookCloseInterrupts(t *testing.T) {
	for name, tr := range map[string]http.RoundTripper{
		"posting":  hangingSink{},
		"retrying": &fakeSink{answer: func(loa.AlarmChange, int) int { return http.StatusInternalServerError }},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w, err := NewAlarmWebhook(WebhookConfig{URL: "https://sink.invalid/", Client: &http.Client{Transport: tr}, Logger: quietLogger(t)})
				if err != nil {
					t.Fatal(err)
				}
				w.Enqueue(alarmChange(1))
				w.Enqueue(alarmChange(2))
				synctest.Wait() // in the POST, or waiting to retry
				w.Close()
				w.Enqueue(alarmChange(3))
				if sink, ok := tr.(*fakeSink); ok && len(sink.calls) != 1 {
					t.Errorf("%d calls before Close, want 1", len(sink.calls))
				}
				if s, f := counted(t, w.sent), counted(t, w.failed); s != 0 || f != 0 {
					t.Errorf("sent %v failed %v after Close, want nothing settled", s, f)
				}
				w.mu.Lock()
				defer w.mu.Unlock()
				if len(w.queue) != 1 {
					t.Errorf("queue %v after Close, want change 2 left undelivered and 3 refused", w.queue)
				}
			})
		})
	}
}

// hangingSink answers only when the request is cancelled.
type hangingSink struct{}

func (hangingSink) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

func TestAlarmWebhookURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "::"} {
		if _, err := NewAlarmWebhook(WebhookConfig{URL: u}); err == nil {
			t.Errorf("webhook URL %q accepted", u)
		}
	}
}

// Over real HTTP: a JSON body with its content type.
func TestAlarmWebhookPostsJSON(t *testing.T) {
	type post struct {
		ctype, agent string
		change       loa.AlarmChange
	}
	got := make(chan post, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p post
		p.ctype, p.agent = r.Header.Get("Content-Type"), r.Header.Get("User-Agent")
		if err := json.NewDecoder(r.Body).Decode(&p.change); err != nil {
			t.Error(err)
		}
		got <- p
	}))
	defer srv.Close()
	w, err := NewAlarmWebhook(WebhookConfig{URL: srv.URL, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Enqueue(alarmChange(7))
	p := <-got
	if p.ctype != "application/json" || p.agent != "loa-alarm-webhook/1" || p.change != alarmChange(7) {
		t.Errorf("posted %+v", p)
	}
}
