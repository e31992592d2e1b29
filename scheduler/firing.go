package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
)

// Starter starts the session of an occurrence. cmd/loa implements it: it
// persists the session, then starts it. late is how long after occ.At it
// is called: a little above zero normally, up to Config.Grace after a
// restart, -Config.Lead when firing early. It is called concurrently for
// occurrences due at the same time, at most once per occurrence in one
// run; across a crash it may see an occurrence again, so it should
// refuse an occ.Key() it has already started.
type Starter interface {
	StartScheduled(ctx context.Context, occ loa.Occurrence, late time.Duration) error
}

// Source supplies the schedules and holiday calendars; the store
// implements it.
type Source interface {
	Schedules(ctx context.Context) ([]*loa.Schedule, loa.Calendars, error)
}

// Config configures a Scheduler. Starter and Source are required.
type Config struct {
	Starter Starter
	Source  Source
	// Clock is the wall and monotonic clock; default the host's
	// (NewSystemClock(0)).
	Clock Clock
	// StepThreshold: a divergence of the wall clock's advance from the
	// monotonic clock's larger than this is a step. ≤ 0: 2s.
	StepThreshold time.Duration
	// OnStep is told of each wall-clock step, after it is handled, so it
	// can raise an alarm. It must not block for long.
	OnStep func(Step)
	// Grace: a start missed by at most this (the controller was down or
	// stalled) is played late; older ones go to OnMissed. ≤ 0: 5m.
	Grace time.Duration
	// Lead fires this early, so receivers can tune in before At. ≥ 0.
	Lead   time.Duration
	Logger *slog.Logger // default slog.Default()
	// OnMissed is told of each occurrence missed by more than Grace, so
	// it can go in the play log. It must not block for long.
	OnMissed func(occ loa.Occurrence, late time.Duration)
}

// DefaultGrace is Config.Grace when none is set.
const DefaultGrace = 5 * time.Minute

// maxSleep bounds one timer: timers run on the monotonic clock, so when
// the wall clock is stepped (NTP, a suspended VM), the loop looks again
// within this long.
const maxSleep = time.Minute

// maxMissed bounds the occurrences of one schedule reported at one wake,
// so a controller down for years does not spend its start listing them.
const maxMissed = 1000

// Scheduler fires schedules' occurrences through a Starter.
type Scheduler struct {
	cfg    Config
	log    *slog.Logger
	reload chan struct{}

	mu      sync.Mutex
	handled time.Time
}

// New returns a Scheduler; call Run to start it.
func New(cfg Config) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = NewSystemClock(0)
	}
	if cfg.StepThreshold <= 0 {
		cfg.StepThreshold = DefaultStepThreshold
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	cfg.Lead = max(cfg.Lead, 0)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Scheduler{cfg: cfg, log: log, reload: make(chan struct{}, 1)}
}

// Reload tells a running Scheduler that schedules changed. The new
// schedules apply to occurrences after the reload: one whose time has
// passed does not fire. It never blocks.
func (s *Scheduler) Reload() {
	select {
	case s.reload <- struct{}{}:
	default: // one pending reload covers any number of changes
	}
}

// Handled returns the instant through which every occurrence has been
// started or reported missed (zero before Run). Persist it and pass it
// to the next Run as since.
func (s *Scheduler) Handled() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handled
}

// entry is one schedule's plan and its next occurrence after the cursor.
type entry struct {
	plan *plan
	next loa.Occurrence
	ok   bool
}

