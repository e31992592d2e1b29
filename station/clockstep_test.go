package station_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
)

// A session interrupted by a shutdown and resumed after the wall clock
// stepped back (it started "after" now): it resumes from its start
// instead of failing on a negative seek.
func TestResumeAfterClockStepBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1"), "d1")
		sess := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Devices: []string{"d1"}}, Priority: 50}
		if err := w.sessions.StartSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		w.engine.end(sess.ID, loa.SessionStopped, loa.SessionShutdown)
		got, err := w.db.Session(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		got.StartedAt = time.Now().Add(4 * time.Hour) // the clock has since gone back 4 h
		if err := w.db.PutSession(ctx, got); err != nil {
			t.Fatal(err)
		}
		w.sessions.ResumeInterrupted(ctx, func(string) bool { return true }, time.Second)
		log := w.playLog(sess.ID)
		if ev := events(log); !slices.Contains(ev, loa.PlayResumed) || slices.Contains(ev, loa.PlayFailed) {
			t.Fatalf("play log %+v, want resumed and no failure", log)
		}
		if got, _ := w.db.Session(ctx, sess.ID); got.State != loa.SessionPlaying {
			t.Errorf("session %s (%s), want playing", got.State, got.Reason)
		}
	})
}
