package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
)

// In a synctest bubble the clock starts at 2000-01-01 00:00 UTC, a
// Saturday: 07:00 in Ho Chi Minh City.

type start struct {
	occ  loa.Occurrence
	late time.Duration
	now  time.Time
}

type recorder struct {
	mu     sync.Mutex
	starts []start
	err    error
}

func (r *recorder) StartScheduled(ctx context.Context, occ loa.Occurrence, late time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts = append(r.starts, start{occ, late, time.Now()})
	return r.err
}

func (r *recorder) get() []start {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.starts)
	slices.SortFunc(out, func(a, b start) int {
		if c := a.occ.At.Compare(b.occ.At); c != 0 {
			return c
		}
		return strings.Compare(a.occ.ScheduleID, b.occ.ScheduleID)
	})
	return out
}

type source struct {
	mu        sync.Mutex
	schedules []*loa.Schedule
	cals      loa.Calendars
	err       error
}

func (s *source) Schedules(ctx context.Context) ([]*loa.Schedule, loa.Calendars, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.schedules), s.cals, s.err
}

func (s *source) set(schedules ...*loa.Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.schedules = schedules
}

type missed struct {
	mu   sync.Mutex
	occs []start
}

func (m *missed) record(occ loa.Occurrence, late time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.occs = append(m.occs, start{occ, late, time.Now()})
}

func (m *missed) get() []start {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.occs)
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func sched(id string, rule loa.Rule) *loa.Schedule {
	return &loa.Schedule{
		ID: id, Name: id, Rule: rule, Content: loa.Content{MediaID: "m-" + id},
		Targets: loa.Targets{Areas: []string{"xa"}}, Priority: 64, Enabled: true,
	}
}

// harness runs a Scheduler in the bubble until stop is called.
type harness struct {
	t      *testing.T
	rec    *recorder
	src    *source
	missed *missed
	logs   *logBuffer
	s      *Scheduler
	cancel context.CancelFunc
	done   chan error
}

func run(t *testing.T, since time.Time, cfg Config, schedules ...*loa.Schedule) *harness {
	h := &harness{t: t, rec: &recorder{}, src: &source{schedules: schedules, cals: Examples()}, missed: &missed{}, logs: &logBuffer{}}
	if cfg.Starter == nil {
		cfg.Starter = h.rec
	}
	cfg.Source = h.src
	cfg.OnMissed = h.missed.record
	cfg.Logger = slog.New(slog.NewTextHandler(h.logs, nil))
	h.s = New(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.s.Run(ctx, since) }()
	synctest.Wait()
	return h
}

func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
}

func TestFiresAtExactTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		schedules := []*loa.Schedule{
			sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}),
			sched("chieu", loa.Rule{Kind: loa.RuleDaily, Time: "17:00"}),
			sched("ban-tin", loa.Rule{Kind: loa.RuleWeekly, Weekdays: []string{"mon", "tue", "wed", "thu", "fri"}, Time: "11:00:30"}),
			sched("berlin", loa.Rule{Kind: loa.RuleDaily, Time: "09:00", Zone: "Europe/Berlin"}),
		}
		begin := time.Now()
		h := run(t, begin, Config{}, schedules...)
		time.Sleep(7 * 24 * time.Hour)
		synctest.Wait()
		h.stop()

		got := h.rec.get()
		want := Agenda(schedules, nil, begin, time.Now())
		if len(got) != len(want) || len(want) != 7+7+5+7 {
			t.Fatalf("%d starts, agenda has %d, want %d", len(got), len(want), 7+7+5+7)
		}
		for i, s := range got {
			if s.occ.ScheduleID != want[i].ScheduleID || !s.occ.At.Equal(want[i].At) {
				t.Errorf("start %d: %s at %v, want %s at %v", i, s.occ.ScheduleID, s.occ.At, want[i].ScheduleID, want[i].At)
			}
			if !s.now.Equal(s.occ.At) || s.late != 0 {
				t.Errorf("%s at %v started at %v, late %v: want exactly on time", s.occ.ScheduleID, s.occ.At, s.now, s.late)
			}
		}
		if m := h.missed.get(); len(m) != 0 {
			t.Errorf("missed %d", len(m))
		}
	})
}

func TestLeadFiresEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := run(t, time.Now(), Config{Lead: 2 * time.Second}, sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}))
		time.Sleep(24 * time.Hour)
		h.stop()
		got := h.rec.get()
		if len(got) != 1 {
			t.Fatalf("%d starts, want 1", len(got))
		}
		at := lt(hcm, "2000-01-02 06:00")
		if s := got[0]; !s.occ.At.Equal(at) || !s.now.Equal(at.Add(-2*time.Second)) || s.late != -2*time.Second {
			t.Errorf("started %v at %v, late %v; want %v at 2s before, late -2s", s.occ.At, s.now, s.late, at)
		}
	})
}

func TestReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := run(t, time.Now(), Config{}, sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}))
		time.Sleep(time.Hour) // 08:00 in Ho Chi Minh City
		h.src.set(
			sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}),
			sched("new", loa.Rule{Kind: loa.RuleDaily, Time: "09:00"}),
			sched("past", loa.Rule{Kind: loa.RuleDaily, Time: "07:30"}), // already past today
		)
		h.s.Reload()
		h.s.Reload() // coalesced, harmless
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		got := h.rec.get()
		if len(got) != 1 || got[0].occ.ScheduleID != "new" || !got[0].now.Equal(lt(hcm, "2000-01-01 09:00")) {
			t.Fatalf("after reload: %+v, want only new at 09:00", got)
		}
		if m := h.missed.get(); len(m) != 0 {
			t.Errorf("a schedule added after its time was reported missed: %+v", m)
		}

		// A change of time: the old time no longer fires, the new does.
		h.src.set(sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:30"}))
		h.s.Reload()
		time.Sleep(24 * time.Hour) // to 10:00 on 2 January
		h.stop()
		got = h.rec.get()
		if len(got) != 2 || got[1].occ.ScheduleID != "sang" || !got[1].now.Equal(lt(hcm, "2000-01-02 06:30")) {
			t.Fatalf("after the change: %+v, want sang at 06:30 on the 2nd", got[1:])
		}
	})
}

func TestReloadAtFireTimeDoesNotRepeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := run(t, time.Now(), Config{}, sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "07:00:01"}))
		time.Sleep(time.Second) // exactly 07:00:01
		synctest.Wait()
		for range 3 {
			h.s.Reload()
			synctest.Wait()
		}
		time.Sleep(time.Hour)
		h.stop()
		if got := h.rec.get(); len(got) != 1 {
			t.Fatalf("%d starts, want 1", len(got))
		}
	})
}

func TestMissedWhileDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now() // 07:00 in Ho Chi Minh City
		since := lt(hcm, "2000-01-01 06:40")
		h := run(t, since, Config{},
			sched("before-since", loa.Rule{Kind: loa.RuleOnce, Date: "2000-01-01", Time: "06:30"}),
			sched("too-late", loa.Rule{Kind: loa.RuleOnce, Date: "2000-01-01", Time: "06:50"}),
			sched("daily", loa.Rule{Kind: loa.RuleDaily, Time: "06:56"}),
			sched("edge", loa.Rule{Kind: loa.RuleOnce, Date: "2000-01-01", Time: "06:55"}), // late by Grace exactly: plays
			sched("just", loa.Rule{Kind: loa.RuleOnce, Date: "2000-01-01", Time: "06:58"}),
			sched("now", loa.Rule{Kind: loa.RuleOnce, Date: "2000-01-01", Time: "07:00"}),
		)
		got := h.rec.get()
		want := []struct {
			id   string
			late time.Duration
		}{{"edge", 5 * time.Minute}, {"daily", 4 * time.Minute}, {"just", 2 * time.Minute}, {"now", 0}}
		if len(got) != len(want) {
			t.Fatalf("%d late starts, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			if got[i].occ.ScheduleID != w.id || got[i].late != w.late || !got[i].now.Equal(now) {
				t.Errorf("start %d: %s late %v at %v, want %s late %v at once", i, got[i].occ.ScheduleID, got[i].late, got[i].now, w.id, w.late)
			}
		}
		m := h.missed.get()
		if len(m) != 1 || m[0].occ.ScheduleID != "too-late" || m[0].late != 10*time.Minute {
			t.Errorf("missed: %+v, want too-late by 10m", m)
		}
		if !strings.Contains(h.logs.String(), "missed") {
			t.Error("a miss was not logged")
		}

		time.Sleep(24 * time.Hour)
		h.stop()
		got = h.rec.get()
		if len(got) != 5 || got[4].occ.ScheduleID != "daily" || got[4].late != 0 {
			t.Errorf("the next day: %+v, want daily once, on time", got[4:])
		}
		if len(h.missed.get()) != 1 {
			t.Error("missed again")
		}
	})
}

