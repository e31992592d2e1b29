package station_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
)

// TestScheduleConflicts: a proposed schedule overlaps another enabled
// one when their occurrences meet in time (the rule's end time, else the
// content's length, at least a minute) on shared receivers or areas.
func TestScheduleConflicts(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "", newFleet(), "d1")
	for _, a := range []*loa.Area{{ID: "c1", ParentID: "xa", Name: "Xã 1", Kind: loa.AreaCommune}, {ID: "c2", ParentID: "xa", Name: "Xã 2", Kind: loa.AreaCommune},
		{ID: "c1-a", ParentID: "c1", Name: "Cụm a", Kind: loa.AreaCluster}} {
		if err := w.db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.db.CreateDevice(ctx, &loa.Device{ID: "d2", AreaID: "c2"}); err != nil {
		t.Fatal(err)
	}
	schedules := station.NewSchedules(w.db, discard)
	if err := schedules.PutCalendar(ctx, loa.Calendar{Name: "nghi", Dates: []string{"2027-01-06"}}); err != nil {
		t.Fatal(err)
	}
	content := loa.Content{MediaID: w.media.ID} // one second: a minute long for overlaps
	daily := func(id, at string, areas ...string) *loa.Schedule {
		return &loa.Schedule{ID: id, Name: "Lịch " + id, Rule: loa.Rule{Kind: loa.RuleDaily, Date: "2027-01-01", Time: at, Zone: "UTC"},
			Content: content, Targets: loa.Targets{Areas: areas}, Priority: 64, Enabled: true}
	}
	for _, sc := range []*loa.Schedule{daily("sang", "06:00", "c1"), daily("tat", "06:00", "c1")} {
		if err := schedules.CreateSchedule(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	off, _ := schedules.Schedule(ctx, "tat")
	off.Enabled = false
	if err := schedules.UpdateSchedule(ctx, off); err != nil {
		t.Fatal(err)
	}
	weekdays := func(at, end string, areas ...string) *loa.Schedule {
		return &loa.Schedule{Name: "Mới", Rule: loa.Rule{Kind: loa.RuleWeekly, Date: "2027-01-01", Time: at, End: end, Zone: "UTC",
			Weekdays: []string{"mon", "tue", "wed", "thu", "fri"}}, Content: content, Targets: loa.Targets{Areas: areas}, Priority: 64}
	}
	from := time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC) // a Monday
	to := from.AddDate(0, 0, 7)
	for _, tc := range []struct {
		name string
		s    *loa.Schedule
		want []string // the proposed occurrences' days that conflict with sang
	}{
		{"same time, same commune", weekdays("06:00", "", "c1"), []string{"01-04", "01-05", "01-06", "01-07", "01-08"}},
		{"a cluster within it", weekdays("06:00", "", "c1-a"), []string{"01-04", "01-05", "01-06", "01-07", "01-08"}},
		{"the whole province", weekdays("06:00", "", "xa"), []string{"01-04", "01-05", "01-06", "01-07", "01-08"}},
		{"within its minute", weekdays("06:00:30", "", "c1"), []string{"01-04", "01-05", "01-06", "01-07", "01-08"}},
		{"until its end time", weekdays("05:30", "06:10", "c1"), []string{"01-04", "01-05", "01-06", "01-07", "01-08"}},
		{"after it", weekdays("06:01", "", "c1"), nil},
		{"another commune", weekdays("06:00", "", "c2"), nil},
		{"its own edit", func() *loa.Schedule { s := weekdays("06:00", "", "c1"); s.ID = "sang"; return s }(), nil},
		{"a holiday skipped", func() *loa.Schedule {
			s := weekdays("06:00", "", "c1")
			s.Exceptions.Calendars = []string{"nghi"}
			return s
		}(), []string{"01-04", "01-05", "01-07", "01-08"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := schedules.Conflicts(ctx, tc.s, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var days []string
			for _, c := range got {
				if c.ScheduleID != "sang" || c.Name != "Lịch sang" || !c.OtherAt.Equal(time.Date(c.At.Year(), c.At.Month(), c.At.Day(), 6, 0, 0, 0, time.UTC)) {
					t.Errorf("conflict %+v: want with sang at 06:00 the same day", c)
				}
				days = append(days, c.At.Format("01-02"))
			}
			if !slices.Equal(days, tc.want) {
				t.Errorf("conflicts on %v, want %v", days, tc.want)
			}
		})
	}

	bad := weekdays("25:00", "", "c1")
	if _, err := schedules.Conflicts(ctx, bad, from, to); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("an invalid proposal: %v, want EINVALID", err)
	}
}
