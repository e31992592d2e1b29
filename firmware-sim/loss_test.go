package firmwaresim

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa/loatest"
)

// SetLoss acts on the playing session: all of a burst's packets are
// dropped, and none before or after it.
func TestSetLossBurstInSession(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	const frames = 150
	st := newStreamer(t, "s1", frames)
	playSession(t, rec, st, "rx1", 1)
	order := seq(frames)
	st.stream(context.Background(), order[:50])
	loatest.Eventually(t, waitLimit, func() bool { s, _ := r.Session("s1"); return s.Received >= 50 }, "the first 50 packets received")
	r.SetLoss(1)
	st.stream(context.Background(), order[50:100])
	r.SetLoss(0)
	st.stream(context.Background(), order[100:])
	st.bye()
	stats := waitDone(t, r, "s1")
	// The burst's last packets may still wait in the socket when it ends;
	// most of its 50 cannot.
	if stats.Received < 100 || stats.Received > 140 || stats.Lost == 0 {
		t.Errorf("received %d and lost %d of %d packets, 50 in a burst of total loss: want 100..140 received", stats.Received, stats.Lost, frames)
	}
}
