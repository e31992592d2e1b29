package station_test

import (
	"context"
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
