package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

var (
	hcm    = mustZone("Asia/Ho_Chi_Minh")
	berlin = mustZone("Europe/Berlin")
)

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// lt parses "2006-01-02 15:04" or "2006-01-02 15:04:05" in loc.
func lt(loc *time.Location, s string) time.Time {
	layout := "2006-01-02 15:04"
	if len(s) > len(layout) {
		layout += ":05"
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestRuleNext(t *testing.T) {
	var none time.Time
	weekdays := []string{"mon", "tue", "wed", "thu", "fri"}
	cases := []struct {
		name  string
		rule  loa.Rule
		after time.Time
		want  time.Time // zero: no occurrence
	}{
		{"once before", loa.Rule{Kind: loa.RuleOnce, Date: "2027-03-10", Time: "06:00"}, lt(hcm, "2027-03-01 00:00"), lt(hcm, "2027-03-10 06:00")},
		{"once a second before", loa.Rule{Kind: loa.RuleOnce, Date: "2027-03-10", Time: "06:00"}, lt(hcm, "2027-03-10 05:59:59"), lt(hcm, "2027-03-10 06:00")},
		{"once at its time is past", loa.Rule{Kind: loa.RuleOnce, Date: "2027-03-10", Time: "06:00"}, lt(hcm, "2027-03-10 06:00"), none},
		{"once on a leap day", loa.Rule{Kind: loa.RuleOnce, Date: "2028-02-29", Time: "06:00"}, lt(hcm, "2028-01-01 00:00"), lt(hcm, "2028-02-29 06:00")},
		{"daily strictly after", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}, lt(hcm, "2027-03-10 06:00"), lt(hcm, "2027-03-11 06:00")},
		{"daily same day", loa.Rule{Kind: loa.RuleDaily, Time: "17:00"}, lt(hcm, "2027-03-10 06:00"), lt(hcm, "2027-03-10 17:00")},
		{"daily with seconds", loa.Rule{Kind: loa.RuleDaily, Time: "17:00:30"}, lt(hcm, "2027-03-10 17:00:29"), lt(hcm, "2027-03-10 17:00:30")},
		{"daily waits for its range", loa.Rule{Kind: loa.RuleDaily, Date: "2027-04-01", Time: "06:00"}, lt(hcm, "2027-03-10 07:00"), lt(hcm, "2027-04-01 06:00")},
		{"daily until is inclusive", loa.Rule{Kind: loa.RuleDaily, Until: "2027-03-12", Time: "06:00"}, lt(hcm, "2027-03-12 05:00"), lt(hcm, "2027-03-12 06:00")},
		{"daily past until", loa.Rule{Kind: loa.RuleDaily, Until: "2027-03-12", Time: "06:00"}, lt(hcm, "2027-03-12 06:00"), none},
		{"daily across a year", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}, lt(hcm, "2027-12-31 07:00"), lt(hcm, "2028-01-01 06:00")},
		{"Feb 28 to 29 in a leap year", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}, lt(hcm, "2028-02-28 07:00"), lt(hcm, "2028-02-29 06:00")},
		{"weekdays: Friday to Monday", loa.Rule{Kind: loa.RuleWeekly, Weekdays: weekdays, Time: "07:00"}, lt(hcm, "2027-03-26 08:00"), lt(hcm, "2027-03-29 07:00")},
		{"weekdays: same day", loa.Rule{Kind: loa.RuleWeekly, Weekdays: weekdays, Time: "07:00"}, lt(hcm, "2027-03-29 06:00"), lt(hcm, "2027-03-29 07:00")},
		{"weekend", loa.Rule{Kind: loa.RuleWeekly, Weekdays: []string{"sat", "SUN"}, Time: "07:00"}, lt(hcm, "2027-03-28 08:00"), lt(hcm, "2027-04-03 07:00")},
		{"weekly until", loa.Rule{Kind: loa.RuleWeekly, Weekdays: []string{"mon"}, Until: "2027-03-28", Time: "07:00"}, lt(hcm, "2027-03-23 00:00"), none},
		{"every 3 days", loa.Rule{Kind: loa.RuleEveryNDays, Interval: 3, Date: "2027-03-01", Time: "06:00"}, lt(hcm, "2027-03-02 00:00"), lt(hcm, "2027-03-04 06:00")},
		{"every 3 days, next", loa.Rule{Kind: loa.RuleEveryNDays, Interval: 3, Date: "2027-03-01", Time: "06:00"}, lt(hcm, "2027-03-04 06:00"), lt(hcm, "2027-03-07 06:00")},
		{"every 3 days from its anchor", loa.Rule{Kind: loa.RuleEveryNDays, Interval: 3, Date: "2027-03-01", Time: "06:00"}, lt(hcm, "2027-01-01 00:00"), lt(hcm, "2027-03-01 06:00")},
		{"every 3 days across February", loa.Rule{Kind: loa.RuleEveryNDays, Interval: 3, Date: "2027-02-26", Time: "06:00"}, lt(hcm, "2027-02-26 06:00"), lt(hcm, "2027-03-01 06:00")},
		{"every 3 days until", loa.Rule{Kind: loa.RuleEveryNDays, Interval: 3, Date: "2027-03-01", Until: "2027-03-06", Time: "06:00"}, lt(hcm, "2027-03-04 06:00"), none},
		// Weeks from Mon 1 March 2027 (Date is Wed 3 March): 1–7, 15–21, …
		{"every 2 weeks: not before date", loa.Rule{Kind: loa.RuleEveryNWeeks, Interval: 2, Date: "2027-03-03", Weekdays: []string{"tue", "thu"}, Time: "06:00"}, lt(hcm, "2027-02-01 00:00"), lt(hcm, "2027-03-04 06:00")},
		{"every 2 weeks: skip a week", loa.Rule{Kind: loa.RuleEveryNWeeks, Interval: 2, Date: "2027-03-03", Weekdays: []string{"tue", "thu"}, Time: "06:00"}, lt(hcm, "2027-03-04 06:00"), lt(hcm, "2027-03-16 06:00")},
		{"every 2 weeks: within the week", loa.Rule{Kind: loa.RuleEveryNWeeks, Interval: 2, Date: "2027-03-03", Weekdays: []string{"tue", "thu"}, Time: "06:00"}, lt(hcm, "2027-03-16 06:00"), lt(hcm, "2027-03-18 06:00")},
		{"every 3 weeks on Sunday", loa.Rule{Kind: loa.RuleEveryNWeeks, Interval: 3, Date: "2027-03-01", Weekdays: []string{"sun"}, Time: "06:00"}, lt(hcm, "2027-03-07 06:00"), lt(hcm, "2027-03-28 06:00")},
		{"monthly 31st skips February", loa.Rule{Kind: loa.RuleMonthly, MonthDay: 31, Time: "06:00"}, lt(hcm, "2027-01-31 06:00"), lt(hcm, "2027-03-31 06:00")},
		{"monthly 31st skips April", loa.Rule{Kind: loa.RuleMonthly, MonthDay: 31, Time: "06:00"}, lt(hcm, "2027-03-31 06:00"), lt(hcm, "2027-05-31 06:00")},
		{"monthly 29th in 2027 skips February", loa.Rule{Kind: loa.RuleMonthly, MonthDay: 29, Time: "06:00"}, lt(hcm, "2027-01-29 06:00"), lt(hcm, "2027-03-29 06:00")},
		{"monthly 29th in 2028 has February", loa.Rule{Kind: loa.RuleMonthly, MonthDay: 29, Time: "06:00"}, lt(hcm, "2028-01-29 06:00"), lt(hcm, "2028-02-29 06:00")},
		{"last day: Feb 2027", loa.Rule{Kind: loa.RuleMonthly, MonthDay: -1, Time: "06:00"}, lt(hcm, "2027-01-31 06:00"), lt(hcm, "2027-02-28 06:00")},
		{"last day: Feb 2028", loa.Rule{Kind: loa.RuleMonthly, MonthDay: -1, Time: "06:00"}, lt(hcm, "2028-01-31 06:00"), lt(hcm, "2028-02-29 06:00")},
		{"last day: April", loa.Rule{Kind: loa.RuleMonthly, MonthDay: -1, Time: "06:00"}, lt(hcm, "2027-03-31 06:00"), lt(hcm, "2027-04-30 06:00")},
		{"second-last day", loa.Rule{Kind: loa.RuleMonthly, MonthDay: -2, Time: "06:00"}, lt(hcm, "2027-02-01 00:00"), lt(hcm, "2027-02-27 06:00")},
		{"monthly 1st across a year", loa.Rule{Kind: loa.RuleMonthly, MonthDay: 1, Time: "06:00"}, lt(hcm, "2027-12-01 06:00"), lt(hcm, "2028-01-01 06:00")},
		{"monthly from date", loa.Rule{Kind: loa.RuleMonthly, MonthDay: 15, Date: "2027-06-16", Time: "06:00"}, lt(hcm, "2027-01-01 00:00"), lt(hcm, "2027-07-15 06:00")},
		{"monthly until", loa.Rule{Kind: loa.RuleMonthly, MonthDay: 31, Until: "2027-05-30", Time: "06:00"}, lt(hcm, "2027-03-31 06:00"), none},

		// Asia/Ho_Chi_Minh is UTC+7 all year: 06:00 there is 23:00 UTC the day before.
		{"Ho Chi Minh from UTC", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}, utc("2027-03-09T23:30:00Z"), utc("2027-03-10T23:00:00Z")},
		{"Ho Chi Minh just before", loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}, utc("2027-03-09T22:59:59Z"), utc("2027-03-09T23:00:00Z")},
		{"Ho Chi Minh by default", loa.Rule{Kind: loa.RuleOnce, Date: "2027-01-01", Time: "00:00"}, utc("2026-12-31T00:00:00Z"), utc("2026-12-31T17:00:00Z")},
		{"UTC zone", loa.Rule{Kind: loa.RuleOnce, Date: "2027-01-01", Time: "00:00", Zone: "UTC"}, utc("2026-12-31T00:00:00Z"), utc("2027-01-01T00:00:00Z")},

		// Berlin springs forward on 28 March 2027, 02:00 CET → 03:00 CEST.
		{"Berlin before spring", loa.Rule{Kind: loa.RuleDaily, Time: "06:00", Zone: "Europe/Berlin"}, utc("2027-03-27T06:00:00Z"), utc("2027-03-28T04:00:00Z")},
		{"Berlin after spring", loa.Rule{Kind: loa.RuleDaily, Time: "06:00", Zone: "Europe/Berlin"}, utc("2027-03-26T06:00:00Z"), utc("2027-03-27T05:00:00Z")},
		{"Berlin gap moves forward", loa.Rule{Kind: loa.RuleDaily, Time: "02:30", Zone: "Europe/Berlin"}, lt(berlin, "2027-03-27 03:00"), utc("2027-03-28T01:30:00Z")}, // 03:30 CEST
		{"Berlin after the gap", loa.Rule{Kind: loa.RuleDaily, Time: "02:30", Zone: "Europe/Berlin"}, utc("2027-03-28T01:30:00Z"), utc("2027-03-29T00:30:00Z")},
		// Berlin falls back on 31 October 2027, 03:00 CEST → 02:00 CET:
		// 02:30 happens twice and fires once, at the first.
		{"Berlin fall-back first instance", loa.Rule{Kind: loa.RuleDaily, Time: "02:30", Zone: "Europe/Berlin"}, lt(berlin, "2027-10-30 03:00"), utc("2027-10-31T00:30:00Z")},
		{"Berlin fall-back not twice", loa.Rule{Kind: loa.RuleDaily, Time: "02:30", Zone: "Europe/Berlin"}, utc("2027-10-31T00:30:00Z"), utc("2027-11-01T01:30:00Z")},
		{"Berlin fall-back 02:00", loa.Rule{Kind: loa.RuleDaily, Time: "02:00", Zone: "Europe/Berlin"}, lt(berlin, "2027-10-30 03:00"), utc("2027-10-31T00:00:00Z")},
		{"Berlin fall-back 03:00 once", loa.Rule{Kind: loa.RuleDaily, Time: "03:00", Zone: "Europe/Berlin"}, lt(berlin, "2027-10-30 03:00"), utc("2027-10-31T02:00:00Z")},
		{"Berlin after fall-back", loa.Rule{Kind: loa.RuleDaily, Time: "06:00", Zone: "Europe/Berlin"}, utc("2027-10-31T04:00:00Z"), utc("2027-10-31T05:00:00Z")},
		{"Berlin weekly across fall-back", loa.Rule{Kind: loa.RuleWeekly, Weekdays: []string{"sun"}, Time: "02:30", Zone: "Europe/Berlin"}, utc("2027-10-24T00:30:00Z"), utc("2027-10-31T00:30:00Z")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := ValidateRule(c.rule); err != nil {
				t.Fatalf("ValidateRule: %v", err)
			}
			got, ok := NextRule(c.rule, c.after)
			if c.want.IsZero() {
				if ok {
					t.Fatalf("Next(%v) = %v, want none", c.after, got)
				}
				return
			}
			if !ok || !got.Equal(c.want) {
				t.Fatalf("Next(%v) = %v %v, want %v", c.after, got, ok, c.want)
			}
		})
	}
}

