package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
)

func change(i int) loa.AlarmChange {
	return loa.AlarmChange{Event: loa.AlarmRaised, Alarm: loa.Alarm{ID: fmt.Sprint(i), Device: "rx", Kind: loa.AlarmOffline}}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// Deliveries keep their order, a 5xx is retried, a 4xx is not.
func TestAlarmWebhookRetriesInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c loa.AlarmChange
		json.NewDecoder(r.Body).Decode(&c)
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch {
		case c.Alarm.ID == "1" && calls == 1:
			w.WriteHeader(http.StatusBadGateway) // retried
		case c.Alarm.ID == "2":
			w.WriteHeader(http.StatusBadRequest) // the receiver refuses it: not retried
		default:
			got = append(got, c.Alarm.ID)
		}
	}))
	defer srv.Close()
	w, err := newAlarmWebhook(srv.URL, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	w.retry = time.Millisecond
	defer w.Close()
	for i := 1; i <= 3; i++ {
		w.Enqueue(change(i))
	}
	loatest.Eventually(t, loatest.Wait, func() bool { return counterValue(w.sent)+counterValue(w.failed) == 3 }, "deliveries")
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[1 3]" || calls != 4 || counterValue(w.failed) != 1 {
		t.Errorf("delivered %v in %d calls, failed %v; want [1 3] in 4 calls (1 retried, 2 refused)", got, calls, counterValue(w.failed))
	}
}

// A webhook that hangs never blocks Enqueue: the queue keeps the newest
// changes and counts the oldest it drops.
func TestAlarmWebhookQueueDropsOldest(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c loa.AlarmChange
		json.NewDecoder(r.Body).Decode(&c)
		<-release
		mu.Lock()
		got = append(got, c.Alarm.ID)
		mu.Unlock()
	}))
	defer srv.Close()
	w, err := newAlarmWebhook(srv.URL, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Enqueue(change(0))
	loatest.Eventually(t, loatest.Wait, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.queue) == 0
	}, "the first post in flight")
	for i := 1; i <= webhookQueue+5; i++ { // returns at once although the receiver hangs
		w.Enqueue(change(i))
	}
	if d := counterValue(w.dropped); d != 5 {
		t.Errorf("dropped %v, want 5", d)
	}
	close(release)
	loatest.Eventually(t, loatest.Wait, func() bool { return counterValue(w.sent) == webhookQueue+1 }, "the queue drained")
	mu.Lock()
	defer mu.Unlock()
	if got[0] != "0" || got[1] != "6" || got[len(got)-1] != fmt.Sprint(webhookQueue+5) {
		t.Errorf("delivered %v … %v, want 0, then 6 (1–5 dropped) through %d", got[:2], got[len(got)-1], webhookQueue+5)
	}
}

func TestAlarmWebhookURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "::"} {
		if _, err := newAlarmWebhook(u, testLogger(t)); err == nil {
			t.Errorf("webhook URL %q accepted", u)
		}
	}
}
