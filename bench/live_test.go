package bench

import (
	"testing"
	"time"

	"github.com/hraban/opus"

	"github.com/loa-broadcast/loa/protocol"
)

// The clicks survive Opus: a decoder finds each sent click where it was
// put (plus the codec's delay), names it by its pitch, and finds no click
// where none was sent.
func TestLiveClicksThroughOpus(t *testing.T) {
	pcm, clicks := clickSignal(int(12 * time.Second / protocol.FrameDuration))
	packets, err := encodeClicks(pcm)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := opus.NewDecoder(protocol.ClockRate, 1)
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	frame := make([]int16, protocol.FrameSamples)
	for _, p := range packets {
		n, err := dec.Decode(p, frame)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, frame[:n]...)
	}
	onsets := findClicks(out)
	if len(onsets) != clicks-1 {
		t.Fatalf("found %d clicks, want %d: %+v", len(onsets), clicks-1, onsets)
	}
	prev, prevIdx := -1, 0
	for _, o := range onsets {
		k := clickIndex(o, prev, prevIdx)
		if k == skipClick {
			t.Errorf("the click never sent was found at %d", o.Idx)
		}
		// The encoder's look-ahead delays the output by a few ms.
		if d := o.Idx - clickFrame(k)*protocol.FrameSamples; d < 0 || d > 480 {
			t.Errorf("click %d found %d samples after where it was put", k, d)
		}
		prev, prevIdx = k, o.Idx
	}
	// A receiver that played them all, its first sample at ts 1000 at t0:
	// the latency of each is its place in the stream less its send time.
	t0 := time.Unix(1000, 0)
	lr := liveRun{sent: make([]time.Time, len(packets))}
	for i := range lr.sent {
		lr.sent[i] = t0.Add(time.Duration(i)*protocol.FrameDuration - 50*time.Millisecond)
	}
	rx := liveRx{ID: "rx", FirstAtNs: t0.UnixNano(), FirstTS: 1000, Played: uint64(len(packets)), Onsets: onsets}
	res := liveLatency([]liveRx{rx}, lr, clicks)
	if len(res.reported) != 1 || res.found != clicks-1 || res.control != 0 || res.agreed != 1 {
		t.Fatalf("reported %v, found %d, control %d, agreed %d", res.reported, res.found, res.control, res.agreed)
	}
	for _, l := range res.lat {
		if l < 50 || l > 60 {
			t.Errorf("latency %.1f ms, want 50 ms + the codec's delay", l)
		}
	}
}
