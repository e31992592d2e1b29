package station_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/scheduler"
	"github.com/loa-broadcast/loa/station"
)

// TestScheduleStarts fires a 00:10 programme (the bubble's clock starts at
// midnight UTC) from a controller that is up in time, comes back within
// the grace window, or comes back after it.
func TestScheduleStarts(t *testing.T) {
	at := time.Date(2000, 1, 1, 0, 10, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		down, up   time.Time // the controller was down between these
		started    time.Time // zero: missed
		wantEvents []string
	}{
		{"on time", time.Time{}, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), at, []string{loa.PlayStarted}},
		{"late within grace", at.Add(-5 * time.Minute), at.Add(2 * time.Minute), at.Add(2 * time.Minute), []string{loa.PlayStarted}},
		{"missed", at.Add(-5 * time.Minute), at.Add(10 * time.Minute), time.Time{}, []string{loa.PlayMissed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				w := newWorld(t, "", newFleet("d1"), "d1")
				schedules := station.NewSchedules(w.db, discard)
				sc := &loa.Schedule{ID: "sang", Name: "Bản tin sáng", Rule: loa.Rule{Kind: loa.RuleOnce, Date: "2000-01-01", Time: "00:10", Zone: "UTC"},
					Content: loa.Content{MediaID: w.media.ID}, Targets: loa.Targets{Areas: []string{"xa"}}, Priority: 64, Enabled: true, CreatedBy: "tok-op"}
				if err := schedules.CreateSchedule(ctx, sc); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Until(tc.up))
				since := tc.down
				if since.IsZero() {
					since = time.Now()
				}
				st := station.NewStarter(w.db, w.sessions, 200*time.Millisecond, discard)
				sch := scheduler.New(scheduler.Config{Starter: st, Source: schedules.Source(), Grace: 5 * time.Minute,
					OnMissed: st.Missed, Logger: discard})
				schedules.Attach(sch)
				runCtx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); schedules.Run(runCtx, since) }()
				time.Sleep(time.Until(at.Add(15 * time.Minute)))
				synctest.Wait()
				cancel()
				<-done

				started := w.engine.sessions()
				if tc.started.IsZero() {
					if len(started) != 0 {
						t.Fatalf("%d sessions started, want the occurrence missed", len(started))
					}
				} else {
					if len(started) != 1 {
						t.Fatalf("%d sessions started, want 1", len(started))
					}
					s := started[0]
					if s.Origin != (loa.Origin{Kind: loa.OriginSchedule, ID: "sang"}) || !s.ScheduledAt.Equal(at) || !s.StartedAt.Equal(tc.started) {
						t.Errorf("session %+v: want origin schedule sang, scheduled at %v, started at %v", s, at, tc.started)
					}
				}
				log, err := station.NewPlayLog(w.db).PlayLog(ctx, loa.PlayLogFilter{Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range log {
					if e.ScheduleID != "sang" || e.By != "schedule:sang" {
						t.Errorf("play log entry %+v, want schedule sang by schedule:sang", e)
					}
					got = append(got, e.Event)
				}
				if len(got) != len(tc.wantEvents) || got[0] != tc.wantEvents[0] {
					t.Errorf("play log %v, want %v", got, tc.wantEvents)
				}
				// Started once: a restart does not start it again.
				if tc.started.IsZero() {
					return
				}
				if err := st.StartScheduled(ctx, loa.Occurrence{ScheduleID: "sang", At: at, Content: sc.Content, Targets: sc.Targets}, 0); err != nil {
					t.Fatal(err)
				}
				if n := len(w.engine.sessions()); n != 1 {
					t.Errorf("%d sessions after the occurrence fired again, want 1", n)
				}
			})
		})
	}
}
