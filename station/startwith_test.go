package station_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
)

// closeCount is a source of no packets that counts its closes.
type closeCount struct{ closed atomic.Int32 }

func (c *closeCount) Next() ([]byte, error) { return nil, loa.ErrGap }
func (c *closeCount) Close() error          { c.closed.Add(1); return nil }

// TestStartWith starts a session of the caller's own source: it is
// resolved, written and logged as any other, its source closed once it
// ends; content named with it, or no targets, is refused and starts
// nothing.
func TestStartWith(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1", "d2"), "d1", "d2")
		for _, bad := range []*loa.Session{
			{MediaID: w.media.ID, Targets: loa.Targets{Areas: []string{"xa"}}},
			{},
			{Targets: loa.Targets{Areas: []string{"xa"}}, MaxDuration: -time.Second},
		} {
			if err := w.sessions.StartWith(ctx, bad, &closeCount{}, 0); loa.ErrorCode(err) != loa.EINVALID {
				t.Errorf("StartWith(%+v) = %v, want EINVALID", bad, err)
			}
		}
		if n := len(w.engine.sessions()); n != 0 {
			t.Fatalf("%d sessions started by bad requests", n)
		}
		src := &closeCount{}
		sess := &loa.Session{Targets: loa.Targets{Areas: []string{"xa"}}, Priority: 150, CreatedBy: "tok-op",
			Origin: loa.Origin{Kind: loa.OriginLive, ID: "lv-1"}, Transcoded: true}
		if err := w.sessions.StartWith(ctx, sess, src, 0); err != nil {
			t.Fatal(err)
		}
		if sess.ID == "" || sess.SSRC == 0 || !slices.Equal(sess.Devices, []string{"d1", "d2"}) || sess.State != loa.SessionPlaying ||
			sess.MaxDuration != loa.DefaultStreamMaxDuration {
			t.Fatalf("started %+v", sess)
		}
		stored, err := w.db.Session(ctx, sess.ID)
		if err != nil || stored.Origin != sess.Origin || !stored.Transcoded {
			t.Fatalf("stored %+v, %v", stored, err)
		}
		time.Sleep(time.Second)
		if err := w.sessions.StopSession(ctx, sess.ID, "tok-op", "ended: uplink lost"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := src.closed.Load(); n != 1 {
			t.Errorf("source closed %d times, want once", n)
		}
		if got, want := events(w.playLog(sess.ID)), []string{loa.PlayStarted, loa.PlayStopped}; !slices.Equal(got[:min(2, len(got))], want) {
			t.Errorf("play log %v, want %v first", got, want)
		}
		if log := w.playLog(sess.ID); len(log) > 1 && log[1].Detail != "ended: uplink lost" {
			t.Errorf("stop line detail %q", log[1].Detail)
		}
	})
}

// TestStartWithSessionEndsAtRestart: a session of its caller's source
// (a live microphone) cannot resume after a restart: it is stopped, and
// the play log says so.
func TestStartWithSessionEndsAtRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1"), "d1")
		sess := &loa.Session{Targets: loa.Targets{Devices: []string{"d1"}}, Priority: 150, Origin: loa.Origin{Kind: loa.OriginLive, ID: "lv-1"}}
		if err := w.sessions.StartWith(ctx, sess, &closeCount{}, 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// Still "playing" in the store, as a controller killed under it left it.
		w.sessions.ResumeInterrupted(ctx, func(string) bool { return true }, time.Second)
		synctest.Wait()
		if n := len(w.engine.sessions()); n != 1 {
			t.Errorf("%d engine starts, want the first only", n)
		}
		got, err := w.db.Session(ctx, sess.ID)
		if err != nil || got.State != loa.SessionStopped || got.Reason != "controller restarted" {
			t.Fatalf("after the restart: %+v, %v; want stopped (controller restarted)", got, err)
		}
		if ev := events(w.playLog(sess.ID)); !slices.Contains(ev, loa.PlayStopped) {
			t.Errorf("play log %v, want a stopped line", ev)
		}
	})
}
