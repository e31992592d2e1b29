package devices

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
)

// A station alarm (no device) is raised, superseded by a new raise (one
// active at a time), left alone by the evaluator's checks, and cleared by
// its owner.
func TestStationAlarm(t *testing.T) {
	r := newAlarmRig(t, loa.AlarmThresholds{})
	r.a.RaiseStation(loa.AlarmClockStep, loa.SeverityWarning, -14400, 2, "stepped back")
	r.expect(loa.AlarmRaised, "", loa.AlarmClockStep)
	r.a.RaiseStation(loa.AlarmClockStep, loa.SeverityWarning, 600, 2, "stepped forward")
	r.expect(loa.AlarmCleared, "", loa.AlarmClockStep)
	if al := r.expect(loa.AlarmRaised, "", loa.AlarmClockStep); al.Value != 600 {
		t.Errorf("new alarm value %v, want 600", al.Value)
	}
	r.a.Check(context.Background())
	if act := r.a.Active(); len(act) != 1 || act[0].Kind != loa.AlarmClockStep {
		t.Fatalf("active after a check: %+v, want the clock_step alarm alone", act)
	}
	for range len(r.changes) {
		if c := <-r.changes; c.Alarm.Kind == loa.AlarmClockStep {
			t.Fatalf("the check changed the station alarm: %+v", c)
		}
	}
	r.a.ClearStation(loa.AlarmClockStep, "no step for 1h")
	r.expect(loa.AlarmCleared, "", loa.AlarmClockStep)
	if act := r.a.Active(); len(act) != 0 {
		t.Errorf("active after clearing: %+v", act)
	}
	r.a.ClearStation(loa.AlarmClockStep, "again") // nothing active: nothing happens
	r.expectNone()
}
