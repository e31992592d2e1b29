package scheduler

import (
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// Overrun policies: what a schedule does when the receiver is still
// playing the previous programme at start time.
const (
	Interrupt = "interrupt" // preempt it, as priority allows (the default)
	Wait      = "wait"      // wait for it to end, at most MaxWait, then skip
)

// Content is what a schedule plays: one media item or one playlist.
type Content struct {
	MediaID    string `json:"media_id,omitempty"`
	PlaylistID string `json:"playlist_id,omitempty"`
}

func (c Content) empty() bool { return c.MediaID == "" && c.PlaylistID == "" }

func (c Content) validate(prefix string) error {
	switch {
	case c.MediaID != "" && c.PlaylistID != "":
		return loa.Errorf(loa.EINVALID, "%smedia_id: name a media_id or a playlist_id, not both", prefix)
	case c.MediaID != "":
		return loa.ValidateID(prefix+"media_id", c.MediaID)
	case c.PlaylistID != "":
		return loa.ValidateID(prefix+"playlist_id", c.PlaylistID)
	}
	return loa.Errorf(loa.EINVALID, "%smedia_id: name a media_id or a playlist_id", prefix)
}

// Schedule is a programme that plays by a rule: what, to whom, at what
// priority, and what to do when the previous programme overruns.
type Schedule struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Rule       Rule         `json:"rule"`
	Exceptions Exceptions   `json:"exceptions,omitzero"`
	Content    Content      `json:"content"`
	Targets    loa.Targets  `json:"targets"`
	Priority   loa.Priority `json:"priority"`
	Overrun    string       `json:"overrun,omitempty"` // Interrupt (default) or Wait
	// MaxWait bounds a Wait: after it the occurrence is skipped.
	MaxWait time.Duration `json:"max_wait_ns,omitempty"`
	// Enabled: a disabled schedule is kept but neither fires nor shows
	// in the Agenda.
	Enabled bool `json:"enabled"`
}

// Occurrence is one firing of a schedule: everything a Starter needs.
type Occurrence struct {
	ScheduleID string    `json:"schedule_id"`
	At         time.Time `json:"at"`
	// End is when the programme must stop (the rule's End), zero for
	// "at the end of its content".
	End      time.Time     `json:"end,omitzero"`
	Content  Content       `json:"content"`
	Replaced bool          `json:"replaced,omitempty"` // an exception replaced content or time
	Priority loa.Priority  `json:"priority"`
	Targets  loa.Targets   `json:"targets"`
	Overrun  string        `json:"overrun"`
	MaxWait  time.Duration `json:"max_wait_ns,omitempty"`
}

// Key identifies an occurrence across restarts: a Starter that persists
// it can refuse a second start of the same key.
func (o Occurrence) Key() string {
	return o.ScheduleID + "@" + o.At.UTC().Format(time.RFC3339Nano)
}

// Validate checks the schedule's own fields. That its media, playlist,
// targets and calendars exist is for the caller to check (see
// Exceptions.CheckCalendars).
func (s *Schedule) Validate() error {
	_, err := s.compile(nil)
	return err
}

// plan is a validated schedule ready for next-occurrence arithmetic.
type plan struct {
	s    *Schedule
	rule *rulePlan
	exc  *exceptionPlan
}

