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

// An amended station alarm keeps its id and acknowledgement, reaches
// watchers as updated and is no new raise for the webhook.
func TestStationAlarmAmend(t *testing.T) {
	r := newAlarmRig(t, loa.AlarmThresholds{})
	ctx := context.Background()
	_, watch, err := r.a.WatchAlarms(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r.a.AmendStation("p", loa.AlarmBulletinDeadline, loa.SeverityWarning, 2, 0, "late in A, B") // none active: a raise
	al := r.expect(loa.AlarmRaised, "", loa.AlarmBulletinDeadline)
	if al.Area != "p" {
		t.Errorf("raised in area %q, want p", al.Area)
	}
	<-watch
	if _, err := r.a.AcknowledgeAlarm(ctx, al.ID, "user:ts", ""); err != nil {
		t.Fatal(err)
	}
	<-watch
	r.a.AmendStation("b", loa.AlarmBulletinDeadline, loa.SeverityWarning, 1, 0, "late in B")
	r.expectNone()
	c := <-watch
	if c.Event != loa.AlarmUpdated || c.Alarm.ID != al.ID || c.Alarm.Msg != "late in B" || c.Alarm.Area != "b" || c.Alarm.Ack == nil {
		t.Errorf("watchers got %+v, want %s updated with its acknowledgement", c, al.ID)
	}
	got, ok := r.a.ActiveStation(loa.AlarmBulletinDeadline)
	if !ok || got.ID != al.ID || got.Value != 1 || got.Ack == nil {
		t.Errorf("active %+v %v", got, ok)
	}
	if stored, _ := r.store.Alarms(ctx, loa.AlarmFilter{Active: true}); len(stored) != 1 || stored[0].Msg != "late in B" || stored[0].Ack == nil {
		t.Errorf("store holds %+v", stored)
	}
	r.a.AmendStation("b", loa.AlarmBulletinDeadline, loa.SeverityWarning, 1, 0, "late in B") // the same: nothing
	select {
	case c := <-watch:
		t.Errorf("an unchanged amend sent %+v", c)
	default:
	}
}
