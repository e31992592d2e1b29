package station

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/scheduler"
	"github.com/loa-broadcast/loa/store"
)

// Schedules implements loa.ScheduleService: the scheduler validates and
// computes, the store keeps, and every change reloads the firing loop.
type Schedules struct {
	db     *store.DB
	logger *slog.Logger

	mu  sync.Mutex
	sch *scheduler.Scheduler // reloaded on every change; nil before Attach

	// OnChange, if set, is called after every change of a schedule or
	// calendar (the receivers' programmes, offline.go).
	OnChange func()
}

var _ loa.ScheduleService = (*Schedules)(nil)

// NewSchedules returns the schedule service of db.
func NewSchedules(db *store.DB, logger *slog.Logger) *Schedules {
	return &Schedules{db: db, logger: logger}
}

// check validates s and that what it names exists.
func (s *Schedules) check(ctx context.Context, sc *loa.Schedule) error {
	if sc.Overrun == "" {
		sc.Overrun = loa.OverrunInterrupt
	}
	if err := scheduler.Validate(sc); err != nil {
		return err
	}
	if err := s.contentExists(ctx, "content.", sc.Content); err != nil {
		return err
	}
	for date, r := range sc.Exceptions.Replace {
		if r.MediaID != "" || r.PlaylistID != "" || r.RelayID != "" {
			if err := s.contentExists(ctx, "exceptions.replace."+date+".", r.Content); err != nil {
				return err
			}
		}
	}
	cals, err := s.Calendars(ctx)
	if err != nil {
		return err
	}
	if err := scheduler.CheckCalendars(sc.Exceptions, cals); err != nil {
		return err
	}
	areas, err := s.db.Areas(ctx)
	if err != nil {
		return err
	}
	devices, err := s.db.Devices(ctx)
	if err != nil {
		return err
	}
	_, err = sc.Targets.Resolve(loa.NewAreaTree(areas), devices)
	return err
}

func (s *Schedules) contentExists(ctx context.Context, prefix string, c loa.Content) error {
	if c.MediaID != "" {
		if m, err := s.db.Media(ctx, c.MediaID); err != nil {
			return loa.Errorf(loa.ENOTFOUND, "%smedia_id: no media %q", prefix, c.MediaID)
		} else if m.State == loa.MediaDraft {
			return notApproved(prefix+"media_id", m.ID)
		}
	}
	if c.PlaylistID != "" {
		if _, err := s.db.Playlist(ctx, c.PlaylistID); err != nil {
			return loa.Errorf(loa.ENOTFOUND, "%splaylist_id: no playlist %q", prefix, c.PlaylistID)
		}
	}
	if c.RelayID != "" {
		if _, err := s.db.Relay(ctx, c.RelayID); err != nil {
			return loa.Errorf(loa.ENOTFOUND, "%srelay_id: no relay %q", prefix, c.RelayID)
		}
	}
	return nil
}

func (s *Schedules) changed() {
	s.mu.Lock()
	sch := s.sch
	s.mu.Unlock()
	if sch != nil {
		sch.Reload()
	}
	if s.OnChange != nil {
		s.OnChange()
	}
}

func (s *Schedules) CreateSchedule(ctx context.Context, sc *loa.Schedule) error {
	if err := s.check(ctx, sc); err != nil {
		return err
	}
	if err := s.db.CreateSchedule(ctx, sc); err != nil {
		return err
	}
	s.changed()
	return nil
}

func (s *Schedules) UpdateSchedule(ctx context.Context, sc *loa.Schedule) error {
	if _, err := s.db.Schedule(ctx, sc.ID); err != nil {
		return err
	}
	if err := s.check(ctx, sc); err != nil {
		return err
	}
	if err := s.db.PutSchedule(ctx, sc); err != nil {
		return err
	}
	s.changed()
	return nil
}

func (s *Schedules) DeleteSchedule(ctx context.Context, id string) error {
	if err := s.db.DeleteSchedule(ctx, id); err != nil {
		return err
	}
	s.changed()
	return nil
}

func (s *Schedules) Schedule(ctx context.Context, id string) (*loa.Schedule, error) {
	return s.db.Schedule(ctx, id)
}

func (s *Schedules) Schedules(ctx context.Context) ([]*loa.Schedule, error) {
	return s.db.Schedules(ctx)
}

func (s *Schedules) NextOccurrences(ctx context.Context, id string, after time.Time, n int) ([]loa.Occurrence, error) {
	sc, err := s.db.Schedule(ctx, id)
	if err != nil {
		return nil, err
	}
	cals, err := s.Calendars(ctx)
	if err != nil {
		return nil, err
	}
	// Occurrences is [from, to); next means strictly after.
	return scheduler.Occurrences(sc, after.Add(time.Nanosecond), time.Time{}, n, cals), nil
}