func TestRuleOccurrences(t *testing.T) {
	r := loa.Rule{Kind: loa.RuleDaily, Time: "06:00", Until: "2027-03-05"}
	got := RuleOccurrences(r, lt(hcm, "2027-03-01 06:00"), lt(hcm, "2027-03-04 06:00"), 0)
	want := []time.Time{lt(hcm, "2027-03-01 06:00"), lt(hcm, "2027-03-02 06:00"), lt(hcm, "2027-03-03 06:00")}
	if !equalTimes(got, want) {
		t.Errorf("[from, to): got %v, want %v", got, want)
	}
	got = RuleOccurrences(r, lt(hcm, "2027-03-01 00:00"), time.Time{}, 2)
	if !equalTimes(got, want[:2]) {
		t.Errorf("limit 2: got %v, want %v", got, want[:2])
	}
	got = RuleOccurrences(r, lt(hcm, "2027-03-04 00:00"), time.Time{}, 10)
	if !equalTimes(got, []time.Time{lt(hcm, "2027-03-04 06:00"), lt(hcm, "2027-03-05 06:00")}) {
		t.Errorf("until: got %v", got)
	}
	if got := RuleOccurrences(r, lt(hcm, "2027-03-01 00:00"), time.Time{}, 0); got != nil {
		t.Errorf("no limit and no end: got %v, want nil", got)
	}
	if got := RuleOccurrences(loa.Rule{Kind: loa.RuleDaily}, lt(hcm, "2027-03-01 00:00"), time.Time{}, 3); got != nil {
		t.Errorf("invalid rule: got %v", got)
	}
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func TestRuleValidate(t *testing.T) {
	cases := []struct {
		name  string
		rule  loa.Rule
		field string
	}{
		{"no kind", loa.Rule{Time: "06:00"}, "kind"},
		{"unknown kind", loa.Rule{Kind: "yearly", Time: "06:00"}, "kind"},
		{"Feb 30", loa.Rule{Kind: loa.RuleOnce, Date: "2027-02-30", Time: "06:00"}, "date"},
		{"Feb 29 in 2027", loa.Rule{Kind: loa.RuleOnce, Date: "2027-02-29", Time: "06:00"}, "date"},
		{"month 13", loa.Rule{Kind: loa.RuleOnce, Date: "2027-13-01", Time: "06:00"}, "date"},
		{"date not padded", loa.Rule{Kind: loa.RuleOnce, Date: "2027-3-1", Time: "06:00"}, "date"},
		{"once without date", loa.Rule{Kind: loa.RuleOnce, Time: "06:00"}, "date"},
		{"every_n_days without date", loa.Rule{Kind: loa.RuleEveryNDays, Interval: 2, Time: "06:00"}, "date"},
		{"once with until", loa.Rule{Kind: loa.RuleOnce, Date: "2027-03-01", Until: "2027-03-02", Time: "06:00"}, "until"},
		{"until before date", loa.Rule{Kind: loa.RuleDaily, Date: "2027-03-10", Until: "2027-03-09", Time: "06:00"}, "until"},
		{"bad until", loa.Rule{Kind: loa.RuleDaily, Until: "2027-04-31", Time: "06:00"}, "until"},
		{"no time", loa.Rule{Kind: loa.RuleDaily}, "time"},
		{"time 24:00", loa.Rule{Kind: loa.RuleDaily, Time: "24:00"}, "time"},
		{"time 6:00", loa.Rule{Kind: loa.RuleDaily, Time: "6:00"}, "time"},
		{"time 06:60", loa.Rule{Kind: loa.RuleDaily, Time: "06:60"}, "time"},
		{"time 06:00:61", loa.Rule{Kind: loa.RuleDaily, Time: "06:00:61"}, "time"},
		{"time am", loa.Rule{Kind: loa.RuleDaily, Time: "6am"}, "time"},
		{"end before start", loa.Rule{Kind: loa.RuleDaily, Time: "06:00", End: "05:30"}, "end"},
		{"end at start", loa.Rule{Kind: loa.RuleDaily, Time: "06:00", End: "06:00"}, "end"},
		{"bad end", loa.Rule{Kind: loa.RuleDaily, Time: "06:00", End: "7"}, "end"},
		{"empty weekday set", loa.Rule{Kind: loa.RuleWeekly, Time: "06:00"}, "weekdays"},
		{"every_n_weeks no weekdays", loa.Rule{Kind: loa.RuleEveryNWeeks, Interval: 2, Date: "2027-03-01", Time: "06:00"}, "weekdays"},
		{"unknown weekday", loa.Rule{Kind: loa.RuleWeekly, Weekdays: []string{"mon", "funday"}, Time: "06:00"}, "weekdays"},
		{"weekdays on daily", loa.Rule{Kind: loa.RuleDaily, Weekdays: []string{"mon"}, Time: "06:00"}, "weekdays"},
		{"interval 0", loa.Rule{Kind: loa.RuleEveryNDays, Date: "2027-03-01", Time: "06:00"}, "interval"},
		{"interval negative", loa.Rule{Kind: loa.RuleEveryNWeeks, Interval: -1, Date: "2027-03-01", Weekdays: []string{"mon"}, Time: "06:00"}, "interval"},
		{"interval on daily", loa.Rule{Kind: loa.RuleDaily, Interval: 2, Time: "06:00"}, "interval"},
		{"month day 0", loa.Rule{Kind: loa.RuleMonthly, Time: "06:00"}, "month_day"},
		{"month day 32", loa.Rule{Kind: loa.RuleMonthly, MonthDay: 32, Time: "06:00"}, "month_day"},
		{"month day -32", loa.Rule{Kind: loa.RuleMonthly, MonthDay: -32, Time: "06:00"}, "month_day"},
		{"month day on weekly", loa.Rule{Kind: loa.RuleWeekly, Weekdays: []string{"mon"}, MonthDay: 3, Time: "06:00"}, "month_day"},
		{"unknown zone", loa.Rule{Kind: loa.RuleDaily, Time: "06:00", Zone: "Asia/Hanoi_City"}, "zone"},
		{"Local zone", loa.Rule{Kind: loa.RuleDaily, Time: "06:00", Zone: "Local"}, "zone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateRule(c.rule)
			if loa.ErrorCode(err) != loa.EINVALID || !strings.HasPrefix(loa.ErrorMessage(err), c.field+":") {
				t.Fatalf("ValidateRule = %v, want %s naming %q", err, loa.EINVALID, c.field)
			}
			if _, ok := NextRule(c.rule, lt(hcm, "2027-01-01 00:00")); ok {
				t.Error("an invalid rule has an occurrence")
			}
		})
	}
	for _, ok := range []loa.Rule{
		{Kind: loa.RuleMonthly, MonthDay: 31, Time: "23:59:59"},
		{Kind: loa.RuleMonthly, MonthDay: -1, Time: "00:00", End: "00:01"},
		{Kind: loa.RuleDaily, Date: "2027-03-01", Until: "2027-03-01", Time: "06:00", Zone: "Europe/Berlin"},
		{Kind: loa.RuleEveryNWeeks, Interval: 2, Date: "2027-03-01", Weekdays: []string{"Mon", "sun"}, Time: "06:00"},
	} {
		if err := ValidateRule(ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}
