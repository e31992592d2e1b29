package scheduler

import (
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
)

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// rulePlan is a validated loa.Rule in the form next-date arithmetic needs.
type rulePlan struct {
	kind       string
	loc        *time.Location
	from       day // first day; valid when hasFrom
	hasFrom    bool
	until      day // last day; valid when hasUntil
	hasUntil   bool
	start, end clock
	hasEnd     bool
	weekdays   [7]bool
	interval   int
	monthDay   int
}

// ValidateRule reports the first thing wrong with r as an EINVALID error
// naming the field. Date is required for once, every_n_days and
// every_n_weeks, optional for daily, weekly and monthly; End, when set,
// must be after Time; Zone must be an IANA zone, not Local.
//
// How a rule counts: every_n_weeks weeks run Monday to Sunday and are
// counted from the week holding Date; a monthly MonthDay a month lacks
// (31 April) skips that month.
func ValidateRule(r loa.Rule) error {
	_, err := compileRule(r, "")
	return err
}

func compileRule(r loa.Rule, prefix string) (*rulePlan, error) {
	bad := func(field, format string, args ...any) error {
		return loa.Errorf(loa.EINVALID, prefix+field+": "+format, args...)
	}
	p := &rulePlan{kind: r.Kind, interval: r.Interval, monthDay: r.MonthDay}
	var err error
	switch r.Kind {
	case loa.RuleOnce, loa.RuleDaily, loa.RuleWeekly, loa.RuleMonthly, loa.RuleEveryNDays, loa.RuleEveryNWeeks:
	case "":
		return nil, bad("kind", "required: once, daily, weekly, monthly, every_n_days or every_n_weeks")
	default:
		return nil, bad("kind", "%q is not once, daily, weekly, monthly, every_n_days or every_n_weeks", r.Kind)
	}
	if p.loc, err = loadZone(prefix+"zone", r.Zone); err != nil {
		return nil, err
	}
	if r.Date != "" {
		if p.from, err = parseDate(prefix+"date", r.Date); err != nil {
			return nil, err
		}
		p.hasFrom = true
	} else if r.Kind == loa.RuleOnce || r.Kind == loa.RuleEveryNDays || r.Kind == loa.RuleEveryNWeeks {
		return nil, bad("date", "required for %s", r.Kind)
	}
	if r.Until != "" {
		if r.Kind == loa.RuleOnce {
			return nil, bad("until", "a once rule has no range")
		}
		if p.until, err = parseDate(prefix+"until", r.Until); err != nil {
			return nil, err
		}
		if p.hasFrom && p.until < p.from {
			return nil, bad("until", "%s is before date %s", r.Until, r.Date)
		}
		p.hasUntil = true
	}
	if r.Time == "" {
		return nil, bad("time", "required, HH:MM")
	}
	if p.start, err = parseClock(prefix+"time", r.Time); err != nil {
		return nil, err
	}
	if r.End != "" {
		if p.end, err = parseClock(prefix+"end", r.End); err != nil {
			return nil, err
		}
		if p.end <= p.start {
			return nil, bad("end", "%s is not after time %s", r.End, r.Time)
		}
		p.hasEnd = true
	}
	weekly := r.Kind == loa.RuleWeekly || r.Kind == loa.RuleEveryNWeeks
	switch {
	case weekly && len(r.Weekdays) == 0:
		return nil, bad("weekdays", "name at least one day, mon..sun")
	case !weekly && len(r.Weekdays) > 0:
		return nil, bad("weekdays", "only for weekly and every_n_weeks")
	}
	for _, w := range r.Weekdays {
		wd, ok := weekdayNames[strings.ToLower(w)]
		if !ok {
			return nil, bad("weekdays", "%q is not one of mon, tue, wed, thu, fri, sat, sun", w)
		}
		p.weekdays[wd] = true
	}
	every := r.Kind == loa.RuleEveryNDays || r.Kind == loa.RuleEveryNWeeks
	switch {
	case every && r.Interval < 1:
		return nil, bad("interval", "must be at least 1, not %d", r.Interval)
	case every && r.Interval > 1000:
		return nil, bad("interval", "must be at most 1000, not %d", r.Interval)
	case !every && r.Interval != 0:
		return nil, bad("interval", "only for every_n_days and every_n_weeks")
	}
	switch {
	case r.Kind == loa.RuleMonthly && (r.MonthDay == 0 || r.MonthDay > 31 || r.MonthDay < -31):
		return nil, bad("month_day", "must be 1..31, or -1 for the last day, not %d", r.MonthDay)
	case r.Kind != loa.RuleMonthly && r.MonthDay != 0:
		return nil, bad("month_day", "only for monthly")
	}
	return p, nil
}

