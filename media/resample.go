package media

import (
	"math"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// Resampling to 48 kHz is a polyphase windowed-sinc filter at the exact
// rational ratio L/M = 48000/rate: every output sample is a dot product of
// the input around its position with one of L precomputed phases of a
// Kaiser-windowed sinc low-pass. Linear interpolation would alias and dull
// speech; this puts the cutoff at 0.9 of the lower Nyquist frequency, keeps
// the passband flat (±0.1 dB) to about 0.8 of it and rejects images and
// aliases by about 80 dB.
const (
	rsZeroCrossings = 24  // per side of the sinc, at the cutoff frequency
	rsRolloff       = 0.9 // cutoff as a fraction of the lower Nyquist frequency
	rsKaiserBeta    = 8.0 // about 80 dB stop-band attenuation
	rsMaxPhases     = 1024
	rsMinRate       = 4000
	rsMaxRate       = 384000
)

func checkRate(rate int) error {
	if rate < rsMinRate || rate > rsMaxRate {
		return loa.Errorf(loa.EUNSUPPORTED, "sample rate %d Hz is not supported (%d to %d Hz are)", rate, rsMinRate, rsMaxRate)
	}
	if l := protocol.ClockRate / gcd(rate, protocol.ClockRate); l > rsMaxPhases {
		return loa.Errorf(loa.EUNSUPPORTED, "sample rate %d Hz is not supported: its ratio to 48000 Hz is too awkward; use a common rate such as 44100 or 48000 Hz", rate)
	}
	return nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

type resampler struct {
	l, m   int         // output = input * l / m
	taps   int         // per phase
	phases [][]float32 // phases[p][j] weights input sample i-taps/2+1+j for output at i+p/l
	hist   []float32   // input not yet fully used, starting at input index base
	base   int64
	next   int64 // index of the next output sample
	inN    int64 // input samples seen
}

func newResampler(rate int) (*resampler, error) {
	if err := checkRate(rate); err != nil {
		return nil, err
	}
	g := gcd(rate, protocol.ClockRate)
	r := &resampler{l: protocol.ClockRate / g, m: rate / g}
	if r.l == 1 && r.m == 1 {
		return r, nil
	}
	// Cutoff in cycles per input sample; the sinc's zero crossings are
	// 1/(2 fc) input samples apart.
	fc := rsRolloff * 0.5 * min(1, float64(r.l)/float64(r.m))
	half := int(math.Ceil(rsZeroCrossings / (2 * fc)))
	r.taps = 2 * half
	r.phases = make([][]float32, r.l)
	i0b := besselI0(rsKaiserBeta)
	for p := range r.l {
		h := make([]float32, r.taps)
		frac := float64(p) / float64(r.l)
		var sum float64
		w := make([]float64, r.taps)
		for j := range r.taps {
			d := float64(j-half+1) - frac // distance from the output position, in input samples
			x := d / float64(half)
			if x <= -1 || x >= 1 {
				continue
			}
			win := besselI0(rsKaiserBeta*math.Sqrt(1-x*x)) / i0b
			w[j] = 2 * fc * sinc(2*fc*d) * win
			sum += w[j]
		}
		for j := range h {
			h[j] = float32(w[j] / sum) // unity gain at DC in every phase
		}
		r.phases[p] = h
	}
	// Centre the first output on input sample 0: pretend half-1 zeros
	// came before it.
	r.hist = make([]float32, half-1, 4*chunkFrames)
	r.base = -int64(half - 1)
	return r, nil
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < sum*1e-12 {
			break
		}
	}
	return sum
}

// process appends to dst the output that in makes available.
func (r *resampler) process(dst, in []float32) []float32 {
	if r.phases == nil {
		return append(dst, in...)
	}
	r.inN += int64(len(in))
	r.hist = append(r.hist, in...)
	return r.drain(dst)
}

func (r *resampler) drain(dst []float32) []float32 {
	half := int64(r.taps / 2)
	l, m := int64(r.l), int64(r.m)
	end := r.base + int64(len(r.hist)) // one past the last input held
	for {
		pos := r.next * m
		i, p := pos/l, pos%l
		first := i - half + 1
		if i+half >= end {
			break
		}
		x := r.hist[first-r.base : first-r.base+int64(r.taps)]
		h := r.phases[p]
		var acc float32
		for j, v := range h {
			acc += v * x[j]
		}
		dst = append(dst, acc)
		r.next++
	}
	// Drop input no future output will touch.
	keepFrom := (r.next*m)/l - half + 1
	if drop := keepFrom - r.base; drop > 0 {
		n := copy(r.hist, r.hist[drop:])
		r.hist = r.hist[:n]
		r.base = keepFrom
	}
	return dst
}

// flush appends the remaining output, as if the input were followed by
// silence, so the output lasts exactly as long as the input.
func (r *resampler) flush(dst []float32) []float32 {
	if r.phases == nil {
		return dst
	}
	total := (r.inN*int64(r.l) + int64(r.m) - 1) / int64(r.m)
	r.hist = append(r.hist, make([]float32, r.taps)...)
	start := len(dst)
	dst = r.drain(dst)
	if over := r.next - total; over > 0 {
		dst = dst[:max(start, len(dst)-int(over))]
	}
	return dst
}
