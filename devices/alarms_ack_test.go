package devices

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// An acknowledgement is stored on the active alarm and sent to watchers,
// not to the webhook; the alarm stays active, and its clear keeps the
// acknowledgement. A cleared alarm cannot be acknowledged.
func TestAlarmAcknowledge(t *testing.T) {
	r := newAlarmRig(t, loa.DefaultAlarmThresholds())
	ctx := context.Background()
	_, watch, err := r.a.WatchAlarms(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r.a.ObserveEvent("rx-1", protocol.Event{Type: protocol.EventAmpFault})
	al := r.expect(loa.AlarmRaised, "rx-1", loa.AlarmAmpFault)
	<-watch

	got, err := r.a.AcknowledgeAlarm(ctx, al.ID, "user:kt", "đã cử người")
	if err != nil || got.Ack == nil || got.Ack.By != "user:kt" || got.Ack.Note != "đã cử người" || !got.Ack.At.Equal(r.clock.Now()) || !got.Active() {
		t.Fatalf("acknowledged %+v, %v", got, err)
	}
	r.expectNone() // not the webhook's
	if c := <-watch; c.Event != loa.AlarmAcknowledged || c.Alarm.Ack == nil {
		t.Errorf("watchers got %+v", c)
	}
	stored, _ := r.store.Alarms(ctx, loa.AlarmFilter{Active: true})
	if len(stored) != 1 || stored[0].Ack == nil || stored[0].Ack.Note != "đã cử người" {
		t.Errorf("store holds %+v", stored)
	}

	r.a.ObserveEvent("rx-1", protocol.Event{Type: protocol.EventAmpOK})
	if cl := r.expect(loa.AlarmCleared, "rx-1", loa.AlarmAmpFault); cl.Ack == nil || cl.Ack.Note != "đã cử người" {
		t.Errorf("cleared %+v lost its acknowledgement", cl)
	}
	if _, err := r.a.AcknowledgeAlarm(ctx, al.ID, "user:kt", ""); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("acknowledging a cleared alarm: %v, want conflict", err)
	}
	if _, err := r.a.AcknowledgeAlarm(ctx, "nope", "user:kt", ""); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("acknowledging an unknown alarm: %v, want not found", err)
	}
}