var zones sync.Map // name → *time.Location; LoadLocation reads a file each call

func loadZone(field, name string) (*time.Location, error) {
	if name == "" {
		name = loa.DefaultZone
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if name == "Local" {
		return nil, loa.Errorf(loa.EINVALID, "%s: name an IANA zone such as %s, not Local", field, loa.DefaultZone)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, loa.Errorf(loa.EINVALID, "%s: unknown time zone %q", field, name)
	}
	zones.Store(name, loc)
	return loc, nil
}

// searchDays bounds the search for a next date, so a rule whose every
// date is skipped ends instead of looping.
const searchDays = 100 * 366

// nextDate returns the first date on or after d on which the rule fires.
func (p *rulePlan) nextDate(d day) (day, bool) {
	if p.hasFrom && d < p.from {
		d = p.from
	}
	switch p.kind {
	case loa.RuleOnce:
		if d != p.from {
			return 0, false
		}
	case loa.RuleDaily:
	case loa.RuleEveryNDays:
		n := day(p.interval)
		d = p.from + (d-p.from+n-1)/n*n
	case loa.RuleWeekly:
		for i := 0; i < 7 && !p.weekdays[d.weekday()]; i++ {
			d++
		}
	case loa.RuleEveryNWeeks:
		d = p.nextWeekDay(d)
	case loa.RuleMonthly:
		var ok bool
		if d, ok = p.nextMonthDay(d); !ok {
			return 0, false
		}
	}
	if p.hasUntil && d > p.until {
		return 0, false
	}
	return d, true
}

func monday(d day) day { return d - day((d.weekday()+6)%7) }

func (p *rulePlan) nextWeekDay(d day) day {
	anchor := monday(p.from)
	for range searchDays / 7 {
		week := int64(d-anchor) / 7
		if r := week % int64(p.interval); r != 0 {
			d = anchor + day((week+int64(p.interval)-r)*7) // Monday of the next counted week
		}
		for end := monday(d) + 7; d < end; d++ {
			if p.weekdays[d.weekday()] {
				return d
			}
		}
	}
	return d
}

func (p *rulePlan) nextMonthDay(d day) (day, bool) {
	y, m, _ := d.date()
	for range 12 * 4 { // every 4 years hold every month day there is
		n := daysIn(y, m)
		md := p.monthDay
		if md < 0 {
			md = n + 1 + md
		}
		if md >= 1 && md <= n {
			if c := dayOf(y, m, md); c >= d {
				return c, true
			}
		}
		if m++; m > 12 {
			y, m = y+1, 1
		}
	}
	return 0, false
}

// NextRule returns r's first occurrence strictly after after, and false
// when there is none (past Until, or r is invalid: call ValidateRule
// first).
// Occurrences are at Time on each date in Zone; see the DST notes on at.
func NextRule(r loa.Rule, after time.Time) (time.Time, bool) {
	p, err := compileRule(r, "")
	if err != nil {
		return time.Time{}, false
	}
	return p.next(after)
}

func (p *rulePlan) next(after time.Time) (time.Time, bool) {
	// The day before after's local date too: DST can move a date's time
	// across midnight only by an hour, but starting a day early is cheap.
	first := localDay(after, p.loc) - 1
	for d, ok := p.nextDate(first); ok && d-first < searchDays; d, ok = p.nextDate(d + 1) {
		if t := at(d, p.start, p.loc); t.After(after) {
			return t, true
		}
	}
	return time.Time{}, false
}

// RuleOccurrences returns r's occurrences in [from, to), at most limit of
// them (limit ≤ 0: no limit; then to must not be zero). A zero to means
// no end.
func RuleOccurrences(r loa.Rule, from, to time.Time, limit int) []time.Time {
	p, err := compileRule(r, "")
	if err != nil || limit <= 0 && to.IsZero() {
		return nil
	}
	var out []time.Time
	for t, ok := p.next(from.Add(-1)); ok && (to.IsZero() || t.Before(to)); t, ok = p.next(t) {
		out = append(out, t)
		if len(out) == limit {
			break
		}
	}
	return out
}
