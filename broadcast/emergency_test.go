package broadcast

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// An emergency session's volume reaches the receivers in its play args,
// also when a preempted device is tuned back to it.
func TestPlayArgsCarryVolume(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	h.tuner.device("d1")
	alert := &loa.Session{ID: "alert", SSRC: 0xa1, Priority: 240, Volume: 90, Devices: []string{"d1"}}
	gate := newGate(&loopSource{pkts: opusPackets(t, 3)})
	if err := h.e.Start(context.Background(), alert, gate, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alert tuned", func() bool { return h.tuner.count("tune", "d1", "alert") == 1 })
	if c, _ := h.tuner.last("tune", "d1", "alert"); c.args.Volume != 90 || c.args.Priority != 240 {
		t.Errorf("play args volume %d priority %d, want 90 and 240", c.args.Volume, c.args.Priority)
	}
	newer := &loa.Session{ID: "newer", SSRC: 0xa2, Priority: 240, Devices: []string{"d1"}}
	if err := h.e.Start(context.Background(), newer, &sliceSource{pkts: opusPackets(t, 5)}, 5); err != nil {
		t.Fatal(err)
	}
	h.ended(t, "newer")
	waitFor(t, "alert tuned back", func() bool { return h.tuner.count("tune", "d1", "alert") == 2 })
	if c, _ := h.tuner.last("tune", "d1", "alert"); c.args.Volume != 90 {
		t.Errorf("tuned back with volume %d, want 90", c.args.Volume)
	}
	if c, _ := h.tuner.last("tune", "d1", "newer"); c.args.Volume != 0 {
		t.Errorf("a session without a volume sent %d", c.args.Volume)
	}
	gate.open()
	if err := h.e.Stop(context.Background(), "alert", "done"); err != nil {
		t.Fatal(err)
	}
}

// Tunes to an emergency session are not held to the normal bound on
// commands in flight: an alert reaches a province at once.
func TestEmergencyTunesAllInFlight(t *testing.T) {
	const n = tuneConcurrency + 72
	for _, prio := range []loa.Priority{loa.PriorityNormal, loa.PriorityEmergency} {
		h := newHarness(t, "127.0.0.1:0")
		release := make(chan struct{})
		var mu sync.Mutex
		inFlight, most := 0, 0
		devs := make([]string, n)
		for i := range devs {
			devs[i] = fmt.Sprintf("d%03d", i)
			h.tuner.on(devs[i], func(ctx context.Context, _ protocol.PlayArgs) error {
				mu.Lock()
				inFlight++
				most = max(most, inFlight)
				mu.Unlock()
				select {
				case <-release:
				case <-ctx.Done():
				}
				mu.Lock()
				inFlight--
				mu.Unlock()
				return ctx.Err()
			})
		}
		id := fmt.Sprintf("s%d", prio)
		h.start(t, id, prio, 0x5000+uint32(prio), &loopSource{pkts: opusPackets(t, 3)}, 0, devs...)
		want := tuneConcurrency
		if prio.Emergency() {
			want = n
		}
		waitFor(t, fmt.Sprintf("%d tunes in flight at priority %d", want, prio), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return inFlight == want
		})
		time.Sleep(50 * time.Millisecond) // no more may start
		mu.Lock()
		got := most
		mu.Unlock()
		if got != want {
			t.Errorf("priority %d: %d tunes in flight at most, want %d", prio, got, want)
		}
		close(release)
		if err := h.e.Stop(context.Background(), id, "done"); err != nil {
			t.Fatal(err)
		}
	}
}
