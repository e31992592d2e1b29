package live

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// simulate runs an uplink whose clock is off by ppm (positive: fast) into
// a buffer the controller pulls every 20 ms, for d of simulated time, with
// arrival jitter up to jitter and a share loss of packets lost. It returns
// the buffer, the packets the sender sent and the frames pulled, and the
// highest level seen.
func simulate(t *testing.T, ppm float64, d, jitter time.Duration, loss float64) (b *buffer, sent, pulled, maxLevel int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	b = newBuffer(DefaultDepth)
	period := float64(20*time.Millisecond) / (1 + ppm*1e-6)
	const latency = 40 * time.Millisecond
	seq := uint16(65000) // wraps during the run
	var arrivals []time.Duration
	for k := 0; ; k++ {
		at := time.Duration(float64(k) * period)
		if at >= d {
			break
		}
		// In order, as UDP over one path mostly is; the jitter may still
		// reorder neighbours.
		arrivals = append(arrivals, at+latency+time.Duration(rng.Int64N(int64(jitter)+1)))
	}
	sent = len(arrivals)
	payloads := map[uint16]int{}
	next := 0 // the next packet to arrive, by arrival time order
	order := make([]int, sent)
	for i := range order {
		order[i] = i
	}
	// Sort by arrival (insertion sort: nearly sorted).
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && arrivals[order[j]] < arrivals[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	lastGiven := -1
	for pull := time.Duration(0); pull < d; pull += 20 * time.Millisecond {
		for next < sent && arrivals[order[next]] <= pull {
			k := order[next]
			next++
			if rng.Float64() < loss {
				continue
			}
			s := seq + uint16(k)
			payloads[s] = k
			b.push(s, []byte{byte(k), byte(k >> 8), byte(k >> 16)})
		}
		maxLevel = max(maxLevel, b.level())
		p, err := b.pull()
		pulled++
		if errors.Is(err, loa.ErrGap) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		k := int(p[0]) | int(p[1])<<8 | int(p[2])<<16
		if k <= lastGiven {
			t.Fatalf("packet %d given after %d: out of order", k, lastGiven)
		}
		lastGiven = k
	}
	return b, sent, pulled, maxLevel
}

// TestDriftIsHeldWithinAFrame: a sender whose clock runs 100 ppm fast or
// slow for 10 minutes (30,000 frames; the clocks part by 3 frames) stays
// within a frame or so of the buffer's depth: the fast one loses whole
// frames, the slow one gets gaps, each about as many as the clocks parted,
// and nothing else is lost.
func TestDriftIsHeldWithinAFrame(t *testing.T) {
	const d = 10 * time.Minute
	for _, tc := range []struct {
		name   string
		ppm    float64
		jitter time.Duration
	}{
		{"fast", 100, 0},
		{"slow", -100, 0},
		{"fast with jitter", 100, 30 * time.Millisecond},
		{"slow with jitter", -100, 30 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, sent, pulled, maxLevel := simulate(t, tc.ppm, d, tc.jitter, 0)
			st := b.stats
			t.Logf("sent %d, pulled %d, max level %d, stats %+v, level at the end %d", sent, pulled, maxLevel, st, b.level())
			// 100 ppm over 10 min: the sender makes 3 frames more (or less)
			// than the controller plays.
			drift := sent - pulled
			if drift < -4 || drift > 4 || (tc.ppm > 0) != (drift > 0) {
				t.Fatalf("sent %d frames in 10 min at %v ppm", sent, tc.ppm)
			}
			if maxLevel > DefaultDepth+3 {
				t.Errorf("the buffer grew to %d frames (depth %d): not held", maxLevel, DefaultDepth)
			}
			if st.Lost != 0 || st.Late != 0 || st.Resyncs != 0 {
				t.Errorf("lost %d, late %d, resyncs %d; want none (no uplink loss)", st.Lost, st.Late, st.Resyncs)
			}
			if tc.ppm > 0 {
				if st.Dropped < 1 || st.Dropped > 3 {
					t.Errorf("dropped %d frames, want 1..3 for 3 frames of drift", st.Dropped)
				}
				if tc.jitter == 0 && st.Inserted != 0 {
					t.Errorf("inserted %d gaps into a fast uplink", st.Inserted)
				}
			} else {
				if st.Inserted < 1 || (tc.jitter == 0 && st.Inserted > 3) {
					t.Errorf("inserted %d gaps, want 1..3 for 3 frames of drift", st.Inserted)
				}
				if st.Dropped != 0 {
					t.Errorf("dropped %d frames of a slow uplink", st.Dropped)
				}
			}
			// Every packet that arrived is given, dropped or still held.
			given := pulled - st.Prefill - st.Inserted - st.Lost
			if given+st.Dropped+b.count != st.Received {
				t.Errorf("given %d + dropped %d + held %d != received %d", given, st.Dropped, b.count, st.Received)
			}
		})
	}
}

