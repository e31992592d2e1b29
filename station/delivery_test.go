package station_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
)

// deliveryOf returns session id's report by device.
func deliveryOf(t *testing.T, svc loa.DeliveryService, id string) map[string]loa.ReceiverDelivery {
	t.Helper()
	lines, err := svc.SessionDelivery(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]loa.ReceiverDelivery{}
	for _, l := range lines {
		out[l.Device] = l
	}
	return out
}

func wantLine(t *testing.T, got map[string]loa.ReceiverDelivery, dev, state, reason, evidence string) {
	t.Helper()
	l, ok := got[dev]
	if !ok {
		t.Errorf("%s: no delivery line", dev)
		return
	}
	if l.State != state || l.Reason != reason || l.Evidence != evidence {
		t.Errorf("%s: %s/%s (evidence %q), want %s/%s (evidence %q); line %+v", dev, l.State, l.Reason, l.Evidence, state, reason, evidence, l)
	}
}

// TestSessionDelivery: a manual session's report follows each receiver
// from its own evidence — events, or RTCP progress for one that sends
// none — to finished or a failure with its reason; the play log names
// receivers only in aired and failure lines; the report is in the store
// after the session ended and after a restart; a session an operator
// stops reads stopped, not failed.
func TestSessionDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		devs := []string{"d1", "d2", "d3", "d4", "d5", "d6"}
		w := newWorld(t, "", newFleet("d1", "d2", "d3", "d4", "d6"), devs...)
		w.sessions.Online = func(id string) bool { st, ok := w.fleet.DeviceState(id); return ok && st.Online }
		w.fleet.answer("d4", func(context.Context) error { return loa.Errorf(loa.ETIMEOUT, "no answer in 5s") })
		w.fleet.answer("d5", func(context.Context) error { return loa.Errorf(loa.EUNAVAILABLE, "d5 is offline") })
		sess := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Areas: []string{"xa"}}, Priority: 50, CreatedBy: "tok-op"}
		if err := w.sessions.StartSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		got := deliveryOf(t, w.sessions, sess.ID)
		wantLine(t, got, "d1", loa.DeliveryAcked, "", "")
		wantLine(t, got, "d4", loa.DeliveryFailed, loa.ReasonNoAck, "")
		wantLine(t, got, "d5", loa.DeliveryQueued, loa.ReasonOffline, "")

		// d1 plays it whole; d2 sends no events, its RTCP reports progress;
		// d3 acks and plays nothing; d6 plays a fifth of it.
		w.fleet.send("d1", played(sess.ID))
		w.sessions.Reception(sess.ID, "d2", 10)
		synctest.Wait()
		if got := deliveryOf(t, w.sessions, sess.ID)["d2"]; got.State != loa.DeliveryAcked {
			t.Errorf("d2 %s on its first report, want acked until its progress lasts (its played event may follow)", got.State)
		}
		time.Sleep(2 * time.Second)
		w.sessions.Reception(sess.ID, "d2", 110)
		w.fleet.send("d6", played(sess.ID))
		synctest.Wait()
		got = deliveryOf(t, w.sessions, sess.ID)
		wantLine(t, got, "d1", loa.DeliveryStarted, "", loa.EvidenceEvent)
		wantLine(t, got, "d2", loa.DeliveryStarted, "", loa.EvidenceRTCP)
		if got["d2"].RTPReceived != 110 {
			t.Errorf("d2 received %d packets, want 110", got["d2"].RTPReceived)
		}
		w.engine.end(sess.ID, loa.SessionEnded, "")
		w.fleet.send("d1", protocol.Event{Type: protocol.EventFinished, TS: time.Now().UnixMilli(), Session: sess.ID,
			Stream: &protocol.StreamStats{Played: 50, Lost: 2}})
		w.fleet.send("d6", finished(sess.ID, 10))
		time.Sleep(5 * time.Second)
		synctest.Wait()

		got = deliveryOf(t, w.sessions, sess.ID)
		wantLine(t, got, "d1", loa.DeliveryFinished, "", loa.EvidenceEvent)
		wantLine(t, got, "d2", loa.DeliveryFinished, "", loa.EvidenceRTCP)
		wantLine(t, got, "d3", loa.DeliveryFailed, loa.ReasonNoStream, "")
		wantLine(t, got, "d4", loa.DeliveryFailed, loa.ReasonNoAck, "")
		wantLine(t, got, "d5", loa.DeliveryFailed, loa.ReasonOffline, "")
		wantLine(t, got, "d6", loa.DeliveryFailed, loa.ReasonPartial, loa.EvidenceEvent)
		if d1 := got["d1"]; d1.Played != 50 || d1.Lost != 2 || d1.AckedAt.IsZero() || d1.StartedAt.IsZero() || d1.EndedAt.IsZero() {
			t.Errorf("d1 line %+v, want its finished stats (50 played, 2 lost) and every time", d1)
		}
		first := got
		stored, err := w.db.Deliveries(ctx, sess.ID)
		if err != nil || len(stored) != len(devs) {
			t.Fatalf("%d lines stored (err %v), want %d", len(stored), err, len(devs))
		}
		for _, l := range stored {
			if l != got[l.Device] {
				t.Errorf("stored %+v, reported %+v", l, got[l.Device])
			}
		}

		// The play log: session lines name no receiver; aired for d1, d2
		// (on its RTCP) and d6; a failure line for each other.
		byEvent := map[string][]string{}
		for _, e := range w.playLog(sess.ID) {
			switch e.Event {
			case loa.PlayStarted, loa.PlayEnded:
				if len(e.Devices) != 0 {
					t.Errorf("session line %s names receivers %v: it says what the controller did", e.Event, e.Devices)
				}
			case loa.PlayAired:
				if e.Devices[0] == "d2" && !strings.Contains(e.Detail, "RTCP") {
					t.Errorf("d2 aired %q, want told by its RTCP reports", e.Detail)
				}
			}
			byEvent[e.Event] = append(byEvent[e.Event], e.Devices...)
			byEvent[e.Event+" "+e.Detail] = append(byEvent[e.Event+" "+e.Detail], e.Devices...)
		}
		if got := slices.Sorted(slices.Values(byEvent[loa.PlayAired])); !slices.Equal(got, []string{"d1", "d2", "d6"}) {
			t.Errorf("aired for %v, want d1 d2 d6", got)
		}
		for key, want := range map[string][]string{
			"missed delivery: no_stream": {"d3"}, "missed delivery: no_ack": {"d4"},
			"missed offline when it started and not back before its end: not tuned": {"d5"}, "failed delivery: partial": {"d6"},
		} {
			if !slices.Equal(byEvent[key], want) {
				t.Errorf("%q for %v, want %v (log %v)", key, byEvent[key], want, byEvent)
			}
		}

		// Stopped by an operator while d1 plays: stopped, not failed.
		stop := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Devices: []string{"d1", "d3"}}, Priority: 50, CreatedBy: "tok-op"}
		if err := w.sessions.StartSession(ctx, stop); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		w.fleet.send("d1", played(stop.ID))
		synctest.Wait()
		if err := w.sessions.StopSession(ctx, stop.ID, "tok-op", ""); err != nil {
			t.Fatal(err)
		}
		w.fleet.send("d1", finished(stop.ID, 20))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got = deliveryOf(t, w.sessions, stop.ID)
		wantLine(t, got, "d1", loa.DeliveryStopped, "", loa.EvidenceEvent)
		wantLine(t, got, "d3", loa.DeliveryStopped, "", "")
		if got["d1"].Played != 20 {
			t.Errorf("d1 played %d frames before the stop, want 20", got["d1"].Played)
		}

		// After a restart, from the store.
		w.stop()
		w2 := newWorld(t, w.dir, newFleet())
		again := deliveryOf(t, w2.sessions, sess.ID)
		for dev, l := range first {
			if again[dev] != l {
				t.Errorf("after a restart %s reads %+v, want %+v", dev, again[dev], l)
			}
		}
	})
}