func (s *Schedule) compile(cals Calendars) (*plan, error) {
	if err := loa.ValidateID("id", s.ID); err != nil {
		return nil, err
	}
	if strings.TrimSpace(s.Name) == "" || len(s.Name) > 200 {
		return nil, loa.Errorf(loa.EINVALID, "name: required, at most 200 bytes")
	}
	rule, err := s.Rule.compile("rule.")
	if err != nil {
		return nil, err
	}
	exc, err := s.Exceptions.compile("exceptions.", cals)
	if err != nil {
		return nil, err
	}
	for d := range exc.replace {
		if got, ok := rule.nextDate(d); !ok || got != d {
			return nil, loa.Errorf(loa.EINVALID, "exceptions.replace.%s: the rule does not fire that day", d)
		}
	}
	if err := s.Content.validate("content."); err != nil {
		return nil, err
	}
	if s.Targets.Empty() {
		return nil, loa.Errorf(loa.EINVALID, "targets: name at least one area or device")
	}
	for _, a := range s.Targets.Areas {
		if err := loa.ValidateID("targets.areas", a); err != nil {
			return nil, err
		}
	}
	for _, d := range s.Targets.Devices {
		if err := loa.ValidateID("targets.devices", d); err != nil {
			return nil, err
		}
	}
	switch s.Overrun {
	case "", Interrupt:
		if s.MaxWait != 0 {
			return nil, loa.Errorf(loa.EINVALID, "max_wait: only with overrun %q", Wait)
		}
	case Wait:
		if s.MaxWait <= 0 || s.MaxWait > 24*time.Hour {
			return nil, loa.Errorf(loa.EINVALID, "max_wait: required with overrun %q, within 0..24h", Wait)
		}
	default:
		return nil, loa.Errorf(loa.EINVALID, "overrun: %q is not %q or %q", s.Overrun, Interrupt, Wait)
	}
	return &plan{s: s, rule: rule, exc: exc}, nil
}

// Next returns the schedule's first occurrence strictly after after,
// with exceptions applied (calendars resolved in cals; one it lacks
// skips nothing), and false when there is none or s is invalid. It does
// not look at Enabled.
func (s *Schedule) Next(after time.Time, cals Calendars) (Occurrence, bool) {
	p, err := s.compile(cals)
	if err != nil {
		return Occurrence{}, false
	}
	return p.next(after)
}

// Occurrences returns the schedule's occurrences in [from, to), at most
// limit (limit ≤ 0: no limit, then to must not be zero; a zero to means
// no end), for "the next N" lists.
func (s *Schedule) Occurrences(from, to time.Time, limit int, cals Calendars) []Occurrence {
	p, err := s.compile(cals)
	if err != nil || limit <= 0 && to.IsZero() {
		return nil
	}
	return p.between(from, to, limit)
}

func (p *plan) between(from, to time.Time, limit int) []Occurrence {
	var out []Occurrence
	for o, ok := p.next(from.Add(-1)); ok && (to.IsZero() || o.At.Before(to)); o, ok = p.next(o.At) {
		out = append(out, o)
		if len(out) == limit {
			break
		}
	}
	return out
}

func (p *plan) next(after time.Time) (Occurrence, bool) {
	r := p.rule
	first := localDay(after, r.loc) - 1
	for d, ok := r.nextDate(first); ok && d-first < searchDays; d, ok = r.nextDate(d + 1) {
		o, ok := p.on(d)
		if ok && o.At.After(after) {
			return o, true
		}
	}
	return Occurrence{}, false
}

// on is the occurrence on a date the rule fires, after exceptions.
func (p *plan) on(d day) (Occurrence, bool) {
	r, s := p.rule, p.s
	rep, replaced := p.exc.replace[d]
	if !replaced && p.exc.skip.has(d) {
		return Occurrence{}, false
	}
	o := Occurrence{
		ScheduleID: s.ID,
		Content:    s.Content,
		Replaced:   replaced,
		Priority:   s.Priority,
		Targets:    s.Targets,
		Overrun:    s.Overrun,
		MaxWait:    s.MaxWait,
	}
	if o.Overrun == "" {
		o.Overrun = Interrupt
	}
	start := r.start
	if rep.hasStart {
		start = rep.start
	}
	if !rep.content.empty() {
		o.Content = rep.content
	}
	o.At = at(d, start, r.loc)
	switch {
	case r.hasEnd && rep.hasStart:
		// A moved occurrence keeps its length rather than the rule's end,
		// which could fall before its new start.
		o.End = o.At.Add(time.Duration(r.end-r.start) * time.Second)
	case r.hasEnd:
		o.End = at(d, r.end, r.loc)
	}
	return o, true
}
