package media

import "sync"

// driftBuffer holds a relay's decoded 48 kHz audio between the source,
// which writes at its own clock, and the session, which reads one 20 ms
// frame per tick of the controller's clock. The two clocks drift (100 ppm
// is 360 ms an hour), so the reader resamples by the buffer's level: a
// level above the target reads slightly faster than 1:1, below it
// slower, so the level settles near the target instead of running away.
// Linear interpolation is enough for ratios within maxDriftPPM of 1.
type driftBuffer struct {
	mu       sync.Mutex
	buf      []float32
	head     int     // first unread sample
	pos      float64 // fractional read position past head
	target   int     // samples to hold, and to gather before playing
	max      int     // past it the oldest samples are dropped back to target
	priming  bool    // gathering target samples before playing
	avg      float64 // smoothed level, in samples
	ratio    float64 // source samples read per output sample
	under    int     // times the reader found too little and re-primed
	over     int     // times the writer overflowed and samples were dropped
	consumed int64   // source samples read
}

const (
	maxDriftPPM = 1000  // resampling stays within ±0.1 %
	driftGain   = 0.05  // ratio change per relative level error
	driftSmooth = 0.01  // level smoothing per frame (a ~2 s time constant)
	driftMinCap = 48000 // at least a second of room
)

func newDriftBuffer(target int) *driftBuffer {
	return &driftBuffer{target: target, max: 4*target + driftMinCap, priming: true, avg: float64(target), ratio: 1}
}

// write appends source samples; an overflow (a burst after a reconnect)
// drops the oldest ones back to the target level.
func (b *driftBuffer) write(pcm []float32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.head > 0 && b.head >= len(b.buf)/2 {
		n := copy(b.buf, b.buf[b.head:])
		b.buf, b.head = b.buf[:n], 0
	}
	b.buf = append(b.buf, pcm...)
	if level := len(b.buf) - b.head; level > b.max {
		b.head += level - b.target
		b.pos, b.avg = 0, float64(b.target)
		b.over++
	}
}

// reset empties the buffer, to prime again (a new source).
func (b *driftBuffer) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf, b.head, b.pos, b.priming, b.avg, b.ratio = b.buf[:0], 0, 0, true, float64(b.target), 1
}

// level is the number of unread samples.
func (b *driftBuffer) level() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf) - b.head
}

// read fills dst with the next frame, resampled by the buffer's level, and
// reports whether it did: false while priming or starved (dst untouched),
// when the caller plays silence.
func (b *driftBuffer) read(dst []float32) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	level := len(b.buf) - b.head
	if b.priming {
		if level < b.target {
			return false
		}
		b.priming = false
	}
	b.avg += (float64(level) - b.avg) * driftSmooth
	r := driftGain * (b.avg - float64(b.target)) / float64(b.target)
	r = min(max(r, -maxDriftPPM*1e-6), maxDriftPPM*1e-6)
	b.ratio = 1 + r
	n := len(dst)
	if need := int(b.pos+b.ratio*float64(n)) + 2; level < need {
		b.priming = true
		b.under++
		return false
	}
	src := b.buf[b.head:]
	x := b.pos
	for i := range dst {
		j := int(x)
		f := float32(x - float64(j))
		dst[i] = src[j]*(1-f) + src[j+1]*f
		x += b.ratio
	}
	whole := int(x)
	b.head += whole
	b.pos = x - float64(whole)
	b.consumed += int64(whole)
	return true
}