// Run loads the schedules and fires them until ctx is done, then waits
// for the Starter calls it made and returns nil. since is when the
// scheduler last ran (Handled, persisted by the caller; zero for never):
// occurrences in (since, now] are played late if within Grace, else
// reported missed. An error means the first load failed; later load
// failures are logged and the previous schedules kept.
func (s *Scheduler) Run(ctx context.Context, since time.Time) error {
	entries, err := s.load(ctx)
	if err != nil {
		return fmt.Errorf("scheduler: load schedules: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()

	// done is the cursor: every occurrence at or before it is handled.
	steps := newStepWatch(s.cfg.Clock, s.cfg.StepThreshold)
	done := since
	if done.IsZero() {
		done = steps.wall
	}
	if ahead := done.Sub(steps.wall.Add(s.cfg.Lead)); ahead > s.cfg.StepThreshold {
		// Saved ahead of the wall clock: it stepped back while the
		// controller was down. Re-anchor; the Starter refuses what it
		// started already.
		done = s.stepped(Step{Delta: -ahead, Cursor: done, Now: steps.wall}, "while the controller was down")
	}
	advance(entries, done)
	last := make(map[string]time.Time) // last At fired, per schedule
	timer := time.NewTimer(maxSleep)
	defer timer.Stop()
	reloading := false
	for {
		now, step := steps.read()
		if step != 0 {
			// Back: re-anchor the cursor at the wall clock, so nothing
			// waits silently for it to catch up and a reload fires
			// nothing early; last skips what fired already. Forward:
			// fire plays what the step skipped late within Grace and
			// reports the rest missed.
			if c := s.stepped(Step{Delta: step, Cursor: done, Now: now}, "while running"); c.Before(done) {
				done = c
				advance(entries, done)
			}
		}
		if horizon := now.Add(s.cfg.Lead); horizon.After(done) {
			s.fire(ctx, &wg, entries, last, horizon, now)
			done = horizon
		}
		s.mu.Lock()
		s.handled = done
		s.mu.Unlock()
		if reloading {
			// After firing what was due under the old schedules, so a
			// change applies from now on and never replays the past.
			reloading = false
			if e, err := s.load(ctx); err != nil {
				s.log.Error("scheduler: reload failed, keeping the previous schedules", "err", err)
			} else {
				entries = e
				// From now, not from the lead horizon: an occurrence the
				// change brings within the lead still fires (at once, so
				// receivers tune); last and the Starter prevent repeats.
				advance(entries, now)
				s.fire(ctx, &wg, entries, last, done, now)
				for id := range last {
					if !hasSchedule(entries, id) {
						delete(last, id)
					}
				}
			}
		}
		wait := maxSleep
		for _, e := range entries {
			if e.ok {
				wait = min(wait, e.next.At.Add(-s.cfg.Lead).Sub(now))
			}
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.reload:
			reloading = true
		}
	}
}

// stepped logs a wall-clock step and tells OnStep; it returns the cursor
// to go on from: the wall clock after a step back, else the cursor.
func (s *Scheduler) stepped(st Step, when string) time.Time {
	cursor := st.Cursor
	if st.Delta < 0 && cursor.After(st.Now) {
		cursor = st.Now
	}
	dir := "forward"
	if st.Delta < 0 {
		dir = "back"
	}
	s.log.Warn("scheduler: wall clock stepped "+dir, "by", st.Delta, "when", when, "cursor", st.Cursor, "now", st.Now, "resume_from", cursor)
	if s.cfg.OnStep != nil {
		s.cfg.OnStep(st)
	}
	return cursor
}

// fire handles every occurrence up to horizon: starts those within
// Grace, reports older ones missed, and moves each fired entry on.
func (s *Scheduler) fire(ctx context.Context, wg *sync.WaitGroup, entries []entry, last map[string]time.Time, horizon, now time.Time) {
	var due []loa.Occurrence
	for i := range entries {
		e := &entries[i]
		for n := 1; e.ok && !e.next.At.After(horizon); n++ {
			occ := e.next
			e.next, e.ok = e.plan.next(occ.At)
			if n == maxMissed && e.ok && now.Sub(e.next.At) > s.cfg.Grace {
				// Down for years: report the first, skip to the recent.
				from := now.Add(-s.cfg.Grace - time.Nanosecond)
				s.log.Error("scheduler: too many missed occurrences, not reporting the rest",
					"schedule", occ.ScheduleID, "reported", maxMissed, "after", occ.At, "until", from)
				e.next, e.ok = e.plan.next(from)
			}
			if l, ok := last[occ.ScheduleID]; ok && !occ.At.After(l) {
				// Fired already (the wall clock stepped back over it
				// or a reload met it): never twice.
				s.log.Info("scheduler: already handled, not fired again", "schedule", occ.ScheduleID, "at", occ.At)
				continue
			}
			last[occ.ScheduleID] = occ.At
			due = append(due, occ)
		}
	}
	sortOccurrences(due) // highest priority first among equal times
	for _, occ := range due {
		late := now.Sub(occ.At)
		if late > s.cfg.Grace {
			s.log.Warn("scheduler: missed", "schedule", occ.ScheduleID, "at", occ.At, "late", late)
			if s.cfg.OnMissed != nil {
				s.cfg.OnMissed(occ, late)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not retried: a start that failed is late by the time a retry
			// could succeed, and the Starter knows better what to record.
			if err := s.cfg.Starter.StartScheduled(ctx, occ, late); err != nil {
				s.log.Error("scheduler: start failed", "schedule", occ.ScheduleID, "at", occ.At, "err", err)
			}
		}()
	}
}

// advance sets each entry's next occurrence to the first after t.
func advance(entries []entry, t time.Time) {
	for i := range entries {
		entries[i].next, entries[i].ok = entries[i].plan.next(t)
	}
}

func hasSchedule(entries []entry, id string) bool {
	for _, e := range entries {
		if e.plan.s.ID == id {
			return true
		}
	}
	return false
}

// load reads the enabled, valid schedules; an invalid one is logged and
// left out so it cannot stop the others.
func (s *Scheduler) load(ctx context.Context) ([]entry, error) {
	schedules, cals, err := s.cfg.Source.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	var entries []entry
	seen := make(map[string]bool, len(schedules))
	for _, sc := range schedules {
		if sc == nil || !sc.Enabled {
			continue
		}
		sc := *sc // a copy, so the caller may reuse its value
		p, err := compile(&sc, cals)
		switch {
		case err != nil:
			s.log.Error("scheduler: invalid schedule left out", "schedule", sc.ID, "err", err)
			continue
		case seen[sc.ID]:
			s.log.Error("scheduler: duplicate schedule id left out", "schedule", sc.ID)
			continue
		}
		seen[sc.ID] = true
		if len(p.exc.unknown) > 0 {
			s.log.Warn("scheduler: unknown calendars skip nothing", "schedule", sc.ID, "calendars", p.exc.unknown)
		}
		entries = append(entries, entry{plan: p})
	}
	return entries, nil
}
