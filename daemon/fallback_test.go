package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
)

// TestSystemFallback: an area's background programme loops while nothing
// else plays, yields to a programme, comes back after it, and stops when
// cleared.
func TestSystemFallback(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 4})
	ctx := context.Background()
	music := s.upload(media.Tone(440, 48000, time.Second, 0.3), 48000)
	if err := s.api.JSON(ctx, "PUT", "/api/v1/areas/a/fallback", map[string]any{"media_id": music.ID}, nil); err != nil {
		t.Fatalf("set fallback: %v", err)
	}
	if err := s.api.JSON(ctx, "PUT", "/api/v1/areas/a/fallback", map[string]any{"media_id": music.ID, "priority": 64}, nil); err == nil {
		t.Error("a fallback above the background band was accepted")
	}
	fallbackID := func() string {
		all, _ := s.m.Sessions.Sessions(ctx)
		for _, x := range all {
			if x.State == loa.SessionPlaying && x.Origin.Kind == loa.OriginFallback {
				return x.ID
			}
		}
		return ""
	}
	waitPlayed := func(id string, frames uint64, after time.Time) {
		t.Helper()
		for _, r := range s.byArea["a"] {
			deadline := time.Now().Add(30 * time.Second)
			for {
				st, ok := r.Session(id)
				if ok && st.FromPacket() >= frames && st.FirstPlayed.After(after) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s did not play %d frames of %s after %v: %+v", r.ID(), frames, id, after, st)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	var fb string
	for deadline := time.Now().Add(20 * time.Second); fb == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		fb = fallbackID()
	}
	if fb == "" {
		t.Fatal("no fallback session started")
	}
	waitPlayed(fb, uint64(music.Frames)+20, time.Time{}) // longer than the item: it loops

	bulletin := s.upload(testSignal(2*time.Second), 48000)
	sess := s.play(bulletin.ID, "a")
	end := s.finish(sess, bulletin.Duration, "a")
	for _, r := range s.byArea["a"] {
		if st, _ := r.Session(sess.ID); float64(st.FromPacket()) < 0.99*float64(bulletin.Frames) {
			t.Errorf("%s played %d of %d frames of the bulletin over the fallback", r.ID(), st.FromPacket(), bulletin.Frames)
		}
	}
	waitPlayed(fb, 10, end.EndedAt.Add(-time.Second)) // back to the background programme
	for _, r := range s.byArea["b"] {
		if _, ok := r.Session(fb); ok {
			t.Errorf("%s outside the area plays its fallback", r.ID())
		}
	}

	if err := s.api.JSON(ctx, "DELETE", "/api/v1/areas/a/fallback", nil, nil); err != nil {
		t.Fatalf("clear fallback: %v", err)
	}
	if st, err := s.api.Session(ctx, fb); err != nil || st.State != loa.SessionStopped {
		t.Errorf("fallback session after clearing: %+v %v", st, err)
	}
}
