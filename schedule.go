package loa

import (
	"context"
	"time"
)

// The schedule vocabulary. The scheduler package computes occurrences from
// these; the store keeps them; the API edits them through ScheduleService.

// Rule kinds.
const (
	RuleOnce        = "once"
	RuleDaily       = "daily"
	RuleWeekly      = "weekly"
	RuleMonthly     = "monthly"
	RuleEveryNDays  = "every_n_days"
	RuleEveryNWeeks = "every_n_weeks"
)

// DefaultZone is the zone of a rule that names none.
const DefaultZone = "Asia/Ho_Chi_Minh"

// Overrun policies: what a schedule does when a receiver it targets is
// still playing something else at its start time.
const (
	OverrunInterrupt = "interrupt" // the default; arbitration by priority decides
	OverrunWait      = "wait"      // wait for the playing programme to end, at most MaxWait, then skip
)

// Rule says on which local dates, and at what local time, something
// happens. Dates are YYYY-MM-DD and times HH:MM or HH:MM:SS, in Zone.
type Rule struct {
	Kind string `json:"kind"`
	// Date is the day of a once rule; for the others the first day of the
	// range, and the anchor every_n_days and every_n_weeks count from.
	Date string `json:"date,omitempty"`
	// Until is the last day of the range, inclusive; empty means forever.
	Until string `json:"until,omitempty"`
	Time  string `json:"time"`
	// End is when the programme must stop that day; empty: at its end.
	End string `json:"end,omitempty"`
	// Weekdays ("mon".."sun") for weekly and every_n_weeks.
	Weekdays []string `json:"weekdays,omitempty"`
	// Interval is N for every_n_days and every_n_weeks.
	Interval int `json:"interval,omitempty"`
	// MonthDay is 1..31 (months without it are skipped), or -1 for the
	// last day of the month, -2 the one before, …
	MonthDay int    `json:"month_day,omitempty"`
	Zone     string `json:"zone,omitempty"`
}

// Content is what a schedule plays: one media item, one playlist or one relay.
type Content struct {
	MediaID    string `json:"media_id,omitempty"`
	PlaylistID string `json:"playlist_id,omitempty"`
	RelayID    string `json:"relay_id,omitempty"` // a relay of an external stream, until the schedule's end
}

// Exceptions change what a rule yields on particular local dates.
type Exceptions struct {
	Skip      []string               `json:"skip,omitempty"`      // dates with no occurrence
	Calendars []string               `json:"calendars,omitempty"` // holiday calendars whose dates are skipped
	Replace   map[string]Replacement `json:"replace,omitempty"`   // date → what plays instead
}

// Replacement is one date's change: other content, another time, or both.
type Replacement struct {
	Content        // empty: the schedule's own content
	Time    string `json:"time,omitempty"` // HH:MM; empty: the rule's time
}

// Calendar is a named set of dates, such as a holiday. A date is
// YYYY-MM-DD, or MM-DD for the same day every year. A calendar of an area
// is kept by those whose scope holds that area; a station-wide one (no
// area: the national holidays) only by a station-wide admin.
type Calendar struct {
	Name   string   `json:"name"`
	Dates  []string `json:"dates"`
	AreaID string   `json:"area_id,omitempty"`
}

// Calendars holds calendars by name.
type Calendars map[string]Calendar

// Schedule is a programme that plays by a rule: what, to whom, at what
// priority, and what to do when the previous programme overruns.
type Schedule struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Rule       Rule          `json:"rule"`
	Exceptions Exceptions    `json:"exceptions,omitzero"`
	Content    Content       `json:"content"`
	Targets    Targets       `json:"targets"`
	Priority   Priority      `json:"priority"`
	Overrun    string        `json:"overrun,omitempty"`     // OverrunInterrupt (default) or OverrunWait
	MaxWait    time.Duration `json:"max_wait_ns,omitempty"` // bounds a wait
	Enabled    bool          `json:"enabled"`
	CreatedBy  string        `json:"created_by,omitempty"`
	ApprovedBy string        `json:"approved_by,omitempty"` // who approved it, when it was held
}

// Occurrence is one firing of a schedule: everything needed to start it.
type Occurrence struct {
	ScheduleID string        `json:"schedule_id"`
	At         time.Time     `json:"at"`
	End        time.Time     `json:"end,omitzero"` // the rule's end time that day; zero: at the content's end
	Content    Content       `json:"content"`
	Replaced   bool          `json:"replaced,omitempty"` // an exception replaced content or time
	Priority   Priority      `json:"priority"`
	Targets    Targets       `json:"targets"`
	Overrun    string        `json:"overrun"`
	MaxWait    time.Duration `json:"max_wait_ns,omitempty"`
}

