package broadcast

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

func TestHigherPriorityPreemptsAndReturnsDevices(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	ra, _, rc := h.tuner.device("a"), h.tuner.device("b"), h.tuner.device("c")
	h.start(t, "music", 40, 100, &loopSource{pkts: opusPackets(t, 10)}, 0, "a", "b", "c")
	waitFor(t, "music tuned", func() bool {
		st := h.status(t, "music")
		return st.Devices["a"].State == DeviceTuned && st.Devices["b"].State == DeviceTuned &&
			st.Devices["c"].State == DeviceTuned
	})
	ra.rtpOf(t, 100)
	first, _ := h.tuner.last("tune", "a", "music")

	const alertFrames = 25
	gate := newGate(&sliceSource{pkts: opusPackets(t, alertFrames)})
	h.start(t, "bulletin", loa.PriorityHigh, 200, gate, alertFrames, "a", "b")
	st := h.status(t, "music")
	if st.Devices["a"].State != DevicePreempted || st.Devices["b"].State != DevicePreempted {
		t.Errorf("music after bulletin start: %+v", st.Devices)
	}
	if st.Devices["c"].State != DeviceTuned {
		t.Errorf("c, not targeted by the bulletin, is %q", st.Devices["c"].State)
	}
	waitFor(t, "tune a to bulletin", func() bool { return h.tuner.count("tune", "a", "bulletin") == 1 })
	if args, ok := h.tuner.last("tune", "a", "bulletin"); !ok || args.args.Priority != uint8(loa.PriorityHigh) || args.args.Frames != alertFrames {
		t.Errorf("tune a to bulletin: %+v, %v", args, ok)
	}

	// a hears all of the bulletin.
	waitFor(t, "a and b on the bulletin", func() bool { return h.authenticated("bulletin") == 2 })
	gate.open()
	s := ra.untilBye(t, 200)
	if len(s.rtp) != alertFrames {
		t.Fatalf("a got %d of %d bulletin packets", len(s.rtp), alertFrames)
	}
	h.ended(t, "bulletin")
	// Then a and b go back to the music, with the same credentials.
	waitFor(t, "a and b retuned to music", func() bool {
		return h.tuner.count("tune", "a", "music") == 2 && h.tuner.count("tune", "b", "music") == 2
	})
	again, _ := h.tuner.last("tune", "a", "music")
	if again.args != first.args {
		t.Errorf("retune args %+v, first %+v", again.args, first.args)
	}
	if n := h.tuner.count("tune", "c", "bulletin") + h.tuner.count("tune", "c", "music"); n != 1 {
		t.Errorf("c was tuned %d times, want once", n)
	}
	if h.tuner.count("untune", "a", "bulletin") != 0 {
		t.Error("a bulletin that ended by itself untuned its devices")
	}
	waitFor(t, "a plays music", func() bool { return h.deviceState("music", "a") == DeviceTuned })
	p := ra.rtpOf(t, 100)
	if q := ra.rtpOf(t, 100); q.SequenceNumber != p.SequenceNumber+1 {
		t.Errorf("music after return: %d after %d", q.SequenceNumber, p.SequenceNumber)
	}
	if rc.countRTP() == 0 {
		t.Error("c stopped getting the music")
	}
}

func TestLowerPriorityWaits(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	ra := h.tuner.device("a")
	h.start(t, "alert", 230, 1, &loopSource{pkts: opusPackets(t, 10)}, 0, "a")
	h.start(t, "music", 40, 2, &loopSource{pkts: opusPackets(t, 10)}, 0, "a")
	if st := h.deviceState("music", "a"); st != DevicePreempted {
		t.Errorf("music on a: %q", st)
	}
	ra.rtpOf(t, 1)
	if err := h.e.Stop(context.Background(), "alert", "all clear"); err != nil {
		t.Fatal(err)
	}
	// The stopped alert is untuned, then the music tuned, in that order.
	waitFor(t, "music tuned on a", func() bool { return h.tuner.count("tune", "a", "music") == 1 })
	h.tuner.mu.Lock()
	var ops []string
	for _, c := range h.tuner.calls {
		ops = append(ops, c.op+" "+c.session)
	}
	h.tuner.mu.Unlock()
	if want := []string{"tune alert", "untune alert", "tune music"}; len(ops) != 3 || ops[0] != want[0] || ops[1] != want[1] || ops[2] != want[2] {
		t.Errorf("calls %v, want %v", ops, want)
	}
	ra.rtpOf(t, 2)
}

