package station_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
)

// fakeUplink is an uplink whose end the test decides.
type fakeUplink struct {
	once   sync.Once
	done   chan struct{}
	reason string
	frags  []string
}

func (u *fakeUplink) Next() ([]byte, error) { return nil, loa.ErrGap }
func (u *fakeUplink) Trickle(f string) error {
	u.frags = append(u.frags, f)
	return nil
}
func (u *fakeUplink) Done() <-chan struct{} { return u.done }
func (u *fakeUplink) Reason() string        { return u.reason }
func (u *fakeUplink) Transcoded() bool      { return false }
func (u *fakeUplink) Close() error          { u.lose("ended"); return nil }
func (u *fakeUplink) lose(reason string) {
	u.once.Do(func() { u.reason = reason; close(u.done) })
}

type fakeUplinks struct{ ups []*fakeUplink }

func (f *fakeUplinks) Accept(ctx context.Context, offer string, loss func() uint8) (station.Uplink, string, error) {
	if offer != "offer" {
		return nil, "", loa.Errorf(loa.EUNSUPPORTED, "offer: no Opus")
	}
	u := &fakeUplink{done: make(chan struct{})}
	f.ups = append(f.ups, u)
	return u, "answer", nil
}

// TestLiveSessions: a live session is a session of origin live on its
// targets; the speaker's DELETE ends it as such, a lost uplink as lost;
// an offer refused or a bad request starts nothing.
func TestLiveSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1", "d2"), "d1", "d2")
		ups := &fakeUplinks{}
		l := station.NewLive(w.db, w.sessions, ups, discard)
		for _, req := range []loa.LiveRequest{
			{Offer: "offer"}, // no targets
			{Offer: "pcmu", Targets: loa.Targets{Areas: []string{"xa"}}},
		} {
			if _, _, err := l.StartLive(ctx, req); err == nil {
				t.Errorf("StartLive(%+v) started", req)
			}
		}
		if n := len(w.engine.sessions()); n != 0 {
			t.Fatalf("%d sessions started by refused requests", n)
		}
		sess, answer, err := l.StartLive(ctx, loa.LiveRequest{Offer: "offer", Targets: loa.Targets{Areas: []string{"xa"}}, Priority: 150, CreatedBy: "tok-op"})
		if err != nil || answer != "answer" || sess.Origin.Kind != loa.OriginLive || len(sess.Devices) != 2 {
			t.Fatalf("StartLive: %+v %q %v", sess, answer, err)
		}
		if err := l.TrickleLive(ctx, sess.ID, "a=end-of-candidates"); err != nil || len(ups.ups[0].frags) != 1 {
			t.Fatalf("trickle: %v", err)
		}
		if err := l.EndLive(ctx, sess.ID, "tok-op"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got, _ := w.db.Session(ctx, sess.ID); got.State != loa.SessionStopped || got.Reason != station.LiveEndedBySpeaker || got.StoppedBy != "tok-op" {
			t.Errorf("after DELETE: %+v", got)
		}
		if ups.ups[0].Reason() != "ended" {
			t.Errorf("the uplink was not closed with its session: %q", ups.ups[0].Reason())
		}
		if err := l.TrickleLive(ctx, sess.ID, "x"); loa.ErrorCode(err) != loa.ENOTFOUND {
			t.Errorf("trickle after the end: %v", err)
		}

		lost, _, err := l.StartLive(ctx, loa.LiveRequest{Offer: "offer", Targets: loa.Targets{Devices: []string{"d1"}}, Priority: 150})
		if err != nil {
			t.Fatal(err)
		}
		ups.ups[1].lose("uplink lost")
		synctest.Wait()
		if got, _ := w.db.Session(ctx, lost.ID); got.State != loa.SessionStopped || got.Reason != station.LiveUplinkLost {
			t.Errorf("after the uplink was lost: %+v", got)
		}
	})
}
