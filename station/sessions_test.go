package station_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
)

// playLog returns the play log events of a session, oldest first, with
// their devices and details.
func (w *world) playLog(session string) []loa.PlayLogEntry {
	w.t.Helper()
	all, err := station.NewPlayLog(w.db).PlayLog(context.Background(), loa.PlayLogFilter{Limit: 1000})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []loa.PlayLogEntry
	for _, e := range all {
		if e.SessionID == session {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b loa.PlayLogEntry) int { return a.At.Compare(b.At) })
	return out
}

func events(es []loa.PlayLogEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Event)
	}
	return out
}

// TestSessionOutcomes follows two sessions through the engine's outcomes:
// a higher one takes a receiver of a lower one, each ends its own way, and
// a shutdown leaves a third playing, to resume.
func TestSessionOutcomes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1", "d2"), "d1", "d2")
		low := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Areas: []string{"xa"}}, Priority: 50, CreatedBy: "tok-op"}
		if err := w.sessions.StartSession(ctx, low); err != nil {
			t.Fatal(err)
		}
		if low.Origin != (loa.Origin{Kind: loa.OriginManual}) || !slices.Equal(low.Devices, []string{"d1", "d2"}) || low.State != loa.SessionPlaying {
			t.Fatalf("started %+v, want manual, playing on d1 and d2", low)
		}
		time.Sleep(time.Second)
		high := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Devices: []string{"d1"}}, Priority: 150, CreatedBy: "tok-op"}
		if err := w.sessions.StartSession(ctx, high); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if first, ok := w.sessions.FirstSent(low.ID); !ok || !first.Equal(low.StartedAt) {
			t.Errorf("first packet of the low session: %v, %v; want %v", first, ok, low.StartedAt)
		}

		w.engine.outcome(loa.SessionOutcome{Kind: loa.OutcomePreempted, Session: low.ID, At: time.Now(), Devices: []string{"d1"}, By: high.ID})
		time.Sleep(time.Second)
		w.engine.end(high.ID, loa.SessionEnded, "")
		time.Sleep(time.Second)
		w.engine.end(low.ID, loa.SessionStopped, "max duration")

		gotHigh, _ := w.db.Session(ctx, high.ID)
		gotLow, _ := w.db.Session(ctx, low.ID)
		if gotHigh.State != loa.SessionEnded || gotHigh.EndedAt.IsZero() {
			t.Errorf("high session %s at %v, want ended", gotHigh.State, gotHigh.EndedAt)
		}
		if gotLow.State != loa.SessionStopped || gotLow.Reason != "max duration" {
			t.Errorf("low session %s (%q), want stopped (max duration)", gotLow.State, gotLow.Reason)
		}
		lowLog := w.playLog(low.ID)
		if got, want := events(lowLog), []string{loa.PlayStarted, loa.PlayPreempted, loa.PlayStopped}; !slices.Equal(got, want) {
			t.Fatalf("low session's play log %v, want %v", got, want)
		}
		if p := lowLog[1]; !slices.Equal(p.Devices, []string{"d1"}) || p.Detail != "by session "+high.ID || p.By != "tok-op" {
			t.Errorf("preempted entry %+v, want d1 by session %s, by tok-op", p, high.ID)
		}
		if got, want := events(w.playLog(high.ID)), []string{loa.PlayStarted, loa.PlayEnded}; !slices.Equal(got, want) {
			t.Errorf("high session's play log %v, want %v", got, want)
		}

		// The controller stops: the programme does not end with it.
		third := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Devices: []string{"d2"}}, Priority: 50}
		if err := w.sessions.StartSession(ctx, third); err != nil {
			t.Fatal(err)
		}
		w.engine.end(third.ID, loa.SessionStopped, loa.SessionShutdown)
		if got, _ := w.db.Session(ctx, third.ID); got.State != loa.SessionPlaying {
			t.Errorf("session ended by the shutdown is %s in the store, want playing (resumed at the next start)", got.State)
		}
		if err := w.sessions.StopSession(ctx, low.ID, "", ""); loa.ErrorCode(err) != loa.ECONFLICT {
			t.Errorf("stopping an ended session: %v, want ECONFLICT", err)
		}
	})
}

