package scheduler

import (
	"time"

	"github.com/loa-broadcast/loa"
)

func emptyContent(c loa.Content) bool {
	return c.MediaID == "" && c.PlaylistID == "" && c.RelayID == ""
}

func validateContent(c loa.Content, prefix string) error {
	named := 0
	for _, id := range []string{c.MediaID, c.PlaylistID, c.RelayID} {
		if id != "" {
			named++
		}
	}
	switch {
	case named > 1:
		return loa.Errorf(loa.EINVALID, "%smedia_id: name one of media_id, playlist_id or relay_id, not several", prefix)
	case c.MediaID != "":
		return loa.ValidateID(prefix+"media_id", c.MediaID)
	case c.PlaylistID != "":
		return loa.ValidateID(prefix+"playlist_id", c.PlaylistID)
	case c.RelayID != "":
		return loa.ValidateID(prefix+"relay_id", c.RelayID)
	}
	return loa.Errorf(loa.EINVALID, "%smedia_id: name a media_id, a playlist_id or a relay_id", prefix)
}

// Validate checks the schedule's own fields: id, name, rule (see
// ValidateRule), exceptions (see ValidateExceptions; a replaced date must
// be one the rule fires on), content (a media_id or a playlist_id, not
// both), targets, and overrun with MaxWait (none with
// loa.OverrunInterrupt; required, within 0..24h, with loa.OverrunWait).
// That its media, playlist, targets and calendars exist is for the caller
// to check (see CheckCalendars). CreatedBy is not checked.
func Validate(s *loa.Schedule) error {
	_, err := compile(s, nil)
	return err
}

// plan is a validated schedule ready for next-occurrence arithmetic.
type plan struct {
	s    *loa.Schedule
	rule *rulePlan
	exc  *exceptionPlan
}

func compile(s *loa.Schedule, cals loa.Calendars) (*plan, error) {
	if err := loa.ValidateID("id", s.ID); err != nil {
		return nil, err
	}
	if err := loa.ValidateName("name", s.Name, true); err != nil {
		return nil, err
	}
	rule, err := compileRule(s.Rule, "rule.")
	if err != nil {
		return nil, err
	}
	exc, err := compileExceptions(s.Exceptions, "exceptions.", cals)
	if err != nil {
		return nil, err
	}
	for d := range exc.replace {
		if got, ok := rule.nextDate(d); !ok || got != d {
			return nil, loa.Errorf(loa.EINVALID, "exceptions.replace.%s: the rule does not fire that day", d)
		}
	}
	if err := validateContent(s.Content, "content."); err != nil {
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
	case "", loa.OverrunInterrupt:
		if s.MaxWait != 0 {
			return nil, loa.Errorf(loa.EINVALID, "max_wait: only with overrun %q", loa.OverrunWait)
		}
	case loa.OverrunWait:
		if s.MaxWait <= 0 || s.MaxWait > 24*time.Hour {
			return nil, loa.Errorf(loa.EINVALID, "max_wait: required with overrun %q, within 0..24h", loa.OverrunWait)
		}
	default:
		return nil, loa.Errorf(loa.EINVALID, "overrun: %q is not %q or %q", s.Overrun, loa.OverrunInterrupt, loa.OverrunWait)
	}
	return &plan{s: s, rule: rule, exc: exc}, nil
}

// Next returns s's first occurrence strictly after after,
// with exceptions applied (calendars resolved in cals; one it lacks
// skips nothing), and false when there is none or s is invalid. It does
// not look at Enabled.
func Next(s *loa.Schedule, after time.Time, cals loa.Calendars) (loa.Occurrence, bool) {
	p, err := compile(s, cals)
	if err != nil {
		return loa.Occurrence{}, false
	}
	return p.next(after)
}

// Occurrences returns s's occurrences in [from, to), at most
// limit (limit ≤ 0: no limit, then to must not be zero; a zero to means
// no end), for "the next N" lists.
func Occurrences(s *loa.Schedule, from, to time.Time, limit int, cals loa.Calendars) []loa.Occurrence {
	p, err := compile(s, cals)
	if err != nil || limit <= 0 && to.IsZero() {
		return nil
	}
	return p.between(from, to, limit)
}

func (p *plan) between(from, to time.Time, limit int) []loa.Occurrence {
	var out []loa.Occurrence
	for o, ok := p.next(from.Add(-1)); ok && (to.IsZero() || o.At.Before(to)); o, ok = p.next(o.At) {
		out = append(out, o)
		if len(out) == limit {
			break
		}
	}
	return out
}

func (p *plan) next(after time.Time) (loa.Occurrence, bool) {
	r := p.rule
	first := localDay(after, r.loc) - 1
	for d, ok := r.nextDate(first); ok && d-first < searchDays; d, ok = r.nextDate(d + 1) {
		o, ok := p.on(d)
		if ok && o.At.After(after) {
			return o, true
		}
	}
	return loa.Occurrence{}, false
}

// on is the occurrence on a date the rule fires, after exceptions.
func (p *plan) on(d day) (loa.Occurrence, bool) {
	r, s := p.rule, p.s
	rep, replaced := p.exc.replace[d]
	if !replaced && p.exc.skip.has(d) {
		return loa.Occurrence{}, false
	}
	o := loa.Occurrence{
		ScheduleID: s.ID,
		Content:    s.Content,
		Replaced:   replaced,
		Priority:   s.Priority,
		Targets:    s.Targets,
		Overrun:    s.Overrun,
		MaxWait:    s.MaxWait,
	}
	if o.Overrun == "" {
		o.Overrun = loa.OverrunInterrupt
	}
	start := r.start
	if rep.hasStart {
		start = rep.start
	}
	if !emptyContent(rep.content) {
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
