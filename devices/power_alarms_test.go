package devices

import (
	"testing"

	"github.com/loa-broadcast/loa"
)

// mains_lost follows mains; low_battery is raised on battery at 20 %,
// kept up to 30 %, cleared above it or by mains; both clear when power
// reports stop.
func TestAlarmPowerMainsAndBattery(t *testing.T) {
	r := newAlarmRig(t, loa.DefaultAlarmThresholds())
	tele := func(p *loa.PowerStats) { r.a.ObserveTelemetry("rx-1", loa.Telemetry{TempC: 40, Power: p}) }
	tele(&loa.PowerStats{Mains: true, BatteryPct: 15, RuntimeMin: 90}) // charging: no alarm
	r.expectNone()
	tele(&loa.PowerStats{Mains: false, BatteryPct: 60, RuntimeMin: 300})
	al := r.expect(loa.AlarmRaised, "rx-1", loa.AlarmMainsLost)
	if al.Area != "a1" || al.Value != 300 {
		t.Errorf("mains_lost = %+v, want area a1, value 300 min", al)
	}
	tele(&loa.PowerStats{Mains: false, BatteryPct: 21, RuntimeMin: 100})
	r.expectNone()
	tele(&loa.PowerStats{Mains: false, BatteryPct: 20, RuntimeMin: 95})
	if low := r.expect(loa.AlarmRaised, "rx-1", loa.AlarmLowBattery); low.Value != 20 || low.Threshold != 20 {
		t.Errorf("low_battery = %+v", low)
	}
	tele(&loa.PowerStats{Mains: false, BatteryPct: 29, RuntimeMin: 140}) // hysteresis
	r.expectNone()
	tele(&loa.PowerStats{Mains: false, BatteryPct: 30, RuntimeMin: 145})
	r.expect(loa.AlarmCleared, "rx-1", loa.AlarmLowBattery)
	tele(&loa.PowerStats{Mains: false, BatteryPct: 10, RuntimeMin: 40})
	r.expect(loa.AlarmRaised, "rx-1", loa.AlarmLowBattery)
	tele(&loa.PowerStats{Mains: true, BatteryPct: 10, RuntimeMin: 40}) // mains back: both clear
	r.expect(loa.AlarmCleared, "rx-1", loa.AlarmMainsLost)
	r.expect(loa.AlarmCleared, "rx-1", loa.AlarmLowBattery)
	r.expectNone()

	tele(&loa.PowerStats{Mains: false, BatteryPct: 5, RuntimeMin: 10})
	r.expect(loa.AlarmRaised, "rx-1", loa.AlarmMainsLost)
	r.expect(loa.AlarmRaised, "rx-1", loa.AlarmLowBattery)
	tele(nil) // no longer reports power
	r.expect(loa.AlarmCleared, "rx-1", loa.AlarmMainsLost)
	r.expect(loa.AlarmCleared, "rx-1", loa.AlarmLowBattery)
	r.expectNone()
}
