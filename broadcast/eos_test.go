package broadcast

import (
	"context"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// The end of a stream reaches every receiver ByeRepeats times, each copy
// sealed anew for an SRTP receiver (its replay window takes them all), with
// a Sender Report at the frame after the last one sent; the play said
// where that last frame is (end_frame), and every Sender Report's packet
// count is the index of its frame.
func TestByeRepeatedWithTheEndPosition(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	plain, sealed := h.tuner.device("p"), h.tuner.srtpDevice("s")
	const frames, ssrc = 12, 0xe05
	gate := newGate(&sliceSource{pkts: opusPackets(t, frames)})
	h.start(t, "s1", loa.PriorityNormal, ssrc, gate, frames, "p", "s")
	waitFor(t, "receivers authenticated", func() bool { return h.authenticated("s1") == 2 })
	for _, d := range []string{"p", "s"} {
		if c, _ := h.tuner.last("tune", d, "s1"); c.args.EndFrame != frames-1 {
			t.Errorf("%s: end_frame %d, want %d", d, c.args.EndFrame, frames-1)
		}
	}
	gate.open()
	if e := h.ended(t, "s1"); e.state != loa.SessionEnded {
		t.Errorf("ended = %+v", e)
	}
	for name, r := range map[string]*receiver{"p": plain, "s": sealed} {
		var ts0 uint32
		seen, byes := false, 0
		for byes < protocol.ByeRepeats {
			b := r.next(t)
			var pkt *rtp.Packet
			var pkts []rtcp.Packet
			var err error
			if name == "s" {
				pkt, pkts, err = r.srtp(t).open(b)
			} else if isRTCP(b) {
				pkts, err = rtcp.Unmarshal(b)
			} else {
				pkt = &rtp.Packet{}
				err = pkt.Unmarshal(b)
			}
			if err != nil {
				t.Fatalf("%s: datagram %d: %v", name, byes, err)
			}
			if pkt != nil {
				if !seen {
					ts0, seen = pkt.Timestamp, true
				}
				continue
			}
			var sr *rtcp.SenderReport
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.SenderReport:
					sr = p
				case *rtcp.Goodbye:
					byes++
					if sr == nil || !seen || sr.RTPTime != ts0+frames*protocol.FrameSamples || sr.PacketCount != frames {
						t.Errorf("%s: BYE %d with report %+v, want at frame %d", name, byes, sr, frames)
					}
				}
			}
			if sr != nil && seen && sr.PacketCount != (sr.RTPTime-ts0)/protocol.FrameSamples {
				t.Errorf("%s: report %+v counts %d packets at frame %d", name, sr, sr.PacketCount,
					(sr.RTPTime-ts0)/protocol.FrameSamples)
			}
		}
	}
}

// end_frame is the last frame the session sends: none for a live one,
// the last before its maximum duration when that comes first.
func TestEndFrameInThePlay(t *testing.T) {
	for _, c := range []struct {
		name   string
		frames int
		maxDur int // in frames; 0: the default
		want   int
	}{
		{"live", 0, 0, 0},
		{"programme", 500, 0, 499},
		{"cut by max duration", 500, 100, 99},
		{"max duration longer", 50, 100, 49},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, "127.0.0.1:0")
			h.tuner.device("d")
			s := &loa.Session{ID: "s", SSRC: 7, Priority: loa.PriorityNormal, Devices: []string{"d"},
				MaxDuration: protocol.FrameDuration * time.Duration(c.maxDur)}
			if err := h.e.Start(context.Background(), s, &loopSource{pkts: opusPackets(t, 1)}, c.frames); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "tuned", func() bool { return h.tuner.count("tune", "d", "s") == 1 })
			if got, _ := h.tuner.last("tune", "d", "s"); got.args.EndFrame != c.want {
				t.Errorf("end_frame %d, want %d", got.args.EndFrame, c.want)
			}
		})
	}
}
