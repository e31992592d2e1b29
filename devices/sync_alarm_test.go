package devices

import (
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// TestAlarmOutOfSync: a receiver whose reported sync error stays above
// 20 ms for a minute raises out_of_sync; a shorter excursion does not;
// it clears below half the threshold, or when sync reports stop.
func TestAlarmOutOfSync(t *testing.T) {
	r := newAlarmRig(t, loa.DefaultAlarmThresholds())
	tele := func(errMs float64) {
		r.a.ObserveTelemetry("rx-1", loa.Telemetry{Sync: &loa.SyncStats{Source: "rtcp-xr", ErrMs: errMs}})
	}
	tele(35)
	r.advance(50 * time.Second)
	tele(40)
	tele(5) // back in step before the minute: the excursion is forgotten
	r.advance(30 * time.Second)
	tele(30)
	r.advance(59 * time.Second)
	tele(30)
	r.expectNone()
	r.advance(time.Second)
	tele(31)
	al := r.expect(loa.AlarmRaised, "rx-1", loa.AlarmOutOfSync)
	if al.Value != 31 || al.Threshold != loa.OutOfSyncMs {
		t.Errorf("raised %+v", al)
	}
	tele(15) // below the threshold but above the clear level: stays
	r.expectNone()
	tele(9)
	r.expect(loa.AlarmCleared, "rx-1", loa.AlarmOutOfSync)

	tele(50)
	r.advance(time.Minute)
	tele(50)
	r.expect(loa.AlarmRaised, "rx-1", loa.AlarmOutOfSync)
	r.a.ObserveTelemetry("rx-1", loa.Telemetry{}) // a v1 firmware again: no sync to judge
	r.expect(loa.AlarmCleared, "rx-1", loa.AlarmOutOfSync)
}
