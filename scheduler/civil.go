package scheduler

import (
	"time"

	"github.com/loa-broadcast/loa"
)

// day is a civil date as a count of days since 1970-01-01 (proleptic
// Gregorian). Rules step through days as integers, so a day never
// depends on a zone's offset or DST.
type day int64

const secondsPerDay = 24 * 60 * 60

func dayOf(y int, m time.Month, d int) day {
	return day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / secondsPerDay)
}

// localDay is the civil date t falls on in loc.
func localDay(t time.Time, loc *time.Location) day {
	y, m, d := t.In(loc).Date()
	return dayOf(y, m, d)
}

func (d day) date() (int, time.Month, int) {
	return time.Unix(int64(d)*secondsPerDay, 0).UTC().Date()
}

func (d day) weekday() time.Weekday {
	return time.Weekday(((int64(d)+4)%7 + 7) % 7) // 1970-01-01 was a Thursday
}

func (d day) String() string {
	return time.Unix(int64(d)*secondsPerDay, 0).UTC().Format(dateLayout)
}

const dateLayout = "2006-01-02"

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// parseDate parses YYYY-MM-DD strictly, so 2027-02-30 is an error rather
// than 2 March.
func parseDate(field, s string) (day, error) {
	y, m, d, ok := parseYMD(s)
	if !ok || m < 1 || m > 12 || d < 1 || d > daysIn(y, time.Month(m)) {
		return 0, loa.Errorf(loa.EINVALID, "%s: %q is not a date YYYY-MM-DD", field, s)
	}
	return dayOf(y, time.Month(m), d), nil
}

func parseYMD(s string) (y, m, d int, ok bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, 0, 0, false
	}
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	return y, m, d, ok1 && ok2 && ok3 && y >= 1
}

// clock is a wall-clock time of day in seconds since midnight.
type clock int

// parseClock parses HH:MM or HH:MM:SS, 00:00 to 23:59:59.
func parseClock(field, s string) (clock, error) {
	bad := loa.Errorf(loa.EINVALID, "%s: %q is not a time HH:MM or HH:MM:SS", field, s)
	if len(s) != 5 && len(s) != 8 || s[2] != ':' {
		return 0, bad
	}
	h, ok1 := digits(s[0:2])
	m, ok2 := digits(s[3:5])
	sec, ok3 := 0, true
	if len(s) == 8 {
		if s[5] != ':' {
			return 0, bad
		}
		sec, ok3 = digits(s[6:8])
	}
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 59 {
		return 0, bad
	}
	return clock(h*3600 + m*60 + sec), nil
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// at is the instant wall clock c on day d in loc.
//
// A wall time that does not exist that day (the spring-forward gap) is
// what time.Date normalises it to: moved forward by the gap, so 02:30 on
// the day Berlin skips 02:00–03:00 fires at 03:30 CEST. A wall time that
// happens twice (fall-back) fires at its first instance, in the earlier
// offset: time.Date alone would pick the second.
func at(d day, c clock, loc *time.Location) time.Time {
	y, m, dd := d.date()
	t := time.Date(y, m, dd, int(c)/3600, int(c)/60%60, int(c)%60, 0, loc)
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, off := t.Zone()
	_, prev := start.Add(-time.Nanosecond).Zone()
	if prev <= off {
		return t
	}
	// The clock went back at start by prev-off: the same wall time also
	// happened that much earlier, before start, in the earlier offset.
	if first := t.Add(-time.Duration(prev-off) * time.Second); first.Before(start) {
		return first
	}
	return t
}
