package scheduler

import (
	"cmp"
	"slices"
	"time"

	"github.com/loa-broadcast/loa"
)

// Agenda lists what the enabled schedules play in [from, to), for a day
// or week calendar view: sorted by time, then priority (highest first),
// then schedule id. Invalid schedules are left out; Validate them when
// they are saved.
func Agenda(schedules []*loa.Schedule, cals loa.Calendars, from, to time.Time) []loa.Occurrence {
	if to.IsZero() || !to.After(from) {
		return nil
	}
	var out []loa.Occurrence
	for _, s := range schedules {
		if !s.Enabled {
			continue
		}
		p, err := compile(s, cals)
		if err != nil {
			continue
		}
		out = append(out, p.between(from, to, 0)...)
	}
	sortOccurrences(out)
	return out
}

func sortOccurrences(occs []loa.Occurrence) {
	slices.SortFunc(occs, func(a, b loa.Occurrence) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		return cmp.Compare(a.ScheduleID, b.ScheduleID)
	})
}
