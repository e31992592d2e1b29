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

// A receiver out of reach when its session is stopped gets the untune
// once it is back; a newer tune of the device makes a pending one moot.
func TestUnreachableUntuneWaitsAndRetries(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	h.tuner.device("dev-1")
	var down atomic.Bool
	var delivered atomic.Int32
	h.tuner.onUntune("dev-1", func(ctx context.Context, session string) error {
		if down.Load() {
			return wrapped(unreachableErr{})
		}
		delivered.Add(1)
		return nil
	})
	h.start(t, "s", loa.PriorityNormal, 45, &loopSource{pkts: opusPackets(t, 10)}, 0, "dev-1")
	waitFor(t, "tuned", func() bool { return h.deviceState("s", "dev-1") == DeviceTuned })
	down.Store(true)
	if err := h.e.Stop(context.Background(), "s", "test"); err != nil {
		t.Fatal(err)
	}
	h.ended(t, "s")
	waitFor(t, "the untune retried", func() bool { return h.tuner.count("untune", "dev-1", "s") >= 2 })
	down.Store(false)
	waitFor(t, "the untune delivered once back", func() bool { return delivered.Load() == 1 })
	waitFor(t, "the device's commands done", func() bool {
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		return h.e.devices["dev-1"] == nil
	})

	// Out of reach again: a new session tuning the device supersedes the
	// pending untune of the one stopped before it.
	down.Store(true)
	h.start(t, "s2", loa.PriorityNormal, 46, &loopSource{pkts: opusPackets(t, 10)}, 0, "dev-1")
	waitFor(t, "s2 tuned", func() bool { return h.deviceState("s2", "dev-1") == DeviceTuned })
	if err := h.e.Stop(context.Background(), "s2", "test"); err != nil {
		t.Fatal(err)
	}
	h.ended(t, "s2")
	waitFor(t, "the s2 untune retried", func() bool { return h.tuner.count("untune", "dev-1", "s2") >= 2 })
	h.start(t, "s3", loa.PriorityNormal, 47, &loopSource{pkts: opusPackets(t, 10)}, 0, "dev-1")
	waitFor(t, "s3 tuned", func() bool { return h.deviceState("s3", "dev-1") == DeviceTuned })
	waitFor(t, "the s2 untune given up", func() bool {
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		d := h.e.devices["dev-1"]
		return d != nil && d.pending == 0
	})
	n := h.tuner.count("untune", "dev-1", "s2")
	if err := h.e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := h.tuner.count("untune", "dev-1", "s2"); got != n {
		t.Errorf("s2 untuned %d more times after s3 took the device", got-n)
	}
	if delivered.Load() != 1 {
		t.Errorf("%d untunes delivered, want 1", delivered.Load())
	}
}
