package station_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
)

// setOnline changes a receiver's presence, as the broker would.
func (f *fakeFleet) setOnline(id string, on bool) {
	f.mu.Lock()
	f.online[id] = on
	f.mu.Unlock()
}

// logged is the devices of the play log's entries of event.
func logged(log []loa.PlayLogEntry, event string) []string {
	var devs []string
	for _, e := range log {
		if e.Event == event {
			devs = append(devs, e.Devices...)
		}
	}
	slices.Sort(devs)
	return devs
}

// TestLateStartWaitsForReceivers starts an occurrence missed while the
// controller was down, as the scheduler does after a restart: it waits for
// its receivers to reconnect (up to the lead + 5 s), and a receiver still
// offline (its tune waiting) and never back is logged missed when the
// report settles, never started or ended.
func TestLateStartWaitsForReceivers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		back     []string // online 3 s after the restart
		wantWait time.Duration
		played   []string
		missed   []string
	}{
		{"all back", []string{"d1", "d2"}, 3 * time.Second, []string{"d1", "d2"}, nil},
		{"one never back", []string{"d1"}, 7 * time.Second, []string{"d1"}, []string{"d2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				fleet := newFleet()
				w := newWorld(t, "", fleet, "d1", "d2")
				w.sessions.Online = func(id string) bool { st, _ := fleet.DeviceState(id); return st.Online }
				w.sessions.Lead = 2 * time.Second
				for _, id := range []string{"d1", "d2"} {
					if !slices.Contains(tc.back, id) { // as the fleet refuses a play to an offline receiver
						fleet.answer(id, func(context.Context) error { return loa.Errorf(loa.EUNAVAILABLE, "%s is offline", id) })
					}
				}
				go func() {
					time.Sleep(3 * time.Second)
					for _, id := range tc.back {
						fleet.setOnline(id, true)
					}
				}()
				restart := time.Now()
				occ := loa.Occurrence{ScheduleID: "sang", At: restart.Add(-time.Second), Content: loa.Content{MediaID: w.media.ID},
					Targets: loa.Targets{Areas: []string{"xa"}}, Priority: 64}
				st := station.NewStarter(w.db, w.sessions, 200*time.Millisecond, discard)
				if err := st.StartScheduled(ctx, occ, time.Second); err != nil {
					t.Fatal(err)
				}
				started := w.engine.sessions()
				if len(started) != 1 {
					t.Fatalf("%d sessions started, want 1", len(started))
				}
				sess := started[0]
				if waited := sess.StartedAt.Sub(restart); waited < tc.wantWait || waited > tc.wantWait+time.Second {
					t.Errorf("started %v after the restart, want after its receivers came back (%v)", waited, tc.wantWait)
				}
				w.engine.end(sess.ID, loa.SessionEnded, "")
				time.Sleep(5 * time.Second) // its report settles: the missed lines
				synctest.Wait()
				log := w.playLog(sess.ID)
				// The session's own lines name no receiver: only aired says
				// one heard it.
				if got := logged(log, loa.PlayStarted); len(got) != 0 || !slices.ContainsFunc(log, func(e loa.PlayLogEntry) bool {
					return e.Event == loa.PlayStarted && strings.Contains(e.Detail, fmt.Sprintf("streams to %d receivers", len(tc.played)))
				}) {
					t.Errorf("started for %v, want a session line streaming to %d receivers (log %+v)", got, len(tc.played), log)
				}
				if got := logged(log, loa.PlayEnded); len(got) != 0 {
					t.Errorf("ended for %v, want the session's line naming no receiver", got)
				}
				offline := slices.DeleteFunc(slices.Clone(log), func(e loa.PlayLogEntry) bool { return !strings.HasPrefix(e.Detail, "offline when it started") })
				if got := logged(offline, loa.PlayMissed); !slices.Equal(got, tc.missed) {
					t.Errorf("missed for %v, want %v", got, tc.missed)
				}
			})
		})
	}
}

// TestResumeNotAired restarts a controller killed in a scheduled session's
// pre-roll (recorded, its first packet not yet sent): missed by no more
// than the lead, it plays from its beginning, not from where the wall
// clock says; one that had aired resumes at its position; one that never
// aired and whose time passed is logged missed, not ended.
func TestResumeNotAired(t *testing.T) {
	for _, tc := range []struct {
		name      string
		aired     bool
		late      time.Duration
		event     string
		detail    string
		wantState string
	}{
		{"within the lead", false, 500 * time.Millisecond, loa.PlayResumed, "from its beginning", loa.SessionPlaying},
		{"aired", true, 500 * time.Millisecond, loa.PlayResumed, "at 500ms of", loa.SessionPlaying},
		{"not aired, over", false, 3 * time.Second, loa.PlayMissed, "not aired", loa.SessionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				w := newWorld(t, "", newFleet("d1"), "d1")
				w.sessions.Lead = 2 * time.Second
				at := time.Now().Add(-tc.late)
				sess := &loa.Session{ID: "s-1", MediaID: w.media.ID, Targets: loa.Targets{Devices: []string{"d1"}}, Priority: 64,
					SSRC: 7, State: loa.SessionPlaying, Devices: []string{"d1"}, StartedAt: at, ScheduledAt: at,
					MaxDuration: 31 * time.Second, Origin: loa.Origin{Kind: loa.OriginSchedule, ID: "sang"}}
				if tc.aired {
					sess.FirstSentAt = at
				}
				if err := w.db.PutSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				restart := time.Now()
				w.sessions.ResumeInterrupted(ctx, func(string) bool { return true }, time.Second)
				synctest.Wait()
				log := w.playLog("s-1")
				if len(log) != 1 || log[0].Event != tc.event || !strings.Contains(log[0].Detail, tc.detail) {
					t.Fatalf("play log %+v, want one %s line saying %q", log, tc.event, tc.detail)
				}
				got, err := w.db.Session(ctx, "s-1")
				if err != nil {
					t.Fatal(err)
				}
				if got.State != tc.wantState {
					t.Errorf("session %s (%s), want %s", got.State, got.Reason, tc.wantState)
				}
				if tc.event == loa.PlayResumed && !tc.aired && !got.StartedAt.Equal(restart) {
					t.Errorf("packet 0 due at %v, want the restart (%v): nothing had aired", got.StartedAt, restart)
				}
			})
		})
	}
}
