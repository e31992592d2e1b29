package media

import "math"

// loudnessMeter measures integrated loudness per ITU-R BS.1770-4 of a
// 48 kHz mono signal: K-weighting (a high shelf, then a high pass), mean
// square over 400 ms blocks overlapping by 75 %, an absolute gate at
// -70 LUFS and a relative gate 10 LU below the absolutely gated level.
type loudnessMeter struct {
	s1, s2 biquad
	sub    float64   // sum of squares in the current 100 ms step
	subN   int       // samples in it
	steps  []float64 // sums of squares of the last three whole steps
	blocks []float64 // mean square of every 400 ms block
	all    float64   // sum of squares over everything, for short inputs
	n      int64
	peak   float32
}

const (
	lufsOffset   = -0.691
	stepSamples  = 4800 // 100 ms at 48 kHz
	absoluteGate = -70.0
	relativeGate = -10.0
)

// The BS.1770-4 K-weighting coefficients at 48 kHz.
func newLoudnessMeter() *loudnessMeter {
	return &loudnessMeter{
		s1: biquad{b0: 1.53512485958697, b1: -2.69169618940638, b2: 1.19839281085285, a1: -1.69065929318241, a2: 0.73248077421585},
		s2: biquad{b0: 1, b1: -2, b2: 1, a1: -1.99004745483398, a2: 0.99007225036621},
	}
}

type biquad struct {
	b0, b1, b2, a1, a2 float64
	x1, x2, y1, y2     float64
}

func (f *biquad) step(x float64) float64 {
	y := f.b0*x + f.b1*f.x1 + f.b2*f.x2 - f.a1*f.y1 - f.a2*f.y2
	f.x2, f.x1 = f.x1, x
	f.y2, f.y1 = f.y1, y
	return y
}

func (m *loudnessMeter) add(pcm []float32) {
	for _, v := range pcm {
		if a := max(v, -v); a > m.peak {
			m.peak = a
		}
		y := m.s2.step(m.s1.step(float64(v)))
		m.sub += y * y
		m.subN++
		if m.subN == stepSamples {
			m.all += m.sub
			if len(m.steps) == 3 {
				sum := m.steps[0] + m.steps[1] + m.steps[2] + m.sub
				m.blocks = append(m.blocks, sum/(4*stepSamples))
				m.steps = append(m.steps[:0], m.steps[1], m.steps[2])
			}
			m.steps = append(m.steps, m.sub)
			m.sub, m.subN = 0, 0
		}
	}
	m.n += int64(len(pcm))
}

func lufs(meanSquare float64) float64 { return lufsOffset + 10*math.Log10(meanSquare) }

// integrated returns the gated loudness in LUFS; -Inf means silence.
// Inputs shorter than one 400 ms block are measured as a single block.
func (m *loudnessMeter) integrated() float64 {
	blocks := m.blocks
	if len(blocks) == 0 {
		if m.n == 0 {
			return math.Inf(-1)
		}
		blocks = []float64{(m.all + m.sub) / float64(m.n)}
	}
	var sum float64
	var n int
	for _, z := range blocks {
		if lufs(z) > absoluteGate {
			sum += z
			n++
		}
	}
	if n == 0 {
		return math.Inf(-1)
	}
	gate := lufs(sum/float64(n)) + relativeGate
	sum, n = 0, 0
	for _, z := range blocks {
		if l := lufs(z); l > absoluteGate && l > gate {
			sum += z
			n++
		}
	}
	return lufs(sum / float64(n))
}

// limiter keeps peaks under a ceiling with a look-ahead gain envelope: the
// gain each sample needs is held for the look-ahead window (a sliding
// minimum), smoothed by a moving average over the same window (so it ramps
// down before a peak arrives and never overshoots it), and recovers slowly
// afterwards. The signal is delayed by window-1 samples to line up with
// its gain.
type limiter struct {
	ceiling float32
	window  int
	release float32 // per-sample recovery coefficient

	// Sliding minimum of the needed gain: a monotonic queue (ring) of
	// sample indices whose needs increase from front to back.
	qIdx  []int64
	qVal  []float32
	qHead int
	qLen  int
	t     int64

	hold    []float32 // ring: released minimum over the window
	delay   []float32 // ring: delayed signal
	pos     int
	env     float32 // released envelope
	holdSum float64
	primed  int
	clamped int // samples the envelope left over the ceiling (rounding aside)
}

func newLimiter(ceiling float32) *limiter {
	const window = 240                                // 5 ms look-ahead at 48 kHz
	release := float32(1 - math.Exp(-1/(0.05*48000))) // 50 ms
	l := &limiter{ceiling: ceiling, window: window, release: release, env: 1}
	l.qIdx = make([]int64, window+1)
	l.qVal = make([]float32, window+1)
	l.hold = make([]float32, window)
	l.delay = make([]float32, window)
	for i := range l.hold {
		l.hold[i] = 1
	}
	l.holdSum = window
	return l
}

// windowMin adds the need of the next sample and returns the minimum need
// over the last window samples.
func (l *limiter) windowMin(g float32) float32 {
	size := len(l.qIdx)
	for l.qLen > 0 && l.qVal[(l.qHead+l.qLen-1)%size] >= g {
		l.qLen--
	}
	back := (l.qHead + l.qLen) % size
	l.qIdx[back], l.qVal[back] = l.t, g
	l.qLen++
	for l.qIdx[l.qHead] <= l.t-int64(l.window) {
		l.qHead = (l.qHead + 1) % size
		l.qLen--
	}
	l.t++
	return l.qVal[l.qHead]
}

// process appends output delayed by window-1 samples: the first window-1
// samples of a stream append nothing, and flush appends the rest.
func (l *limiter) process(dst, in []float32) []float32 {
	for _, x := range in {
		g := float32(1)
		if a := max(x, -x); a > l.ceiling {
			g = l.ceiling / a
		}
		// Recover towards 1 slowly, but never above what is needed.
		l.env = min(l.windowMin(g), l.env+(1-l.env)*l.release)
		l.holdSum += float64(l.env) - float64(l.hold[l.pos])
		l.hold[l.pos] = l.env
		gain := float32(l.holdSum / float64(l.window))
		// The oldest sample in the window is the one this gain covers.
		old := (l.pos + 1) % l.window
		y := l.delay[old] * gain
		l.delay[l.pos] = x
		l.pos = old
		if l.primed < l.window-1 {
			l.primed++
			continue
		}
		if max(y, -y) > l.ceiling*1.0001 {
			l.clamped++ // the envelope failed; tests check this stays 0
		}
		dst = append(dst, max(-l.ceiling, min(l.ceiling, y)))
	}
	return dst
}

// flush appends the window-1 samples still delayed.
func (l *limiter) flush(dst []float32) []float32 {
	return l.process(dst, make([]float32, l.window-1))
}
