package firmwaresim

import (
	"testing"
	"time"
)

// The battery drains only off mains, faster with the amplifier on and
// fastest playing, charges on mains, stays within 0–100 % and estimates
// its runtime at the load it is given.
func TestBatteryDrainsWithLoadAndCharges(t *testing.T) {
	t0 := time.Unix(1795000000, 0)
	b := NewBattery(BatterySpec{IdleRuntime: 100 * time.Minute, AmpRuntime: 50 * time.Minute,
		PlayRuntime: 10 * time.Minute, ChargeTime: 20 * time.Minute}, t0)
	at := func(min float64) time.Time { return t0.Add(time.Duration(min * float64(time.Minute))) }

	if p := b.Report(at(30), LoadPlay); !p.Mains || p.BatteryPct != 100 || p.RuntimeMin != 10 {
		t.Fatalf("on mains: %+v, want full with 10 min at play", p)
	}
	b.SetMains(at(30), false, LoadIdle)
	if p := b.Report(at(40), LoadAmp); p.Mains || p.BatteryPct != 90 || p.RuntimeMin != 45 {
		t.Fatalf("10 min idle on battery: %+v, want 90 %% and 45 min with the amplifier on", p)
	}
	if p := b.Report(at(45), LoadPlay); p.BatteryPct != 80 || p.RuntimeMin != 8 {
		t.Fatalf("5 min amplifier on: %+v, want 80 %%, 8 min playing", p)
	}
	if p := b.Report(at(50), LoadPlay); p.BatteryPct != 30 || p.RuntimeMin != 3 {
		t.Fatalf("5 min playing: %+v, want 30 %%", p)
	}
	if p := b.Report(at(60), LoadIdle); p.BatteryPct != 0 || p.RuntimeMin != 0 {
		t.Fatalf("10 more min playing: %+v, want empty (never below 0)", p)
	}
	b.SetMains(at(60), true, LoadPlay)
	if p := b.Report(at(70), LoadIdle); !p.Mains || p.BatteryPct != 50 || p.RuntimeMin != 50 {
		t.Fatalf("10 min charging: %+v, want 50 %%", p)
	}
	if p := b.Report(at(200), LoadIdle); p.BatteryPct != 100 {
		t.Fatalf("long charge: %+v, want full (never above 100)", p)
	}
	if p := b.Report(at(100), LoadIdle); p.BatteryPct != 100 {
		t.Fatalf("a step back in time changed the charge: %+v", p)
	}
}

// A receiver reports its battery in telemetry, none without one or as v1.
func TestReceiverPowerReport(t *testing.T) {
	r := NewReceiver(Config{ID: "rx", Battery: BatterySpec{StartPct: 40}})
	if tl := r.Telemetry(); tl.Power == nil || !tl.Power.Mains || tl.Power.BatteryPct != 40 {
		t.Fatalf("power %+v, want on mains at 40 %%", tl.Power)
	}
	if tl := NewReceiver(Config{ID: "rx", Battery: BatterySpec{None: true}}).Telemetry(); tl.Power != nil {
		t.Errorf("no battery: power %+v", tl.Power)
	}
	if tl := NewReceiver(Config{ID: "rx", V1: true}).Telemetry(); tl.Power != nil {
		t.Errorf("v1: power %+v", tl.Power)
	}
}