func (s *Schedules) Agenda(ctx context.Context, from, to time.Time) ([]loa.Occurrence, error) {
	all, cals, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	return scheduler.Agenda(all, cals, from, to), nil
}

// Calendars are the built-in examples overlaid with the station's own.
func (s *Schedules) Calendars(ctx context.Context) (loa.Calendars, error) {
	stored, err := s.db.Calendars(ctx)
	if err != nil {
		return nil, err
	}
	cals := scheduler.Examples()
	maps.Copy(cals, stored)
	return cals, nil
}

func (s *Schedules) PutCalendar(ctx context.Context, c loa.Calendar) error {
	if err := scheduler.ValidateCalendar(c); err != nil {
		return err
	}
	if err := s.db.PutCalendar(ctx, c); err != nil {
		return err
	}
	s.changed()
	return nil
}

// load is the scheduler's Source.
func (s *Schedules) load(ctx context.Context) ([]*loa.Schedule, loa.Calendars, error) {
	all, err := s.db.Schedules(ctx)
	if err != nil {
		return nil, nil, err
	}
	cals, err := s.Calendars(ctx)
	return all, cals, err
}

// Source is the schedules and calendars as the scheduler reads them.
func (s *Schedules) Source() scheduler.Source { return scheduleSource{s} }

// scheduleSource adapts load to scheduler.Source.
type scheduleSource struct{ s *Schedules }

func (src scheduleSource) Schedules(ctx context.Context) ([]*loa.Schedule, loa.Calendars, error) {
	return src.s.load(ctx)
}

// PlayLog answers the play log queries with area filtering.
type PlayLog struct{ db *store.DB }

// NewPlayLog returns the play log of db.
func NewPlayLog(db *store.DB) PlayLog { return PlayLog{db} }

func (p PlayLog) PlayLog(ctx context.Context, f loa.PlayLogFilter) ([]loa.PlayLogEntry, error) {
	areas, err := p.db.Areas(ctx)
	if err != nil {
		return nil, err
	}
	devs, err := p.db.Devices(ctx)
	if err != nil {
		return nil, err
	}
	deviceArea := make(map[string]string, len(devs))
	for _, d := range devs {
		deviceArea[d.ID] = d.AreaID
	}
	return p.db.PlayLog(ctx, f, loa.NewAreaTree(areas), deviceArea)
}

// Starter starts scheduled occurrences as sessions: once per occurrence
// (recorded before acting, so a crash cannot play it twice), honouring
// the overrun policy. It is the scheduler's Starter, and Missed its
// OnMissed.
type Starter struct {
	// Now is the wall clock the schedules are compared with (the
	// scheduler's, so a -clock-offset shifts both); default time.Now.
	Now func() time.Time
	// Programmes, if on, streams each recorded programme under the session
	// id and timeline announced to receivers' caches (offline.go).
	Programmes *Programmes
	// Relays plays occurrences of a relay (nil: they fail).
	Relays *Relays

	db       *store.DB
	sessions *Sessions
	logger   *slog.Logger
	poll     time.Duration // how often a waiting occurrence looks again
}

// NewStarter returns the starter of db's occurrences through sessions; an
// occurrence waiting for busy targets looks again every poll.
func NewStarter(db *store.DB, sessions *Sessions, poll time.Duration, logger *slog.Logger) *Starter {
	return &Starter{db: db, sessions: sessions, poll: poll, logger: logger}
}