// Key identifies an occurrence across restarts, so it is started once.
func (o Occurrence) Key() string {
	return o.ScheduleID + "@" + o.At.UTC().Format(time.RFC3339Nano)
}

// ScheduleService keeps schedules and holiday calendars and answers what
// will play when. station.Schedules composes it from the scheduler and the store.
type ScheduleService interface {
	CreateSchedule(ctx context.Context, s *Schedule) error // validates; ECONFLICT if the id exists
	UpdateSchedule(ctx context.Context, s *Schedule) error // validates; ENOTFOUND if missing
	DeleteSchedule(ctx context.Context, id string) error
	Schedule(ctx context.Context, id string) (*Schedule, error)
	Schedules(ctx context.Context) ([]*Schedule, error)
	// NextOccurrences lists the next n occurrences of one schedule after t.
	NextOccurrences(ctx context.Context, id string, after time.Time, n int) ([]Occurrence, error)
	// Agenda lists every enabled schedule's occurrences in [from, to).
	Agenda(ctx context.Context, from, to time.Time) ([]Occurrence, error)
	Calendars(ctx context.Context) (Calendars, error)
	PutCalendar(ctx context.Context, c Calendar) error
	// Conflicts validates s as CreateSchedule would and lists where its
	// occurrences in [from, to) overlap another enabled schedule's on
	// shared receivers or areas (s's own id is not another).
	Conflicts(ctx context.Context, s *Schedule, from, to time.Time) ([]ScheduleConflict, error)
}

// ScheduleConflict is one occurrence of a proposed schedule that overlaps
// one of another schedule on shared targets. An occurrence lasts until
// its rule's end time, else its content's length (at least a minute).
type ScheduleConflict struct {
	At         time.Time `json:"at"` // the proposed occurrence
	End        time.Time `json:"end"`
	ScheduleID string    `json:"schedule_id,omitempty"` // the other schedule; empty when the caller may not see it
	Name       string    `json:"name,omitempty"`
	OtherAt    time.Time `json:"other_at"`
	OtherEnd   time.Time `json:"other_end"`
	Priority   Priority  `json:"priority"` // the other's: arbitration decides who plays
	Targets    Targets   `json:"targets,omitzero"`
}

// Play log events.
const (
	PlayStarted   = "started"
	PlayEnded     = "ended"
	PlayStopped   = "stopped"
	PlayFailed    = "failed"
	PlayPreempted = "preempted"
	PlayMissed    = "missed"
	PlayResumed   = "resumed" // after a controller restart, at its wall-clock position
	PlaySkipped   = "skipped"
	// PlayAired: one receiver (Devices) reported playing the session (its
	// played event, or a finished one with frames played): the only line
	// that says a receiver heard it.
	PlayAired = "aired"
	// PlayRelaySwitch: a relay switched source (a backup URL, its
	// fallback, back to its primary); Detail says from what to what, and why.
	PlayRelaySwitch = "relay_switch"
)

// PlayLogEntry is one line of the station's broadcast log (nhật ký phát
// thanh): what played where, when, and who or what started it.
type PlayLogEntry struct {
	At         time.Time `json:"at"`
	Event      string    `json:"event"`
	SessionID  string    `json:"session_id,omitempty"`
	ScheduleID string    `json:"schedule_id,omitempty"`
	Occurrence time.Time `json:"occurrence,omitzero"` // the scheduled time, for schedule-started sessions
	Content    Content   `json:"content"`
	Devices    []string  `json:"devices,omitempty"`
	Areas      []string  `json:"areas,omitempty"` // the session's target areas
	By         string    `json:"by,omitempty"`    // token id, or "schedule:<id>"
	Detail     string    `json:"detail,omitempty"`
	// RecordingID is the media item that keeps what the session aired (a
	// recorded live session's end line).
	RecordingID string `json:"recording_id,omitempty"`
	// Origin names what a session with no content of its own came from
	// (live, relay), so the log can say what played.
	Origin string `json:"origin,omitempty"`
}

// PlayLogFilter selects play log entries; zero fields match everything.
type PlayLogFilter struct {
	From, To time.Time // [From, To)
	Area     string    // entries whose target areas or devices lie within this area
	Device   string
	Limit    int
	Event    string // one event (PlayStarted, PlayAired…); "" for all
	Offset   int    // matching entries to skip first, newest first: paging
}
