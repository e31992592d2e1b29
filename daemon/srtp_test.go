package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/media"
)

// With -require-srtp a receiver that announces no srtp-gcm (today's
// simulator announces nothing: a v1 receiver) is listed by the
// plain_receivers alarm and is not tuned: the alert's report says refused,
// naming the switch, and it plays nothing.
//
// Once the simulator announces srtp-gcm by default, this test runs its
// receivers as v1 ones.
func TestSystemRequireSRTPRefusesPlainReceivers(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2, configure: func(c *Config) { c.RequireSRTP = true }})
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