// TestUplinkLossIsCarriedAsGaps: packets lost on the uplink are gaps at
// their own place, the stream goes on in order and the level holds.
func TestUplinkLossIsCarriedAsGaps(t *testing.T) {
	b, sent, _, maxLevel := simulate(t, 0, time.Minute, 20*time.Millisecond, 0.05)
	st := b.stats
	t.Logf("sent %d, stats %+v", sent, st)
	if st.Lost < sent*3/100 || st.Lost > sent*7/100 {
		t.Errorf("%d gaps for lost packets of %d sent at 5%% loss", st.Lost, sent)
	}
	if maxLevel > DefaultDepth+3 {
		t.Errorf("level reached %d", maxLevel)
	}
}

// TestBufferReordersAndResyncs: packets arriving out of order are given in
// order; a duplicate or a packet after its frame is dropped; a jump in the
// sequence starts over.
func TestBufferReordersAndResyncs(t *testing.T) {
	b := newBuffer(3)
	for _, s := range []uint16{10, 12, 11, 12} {
		b.push(s, []byte{byte(s)})
	}
	var got []int
	for i := range 4 {
		if i == 1 {
			b.push(13, []byte{13})
		}
		p, err := b.pull()
		if err != nil {
			got = append(got, -1)
			continue
		}
		got = append(got, int(p[0]))
	}
	if want := []int{10, 11, 12, 13}; !equalInts(got, want) {
		t.Fatalf("pulled %v, want %v", got, want)
	}
	b.push(11, []byte{11}) // long past
	if b.stats.Late != 2 {
		t.Errorf("late %d, want 2 (a duplicate and a packet past its frame)", b.stats.Late)
	}
	b.push(5000, []byte{1})
	if b.stats.Resyncs != 1 || b.next != 5000 {
		t.Errorf("after a jump: resyncs %d, next %d", b.stats.Resyncs, b.next)
	}
	b.push(100, []byte{1}) // far behind: a new sequence too
	if b.stats.Resyncs != 2 || b.next != 100 {
		t.Errorf("after a jump back: resyncs %d, next %d", b.stats.Resyncs, b.next)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStallBurstIsCaughtUp: an uplink that stalls for half a second and
// then delivers the backlog at once gets gaps while it is silent, and the
// backlog is dropped within two windows: the latency it added does not
// stay.
func TestStallBurstIsCaughtUp(t *testing.T) {
	b := newBuffer(DefaultDepth)
	seq := uint16(0)
	push := func() { b.push(seq, []byte{byte(seq)}); seq++ }
	for range DefaultDepth {
		push()
	}
	for range 100 { // steady
		push()
		b.pull()
	}
	for range 25 { // the stall: nothing comes
		b.pull()
	}
	for range 25 { // the backlog at once
		push()
	}
	if b.level() < 20 {
		t.Fatalf("level %d after the burst", b.level())
	}
	for range 2 * driftWindow {
		push()
		b.pull()
	}
	if lvl := b.level(); lvl > DefaultDepth+1 {
		t.Errorf("level %d two windows after the burst, want back to about %d", lvl, DefaultDepth)
	}
	if b.stats.Inserted < 20 || b.stats.Dropped < 20 {
		t.Errorf("stats %+v: want the stall's gaps inserted and its backlog dropped", b.stats)
	}
}

// FuzzBuffer: any order of pushes (sequence numbers from the input) and
// pulls keeps the buffer's count true and its level bounded.
func FuzzBuffer(f *testing.F) {
	f.Add([]byte{0, 1, 2, 255, 3, 255, 9, 255, 255})
	f.Fuzz(func(t *testing.T, ops []byte) {
		b := newBuffer(DefaultDepth)
		seq := uint16(0)
		for _, op := range ops {
			switch {
			case op == 255:
				b.pull()
			case op >= 128:
				b.push(seq-uint16(op-128), []byte{op}) // late or a duplicate
			default:
				seq += uint16(op)
				b.push(seq, []byte{op})
			}
			n := 0
			for _, h := range b.have {
				if h {
					n++
				}
			}
			if n != b.count || b.level() > maxAhead || b.level() < 0 {
				t.Fatalf("count %d, %d slots held, level %d", b.count, n, b.level())
			}
		}
	})
}