func TestEqualPriority(t *testing.T) {
	cases := []struct {
		name   string
		prio   loa.Priority
		winner string
	}{
		{"normal band: the playing session keeps the device", 64, "first"},
		{"priority band: the playing session keeps the device", 150, "first"},
		{"emergency band: the newest wins", 240, "second"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, "127.0.0.1:0")
			r := h.tuner.device("a")
			h.start(t, "first", c.prio, 1, &loopSource{pkts: opusPackets(t, 10)}, 0, "a")
			h.start(t, "second", c.prio, 2, &loopSource{pkts: opusPackets(t, 10)}, 0, "a")
			loser := map[string]string{"first": "second", "second": "first"}[c.winner]
			if st := h.deviceState(loser, "a"); st != DevicePreempted {
				t.Errorf("%s on a: %q", loser, st)
			}
			waitFor(t, "winner tuned", func() bool { return h.deviceState(c.winner, "a") == DeviceTuned })
			if c.winner == "first" && h.tuner.count("tune", "a", "second") != 0 {
				t.Error("the second session was tuned")
			}
			ssrc := map[string]uint32{"first": 1, "second": 2}[c.winner]
			// Everything a gets from now on is the winner's.
			r.countRTP()
			for range 5 {
				if p := r.rtpOf(t, ssrc); p.SSRC != ssrc {
					t.Fatal("unreachable")
				}
			}
			if n := countSSRC(t, r, map[string]uint32{"first": 1, "second": 2}[loser]); n != 0 {
				t.Errorf("a got %d packets of the loser", n)
			}
			// When the winner stops, a goes to the other.
			if err := h.e.Stop(context.Background(), c.winner, ""); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "loser tuned", func() bool { return h.deviceState(loser, "a") == DeviceTuned })
		})
	}
}

// countSSRC drains what has arrived and counts RTP packets of ssrc.
func countSSRC(t *testing.T, r *receiver, ssrc uint32) int {
	n := 0
	for {
		select {
		case b := <-r.in:
			if !isRTCP(b) && len(b) >= 12 && uint32(b[8])<<24|uint32(b[9])<<16|uint32(b[10])<<8|uint32(b[11]) == ssrc {
				n++
			}
		default:
			return n
		}
	}
}

func TestSuccessorChoice(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	h.tuner.device("a")
	src := func() Source { return &loopSource{pkts: opusPackets(t, 2)} }
	// Two normal sessions wait under an alert; the older of them gets a back.
	h.start(t, "alert", 240, 1, src(), 0, "a")
	h.start(t, "old", 64, 2, src(), 0, "a")
	h.start(t, "new", 64, 3, src(), 0, "a")
	h.start(t, "low", 40, 4, src(), 0, "a")
	if err := h.e.Stop(context.Background(), "alert", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "old tuned", func() bool { return h.deviceState("old", "a") == DeviceTuned })
	for _, s := range []string{"new", "low"} {
		if st := h.deviceState(s, "a"); st != DevicePreempted {
			t.Errorf("%s: %q", s, st)
		}
	}
	// Two emergencies wait under a stronger one; the newer gets a back.
	h.start(t, "e1", 230, 5, src(), 0, "a")
	h.start(t, "e2", 230, 6, src(), 0, "a") // newest wins: takes a from e1
	h.start(t, "top", 250, 7, src(), 0, "a")
	h.start(t, "e3", 230, 8, src(), 0, "a") // waits under top
	if err := h.e.Stop(context.Background(), "top", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "e3 tuned", func() bool { return h.deviceState("e3", "a") == DeviceTuned })
}

func TestPlayArgs(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	h.tuner.device("a")
	h.start(t, "s", 77, 0xabc, &loopSource{pkts: opusPackets(t, 2)}, 500, "a")
	waitFor(t, "tune", func() bool { return h.tuner.count("tune", "a", "s") == 1 })
	c, _ := h.tuner.last("tune", "a", "s")
	a := c.args
	if a.Addr != h.e.PublicAddr() || a.SSRC != 0xabc || a.PT != protocol.PayloadType || a.RecvSSRC == 0 ||
		a.DelayMs != int(protocol.DefaultDelay.Milliseconds()) || a.Priority != 77 || a.Frames != 500 {
		t.Errorf("args %+v", a)
	}
	if _, err := protocol.DecodePlayArgs(mustJSON(t, a)); err != nil {
		t.Errorf("the receiver would refuse: %v", err)
	}
	if h.e.PublicAddr() != h.e.LocalAddr().String() {
		t.Errorf("public %s, local %s", h.e.PublicAddr(), h.e.LocalAddr())
	}
}
