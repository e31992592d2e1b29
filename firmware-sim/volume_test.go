package firmwaresim

import (
	"context"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// An emergency play with a volume plays at that volume through mute and
// the receiver restores its own volume when the session ends; a volume
// command meanwhile changes what is restored. Below the emergency band the
// volume in the play args is ignored.
func TestEmergencyVolumeOverride(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	later := time.Now().Add(time.Minute)
	send := func(op string, args any) {
		t.Helper()
		id := rec.send(t, "rx1", op, args, later)
		if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone {
			t.Fatalf("%s acked %+v", op, a)
		}
	}
	send(protocol.OpVolume, protocol.VolumeArgs{Level: 30})
	send(protocol.OpMute, protocol.MuteArgs{Muted: true})

	play := func(session string, prio uint8, volume int) *streamer {
		t.Helper()
		st := newStreamer(t, session, 20)
		a := st.playArgs("rx1", 7)
		a.Priority, a.Volume = prio, volume
		send(protocol.OpPlay, a)
		st.waitReceivers(t, 1)
		return st
	}

	// A normal session cannot raise the volume.
	st := play("n1", 64, 95)
	if v := r.Volume(); v != 30 {
		t.Errorf("a normal-band play set the volume to %d", v)
	}
	st.senderReport()
	st.stream(context.Background(), seq(20))
	st.bye()
	waitDone(t, r, "n1")

	st = play("e1", EmergencyPriority+16, 90)
	if v := r.Volume(); v != 90 {
		t.Fatalf("volume %d during the emergency session, want 90", v)
	}
	send(protocol.OpVolume, protocol.VolumeArgs{Level: 40})
	if v := r.Volume(); v != 90 {
		t.Errorf("a volume command during the alert changed its level to %d", v)
	}
	st.senderReport()
	st.stream(context.Background(), seq(20))
	st.bye()
	if stats := waitDone(t, r, "e1"); stats.Played != 20 || stats.Muted != 0 {
		t.Errorf("emergency session on a muted receiver: %+v", stats)
	}
	if v := r.Volume(); v != 40 {
		t.Errorf("volume %d after the alert, want 40 (set during it)", v)
	}

	// A newer emergency session preempting the first: the receiver's own
	// volume comes back after both, whatever order they end in.
	play("e2", EmergencyPriority, 80)
	play("e3", EmergencyPriority, 60)
	if v := r.Volume(); v != 60 {
		t.Errorf("volume %d under the newest alert, want 60", v)
	}
	send(protocol.OpStop, protocol.StopArgs{})
	if v := r.Volume(); v != 40 {
		t.Errorf("volume %d after a stop, want 40", v)
	}
}
