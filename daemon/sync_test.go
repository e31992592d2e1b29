package daemon

import (
	"context"
	"math"
	"testing"
	"time"

	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// Two receivers of one area whose clocks are 1.5 s and −0.9 s off, drifting
// apart, sync over the controller's time exchange and play the session's
// samples at the same instant (ground truth from the simulator), and the
// controller keeps what they report in tele.sync.
func TestSystemReceiversInStep(t *testing.T) {
	clocks := map[int]firmwaresim.ClockSpec{
		0: {Offset: 1500 * time.Millisecond, DriftPPM: 40, DACPPM: -40},
		2: {Offset: -900 * time.Millisecond, DriftPPM: -35, DACPPM: 25},
	}
	s := startSystem(t, systemOpts{receivers: 4, tele: 200 * time.Millisecond,
		clock: func(i int) firmwaresim.ClockSpec { return clocks[i] }})
	med := s.upload(testSignal(3*time.Second), 48000)
	sess := s.play(med.ID, "a") // rx-000 and rx-002
	s.finish(sess, med.Duration, "a")
	var at []time.Time
	for _, r := range s.byArea["a"] {
		st, _ := r.Session(sess.ID)
		if float64(st.Decoded+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(med.Frames) || st.FirstSampleAt.IsZero() {
			t.Fatalf("%s: decoded %d of %d frames, first sample at %v: %+v", r.ID(), st.Decoded, med.Frames, st.FirstSampleAt, st)
		}
		// Bring each to the instant of the same sample, its timestamp's.
		at = append(at, st.FirstSampleAt.Add(-time.Duration(int32(st.FirstSampleTS))*time.Second/protocol.ClockRate))
	}
	if d := at[0].Sub(at[1]); d > 5*time.Millisecond || d < -5*time.Millisecond {
		t.Errorf("the receivers played the same sample %v apart", d)
	}
	// tele.sync reaches the device's state.
	var last float64
	loatest.Eventually(t, time.Minute, func() bool {
		devs, err := s.api.Devices(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			if d.ID == "rx-000" && d.State != nil && d.State.Telemetry != nil && d.State.Telemetry.Sync != nil &&
				d.State.Telemetry.Sync.Source == protocol.SyncRTCPXR {
				last = d.State.Telemetry.Sync.OffsetMs
				return math.Abs(last-1500) < 50
			}
		}
		return false
	}, "rx-000's sync shows its 1.5 s offset")
}
