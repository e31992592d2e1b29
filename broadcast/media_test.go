package broadcast

import (
	"bytes"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
)

// A stored programme (Ogg Opus from the media store) reaches a receiver
// packet for packet, and what arrives decodes.
func TestStreamsAStoredProgramme(t *testing.T) {
	const frames = 30
	pkts := opusPackets(t, frames)
	var ogg bytes.Buffer
	w := media.NewOggWriter(&ogg, 312)
	for _, p := range pkts {
		if err := w.WritePacket(p, 960); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	src, err := media.NewPacketReader(&ogg)
	if err != nil {
		t.Fatal(err)
	}

	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.device("d")
	gate := newGate(src)
	h.start(t, "prog", loa.PriorityNormal, 61, gate, frames, "d")
	waitFor(t, "authenticated", func() bool { return h.authenticated("prog") == 1 })
	gate.open()
	s := r.untilBye(t, 61)
	if e := h.ended(t, "prog"); e.state != loa.SessionEnded {
		t.Errorf("ended %+v", e)
	}
	if len(s.rtp) != frames {
		t.Fatalf("%d of %d packets arrived", len(s.rtp), frames)
	}
	var got [][]byte
	for i, p := range s.rtp {
		k := frames - len(s.rtp) + i
		if !bytes.Equal(p.Payload, pkts[k]) {
			t.Fatalf("packet %d differs from the file's packet %d", i, k)
		}
		got = append(got, p.Payload)
	}
	pcm, err := media.DecodePackets(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(pcm) != len(got)*960 {
		t.Errorf("decoded %d samples from %d packets", len(pcm), len(got))
	}
}
