package api

import (
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// FuzzReportPeriod: any query either is refused as invalid or names a
// non-empty period of whole days of at most loa.MaxReportDays.
func FuzzReportPeriod(f *testing.F) {
	for _, s := range [][3]string{{"", "", ""}, {"", "", "2026-11"}, {"2026-11-01", "2026-11-30", ""}, {"2026-11-30", "2026-11-01", ""},
		{"2026-02-29", "2026-03-01", ""}, {"", "", "2026-13"}, {"2025-01-01", "2026-01-01", ""}, {"x", "", "2026-11"}} {
		f.Add(s[0], s[1], s[2])
	}
	now := time.Date(2026, 12, 3, 21, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, from, to, month string) {
		start, end, err := reportPeriod(from, to, month, now)
		if err != nil {
			if loa.ErrorCode(err) != loa.EINVALID {
				t.Fatalf("%q %q %q: %v is not invalid", from, to, month, err)
			}
			return
		}
		if !end.After(start) || end.Sub(start) > loa.MaxReportDays*24*time.Hour {
			t.Fatalf("%q %q %q: period [%v, %v)", from, to, month, start, end)
		}
		for _, b := range []time.Time{start, end} {
			if l := b.In(stationZone); l.Hour() != 0 || l.Minute() != 0 || l.Second() != 0 || l.Nanosecond() != 0 {
				t.Fatalf("%q %q %q: bound %v is not a day's start", from, to, month, b)
			}
		}
	})
}
