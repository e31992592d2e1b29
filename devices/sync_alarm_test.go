package devices

import (
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
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

// TestSyncTelemetryKept: tele.sync lands in the device's telemetry, and a
// later sample without it (a v1 firmware) drops it.
func TestSyncTelemetryKept(t *testing.T) {
	f := linkedFleet(Config{})
	topic := protocol.DeviceTopic("dev-1", protocol.KindTele)
	f.handle(topic, []byte(`{"ts":1,"rssi":-80,"volume":70,"muted":false,"temp":40,"uptime":10,`+
		`"sync":{"source":"rtcp-xr","offset_ms":812.5,"err_ms":0.8,"rtt_ms":41,"drift_ppm":-12.5,"corrections_per_min":30,"resyncs":1}}`), false)
	st, _ := f.DeviceState("dev-1")
	want := loa.SyncStats{Source: "rtcp-xr", OffsetMs: 812.5, ErrMs: 0.8, RTTMs: 41, DriftPPM: -12.5, CorrMin: 30, Resyncs: 1}
	if st.Telemetry == nil || st.Telemetry.Sync == nil || *st.Telemetry.Sync != want {
		t.Fatalf("telemetry %+v, want sync %+v", st.Telemetry, want)
	}
	f.handle(topic, []byte(`{"ts":2,"rssi":-80,"volume":70,"muted":false,"temp":40,"uptime":12}`), false)
	if st, _ := f.DeviceState("dev-1"); st.Telemetry.Sync != nil {
		t.Errorf("sync kept from an older sample: %+v", st.Telemetry.Sync)
	}
}