func (st *Starter) StartScheduled(ctx context.Context, occ loa.Occurrence, late time.Duration) error {
	already, err := st.db.MarkStarted(ctx, occ.Key(), st.now())
	if err != nil {
		return err
	}
	if already {
		st.logger.Info("occurrence already started", "schedule", occ.ScheduleID, "at", occ.At)
		return nil
	}
	origin := loa.Origin{Kind: loa.OriginSchedule, ID: occ.ScheduleID}
	entry := loa.PlayLogEntry{ScheduleID: occ.ScheduleID, Occurrence: occ.At, Content: occ.Content,
		Areas: occ.Targets.Areas, Devices: occ.Targets.Devices, By: origin.String()}
	if occ.Overrun == loa.OverrunWait {
		if waited, ok := st.waitFree(ctx, occ); !ok {
			entry.Event, entry.Detail = loa.PlaySkipped, fmt.Sprintf("targets still busy after waiting %v", waited.Round(time.Second))
			st.log(ctx, entry)
			return nil
		} else if waited > 0 {
			late += waited
		}
	}
	// Late (the controller was down): its receivers are reconnecting too.
	// Wait for them, as a resume does, rather than tune none; then it
	// plays from its beginning (late, within the grace window).
	if late > 0 {
		if devs, err := st.sessions.Resolve(ctx, occ.Targets); err == nil {
			if waited := st.sessions.waitReceivers(ctx, devs); waited > time.Second {
				st.logger.Info("late start waited for its receivers", "schedule", occ.ScheduleID, "at", occ.At, "waited", waited)
			}
		}
	}
	sess := &loa.Session{MediaID: occ.Content.MediaID, PlaylistID: occ.Content.PlaylistID, Targets: occ.Targets,
		Priority: occ.Priority, Origin: origin, ScheduledAt: occ.At}
	if !occ.End.IsZero() {
		from := occ.At
		if now := st.now(); now.After(from) {
			from = now
		}
		left := occ.End.Sub(from)
		if left <= 0 {
			entry.Event, entry.Detail = loa.PlayMissed, "its end time passed before it could start"
			st.log(ctx, entry)
			return nil
		}
		sess.MaxDuration = left
	}
	if occ.Content.RelayID != "" {
		err = loa.Errorf(loa.EUNAVAILABLE, "relay_id: relays are not configured")
		if st.Relays != nil {
			err = st.Relays.PlayRelay(ctx, occ.Content.RelayID, sess)
		}
	} else {
		if id, ts0, ok := st.Programmes.Session(occ); ok {
			sess.ID, sess.T0Ms, sess.TS0 = id, occ.At.UnixMilli(), ts0
		}
		err = st.sessions.StartSession(ctx, sess)
	}
	if errors.Is(err, errProgrammeOver) {
		entry.Event, entry.Detail = loa.PlayMissed, err.Error()+"; receivers holding it in cache aired it (their aired-from-cache lines)"
		st.log(ctx, entry)
		return nil
	} else if err != nil {
		entry.Event, entry.Detail = loa.PlayFailed, err.Error()
		st.log(ctx, entry)
		return err
	}
	if late > time.Second {
		st.logger.Warn("scheduled programme started late", "schedule", occ.ScheduleID, "at", occ.At, "late", late, "session", sess.ID)
	}
	return nil
}

// waitFree waits until no playing session holds any device the occurrence
// targets, at most MaxWait (default 10 minutes).
func (st *Starter) waitFree(ctx context.Context, occ loa.Occurrence) (time.Duration, bool) {
	maxWait := occ.MaxWait
	if maxWait <= 0 {
		maxWait = 10 * time.Minute
	}
	start := time.Now()
	for {
		busy, err := st.sessions.busy(ctx, occ.Targets)
		if err == nil && !busy {
			return time.Since(start), true
		}
		if time.Since(start) >= maxWait || ctx.Err() != nil {
			return time.Since(start), false
		}
		select {
		case <-ctx.Done():
		case <-time.After(st.poll):
		}
	}
}

func (st *Starter) now() time.Time {
	if st.Now != nil {
		return st.Now()
	}
	return time.Now()
}

// Missed logs an occurrence missed beyond the grace window, and marks it
// started so a wall clock stepped back over it later cannot play it
// after all.
func (st *Starter) Missed(occ loa.Occurrence, late time.Duration) {
	if _, err := st.db.MarkStarted(context.Background(), occ.Key(), st.now()); err != nil {
		st.logger.Error("missed occurrence not marked", "schedule", occ.ScheduleID, "at", occ.At, "err", err)
	}
	st.log(context.Background(), loa.PlayLogEntry{Event: loa.PlayMissed, ScheduleID: occ.ScheduleID, Occurrence: occ.At,
		Content: occ.Content, Areas: occ.Targets.Areas, Devices: occ.Targets.Devices, By: loa.Origin{Kind: loa.OriginSchedule, ID: occ.ScheduleID}.String(),
		Detail: fmt.Sprintf("the controller was down or the wall clock stepped forward; %v late, beyond the grace window", late.Round(time.Second))})
}

func (st *Starter) log(ctx context.Context, e loa.PlayLogEntry) { st.sessions.appendLog(ctx, e) }

// Attach makes sch the scheduler that fires these schedules: it reloads on
// every change.
func (s *Schedules) Attach(sch *scheduler.Scheduler) {
	s.mu.Lock()
	s.sch = sch
	s.mu.Unlock()
}

// Run fires the attached scheduler's schedules from since until ctx ends,
// saving how far it got so a restart neither repeats nor silently drops a
// programme.
func (s *Schedules) Run(ctx context.Context, since time.Time) {
	s.mu.Lock()
	sch := s.sch
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sch.Run(ctx, since); err != nil {
			s.logger.Error("scheduler stopped", "err", err)
		}
	}()
	save := func() {
		if h := sch.Handled(); !h.IsZero() {
			if err := s.db.PutSchedulerHandled(context.Background(), h); err != nil {
				s.logger.Error("scheduler state not saved", "err", err)
			}
		}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			save()
		case <-done:
			save()
			return
		}
	}
}
