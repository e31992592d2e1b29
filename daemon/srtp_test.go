package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
)

// With -require-srtp a receiver that announces no srtp-gcm (a v1
// receiver) is listed by the plain_receivers alarm and is not tuned: the
// alert's report says refused, naming the switch, and it plays nothing.
func TestSystemRequireSRTPRefusesPlainReceivers(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2, v1: 2, configure: func(c *Config) { c.RequireSRTP = true }})
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		var devs []api.DeviceView
		if err := s.api.JSON(ctx, "GET", "/api/v1/devices?problem="+loa.AlarmPlainReceiver, nil, &devs); err != nil {
			t.Fatal(err)
		}
		if len(devs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plain receivers listed: %+v", devs)
		}
		time.Sleep(20 * time.Millisecond)
	}

	bulletin := s.upload(media.Tone(700, 48000, time.Second, 0.5), 48000)
	al, err := s.sendAlert(map[string]any{"title": "Thử", "level": loa.AlertPriority,
		"content": map[string]any{"media_id": bulletin.ID}, "targets": map[string][]string{"areas": {"a"}},
		"expires_in": "10m"})
	if err != nil {
		t.Fatalf("send alert: %v", err)
	}
	r := s.byArea["a"][0]
	end := s.waitAlert(al.ID, "refused", func(a *alertReply) bool { return delivery(a, r.ID()).State == loa.DeliveryFailed })
	d := delivery(end, r.ID())
	if d.Reason != loa.ReasonRefused || !strings.Contains(d.Detail, "-require-srtp") {
		t.Errorf("delivery %+v, want refused naming -require-srtp", d)
	}
	if st, ok := r.Session(al.SessionID); ok {
		t.Errorf("%s was tuned: %+v", r.ID(), st)
	}
}

// A fleet in migration: one v1 receiver and one v2 in the same commune
// play the same session, the v2 one over SRTP under its own keys and the
// v1 one plain; only the v1 one is listed as a plain receiver, and both
// hear the programme.
func TestSystemMixedFleetSRTPAndPlain(t *testing.T) {
	// Receivers alternate between communes a and b: 0 and 2 are in a.
	s := startSystem(t, systemOpts{receivers: 3, v1: 1})
	plain, secure := s.byArea["a"][0], s.byArea["a"][1]
	if plain.ID() != "rx-000" || secure.ID() != "rx-002" {
		t.Fatalf("commune a holds %s and %s", plain.ID(), secure.ID())
	}
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		var devs []api.DeviceView
		if err := s.api.JSON(ctx, "GET", "/api/v1/devices?problem="+loa.AlarmPlainReceiver, nil, &devs); err != nil {
			t.Fatal(err)
		}
		if len(devs) == 1 && devs[0].ID == plain.ID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plain receivers listed: %+v, want only %s", devs, plain.ID())
		}
		time.Sleep(20 * time.Millisecond)
	}
	med := s.upload(media.Tone(700, 48000, 2*time.Second, 0.5), 48000)
	sess := s.play(med.ID, "a")
	s.finish(sess, med.Duration, "a")
	for _, c := range []struct {
		r    *firmwaresim.Receiver
		srtp bool
	}{{plain, false}, {secure, true}} {
		st, _ := c.r.Session(sess.ID)
		if st.SRTP != c.srtp || float64(st.Decoded+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(med.Frames) || st.AuthFailures != 0 {
			t.Errorf("%s: %+v, want srtp %v, %d frames decoded, no auth failures", c.r.ID(), st, c.srtp, med.Frames)
		}
		if f := dominantFrequency(c.r.PCM(sess.ID)); f < 650 || f > 750 {
			t.Errorf("%s played %.0f Hz, want 700", c.r.ID(), f)
		}
	}
}
