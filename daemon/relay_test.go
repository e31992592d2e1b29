package daemon

import (
	"context"
	"errors"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
)

// TestSystemRelay relays an MP3 stream that ffmpeg generates (a tone,
// served at real rate by a local HTTP server) to receivers, scheduled:
// they play its tone; killing the source fails over to the backup URL
// (another tone), killing that to the fallback media, and reviving the
// source brings it back. Every switch is in the play log, the failover
// raises relay_failover while it lasts, and the relays API shows where it
// is; the scheduled relay cannot be deleted.
func TestSystemRelay(t *testing.T) {
	primary, backup := loatest.StartToneStream(t, 440), loatest.StartToneStream(t, 1000)
	s := startSystem(t, systemOpts{receivers: 2})
	ctx := context.Background()
	s.m.Relays.AlarmAfter = time.Second
	s.m.Relays.Tune = func(o *media.RelayOptions) { o.ReturnAfter = time.Second }
	fallback := s.upload(media.Tone(2500, 48000, 2*time.Second, 0.3), 48000)

	bad := []map[string]any{
		{"id": "vov1", "name": "VOV1", "urls": []string{"file:///etc/passwd"}},
		{"id": "vov1", "name": "VOV1", "urls": []string{}},
		{"id": "vov1", "name": "VOV1", "urls": []string{primary.URL()}, "fallback_media_id": "nope"},
	}
	for _, b := range bad {
		if err := s.api.JSON(ctx, "POST", "/api/v1/relays", b, nil); err == nil {
			t.Errorf("relay %v accepted", b)
		}
	}
	relay := map[string]any{"id": "vov1", "name": "VOV1", "urls": []string{primary.URL(), backup.URL()},
		"fallback_media_id": fallback.ID, "silence_s": 1}
	if err := s.api.JSON(ctx, "POST", "/api/v1/relays", relay, nil); err != nil {
		t.Fatalf("create relay: %v", err)
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/relays/vov1/play", map[string]any{"targets": map[string]any{}}, nil); apiCode(err) != loa.EINVALID {
		t.Errorf("playing a relay to no one: %v", err)
	}
	// Scheduled: once, a few seconds from now, until its end time.
	at := time.Now().UTC().Add(3 * time.Second)
	end := at.Add(2 * time.Minute)
	if end.Day() != at.Day() {
		end = time.Date(at.Year(), at.Month(), at.Day(), 23, 59, 59, 0, time.UTC)
	}
	sched := map[string]any{"id": "vov-morning", "name": "VOV sáng", "enabled": true,
		"rule":    map[string]any{"kind": "once", "date": at.Format("2006-01-02"), "time": at.Format("15:04:05"), "end": end.Format("15:04:05"), "zone": "UTC"},
		"content": map[string]any{"relay_id": "vov1"}, "targets": map[string]any{"areas": []string{"a"}}}
	for content, field := range map[string]map[string]any{
		"content.relay_id": {"relay_id": "nope"},
		"content.media_id": {"relay_id": "vov1", "media_id": fallback.ID},
	} {
		bad := maps.Clone(sched)
		bad["content"] = field
		if err := s.api.JSON(ctx, "POST", "/api/v1/schedules", bad, nil); err == nil || !strings.Contains(err.Error(), content) {
			t.Errorf("schedule content %v: %v, want an error naming %s", field, err, content)
		}
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/schedules", sched, nil); err != nil {
		t.Fatalf("a schedule of the relay: %v", err)
	}
	if err := s.api.JSON(ctx, "DELETE", "/api/v1/relays/vov1", nil, nil); apiCode(err) != loa.ECONFLICT {
		t.Errorf("deleting a scheduled relay: %v", err)
	}
	var sess loa.Session
	loatest.Eventually(t, 20*time.Second, func() bool {
		all, _ := s.m.Sessions.Sessions(ctx)
		for _, x := range all {
			if x.State == loa.SessionPlaying && x.RelayID == "vov1" {
				sess = *x
				return true
			}
		}
		return false
	}, "the scheduled relay starts")
	if sess.Origin.Kind != loa.OriginSchedule || sess.MaxDuration > 2*time.Minute || sess.MaxDuration <= 0 {
		t.Errorf("scheduled relay session: origin %v, max duration %v (the schedule's end)", sess.Origin, sess.MaxDuration)
	}
	hears := func(what string, freq float64) {
		t.Helper()
		loatest.Eventually(t, 20*time.Second, func() bool {
			for _, r := range s.byArea["a"] {
				pcm := r.PCM(sess.ID)
				if len(pcm) < 9600 || math.Abs(dominantFrequency(pcm[len(pcm)-9600:])-freq) > 20 {
					return false
				}
			}
			return true
		}, "receivers play "+what)
	}
	state := func() (st loa.RelayState) {
		var v struct {
			Playing []loa.RelayState `json:"playing"`
		}
		if err := s.api.JSON(ctx, "GET", "/api/v1/relays/vov1", nil, &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Playing) == 1 {
			st = v.Playing[0]
		}
		return st
	}
	alarmed := func() bool {
		var list []loa.Alarm
		if err := s.api.JSON(ctx, "GET", "/api/v1/alarms?active=true&kind=relay_failover", nil, &list); err != nil {
			t.Fatal(err)
		}
		return len(list) > 0
	}

	hears("the source's tone", 440)
	st0 := state()
	if st0.URL != primary.URL() || st0.Source != "mp3" || st0.SessionID != sess.ID {
		t.Errorf("state on the source: %+v", st0)
	}
	// A loaded machine may have been slow enough to start the source that
	// it failed over and back already: count from here.
	primary.Kill()
	hears("the backup's tone", 1000)
	if st := state(); st.URL != backup.URL() || st.Failovers != st0.Failovers+1 {
		t.Errorf("state on the backup: %+v", st)
	}
	loatest.Eventually(t, 10*time.Second, alarmed, "relay_failover raised")
	backup.Kill()
	hears("the fallback media", 2500)
	if st := state(); !st.Fallback || st.Failovers != st0.Failovers+2 {
		t.Errorf("state on the fallback: %+v", st)
	}
	primary.Revive()
	hears("the source's tone again", 440)
	loatest.Eventually(t, 10*time.Second, func() bool { return !alarmed() }, "relay_failover cleared")

	var log []loa.PlayLogEntry
	if err := s.api.JSON(ctx, "GET", "/api/v1/playlog?event=relay_switch", nil, &log); err != nil {
		t.Fatal(err)
	}
	var details []string
	for _, e := range log {
		if e.SessionID == sess.ID && e.Content.RelayID == "vov1" {
			details = append(details, e.Detail)
		}
	}
	// Newest first: back to the source, to the fallback, to the backup.
	if len(details) < 3 || !strings.Contains(details[0], "sounds again") || !strings.Contains(details[1], "→ the fallback media") ||
		!strings.Contains(details[2], "→ backup URL 1") || !strings.Contains(details[2], "(stalled)") {
		t.Errorf("relay switches in the play log: %q", details)
	}

	if err := s.api.StopSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	loatest.Eventually(t, 10*time.Second, func() bool { return len(s.m.Relays.RelayStates()) == 0 }, "the relay's children stopped")
}

func apiCode(err error) string {
	var ce *api.ClientError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}
