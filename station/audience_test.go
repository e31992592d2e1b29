package station_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// alarmLog records the station alarms raised and cleared.
type alarmLog struct {
	mu      sync.Mutex
	raised  []string // messages
	cleared int
	active  bool
}

func (a *alarmLog) RaiseStation(kind, severity string, value, threshold float64, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if kind == loa.AlarmNoAudience {
		a.raised, a.active = append(a.raised, msg), true
	}
}

func (a *alarmLog) ClearStation(kind, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if kind == loa.AlarmNoAudience && a.active {
		a.cleared++
		a.active = false
	}
}

func (a *alarmLog) state() ([]string, int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.raised), a.cleared, a.active
}

func aired(es []loa.PlayLogEntry) []string {
	var out []string
	for _, e := range es {
		if e.Event == loa.PlayAired {
			out = append(out, strings.Join(e.Devices, ","))
		}
	}
	return out
}

// TestSessionAudience: a receiver is logged aired only on its own
// evidence, once; a session heard by nobody raises no_audience, a later
// one heard clears it; a session whose receivers all went to a higher one
// raises nothing.
func TestSessionAudience(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "", newFleet("d1", "d2"), "d1", "d2")
		alarms := &alarmLog{}
		w.sessions.Alarms = alarms
		start := func() *loa.Session {
			s := &loa.Session{MediaID: w.media.ID, Targets: loa.Targets{Areas: []string{"xa"}}, Priority: 50, CreatedBy: "tok-op"}
			if err := w.sessions.StartSession(ctx, s); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			return s
		}

		// Heard by d1 only: played twice, then finished; d2's stream never played; a stranger's event.
		heard := start()
		w.fleet.send("d1", played(heard.ID))
		w.fleet.send("d1", played(heard.ID))
		w.fleet.send("d2", protocol.Event{Type: protocol.EventFinished, Session: heard.ID, Stream: &protocol.StreamStats{Played: 10, Silence: 10}})
		w.fleet.send("d9", played(heard.ID))
		w.engine.end(heard.ID, loa.SessionEnded, "")
		w.fleet.send("d1", finished(heard.ID, 50))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := aired(w.playLog(heard.ID)); !slices.Equal(got, []string{"d1"}) {
			t.Errorf("aired %v, want d1 once", got)
		}
		if raised, _, _ := alarms.state(); len(raised) != 0 {
			t.Errorf("no_audience raised for a session d1 heard: %v", raised)
		}

		// Heard by nobody: the alarm names it and its origin.
		silent := start()
		w.engine.end(silent.ID, loa.SessionEnded, "")
		synctest.Wait()
		if raised, _, _ := alarms.state(); len(raised) != 0 {
			t.Fatalf("raised %v before the receivers had time to report", raised)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		raised, _, active := alarms.state()
		if len(raised) != 1 || !active || !strings.Contains(raised[0], silent.ID) || !strings.Contains(raised[0], loa.OriginManual) {
			t.Fatalf("raised %v (active %v), want one no_audience naming session %s and its origin", raised, active, silent.ID)
		}
		if got := aired(w.playLog(silent.ID)); len(got) != 0 {
			t.Errorf("aired %v for a session nobody heard", got)
		}

		// Its receivers all taken by a higher session: not a silent audience.
		taken := start()
		w.engine.outcome(loa.SessionOutcome{Kind: loa.OutcomePreempted, Session: taken.ID, At: time.Now(), Devices: []string{"d1", "d2"}, By: "other"})
		w.engine.end(taken.ID, loa.SessionEnded, "")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if raised, _, _ := alarms.state(); len(raised) != 1 {
			t.Errorf("raised %v, want no new alarm for a session preempted everywhere", raised)
		}

		// A later session heard (told by d2's finished event alone) clears it.
		later := start()
		w.fleet.send("d2", finished(later.ID, 50))
		synctest.Wait()
		if _, cleared, active := alarms.state(); cleared != 1 || active {
			t.Errorf("cleared %d times, active %v; want cleared once by a heard session", cleared, active)
		}
		if got := aired(w.playLog(later.ID)); !slices.Equal(got, []string{"d2"}) {
			t.Errorf("aired %v, want d2", got)
		}
		w.engine.end(later.ID, loa.SessionEnded, "")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := w.sessions.Following(); n != 0 {
			t.Errorf("still following %d sessions after they settled", n)
		}
	})
}
