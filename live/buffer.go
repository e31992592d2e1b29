package live

import "github.com/loa-broadcast/loa"

// Buffer defaults: frames held ahead of the controller's timeline, and the
// pulls over which the level is judged before a frame is dropped or
// inserted.
const (
	DefaultDepth = 3  // 60 ms: the uplink's jitter and reordering it absorbs
	driftWindow  = 50 // 1 s of pulls
	slots        = 256
	// maxAhead is how far from the next frame a packet may be, ahead or
	// behind, before the uplink is taken to have jumped (a new sequence, a
	// long stall): the buffer then starts over from it.
	maxAhead = 200
)

// buffer holds an uplink's packets by sequence number and gives one per
// frame of the controller's timeline (pull): it reorders, carries uplink
// losses as gaps, and keeps its level within a frame of depth by dropping a
// whole frame when the uplink runs ahead (its clock is fast) and inserting
// a gap when it falls behind (slow, or stalled). Not safe for concurrent
// use: Uplink locks around it.
type buffer struct {
	depth   int
	pkt     [slots][]byte
	have    [slots]bool
	next    uint16 // the uplink sequence number of the frame to give next
	highest uint16 // the highest buffered, when any
	count   int    // packets buffered
	started bool   // a packet came: next and highest are set
	playing bool   // the level reached depth once: frames are given

	pulls            int // in the current window
	minLevel, maxLvl int // over the current window

	stats bufferStats
}

// bufferStats counts what the buffer did.
type bufferStats struct {
	Received int // packets pushed and kept
	Late     int // arrived after their frame was given (or duplicates)
	Lost     int // frames the uplink never delivered in time: gaps
	Dropped  int // frames dropped because the uplink ran ahead
	Inserted int // gaps inserted because the uplink fell behind
	Prefill  int // gaps given before the level first reached depth
	Resyncs  int // the uplink's sequence jumped: started over
}

func newBuffer(depth int) *buffer {
	if depth <= 0 {
		depth = DefaultDepth
	}
	return &buffer{depth: depth, minLevel: 1 << 30, maxLvl: -1}
}

// level is how many frames the buffer runs ahead of next: from next to
// the highest buffered packet, losses included.
func (b *buffer) level() int {
	if b.count == 0 {
		return 0
	}
	return int(b.highest-b.next) + 1
}

// push stores packet seq (payload is kept: the caller gives up the slice).
func (b *buffer) push(seq uint16, payload []byte) {
	if !b.started {
		b.started, b.next, b.highest = true, seq, seq
	}
	d := int(int16(seq - b.next))
	if d <= -maxAhead || d >= maxAhead {
		// Far from anything expected, ahead or behind: the uplink's
		// sequence jumped (a new track, a long stall).
		b.reset(seq)
		d = 0
	}
	if d < 0 {
		b.stats.Late++
		return
	}
	i := seq % slots
	if b.have[i] {
		b.stats.Late++ // a duplicate
		return
	}
	b.pkt[i], b.have[i] = payload, true
	b.count++
	b.stats.Received++
	if b.count == 1 || int16(seq-b.highest) > 0 {
		b.highest = seq
	}
}

// reset forgets everything buffered and starts over at seq.
func (b *buffer) reset(seq uint16) {
	for i := range b.have {
		b.have[i], b.pkt[i] = false, nil
	}
	b.count, b.next, b.highest, b.playing = 0, seq, seq, false
	b.pulls, b.minLevel, b.maxLvl = 0, 1<<30, -1
	b.stats.Resyncs++
}

// pull gives the frame due now on the controller's timeline: a packet, or
// loa.ErrGap for a frame with none.
func (b *buffer) pull() ([]byte, error) {
	lvl := b.level()
	if !b.playing {
		if lvl < b.depth {
			b.stats.Prefill++
			return nil, loa.ErrGap
		}
		b.playing = true
		// Whatever piled up before the first pull (the session's
		// pre-roll) would be latency for good: keep depth frames.
		for b.level() > b.depth {
			b.take()
			b.stats.Dropped++
		}
		lvl = b.level()
	}
	b.minLevel, b.maxLvl = min(b.minLevel, lvl), max(b.maxLvl, lvl)
	if b.pulls++; b.pulls >= driftWindow {
		lo, hi := b.minLevel, b.maxLvl
		b.pulls, b.minLevel, b.maxLvl = 0, 1<<30, -1
		switch {
		case lo > b.depth+1:
			// Ahead by more than a frame all the window long: the
			// uplink's clock is fast (one frame), or a stall's burst came
			// in (many). Whole frames go, down to depth.
			for range lo - b.depth {
				b.take()
				b.stats.Dropped++
			}
		case hi < b.depth-1:
			// Behind by more than a frame all the window long: a frame
			// of silence (receivers conceal it) lets it catch up.
			b.stats.Inserted++
			return nil, loa.ErrGap
		}
	}
	if b.count == 0 {
		// Nothing at all: the uplink is late (a slow clock, a stall). The
		// gap is inserted; next waits for the packet.
		b.stats.Inserted++
		return nil, loa.ErrGap
	}
	p, ok := b.take()
	if !ok {
		b.stats.Lost++ // later packets came, this one did not: lost on the uplink
		return nil, loa.ErrGap
	}
	return p, nil
}

// take removes and returns frame next, if it came, and moves on.
func (b *buffer) take() ([]byte, bool) {
	i := b.next % slots
	p, ok := b.pkt[i], b.have[i]
	b.pkt[i], b.have[i] = nil, false
	if ok {
		b.count--
	}
	b.next++
	if b.count == 0 {
		b.highest = b.next - 1
	}
	return p, ok
}
