package scheduler

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// Examples returns a small set of holiday calendars to start from. They
// are examples, not an authority: holiday dates are decreed each year,
// and an operator should check and edit them.
func Examples() loa.Calendars {
	return loa.Calendars{
		"Tết 2027": {Name: "Tết 2027", Dates: dateRange(dayOf(2027, time.February, 5), dayOf(2027, time.February, 11))},
		// Quốc khánh (National Day), 2 September, every year. The adjacent
		// day off changes yearly; add it per year.
		"Quốc khánh": {Name: "Quốc khánh", Dates: []string{"09-02"}},
	}
}

func dateRange(first, last day) []string {
	var out []string
	for d := first; d <= last; d++ {
		out = append(out, d.String())
	}
	return out
}

// ValidateCalendar checks c's name and dates.
func ValidateCalendar(c loa.Calendar) error {
	if err := loa.ValidateName("name", c.Name, true); err != nil {
		return err
	}
	var set dateSet
	return set.addCalendar(c)
}

// ValidateCalendars checks every calendar, and that each is filed under
// its name.
func ValidateCalendars(cs loa.Calendars) error {
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := cs[n]
		if c.Name != n {
			return loa.Errorf(loa.EINVALID, "calendars: %q is filed under %q", c.Name, n)
		}
		if err := ValidateCalendar(c); err != nil {
			return err
		}
	}
	return nil
}

// dateSet holds dates by day and, for yearly MM-DD dates, by month and day.
type dateSet struct {
	days   map[day]bool
	yearly map[[2]int]bool
}

func (s *dateSet) has(d day) bool {
	if s.days[d] {
		return true
	}
	if s.yearly == nil {
		return false
	}
	_, m, dd := d.date()
	return s.yearly[[2]int{int(m), dd}]
}

func (s *dateSet) addDay(d day) {
	if s.days == nil {
		s.days = make(map[day]bool)
	}
	s.days[d] = true
}

func (s *dateSet) addCalendar(c loa.Calendar) error {
	for i, v := range c.Dates {
		field := fmt.Sprintf("dates[%d]", i)
		if len(v) == 5 && v[2] == '-' {
			m, ok1 := digits(v[0:2])
			d, ok2 := digits(v[3:5])
			if !ok1 || !ok2 || m < 1 || m > 12 || d < 1 || d > daysIn(2028, time.Month(m)) {
				return loa.Errorf(loa.EINVALID, "%s: %q is not a date YYYY-MM-DD or MM-DD", field, v)
			}
			if s.yearly == nil {
				s.yearly = make(map[[2]int]bool)
			}
			s.yearly[[2]int{m, d}] = true
			continue
		}
		d, err := parseDate(field, v)
		if err != nil {
			return err
		}
		s.addDay(d)
	}
	return nil
}

// exceptionPlan is validated loa.Exceptions with calendars resolved.
type exceptionPlan struct {
	skip    dateSet
	replace map[day]replacementPlan
	unknown []string // calendars named but not found
}

type replacementPlan struct {
	content  loa.Content
	start    clock
	hasStart bool
}

// ValidateExceptions checks dates, replacements and calendar names (not
// that the calendars exist: see CheckCalendars).
//
// A replacement beats a calendar's skip, so "nothing on Tết except a
// greeting on the first day" is one calendar and one replacement; it may
// not name a date also in Skip, and must name other content, another
// time, or both.
func ValidateExceptions(e loa.Exceptions) error {
	_, err := compileExceptions(e, "", nil)
	return err
}

// CheckCalendars reports a calendar e names that cals lacks.
func CheckCalendars(e loa.Exceptions, cals loa.Calendars) error {
	for _, n := range e.Calendars {
		if _, ok := cals[n]; !ok {
			return loa.Errorf(loa.EINVALID, "exceptions.calendars: no calendar %q", n)
		}
	}
	return nil
}

// compileExceptions resolves e against cals. A calendar cals lacks skips
// nothing and is listed in unknown: playing on a holiday is a smaller
// failure than silence on a working day.
func compileExceptions(e loa.Exceptions, prefix string, cals loa.Calendars) (*exceptionPlan, error) {
	p := &exceptionPlan{}
	for _, s := range e.Skip {
		d, err := parseDate(prefix+"skip", s)
		if err != nil {
			return nil, err
		}
		p.skip.addDay(d)
	}
	for _, n := range e.Calendars {
		if strings.TrimSpace(n) == "" {
			return nil, loa.Errorf(loa.EINVALID, "%scalendars: empty calendar name", prefix)
		}
		c, ok := cals[n]
		if !ok {
			p.unknown = append(p.unknown, n)
			continue
		}
		if err := p.skip.addCalendar(c); err != nil {
			return nil, loa.Errorf(loa.EINVALID, "%scalendars: %q: %s", prefix, n, loa.ErrorMessage(err))
		}
	}
	if len(e.Replace) > 0 {
		p.replace = make(map[day]replacementPlan, len(e.Replace))
	}
	keys := make([]string, 0, len(e.Replace))
	for k := range e.Replace {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error is the same every time
	for _, k := range keys {
		r := e.Replace[k]
		field := prefix + "replace." + k
		d, err := parseDate(prefix+"replace", k)
		if err != nil {
			return nil, err
		}
		if contains(e.Skip, k) {
			return nil, loa.Errorf(loa.EINVALID, "%s: the date is also in skip", field)
		}
		rp := replacementPlan{content: r.Content}
		if !emptyContent(r.Content) {
			if err := validateContent(r.Content, field+"."); err != nil {
				return nil, err
			}
		}
		if r.Time != "" {
			if rp.start, err = parseClock(field+".time", r.Time); err != nil {
				return nil, err
			}
			rp.hasStart = true
		}
		if emptyContent(r.Content) && !rp.hasStart {
			return nil, loa.Errorf(loa.EINVALID, "%s: name other content, another time, or both", field)
		}
		p.replace[d] = rp
	}
	return p, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