func TestDownForYears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := run(t, time.Now().AddDate(-5, 0, 0), Config{}, sched("daily", loa.Rule{Kind: loa.RuleDaily, Time: "06:58"}))
		h.stop()
		if got := h.rec.get(); len(got) != 1 || got[0].late != 2*time.Minute {
			t.Errorf("today's start: %+v, want one, 2m late", got)
		}
		if m := h.missed.get(); len(m) != maxMissed {
			t.Errorf("%d missed reported, want %d", len(m), maxMissed)
		}
		if !strings.Contains(h.logs.String(), "too many missed") {
			t.Error("the unreported misses were not logged")
		}
	})
}

func TestRestartDoesNotRepeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rule := loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}
		h := run(t, time.Now(), Config{}, sched("sang", rule))
		time.Sleep(23*time.Hour + time.Minute) // 06:01 on the 2nd
		h.stop()
		since := h.s.Handled()
		if !since.Equal(time.Now()) {
			t.Errorf("Handled = %v, want %v", since, time.Now())
		}
		if n := len(h.rec.get()); n != 1 {
			t.Fatalf("%d starts before the restart, want 1", n)
		}

		time.Sleep(time.Minute) // down for a minute, within Grace of 06:00
		h2 := run(t, since, Config{}, sched("sang", rule))
		time.Sleep(time.Hour)
		h2.stop()
		if got := h2.rec.get(); len(got) != 0 {
			t.Errorf("after restart: %+v, want nothing", got)
		}
	})
}

func TestStarterErrorNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{err: errors.New("store is full")}
		h := run(t, time.Now(), Config{Starter: rec}, sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}))
		time.Sleep(3 * 24 * time.Hour)
		h.stop()
		if n := len(rec.get()); n != 3 {
			t.Errorf("%d calls in 3 days, want 3: one per occurrence", n)
		}
		logs := h.logs.String()
		if strings.Count(logs, "start failed") != 3 || !strings.Contains(logs, "store is full") {
			t.Errorf("errors not logged once each:\n%s", logs)
		}
	})
}

// blocker blocks every start until its context ends.
type blocker struct{ started, ended chan struct{} }

func (b *blocker) StartScheduled(ctx context.Context, occ loa.Occurrence, late time.Duration) error {
	b.started <- struct{}{}
	<-ctx.Done()
	close(b.ended)
	return ctx.Err()
}

func TestRunWaitsForStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &blocker{started: make(chan struct{}, 1), ended: make(chan struct{})}
		h := run(t, time.Now(), Config{Starter: b}, sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "07:00:05"}))
		time.Sleep(5 * time.Second)
		<-b.started
		h.stop() // Run returned...
		select {
		case <-b.ended: // ...after its start ended
		default:
			t.Error("Run returned while a start was running")
		}
	})
}

func TestSourceErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &source{err: errors.New("db closed")}
		err := New(Config{Starter: &recorder{}, Source: src}).Run(t.Context(), time.Time{})
		if err == nil || !strings.Contains(err.Error(), "db closed") {
			t.Errorf("Run with a failing source = %v", err)
		}

		bad := sched("bad", loa.Rule{Kind: loa.RuleWeekly, Time: "06:00"}) // no weekdays
		off := sched("off", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"})
		off.Enabled = false
		h := run(t, time.Time{}, Config{}, bad, off, sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}), sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:30"}))
		h.src.mu.Lock()
		h.src.err = errors.New("db closed")
		h.src.mu.Unlock()
		h.s.Reload() // fails: the loaded schedules stay
		time.Sleep(24 * time.Hour)
		h.stop()
		got := h.rec.get()
		if len(got) != 1 || got[0].occ.ScheduleID != "sang" || !got[0].occ.At.Equal(lt(hcm, "2000-01-02 06:00")) {
			t.Errorf("starts: %+v, want sang at 06:00 only", got)
		}
		logs := h.logs.String()
		for _, want := range []string{"invalid schedule", "duplicate schedule", "reload failed"} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %q:\n%s", want, logs)
			}
		}
	})
}

func BenchmarkNext(b *testing.B) {
	kinds := []loa.Rule{
		{Kind: loa.RuleDaily, Time: "06:00"},
		{Kind: loa.RuleWeekly, Weekdays: []string{"mon", "wed", "fri"}, Time: "17:00"},
		{Kind: loa.RuleMonthly, MonthDay: -1, Time: "08:00", Zone: "Europe/Berlin"},
		{Kind: loa.RuleEveryNDays, Interval: 3, Date: "2027-01-01", Time: "11:00"},
		{Kind: loa.RuleEveryNWeeks, Interval: 2, Date: "2027-01-01", Weekdays: []string{"tue"}, Time: "19:30"},
		{Kind: loa.RuleOnce, Date: "2027-06-01", Time: "06:00"},
	}
	schedules := make([]*loa.Schedule, 10000)
	for i := range schedules {
		s := sched(fmt.Sprintf("s%d", i), kinds[i%len(kinds)])
		if i%4 == 0 {
			s.Exceptions = loa.Exceptions{Calendars: []string{"Tết 2027"}, Skip: []string{"2027-04-30"}}
		}
		schedules[i] = s
	}
	cals := Examples()
	after := lt(hcm, "2027-02-04 12:00")
	for b.Loop() {
		for _, s := range schedules {
			if _, ok := Next(s, after, cals); !ok {
				b.Fatal("no next")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(schedules)), "ns/schedule")
}

// BenchmarkNextCompiled is what the firing loop pays per fired schedule:
// schedules are compiled once per load.
func BenchmarkNextCompiled(b *testing.B) {
	s := sched("s", loa.Rule{Kind: loa.RuleWeekly, Weekdays: []string{"mon", "wed", "fri"}, Time: "17:00"})
	s.Exceptions = loa.Exceptions{Calendars: []string{"Tết 2027"}}
	p, err := compile(s, Examples())
	if err != nil {
		b.Fatal(err)
	}
	after := lt(hcm, "2027-02-04 12:00")
	for b.Loop() {
		if _, ok := p.next(after); !ok {
			b.Fatal("no next")
		}
	}
}

// A schedule added less than Lead before its time still fires, at once,
// and only once.
func TestReloadWithinLeadFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := run(t, time.Now(), Config{Lead: 2 * time.Second}, sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}))
		time.Sleep(time.Hour - time.Second) // 07:59:59 in Ho Chi Minh City
		h.src.set(
			sched("sang", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}),
			sched("soon", loa.Rule{Kind: loa.RuleDaily, Time: "08:00"}),
		)
		h.s.Reload()
		time.Sleep(time.Minute)
		synctest.Wait()
		h.s.Reload()
		time.Sleep(time.Minute)
		h.stop()
		got := h.rec.get()
		if len(got) != 1 || got[0].occ.ScheduleID != "soon" || !got[0].occ.At.Equal(lt(hcm, "2000-01-01 08:00")) {
			t.Fatalf("starts %+v, want one of soon at 08:00", got)
		}
		if got[0].now.After(lt(hcm, "2000-01-01 07:59:59").Add(time.Millisecond)) {
			t.Errorf("fired at %v, want at once (07:59:59)", got[0].now)
		}
	})
}
