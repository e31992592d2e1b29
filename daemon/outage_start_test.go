package daemon

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
)

// A scheduled programme whose start falls inside an external-broker
// outage (Mosquitto killed 3 s before, before the pre-roll, and started again 3 s
// after) is not
// lost: its receivers' presence is unknown, not offline, so their tunes
// wait out the outage and each receiver joins the programme mid-way once
// it is back, and plays it to its end. The play log and the delivery
// report say what each receiver played, from the receivers' own records.
func TestSystemScheduledStartDuringBrokerOutage(t *testing.T) {
	port := loatest.FreePort(t, "tcp")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	mosq := loatest.RunMosquitto(t, t.TempDir(), port, conf)
	s := startSystem(t, systemOpts{receivers: 4, mqttURL: mosq.URL})
	all := s.fleet.Receivers()

	const length = 10 * time.Second
	med := s.upload(testSignal(length), 48000)
	at := time.Now().Add(4 * time.Second).Truncate(time.Second).Add(time.Second)
	s.createSchedule("outage", med.ID, at, map[string]any{"targets": map[string][]string{"areas": {"p"}}})

	// Killed before the 2 s pre-roll: the session is launched in the outage.
	time.Sleep(time.Until(at.Add(-3 * time.Second))) // the fault is at a moment of the wall clock
	mosq.Kill()
	sess := s.waitScheduled("outage", 10*time.Second)
	time.Sleep(time.Until(at.Add(3 * time.Second)))
	loatest.RunMosquitto(t, t.TempDir(), port, conf)

	end := s.finish(sess, length, "a", "b")
	if end.State != loa.SessionEnded {
		t.Errorf("session %s (%s), want ended", end.State, end.Reason)
	}
	report := s.waitDelivered(sess.ID)
	aired := map[string]bool{}
	for _, e := range s.playLog("") {
		if e.SessionID != sess.ID && e.ScheduleID != "outage" {
			continue
		}
		t.Logf("play log: %s %v %s", e.Event, e.Devices, e.Detail)
		switch e.Event {
		case loa.PlayStarted, loa.PlayEnded:
		case loa.PlayFailed:
			// Joined mid-way: the report says each played part of it.
			if e.Detail != "delivery: "+loa.ReasonPartial {
				t.Errorf("play log %s %v (%s): want only partial failures (joined mid-way)", e.Event, e.Devices, e.Detail)
			}
		case loa.PlayAired:
			for _, d := range e.Devices {
				aired[d] = true
			}
		default:
			t.Errorf("play log %s %v (%s): want the programme started, aired by every receiver and ended", e.Event, e.Devices, e.Detail)
		}
	}
	for _, r := range all {
		var heard uint64
		var first time.Time
		for _, st := range parts(r, sess.ID) {
			heard += st.FromPacket()
			if first.IsZero() || !st.FirstPlayed.IsZero() && st.FirstPlayed.Before(first) {
				first = st.FirstPlayed
			}
		}
		// The rest of the programme: from when it is back (≈ 3 s in, plus
		// its reconnection) to the end, not from the start, and at least
		// its last 3 s.
		if heard < 150 || heard > uint64(med.Frames) {
			t.Errorf("%s heard %d frames of the %d-frame programme, want its rest (≥ 150)", r.ID(), heard, med.Frames)
		}
		if heard > 0 && first.Before(at.Add(2*time.Second)) {
			t.Errorf("%s first played at %v, during the outage", r.ID(), first.Sub(at))
		}
		if !aired[r.ID()] {
			t.Errorf("%s played it but the play log has no aired line for it", r.ID())
		}
		l, ok := report[r.ID()]
		if !ok {
			t.Errorf("%s not in the delivery report", r.ID())
			continue
		}
		if l.StartedAt.IsZero() || l.State == loa.DeliveryFailed && l.Reason != loa.ReasonPartial {
			t.Errorf("%s: delivery %+v, want started (it played the rest)", r.ID(), l)
		}
	}
}

