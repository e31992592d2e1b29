package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
)

// TestPowerAlarms: a receiver loses mains → mains_lost, its telemetry and
// the alert desk's preview say it runs on battery; its battery (drained
// fast by config) falls to 20 % → low_battery; mains back → both clear.
func TestPowerAlarms(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2, tele: 50 * time.Millisecond, receiver: func(_ *Main, _ int, c *firmwaresim.Config) {
		// 100 % to 20 % in about 3 s with the amplifier on.
		c.Battery = firmwaresim.BatterySpec{IdleRuntime: 4 * time.Second, AmpRuntime: 4 * time.Second, PlayRuntime: 4 * time.Second}
	}})
	ctx := context.Background()
	rx := s.byArea["a"][0]
	events := watchAlarmStream(t, s.m.URL(), s.m.AdminToken, "")

	rx.SetMains(false)
	if al := nextEvent(t, events, loa.AlarmRaised, loa.AlarmMainsLost, rx.ID()); al.Area != "a1" {
		t.Errorf("mains_lost %+v, want area a1", al)
	}
	var preview loa.PowerPreview
	loatest.Eventually(t, 30*time.Second, func() bool {
		if err := s.api.JSON(ctx, "POST", "/api/v1/alerts/preview-targets", map[string]any{"targets": loa.Targets{Areas: []string{"p"}}}, &preview); err != nil {
			t.Fatal(err)
		}
		return preview.OnBattery == 1
	}, "the preview counts the receiver on battery")
	if preview.Receivers != 2 || preview.Online != 2 || preview.MinRuntimeMin == nil {
		t.Errorf("preview %+v, want 2 receivers online, 1 on battery with a runtime", preview)
	}

	low := nextEvent(t, events, loa.AlarmRaised, loa.AlarmLowBattery, rx.ID())
	if low.Value > loa.LowBatteryPct || low.Threshold != loa.LowBatteryPct {
		t.Errorf("low_battery %+v", low)
	}
	var d struct {
		State loa.DeviceState `json:"state"`
	}
	if err := s.api.JSON(ctx, "GET", "/api/v1/devices/"+rx.ID(), nil, &d); err != nil {
		t.Fatal(err)
	}
	if p := d.State.Telemetry.Power; p == nil || p.Mains || p.BatteryPct > loa.LowBatteryClearPct {
		t.Errorf("device power %+v, want on battery, low", p)
	}
	if ids := s.deviceIDs("?problem=low_battery"); len(ids) != 1 || ids[0] != rx.ID() {
		t.Errorf("devices with low_battery: %v", ids)
	}

	rx.SetMains(true)
	nextEvent(t, events, loa.AlarmCleared, loa.AlarmMainsLost, rx.ID())
	nextEvent(t, events, loa.AlarmCleared, loa.AlarmLowBattery, rx.ID())
	if n := len(s.alarms("?active=true&kind=mains_lost")) + len(s.alarms("?active=true&kind=low_battery")); n != 0 {
		t.Errorf("%d power alarms still active", n)
	}
}
