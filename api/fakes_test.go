package api_test

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
)

// fakeMedia is an in-memory MediaService. It reads the whole upload (so
// the server's size limit is exercised) but keeps only its hash.
type fakeMedia struct {
	mu    sync.Mutex
	items map[string]*loa.Media
	fail  error // returned by MediaList when set
}

func (f *fakeMedia) ImportMedia(ctx context.Context, name string, r io.Reader, createdBy string) (*loa.Media, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return nil, fmt.Errorf("read upload: %w", err)
	}
	if n == 0 {
		return nil, loa.Errorf(loa.EINVALID, "file: empty")
	}
	if name == "not-audio.txt" {
		return nil, loa.Errorf(loa.EUNSUPPORTED, "file: not a known audio format")
	}
	sum := hex.EncodeToString(h.Sum(nil))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.items == nil {
		f.items = map[string]*loa.Media{}
	}
	m := &loa.Media{ID: fmt.Sprintf("m-%d", len(f.items)+1), Name: name, Hash: sum, Size: n,
		Duration: time.Second, Frames: 50, Source: "wav", CreatedBy: createdBy}
	f.items[m.ID] = m
	return m, nil
}

func (f *fakeMedia) Media(ctx context.Context, id string) (*loa.Media, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.items[id]; ok {
		return m, nil
	}
	return nil, loa.Errorf(loa.ENOTFOUND, "media %q not found", id)
}

func (f *fakeMedia) MediaList(ctx context.Context) ([]*loa.Media, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	var out []*loa.Media
	for _, m := range f.items {
		out = append(out, m)
	}
	return out, nil
}

func (f *fakeMedia) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.items)
}

// fakeSessions is an in-memory SessionService: it checks the media exists
// and takes the named devices as the resolved ones.
type fakeSessions struct {
	media *fakeMedia
	mu    sync.Mutex
	all   map[string]*loa.Session
	dests []netip.AddrPort
}

func (f *fakeSessions) StartSession(ctx context.Context, s *loa.Session) error {
	if _, err := f.media.Media(ctx, s.MediaID); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all == nil {
		f.all = map[string]*loa.Session{}
	}
	s.ID = fmt.Sprintf("s-%d", len(f.all)+1)
	s.SSRC = uint32(len(f.all) + 1000)
	s.State = loa.SessionPlaying
	s.Devices = slices.Clone(s.Targets.Devices)
	s.StartedAt = time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	c := *s
	f.all[s.ID] = &c
	return nil
}

func (f *fakeSessions) StopSession(ctx context.Context, id, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.all[id]
	if !ok {
		return loa.Errorf(loa.ENOTFOUND, "session %q not found", id)
	}
	if s.State != loa.SessionPlaying {
		return loa.Errorf(loa.ECONFLICT, "session %q is %s", id, s.State)
	}
	s.State, s.Reason = loa.SessionStopped, reason
	return nil
}

func (f *fakeSessions) Session(ctx context.Context, id string) (*loa.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.all[id]
	if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "session %q not found", id)
	}
	c := *s
	return &c, nil
}

func (f *fakeSessions) Sessions(ctx context.Context) ([]*loa.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*loa.Session
	for _, s := range f.all {
		c := *s
		out = append(out, &c)
	}
	return out, nil
}

func (f *fakeSessions) SessionSDP(ctx context.Context, id string, dest netip.AddrPort) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.all[id]
	if !ok {
		return "", loa.Errorf(loa.ENOTFOUND, "session %q not found", id)
	}
	f.dests = append(f.dests, dest)
	return fmt.Sprintf("v=0\r\no=- %d 0 IN IP4 127.0.0.1\r\ns=%s\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n",
		s.SSRC, s.ID, dest.Addr(), dest.Port()), nil
}

func (f *fakeSessions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.all)
}

// fakePresence reports a fixed state per device.
type fakePresence map[string]loa.DeviceState

func (p fakePresence) DeviceState(id string) (loa.DeviceState, bool) {
	st, ok := p[id]
	return st, ok
}

var errDiskOnFire = errors.New("read /var/lib/loa/media: disk on fire")

// testNow is the server's clock in tests: Wednesday 25 November 2026,
// 10:00 in Hà Nội.
var testNow = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)

// hcm is the station's zone in tests.
var hcm = time.FixedZone("ICT", 7*60*60)

// fakeSchedules is an in-memory ScheduleService. It validates a little of
// what the scheduler validates (enough to see its errors reach the
// client) and computes occurrences of daily and once rules in UTC+7.
type fakeSchedules struct {
	mu        sync.Mutex
	all       map[string]*loa.Schedule
	cals      loa.Calendars
	agendaArg [2]time.Time // the last Agenda window
}

func (f *fakeSchedules) validate(s *loa.Schedule) error {
	if err := loa.ValidateID("id", s.ID); err != nil {
		return err
	}
	switch s.Rule.Kind {
	case loa.RuleDaily, loa.RuleOnce:
	case loa.RuleWeekly:
		if len(s.Rule.Weekdays) == 0 {
			return loa.Errorf(loa.EINVALID, "rule.weekdays: name at least one day")
		}
	default:
		return loa.Errorf(loa.EINVALID, "rule.kind: unknown kind %q", s.Rule.Kind)
	}
	if s.Rule.Date != "" {
		if _, err := time.Parse(time.DateOnly, s.Rule.Date); err != nil {
			return loa.Errorf(loa.EINVALID, "rule.date: %q is not a date", s.Rule.Date)
		}
	}
	if _, err := time.Parse("15:04", s.Rule.Time); err != nil {
		return loa.Errorf(loa.EINVALID, "rule.time: %q is not HH:MM", s.Rule.Time)
	}
	if s.Targets.Empty() {
		return loa.Errorf(loa.EINVALID, "targets: name at least one area or device")
	}
	return nil
}