// TestStopRecordsWhoStopped: the session's record names who stopped it,
// written before the engine stops it, and kept when it has ended.
func TestStopRecordsWhoStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1"), "d1")
		s := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Devices: []string{"d1"}}, Priority: 50, CreatedBy: "tok-op"}
		if err := w.sessions.StartSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := w.sessions.StopSession(ctx, s.ID, "tok-prov", "stopped by tok-prov"); err != nil {
			t.Fatal(err)
		}
		got, err := w.db.Session(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != loa.SessionStopped || got.StoppedBy != "tok-prov" || got.Reason != "stopped by tok-prov" {
			t.Errorf("stopped session: %s by %q (%q); want stopped by tok-prov", got.State, got.StoppedBy, got.Reason)
		}
	})
}

// TestSDPListenersCappedAndEnded: a session takes a bounded number of
// listeners, the station too; each ends after its time (renewed when
// asked again), on removal, or with its session.
func TestSDPListenersCappedAndEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1"), "d1")
		w.sessions.MaxListeners, w.sessions.MaxStationListeners = 2, 3
		start := func() *loa.Session {
			s := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Devices: []string{"d1"}}, Priority: 50}
			if err := w.sessions.StartSession(ctx, s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		a, b := start(), start()
		dest := func(port uint16) loa.ListenerRequest {
			return loa.ListenerRequest{Dest: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), For: time.Hour}
		}
		listen := func(s *loa.Session, port uint16) error {
			_, err := w.sessions.SessionSDP(ctx, s.ID, dest(port))
			return err
		}
		for _, port := range []uint16{6000, 6001} {
			if err := listen(a, port); err != nil {
				t.Fatal(err)
			}
		}
		if err := listen(a, 6002); loa.ErrorCode(err) != loa.ECONFLICT {
			t.Fatalf("a third listener of a session: %v, want conflict", err)
		}
		if err := listen(a, 6000); err != nil { // a renewal takes no new place
			t.Fatalf("renewal: %v", err)
		}
		if err := listen(b, 7000); err != nil {
			t.Fatal(err)
		}
		if err := listen(b, 7001); loa.ErrorCode(err) != loa.ECONFLICT {
			t.Fatalf("a fourth listener of the station: %v, want conflict", err)
		}
		if _, err := w.sessions.SessionSDP(ctx, b.ID, loa.ListenerRequest{Dest: dest(7001).Dest, For: 7 * time.Hour}); loa.ErrorCode(err) != loa.EINVALID {
			t.Errorf("7h: %v, want invalid", err)
		}

		// Removal frees a place at once.
		if err := w.sessions.RemoveListener(ctx, a.ID, dest(6001).Dest); err != nil {
			t.Fatal(err)
		}
		if err := w.sessions.RemoveListener(ctx, a.ID, dest(6001).Dest); loa.ErrorCode(err) != loa.ENOTFOUND {
			t.Errorf("removed twice: %v, want not found", err)
		}
		if got := w.engine.listeners(a.ID); len(got) != 1 || got[0] != dest(6000).Dest {
			t.Errorf("a's listeners after removal: %v", got)
		}

		// Time ends the rest: b's after its hour.
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		if got := w.engine.listeners(b.ID); len(got) != 0 {
			t.Errorf("b's listeners an hour on: %v", got)
		}
		if err := listen(b, 7001); err != nil {
			t.Fatalf("after expiry the places are free again: %v", err)
		}
		if got := w.engine.listeners(a.ID); len(got) != 0 {
			t.Errorf("a's listeners an hour on: %v", got)
		}
		for _, port := range []uint16{6000, 6001} {
			if err := listen(a, port); err != nil {
				t.Fatal(err)
			}
		}
		if err := listen(start(), 6002); loa.ErrorCode(err) != loa.ECONFLICT {
			t.Fatalf("the station full: %v, want conflict", err)
		}
		// A session's end ends its listeners and frees their places.
		w.engine.end(b.ID, loa.SessionStopped, "stopped")
		synctest.Wait()
		if err := listen(start(), 6002); err != nil {
			t.Fatalf("after b ended: %v", err)
		}
	})
}
