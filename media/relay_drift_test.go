package media

import (
	"math"
	"testing"
)

// TestDriftBufferFollowsSourceClock feeds the buffer from a source whose
// clock runs 100 ppm fast, then slow, for 10 minutes of simulated time,
// read one 20 ms frame per controller tick: the level stays near its
// target (without resampling it would run 60 ms away), nothing underruns
// or overflows after priming, and the reading ratio settles on the drift.
func TestDriftBufferFollowsSourceClock(t *testing.T) {
	for _, ppm := range []float64{100, -100} {
		const (
			rate     = 48000
			frame    = 960
			chunk    = 1152 // an MP3 frame's worth per write, as ffmpeg delivers
			target   = rate / 2
			duration = 600 // seconds
		)
		b := newDriftBuffer(target)
		srcRate := rate * (1 + ppm*1e-6)
		written := 0
		out := make([]float32, frame)
		pcm := make([]float32, chunk) // what it carries does not matter here
		played := 0
		var early, late float64 // mean level over the second and the last minute
		var ratioSum float64
		ticks := duration * rate / frame
		for tick := range ticks {
			now := float64(tick+1) * frame / rate
			for float64(written+chunk) <= now*srcRate+target { // the source is target samples ahead at start
				b.write(pcm)
				written += chunk
			}
			if b.read(out) {
				played++
				if tick > ticks/2 {
					ratioSum += b.ratio
				}
			}
			perMinute := 60 * rate / frame
			if tick >= perMinute && tick < 2*perMinute {
				early += float64(b.level()) / float64(perMinute)
			} else if tick >= ticks-perMinute {
				late += float64(b.level()) / float64(perMinute)
			}
		}
		if b.under != 0 || b.over != 0 {
			t.Errorf("%+.0f ppm: %d underruns, %d overflows", ppm, b.under, b.over)
		}
		if played < ticks-1 {
			t.Errorf("%+.0f ppm: played %d of %d frames", ppm, played, ticks)
		}
		// 100 ppm over 10 minutes is 2,880 samples; the buffer keeps the
		// level within a small fraction of that.
		if d := math.Abs(late - early); d > 300 || math.Abs(late-target) > 2*(chunk+frame) {
			t.Errorf("%+.0f ppm: mean level %.0f samples in the second minute, %.0f in the last (target %d)", ppm, early, late, target)
		}
		mean := ratioSum / float64(ticks-ticks/2-1)
		if got := (mean - 1) * 1e6; math.Abs(got-ppm) > 30 {
			t.Errorf("%+.0f ppm: mean read ratio %+.1f ppm", ppm, got)
		}
		t.Logf("%+.0f ppm: mean level %.0f then %.0f samples, ratio %+.1f ppm", ppm, early, late, (mean-1)*1e6)
	}
}

func TestDriftBufferPrimesAndDropsBursts(t *testing.T) {
	b := newDriftBuffer(4800)
	out := make([]float32, 960)
	b.write(make([]float32, 3000))
	if b.read(out) {
		t.Fatal("played before the target level")
	}
	b.write(make([]float32, 3000))
	if !b.read(out) {
		t.Fatal("did not play at the target level")
	}
	b.write(make([]float32, 10*48000))
	if b.over != 1 || b.level() != 4800 {
		t.Fatalf("burst: %d overflows, level %d", b.over, b.level())
	}
}