func (f *fakeSchedules) CreateSchedule(ctx context.Context, s *loa.Schedule) error {
	if err := f.validate(s); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all == nil {
		f.all = map[string]*loa.Schedule{}
	}
	if _, ok := f.all[s.ID]; ok {
		return loa.Errorf(loa.ECONFLICT, "schedule %q exists", s.ID)
	}
	c := *s
	f.all[s.ID] = &c
	return nil
}

func (f *fakeSchedules) UpdateSchedule(ctx context.Context, s *loa.Schedule) error {
	if err := f.validate(s); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.all[s.ID]; !ok {
		return loa.Errorf(loa.ENOTFOUND, "schedule %q not found", s.ID)
	}
	c := *s
	f.all[s.ID] = &c
	return nil
}

func (f *fakeSchedules) DeleteSchedule(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.all[id]; !ok {
		return loa.Errorf(loa.ENOTFOUND, "schedule %q not found", id)
	}
	delete(f.all, id)
	return nil
}

func (f *fakeSchedules) Schedule(ctx context.Context, id string) (*loa.Schedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.all[id]
	if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "schedule %q not found", id)
	}
	c := *s
	return &c, nil
}

func (f *fakeSchedules) Schedules(ctx context.Context) ([]*loa.Schedule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*loa.Schedule
	for _, s := range f.all {
		c := *s
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *loa.Schedule) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (f *fakeSchedules) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.all)
}

// occurrences yields s's occurrences in [from, to), at most n (n < 0: all).
func occurrences(s *loa.Schedule, from, to time.Time, n int) []loa.Occurrence {
	hm, _ := time.Parse("15:04", s.Rule.Time)
	var out []loa.Occurrence
	y, m, d := from.In(hcm).Date()
	for day := time.Date(y, m, d, 0, 0, 0, 0, hcm); day.Before(to) && n != 0; day = day.AddDate(0, 0, 1) {
		if s.Rule.Kind == loa.RuleOnce && day.Format(time.DateOnly) != s.Rule.Date {
			continue
		}
		at := day.Add(time.Duration(hm.Hour())*time.Hour + time.Duration(hm.Minute())*time.Minute)
		if at.Before(from) || !at.Before(to) {
			continue
		}
		out = append(out, loa.Occurrence{ScheduleID: s.ID, At: at, Content: s.Content, Priority: s.Priority,
			Targets: s.Targets, Overrun: loa.OverrunInterrupt})
		n--
	}
	return out
}

func (f *fakeSchedules) NextOccurrences(ctx context.Context, id string, after time.Time, n int) ([]loa.Occurrence, error) {
	s, err := f.Schedule(ctx, id)
	if err != nil {
		return nil, err
	}
	return occurrences(s, after.Add(time.Nanosecond), after.AddDate(1, 0, 0), n), nil
}

func (f *fakeSchedules) Agenda(ctx context.Context, from, to time.Time) ([]loa.Occurrence, error) {
	list, _ := f.Schedules(ctx)
	f.mu.Lock()
	f.agendaArg = [2]time.Time{from, to}
	f.mu.Unlock()
	var out []loa.Occurrence
	for _, s := range list {
		if s.Enabled {
			out = append(out, occurrences(s, from, to, -1)...)
		}
	}
	slices.SortFunc(out, func(a, b loa.Occurrence) int { return a.At.Compare(b.At) })
	return out, nil
}

func (f *fakeSchedules) lastAgenda() (from, to time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agendaArg[0], f.agendaArg[1]
}

func (f *fakeSchedules) Calendars(ctx context.Context) (loa.Calendars, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := loa.Calendars{}
	for n, c := range f.cals {
		out[n] = c
	}
	return out, nil
}

func (f *fakeSchedules) PutCalendar(ctx context.Context, c loa.Calendar) error {
	for i, d := range c.Dates {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			if _, err := time.Parse("01-02", d); err != nil {
				return loa.Errorf(loa.EINVALID, "dates[%d]: %q is not YYYY-MM-DD or MM-DD", i, d)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cals == nil {
		f.cals = loa.Calendars{}
	}
	f.cals[c.Name] = c
	return nil
}

// fakePlayLog answers its entries whatever the filter, so the server's
// own scope filtering shows, and remembers the last filter.
type fakePlayLog struct {
	mu      sync.Mutex
	entries []loa.PlayLogEntry
	filter  loa.PlayLogFilter
}

func (f *fakePlayLog) PlayLog(ctx context.Context, filter loa.PlayLogFilter) ([]loa.PlayLogEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter = filter
	out := make([]loa.PlayLogEntry, len(f.entries))
	for i, e := range f.entries {
		e.Devices = slices.Clone(e.Devices)
		out[i] = e
	}
	return out, nil
}

func (f *fakePlayLog) lastFilter() loa.PlayLogFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.filter
}
