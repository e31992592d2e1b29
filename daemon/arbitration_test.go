package daemon

import (
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// TestSystemEqualPriority: at equal priority the playing session keeps its
// receivers (the newer one gets them when it ends, if still running); in
// the emergency band the newest wins.
func TestSystemEqualPriority(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2})
	long := s.upload(testSignal(3*time.Second), 48000)
	longer := s.upload(testSignal(5*time.Second), 48000)
	start := func(mediaID string, prio int) *loa.Session {
		t.Helper()
		var sess loa.Session
		if err := s.api.JSON(t.Context(), "POST", "/api/v1/sessions", map[string]any{"media_id": mediaID,
			"targets": map[string][]string{"areas": {"a"}}, "priority": prio}, &sess); err != nil {
			t.Fatal(err)
		}
		return &sess
	}
	playing := func(sess *loa.Session) {
		t.Helper()
		for _, r := range s.byArea["a"] {
			deadline := time.Now().Add(20 * time.Second)
			for {
				if st, ok := r.Session(sess.ID); ok && st.Played > 5 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never played %s", r.ID(), sess.ID)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}

	first := start(long.ID, 64)
	playing(first)
	second := start(longer.ID, 64)
	end1 := s.finish(first, long.Duration, "a")
	for _, r := range s.byArea["a"] {
		if st, _ := r.Session(first.ID); float64(st.FromPacket()) < 0.99*float64(long.Frames) {
			t.Errorf("%s: the playing session lost its receiver to an equal one (%d of %d frames)", r.ID(), st.FromPacket(), long.Frames)
		}
	}
	s.finish(second, longer.Duration, "a")
	for _, r := range s.byArea["a"] {
		st, ok := r.Session(second.ID)
		if !ok || st.FirstPlayed.Before(end1.EndedAt.Add(-300*time.Millisecond)) {
			t.Errorf("%s: the second session should start only after the first ended (%v): %+v", r.ID(), end1.EndedAt, st)
		}
	}

	// Emergency band: the newest wins at once.
	older := start(longer.ID, 230)
	playing(older)
	newer := start(long.ID, 230)
	playing(newer)
	s.finish(newer, long.Duration, "a")
	s.finish(older, longer.Duration, "a")
	for _, r := range s.byArea["a"] {
		var parts int
		for _, st := range r.Sessions() {
			if st.Session == older.ID {
				parts++
			}
		}
		if parts < 2 {
			t.Errorf("%s: the older emergency session was not preempted and resumed (%d parts)", r.ID(), parts)
		}
	}
}
