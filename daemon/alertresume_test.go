package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
)

// playedWhole reports whether r played a session of the alert other than
// its first one (first) from its beginning to its end, once: every frame
// from its own packet but a few, and ended by the stream's end.
func playedWhole(r *firmwaresim.Receiver, sessions map[string]bool, first string, frames int) bool {
	for _, st := range r.Sessions() {
		if st.Session == first || !sessions[st.Session] {
			continue
		}
		if (st.EndReason == firmwaresim.EndBye || st.EndReason == firmwaresim.EndEndFrame) &&
			st.FromPacket()+5 >= uint64(frames) && st.FromPacket() <= uint64(frames) {
			return true
		}
	}
	return false
}

// alertSessions lists the ids of the sessions carrying alert id.
func alertSessions(t *testing.T, c *api.Client, id string) map[string]bool {
	t.Helper()
	var all []*loa.Session
	if err := c.JSON(context.Background(), "GET", "/api/v1/sessions", nil, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, s := range all {
		if s.Origin == (loa.Origin{Kind: loa.OriginAlert, ID: id}) {
			out[s.ID] = true
		}
	}
	return out
}

// TestSystemKillDuringAlert kills the controller (SIGKILL) while its
// receivers play an emergency alert, and starts it again: the alert, not
// expired, goes on, and every receiver's own record shows the whole alert
// played, from its beginning, in a late session after the restart; the
// report says finished on that evidence.
func TestSystemKillDuringAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the controller binary")
	}
	bin := buildLoa(t)
	d := newDaemonProc(t, bin)
	first := d.serve()
	c, fleet := d.station(2)
	s := &system{t: t, api: c}
	bulletin := s.upload(testSignal(2*time.Second), 48000)
	al, err := s.sendAlert(map[string]any{"level": loa.AlertEmergency, "content": map[string]any{"media_id": bulletin.ID},
		"targets": map[string][]string{"areas": {"a"}}, "expires_in": "2m"})
	if err != nil {
		t.Fatal(err)
	}
	waitAlertPlaying(t, al.SessionID, fleet.Receivers()...)
	d.kill(first)
	d.serve()

	end := s.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if end.State != loa.AlertFinished {
		t.Errorf("alert %s (%s) after the restart, want finished", end.State, end.Reason)
	}
	sessions := alertSessions(t, c, al.ID)
	for _, r := range fleet.Receivers() {
		if d := delivery(end, r.ID()); d.State != loa.DeliveryFinished || !d.Late {
			t.Errorf("%s: %+v, want finished, late", r.ID(), d)
		}
		if !playedWhole(r, sessions, al.SessionID, bulletin.Frames) {
			t.Errorf("%s did not play the whole alert after the restart: %+v", r.ID(), r.Sessions())
		}
	}
	if sess, err := c.Session(context.Background(), al.SessionID); err != nil || sess.State != loa.SessionStopped {
		t.Errorf("the alert's first session after the restart: %+v, %v; want stopped, not resumed", sess, err)
	}
}

// TestSystemAlertReceiverRebooted: a receiver powered off in the middle
// of an alert and booted again before its expiry gets the whole alert
// again in a late session, and the report says finished on its evidence.
func TestSystemAlertReceiverRebooted(t *testing.T) {
	s := startSystem(t, systemOpts{})
	ctx := context.Background()
	s.api.CreateArea(ctx, loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince})
	s.api.CreateArea(ctx, loa.Area{ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune})
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-boot", AreaID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := firmwaresim.Config{ID: "rx-boot", Password: pw, Broker: s.m.MQTTURL(), Logger: testLogger(t)}
	first := firmwaresim.NewReceiver(cfg)
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.api.WaitOnline(ctx, 1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	bulletin := s.upload(media.Tone(600, 48000, 2*time.Second, 0.5), 48000)
	al, err := s.sendAlert(map[string]any{"level": loa.AlertEmergency, "content": map[string]any{"media_id": bulletin.ID},
		"targets": map[string][]string{"devices": {"rx-boot"}}, "expires_in": "2m"})
	if err != nil {
		t.Fatal(err)
	}
	waitAlertPlaying(t, al.SessionID, first)
	first.Kill() // power cut: the broker publishes its Will
	back := firmwaresim.NewReceiver(cfg)
	if err := back.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Kill)

	end := s.waitAlert(al.ID, "ended", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if d := delivery(end, "rx-boot"); end.State != loa.AlertFinished || d.State != loa.DeliveryFinished || !d.Late {
		t.Errorf("alert %s, rebooted receiver %+v; want finished, late", end.State, d)
	}
	if !playedWhole(back, alertSessions(t, s.api, al.ID), al.SessionID, bulletin.Frames) {
		t.Errorf("the rebooted receiver did not play the whole alert: %+v", back.Sessions())
	}
}
