package media

import (
	"math"
	"testing"
)

func TestLoudnessSine(t *testing.T) {
	// BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS.
	for _, amp := range []float64{1, 0.1, 0.01} {
		got := measureLUFS(tone(48000, 1, 5, 997, amp))
		want := -3.01 + 20*math.Log10(amp)
		if math.Abs(got-want) > 0.05 {
			t.Errorf("amplitude %v: %.3f LUFS, want %.2f", amp, got, want)
		}
	}
	// K-weighting: +4 dB shelf high up, a high pass low down.
	hi := measureLUFS(tone(48000, 1, 5, 10000, 0.1))
	lo := measureLUFS(tone(48000, 1, 5, 40, 0.1))
	mid := measureLUFS(tone(48000, 1, 5, 997, 0.1))
	if d := hi - mid; d < 3 || d > 5 {
		t.Errorf("10 kHz reads %.2f dB above 997 Hz, want about +4", d)
	}
	if d := mid - lo; d < 1 {
		t.Errorf("40 Hz reads only %.2f dB below 997 Hz", d)
	}
}

func TestLoudnessGating(t *testing.T) {
	// 20 s at -20 LUFS then 20 s at -40 LUFS: the quiet half falls below
	// the relative gate, so the result is about -20, not the -23 average.
	x := append(tone(48000, 1, 20, 997, math.Pow(10, (-20+3.01)/20)), tone(48000, 1, 20, 997, math.Pow(10, (-40+3.01)/20))...)
	if got := measureLUFS(x); math.Abs(got+20) > 0.1 {
		t.Errorf("%.2f LUFS, want -20", got)
	}
	// Below the absolute gate counts as silence.
	if got := measureLUFS(tone(48000, 1, 2, 997, 1e-4)); !math.IsInf(got, -1) {
		t.Errorf("a -83 LUFS tone reads %.1f, want -Inf", got)
	}
	if got := measureLUFS(make([]float64, 48000)); !math.IsInf(got, -1) {
		t.Errorf("silence reads %.1f", got)
	}
	// Shorter than one block: measured as one.
	if got := measureLUFS(tone(48000, 1, 0.1, 997, 0.5)); math.Abs(got-(-3.01-6.02)) > 0.3 {
		t.Errorf("100 ms tone reads %.2f LUFS", got)
	}
}

func TestLimiter(t *testing.T) {
	const ceiling = 0.5
	x := tone(48000, 1, 1, 100, 0.2)
	for i := 5000; i < 5100; i++ {
		x[i] = 0.95 // a loud burst
	}
	x[15000] = -2 // a lone spike past full scale
	in := make([]float32, len(x))
	for i, v := range x {
		in[i] = float32(v)
	}
	l := newLimiter(ceiling)
	var out []float32
	for i := 0; i < len(in); i += 1000 {
		out = l.process(out, in[i:min(i+1000, len(in))])
	}
	out = l.flush(out)
	if len(out) != len(in) {
		t.Fatalf("%d samples out, %d in", len(out), len(in))
	}
	for i, v := range out {
		if math.Abs(float64(v)) > ceiling+1e-6 {
			t.Fatalf("sample %d = %v over the ceiling", i, v)
		}
	}
	if l.clamped != 0 {
		t.Errorf("%d samples needed the hard clip: the envelope came too late", l.clamped)
	}
	// The spike pulls the gain down around it, not just on itself.
	if g := out[15000-60] / in[15000-60]; g > 0.5 {
		t.Errorf("gain 60 samples before the spike is %.3f, want the ramp towards 0.25", g)
	}
	// The burst is held at the ceiling, not scaled far below it.
	if v := out[5050]; v < 0.99*ceiling {
		t.Errorf("burst comes out at %v, want about %v", v, ceiling)
	}
	// Away from the peaks the signal passes untouched and undelayed:
	// before them (past the 5 ms look-ahead) and once the gain recovered.
	for _, i := range []int{100, 4000, 40000, 47000} {
		if d := math.Abs(float64(out[i] - in[i])); d > 1e-3*math.Abs(float64(in[i]))+1e-6 {
			t.Errorf("sample %d: %v, want %v", i, out[i], in[i])
		}
	}
	// Ahead of a peak the gain ramps down within the look-ahead only.
	if g := out[5000-300] / in[5000-300]; math.Abs(float64(g)-1) > 1e-6 {
		t.Errorf("gain 6 ms before the burst is %.4f", g)
	}
}
