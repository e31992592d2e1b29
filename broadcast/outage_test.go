package broadcast

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// unreachableErr is what the fleet returns for a receiver it cannot reach
// now (offline, or its broker link down).
type unreachableErr struct{}

func (unreachableErr) Error() string     { return "device dev-1: not connected to the mqtt broker" }
func (unreachableErr) Unreachable() bool { return true }

// A tune to a receiver out of reach is not failed: it waits, and is sent
// again until the receiver is back, then the receiver plays.
func TestUnreachableTuneWaitsAndRetries(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.device("dev-1")
	var down atomic.Bool
	down.Store(true)
	h.tuner.on("dev-1", func(ctx context.Context, args protocol.PlayArgs) error {
		if down.Load() {
			return loa.Errorf(loa.EUNAVAILABLE, "x") // a plain refusal would be final
		}
		r.authenticate(t, "dev-1", args)
		return nil
	})
	// First make sure a plain EUNAVAILABLE is final (no retry).
	h.start(t, "plain", loa.PriorityNormal, 41, &loopSource{pkts: opusPackets(t, 10)}, 0, "dev-1")
	waitFor(t, "plain refusal failed", func() bool { return h.deviceState("plain", "dev-1") == DeviceFailed })
	if err := h.e.Stop(context.Background(), "plain", "test"); err != nil {
		t.Fatal(err)
	}
	h.ended(t, "plain")

	h.tuner.on("dev-1", func(ctx context.Context, args protocol.PlayArgs) error {
		if down.Load() {
			return wrapped(unreachableErr{})
		}
		r.authenticate(t, "dev-1", args)
		return nil
	})
	h.start(t, "s", loa.PriorityNormal, 42, &loopSource{pkts: opusPackets(t, 10)}, 0, "dev-1")
	waitFor(t, "waiting", func() bool { return h.deviceState("s", "dev-1") == DeviceWaiting })
	waitFor(t, "a retry", func() bool { return h.tuner.count("tune", "dev-1", "s") >= 2 })
	down.Store(false)
	waitFor(t, "tuned once back", func() bool { return h.deviceState("s", "dev-1") == DeviceTuned })
	r.rtpOf(t, 42) // and it plays
}

// The retries end with the session: nothing is tuned to a session that
// has stopped.
func TestUnreachableTuneEndsWithItsSession(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	h.tuner.device("dev-1")
	h.tuner.on("dev-1", func(ctx context.Context, args protocol.PlayArgs) error { return unreachableErr{} })
	h.start(t, "s", loa.PriorityNormal, 43, &loopSource{pkts: opusPackets(t, 10)}, 0, "dev-1")
	waitFor(t, "a retry", func() bool { return h.tuner.count("tune", "dev-1", "s") >= 2 })
	if err := h.e.Stop(context.Background(), "s", "test"); err != nil {
		t.Fatal(err)
	}
	h.ended(t, "s")
	waitFor(t, "the device's commands done", func() bool {
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		return h.e.devices["dev-1"] == nil
	})
	n := h.tuner.count("tune", "dev-1", "s")
	if err := h.e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := h.tuner.count("tune", "dev-1", "s"); got != n {
		t.Errorf("tuned %d more times after the session ended", got-n)
	}
}

func wrapped(err error) error { return errors.Join(loa.Errorf(loa.EUNAVAILABLE, "unreachable"), err) }

// Packet 0 is not held back for a receiver out of reach: the others hear
// the session from its start, and it joins when it is back.
func TestUnreachableReceiverDoesNotHoldTheLead(t *testing.T) {
	h := newHarnessConfig(t, Config{Bind: "127.0.0.1:0", Lead: time.Hour})
	ok := h.tuner.device("ok")
	h.tuner.device("gone")
	h.tuner.on("gone", func(ctx context.Context, args protocol.PlayArgs) error { return unreachableErr{} })
	h.start(t, "s", loa.PriorityNormal, 44, &loopSource{pkts: opusPackets(t, 10)}, 0, "ok", "gone")
	ok.rtpOf(t, 44)
	if st := h.deviceState("s", "gone"); st != DeviceWaiting {
		t.Errorf("gone = %q, want %q", st, DeviceWaiting)
	}
}