// TestDeliveryPreempted: a receiver taken by a higher session fails
// preempted — a report in flight does not make it started on RTCP — and,
// tuned back, goes on to finish.
func TestDeliveryPreempted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1", "d2"), "d1", "d2")
		sess := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Devices: []string{"d1", "d2"}}, Priority: 50, CreatedBy: "tok-op"}
		if err := w.sessions.StartSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		w.sessions.Reception(sess.ID, "d1", 10)
		w.sessions.Reception(sess.ID, "d2", 10)
		w.engine.outcome(loa.SessionOutcome{Kind: loa.OutcomePreempted, Session: sess.ID, At: time.Now(), Devices: []string{"d1", "d2"}, By: "hi"})
		time.Sleep(2 * time.Second)
		w.sessions.Reception(sess.ID, "d1", 20)
		synctest.Wait()
		got := deliveryOf(t, w.sessions, sess.ID)
		wantLine(t, got, "d1", loa.DeliveryFailed, loa.ReasonPreempted, "")
		// d2 is tuned back when the higher session ends, and plays on.
		tuner := &station.AlertTuner{Tuner: w.fleet, Alerts: w.alerts}
		if err := tuner.Tune(ctx, "d2", protocol.PlayArgs{Session: sess.ID}); err != nil {
			t.Fatal(err)
		}
		w.fleet.send("d2", played(sess.ID))
		w.engine.end(sess.ID, loa.SessionEnded, "")
		w.fleet.send("d2", finished(sess.ID, 50))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got = deliveryOf(t, w.sessions, sess.ID)
		wantLine(t, got, "d1", loa.DeliveryFailed, loa.ReasonPreempted, "")
		wantLine(t, got, "d2", loa.DeliveryFinished, "", loa.EvidenceEvent)
	})
}