// A controller whose external Mosquitto is down when it starts comes up
// anyway: it serves its API, /healthz says the broker link is down (still
// 200: the station waits the outage out), the broker_link station alarm is
// raised; once Mosquitto is up the controller connects by itself, the
// alarm clears, and receivers come online and play.
func TestSystemStartsWithBrokerDown(t *testing.T) {
	port := loatest.FreePort(t, "tcp")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	cfg := testConfig(t)
	cfg.MQTTURL = fmt.Sprintf("tcp://127.0.0.1:%d", port) // nothing listens yet
	m := openMain(t, cfg)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close controller: %v", err)
		}
	})
	s := &system{t: t, m: m, api: api.NewClient(m.URL(), m.AdminToken), byArea: map[string][]*firmwaresim.Receiver{}}
	brokerUp := func() (int, bool) {
		code, body := healthz(t, m.URL())
		b, _ := body["broker"].(map[string]any)
		up, _ := b["connected"].(bool)
		return code, up
	}
	if code, up := brokerUp(); code != http.StatusOK || up {
		t.Fatalf("/healthz with the broker down: %d, connected %v; want 200, not connected", code, up)
	}
	linkAlarm := func() bool {
		return slices.ContainsFunc(s.alarms(""), func(a loa.Alarm) bool { return a.Kind == loa.AlarmBrokerLink && a.Device == "" && a.Active() })
	}
	loatest.Eventually(t, loatest.Wait, linkAlarm, "the broker_link alarm is raised")

	loatest.RunMosquitto(t, t.TempDir(), port, conf)
	loatest.Eventually(t, 30*time.Second, func() bool { _, up := brokerUp(); return up }, "the controller connects once Mosquitto is up")
	loatest.Eventually(t, loatest.Wait, func() bool { return !linkAlarm() }, "the broker_link alarm clears")

	fleet := provisionFleet(t, s.api, cfg.MQTTURL, 2, false)
	s.byArea["a"] = fleet.Receivers()
	med := s.upload(testSignal(time.Second), 48000)
	sess := s.play(med.ID, "a")
	s.finish(sess, med.Duration, "a")
	for _, r := range fleet.Receivers() {
		if st, _ := r.Session(sess.ID); st.FromPacket()+5 < uint64(med.Frames) {
			t.Errorf("%s played %d of %d frames", r.ID(), st.FromPacket(), med.Frames)
		}
	}
}

// A receiver offline when a session starts is tuned when it comes back
// while the session plays: it joins mid-way, its aired line follows, and
// the play log has no missed line for it.
func TestSystemReceiverBackDuringSession(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 1})
	ctx := context.Background()
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-late", AreaID: "a1", Name: "late"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := firmwaresim.Config{ID: "rx-late", Password: pw, Broker: s.m.MQTTURL(), Decode: true, Logger: testLogger(t)}
	first := firmwaresim.NewReceiver(cfg)
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.api.WaitOnline(ctx, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	first.Kill()
	loatest.Eventually(t, 30*time.Second, func() bool {
		st, ok := s.m.Fleet.DeviceState("rx-late")
		return ok && st.Presence == loa.PresenceOffline
	}, "the killed receiver is offline")

	med := s.upload(testSignal(6*time.Second), 48000)
	sess := s.play(med.ID, "a")
	back := firmwaresim.NewReceiver(cfg)
	if err := back.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	s.byArea["late"] = []*firmwaresim.Receiver{back}
	s.finish(sess, med.Duration, "a", "late")
	st, _ := back.Session(sess.ID)
	if st.FromPacket() < 50 || st.FromPacket() >= uint64(med.Frames) {
		t.Errorf("the receiver back mid-way played %d of %d frames, want the rest of it", st.FromPacket(), med.Frames)
	}
	s.waitDelivered(sess.ID)
	aired := false
	for _, e := range s.playLog("") {
		if e.SessionID != sess.ID {
			continue
		}
		if e.Event == loa.PlayMissed && slices.Contains(e.Devices, "rx-late") {
			t.Errorf("play log: missed %v (%s) for a receiver that played", e.Devices, e.Detail)
		}
		aired = aired || e.Event == loa.PlayAired && slices.Contains(e.Devices, "rx-late")
	}
	if !aired {
		t.Error("no aired line for the receiver back mid-way")
	}
}
