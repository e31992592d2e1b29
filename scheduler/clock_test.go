package scheduler

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
)

// wallRecorder records starts at the injected wall clock's time.
type wallRecorder struct {
	clk    Clock
	mu     sync.Mutex
	starts []start
}

func (r *wallRecorder) StartScheduled(ctx context.Context, occ loa.Occurrence, late time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = append(r.starts, start{occ, late, r.clk.Now()})
	return nil
}

func (r *wallRecorder) get() []start {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]start(nil), r.starts...)
}

type stepLog struct {
	mu    sync.Mutex
	steps []Step
}

func (l *stepLog) record(s Step) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, s)
}

func (l *stepLog) get() []Step {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Step(nil), l.steps...)
}

// The wall clock stepped back 4 h past what was fired: nothing fires twice
// or early, a schedule added in the stepped-over window fires at its time
// (not at once, as it did when the cursor stayed ahead), and the saved
// position follows the wall clock so a restart is not silent either.
func TestClockStepBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := NewSystemClock(0) // 07:00 in Ho Chi Minh City
		rec, steps := &wallRecorder{clk: clk}, &stepLog{}
		h := run(t, clk.Now(), Config{Clock: clk, Starter: rec, OnStep: steps.record},
			sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "08:00"}),
			sched("muoi", loa.Rule{Kind: loa.RuleDaily, Time: "10:00"}))
		time.Sleep(3*time.Hour + 30*time.Minute) // 10:30: both fired
		synctest.Wait()
		if n := len(rec.get()); n != 2 {
			t.Fatalf("%d starts before the step, want 2", n)
		}
		clk.SetOffset(-4 * time.Hour) // 06:30 again
		time.Sleep(2 * time.Minute)   // the loop looks again within maxSleep
		synctest.Wait()
		if got := steps.get(); len(got) != 1 || got[0].Delta > -4*time.Hour+time.Minute || got[0].Delta < -4*time.Hour-time.Minute {
			t.Fatalf("steps %+v, want one of about -4h", got)
		}
		if hd := h.s.Handled(); hd.After(clk.Now()) {
			t.Errorf("Handled %v is ahead of the wall clock %v after the step back: a restart would be silent", hd, clk.Now())
		}
		// An edit after the step: a new programme at 09:00 today, inside
		// the stepped-over window.
		h.src.set(
			sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "08:00"}),
			sched("muoi", loa.Rule{Kind: loa.RuleDaily, Time: "10:00"}),
			sched("moi", loa.Rule{Kind: loa.RuleOnce, Date: "2000-01-01", Time: "09:00"}))
		h.s.Reload()
		synctest.Wait()
		if got := rec.get(); len(got) != 2 {
			t.Fatalf("the edit fired at once: %+v", got[2:])
		}
		time.Sleep(24 * time.Hour) // to 06:32 on the 2nd
		h.stop()
		got := rec.get()
		var want []string
		for _, s := range got {
			if s.now.Before(s.occ.At) {
				t.Errorf("%s of %v started early, at %v", s.occ.ScheduleID, s.occ.At, s.now)
			}
			want = append(want, s.occ.ScheduleID+" "+s.occ.At.In(hcm).Format("02 15:04"))
		}
		if g := strings.Join(want, ", "); g != "sang 01 08:00, muoi 01 10:00, moi 01 09:00" {
			t.Errorf("starts: %s; want sang and muoi once each and moi at 09:00", g)
		}
		if m := h.missed.get(); len(m) != 0 {
			t.Errorf("missed %+v", m)
		}
		if !strings.Contains(h.logs.String(), "wall clock stepped back") {
			t.Error("the step was not logged")
		}
	})
}

// A restart after the clock stepped back while the controller was down:
// the saved position is ahead of the wall clock; the scheduler re-anchors
// (and reports the step) instead of staying silent until the clock
// catches up.
func TestClockStepBackWhileDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := NewSystemClock(0)
		rec, steps := &wallRecorder{clk: clk}, &stepLog{}
		since := clk.Now().Add(3 * time.Hour) // saved at 10:00 before the clock went back
		h := run(t, since, Config{Clock: clk, Starter: rec, OnStep: steps.record},
			sched("tam", loa.Rule{Kind: loa.RuleDaily, Time: "08:00"}))
		if got := steps.get(); len(got) != 1 || got[0].Delta != -3*time.Hour {
			t.Errorf("steps %+v, want one of -3h", got)
		}
		time.Sleep(2 * time.Hour)
		h.stop()
		got := rec.get()
		if len(got) != 1 || !got[0].now.Equal(lt(hcm, "2000-01-01 08:00")) {
			t.Fatalf("starts %+v, want tam at 08:00 today", got)
		}
	})
}

// The wall clock stepped forward 10 min: an occurrence skipped by more
// than Grace is reported missed, one within Grace plays late, later ones
// on time.
func TestClockStepForward(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := NewSystemClock(0)
		rec, steps := &wallRecorder{clk: clk}, &stepLog{}
		once := func(id, at string) *loa.Schedule {
			return sched(id, loa.Rule{Kind: loa.RuleOnce, Date: "2000-01-01", Time: at})
		}
		h := run(t, clk.Now(), Config{Clock: clk, Starter: rec, OnStep: steps.record},
			once("a", "07:10"), once("b", "07:17"), once("c", "07:21"), once("d", "07:40"))
		time.Sleep(9*time.Minute + 30*time.Second)
		clk.SetOffset(10 * time.Minute) // 07:09:30 → 07:19:30
		time.Sleep(time.Hour)
		h.stop()
		if got := steps.get(); len(got) != 1 || got[0].Delta != 10*time.Minute {
			t.Errorf("steps %+v, want one of +10m", got)
		}
		if m := h.missed.get(); len(m) != 1 || m[0].occ.ScheduleID != "a" {
			t.Errorf("missed %+v, want a", m)
		}
		got := rec.get()
		if len(got) != 3 {
			t.Fatalf("starts %+v, want b, c, d", got)
		}
		for i, w := range []struct {
			id   string
			late time.Duration
		}{{"b", 3 * time.Minute}, {"c", 0}, {"d", 0}} {
			if got[i].occ.ScheduleID != w.id || got[i].late != w.late || got[i].now.Sub(got[i].occ.At) != w.late {
				t.Errorf("start %d: %s late %v at %v, want %s late %v", i, got[i].occ.ScheduleID, got[i].late, got[i].now, w.id, w.late)
			}
		}
		if !strings.Contains(h.logs.String(), "wall clock stepped forward") {
			t.Error("the step was not logged")
		}
	})
}
