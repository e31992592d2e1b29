package media

import (
	"math"
	"testing"
)

func resample(t testing.TB, x []float64, rate, chunk int) []float64 {
	t.Helper()
	r, err := newResampler(rate)
	if err != nil {
		t.Fatal(err)
	}
	var out []float32
	in := make([]float32, len(x))
	for i, v := range x {
		in[i] = float32(v)
	}
	for len(in) > 0 {
		n := min(chunk, len(in))
		out = r.process(out, in[:n])
		in = in[n:]
	}
	out = r.flush(out)
	y := make([]float64, len(out))
	for i, v := range out {
		y[i] = float64(v)
	}
	return y
}

func TestResampleTone(t *testing.T) {
	for _, rate := range []int{8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000} {
		x := tone(rate, 1, 0.5, 1000, 0.5)
		y := resample(t, x, rate, 777)
		want := int(math.Ceil(float64(len(x)) * 48000 / float64(rate)))
		if len(y) != want {
			t.Errorf("%d Hz: %d samples out, want %d", rate, len(y), want)
		}
		mid := y[2400 : len(y)-2400]
		// Passband gain within 0.1 dB, and the sine matches sample by
		// sample (no delay): amplitude 0.5 means power 0.25.
		if p := power(mid, 48000, 1000); math.Abs(10*math.Log10(p/0.25)) > 0.1 {
			t.Errorf("%d Hz: 1 kHz gain %.2f dB", rate, 10*math.Log10(p/0.25))
		}
		var maxErr float64
		for i := 2400; i < len(y)-2400; i++ {
			maxErr = max(maxErr, math.Abs(y[i]-0.5*math.Sin(2*math.Pi*1000*float64(i)/48000)))
		}
		if maxErr > 1e-3 {
			t.Errorf("%d Hz: output differs from the ideal sine by up to %.4f", rate, maxErr)
		}
	}
}

// Linear interpolation would fail these: images of an upsampled tone and
// aliases of a tone above 24 kHz must be 70 dB down.
func TestResampleRejection(t *testing.T) {
	// 8 kHz → 48 kHz: a 3 kHz tone has images at 5, 11, 13 kHz...
	y := resample(t, tone(8000, 1, 1, 3000, 0.5), 8000, 4096)[4800:43200]
	p := power(y, 48000, 3000)
	for _, f := range []float64{5000, 11000, 13000, 19000} {
		if img := power(y, 48000, f); img > p*1e-7 {
			t.Errorf("8k: image at %v Hz only %.0f dB down", f, 10*math.Log10(p/img))
		}
	}
	// 96 kHz → 48 kHz: a 30 kHz tone would alias to 18 kHz.
	y = resample(t, tone(96000, 1, 1, 30000, 0.5), 96000, 4096)[4800:43200]
	if alias := power(y, 48000, 18000); alias > 0.25*1e-7 {
		t.Errorf("96k: 30 kHz aliases to 18 kHz only %.0f dB down", 10*math.Log10(0.25/alias))
	}
	// 44.1 kHz: the passband reaches 17 kHz, past what Opus keeps at 32 kbit/s.
	y = resample(t, tone(44100, 1, 1, 17000, 0.5), 44100, 4096)[4800:43200]
	if p := power(y, 48000, 17000); math.Abs(10*math.Log10(p/0.25)) > 0.1 {
		t.Errorf("44.1k: 17 kHz gain %.2f dB", 10*math.Log10(p/0.25))
	}
}

func TestResampleRates(t *testing.T) {
	for _, bad := range []int{0, 1000, 44101, 1 << 20} {
		if _, err := newResampler(bad); err == nil {
			t.Errorf("rate %d accepted", bad)
		}
	}
	for _, ok := range []int{4000, 12000, 24000, 37800, 176400, 384000} {
		if _, err := newResampler(ok); err != nil {
			t.Errorf("rate %d: %v", ok, err)
		}
	}
}

func BenchmarkResample44k(b *testing.B) {
	x := tone(44100, 1, 10, 1000, 0.5)
	in := make([]float32, len(x))
	for i, v := range x {
		in[i] = float32(v)
	}
	var out []float32
	for b.Loop() {
		r, _ := newResampler(44100)
		for i := 0; i < len(in); i += 4096 {
			out = r.process(out[:0], in[i:min(i+4096, len(in))])
		}
	}
	b.ReportMetric(10/(b.Elapsed().Seconds()/float64(b.N)), "x-realtime")
}
