package scheduler

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func morning(id string) *loa.Schedule {
	return &loa.Schedule{
		ID:       id,
		Name:     "Chương trình buổi sáng",
		Rule:     loa.Rule{Kind: loa.RuleDaily, Time: "06:00", End: "06:30"},
		Content:  loa.Content{PlaylistID: "sang"},
		Targets:  loa.Targets{Areas: []string{"xa-an-binh"}},
		Priority: 64,
		Enabled:  true,
	}
}

func TestScheduleNextExceptions(t *testing.T) {
	cals := Examples()
	cases := []struct {
		name     string
		exc      loa.Exceptions
		after    time.Time
		want     time.Time
		content  loa.Content
		replaced bool
		end      time.Time
	}{
		{
			name: "no exceptions", after: lt(hcm, "2027-02-04 07:00"),
			want: lt(hcm, "2027-02-05 06:00"), content: loa.Content{PlaylistID: "sang"}, end: lt(hcm, "2027-02-05 06:30"),
		},
		{
			name: "skip a date", exc: loa.Exceptions{Skip: []string{"2027-02-05"}}, after: lt(hcm, "2027-02-04 07:00"),
			want: lt(hcm, "2027-02-06 06:00"), content: loa.Content{PlaylistID: "sang"}, end: lt(hcm, "2027-02-06 06:30"),
		},
		{
			name: "Tết 2027 calendar", exc: loa.Exceptions{Calendars: []string{"Tết 2027"}}, after: lt(hcm, "2027-02-04 07:00"),
			want: lt(hcm, "2027-02-12 06:00"), content: loa.Content{PlaylistID: "sang"}, end: lt(hcm, "2027-02-12 06:30"),
		},
		{
			name: "yearly calendar date", exc: loa.Exceptions{Calendars: []string{"Quốc khánh"}}, after: lt(hcm, "2028-09-01 07:00"),
			want: lt(hcm, "2028-09-03 06:00"), content: loa.Content{PlaylistID: "sang"}, end: lt(hcm, "2028-09-03 06:30"),
		},
		{
			name: "unknown calendar skips nothing", exc: loa.Exceptions{Calendars: []string{"Tết 2099"}}, after: lt(hcm, "2027-02-04 07:00"),
			want: lt(hcm, "2027-02-05 06:00"), content: loa.Content{PlaylistID: "sang"}, end: lt(hcm, "2027-02-05 06:30"),
		},
		{
			name: "replacement content", after: lt(hcm, "2028-09-01 07:00"),
			exc:  loa.Exceptions{Replace: map[string]loa.Replacement{"2028-09-02": {Content: loa.Content{MediaID: "quoc-khanh"}}}},
			want: lt(hcm, "2028-09-02 06:00"), content: loa.Content{MediaID: "quoc-khanh"}, replaced: true, end: lt(hcm, "2028-09-02 06:30"),
		},
		{
			// After the rule's 06:00 that day, the moved 20:00 is still to come.
			name: "replacement later the same day", after: lt(hcm, "2028-09-02 07:00"),
			exc:  loa.Exceptions{Replace: map[string]loa.Replacement{"2028-09-02": {Content: loa.Content{MediaID: "quoc-khanh"}, Time: "20:00"}}},
			want: lt(hcm, "2028-09-02 20:00"), content: loa.Content{MediaID: "quoc-khanh"}, replaced: true, end: lt(hcm, "2028-09-02 20:30"),
		},
		{
			name: "replacement of time only", after: lt(hcm, "2028-09-01 07:00"),
			exc:  loa.Exceptions{Replace: map[string]loa.Replacement{"2028-09-02": {Time: "05:00"}}},
			want: lt(hcm, "2028-09-02 05:00"), content: loa.Content{PlaylistID: "sang"}, replaced: true, end: lt(hcm, "2028-09-02 05:30"),
		},
		{
			name: "replacement earlier than after is past", after: lt(hcm, "2028-09-02 05:30"),
			exc:  loa.Exceptions{Replace: map[string]loa.Replacement{"2028-09-02": {Time: "05:00"}}},
			want: lt(hcm, "2028-09-03 06:00"), content: loa.Content{PlaylistID: "sang"}, end: lt(hcm, "2028-09-03 06:30"),
		},
		{
			name: "replacement beats a calendar", after: lt(hcm, "2027-02-04 07:00"),
			exc: loa.Exceptions{Calendars: []string{"Tết 2027"},
				Replace: map[string]loa.Replacement{"2027-02-06": {Content: loa.Content{MediaID: "chuc-tet"}, Time: "08:00"}}},
			want: lt(hcm, "2027-02-06 08:00"), content: loa.Content{MediaID: "chuc-tet"}, replaced: true, end: lt(hcm, "2027-02-06 08:30"),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := morning("sang")
			s.Exceptions = c.exc
			if err := Validate(s); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got, ok := Next(s, c.after, cals)
			want := loa.Occurrence{
				ScheduleID: "sang", At: c.want, End: c.end, Content: c.content, Replaced: c.replaced,
				Priority: 64, Targets: s.Targets, Overrun: loa.OverrunInterrupt,
			}
			if !ok || !got.At.Equal(want.At) || !got.End.Equal(want.End) {
				t.Fatalf("Next = %v–%v %v, want %v–%v", got.At, got.End, ok, want.At, want.End)
			}
			got.At, got.End = want.At, want.End // compared above, by instant
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Next = %+v\nwant   %+v", got, want)
			}
		})
	}
}

func TestScheduleOccurrences(t *testing.T) {
	s := morning("sang")
	s.Exceptions = loa.Exceptions{Calendars: []string{"Tết 2027"}}
	got := Occurrences(s, lt(hcm, "2027-02-03 00:00"), time.Time{}, 4, Examples())
	var days []string
	for _, o := range got {
		days = append(days, o.At.In(hcm).Format("01-02 15:04"))
	}
	want := []string{"02-03 06:00", "02-04 06:00", "02-12 06:00", "02-13 06:00"}
	if !reflect.DeepEqual(days, want) {
		t.Errorf("next 4 around Tết: %v, want %v", days, want)
	}
}

func TestScheduleValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*loa.Schedule)
		field  string
	}{
		{"id", func(s *loa.Schedule) { s.ID = "" }, "id"},
		{"id chars", func(s *loa.Schedule) { s.ID = "Sáng" }, "id"},
		{"name", func(s *loa.Schedule) { s.Name = " " }, "name"},
		{"rule", func(s *loa.Schedule) { s.Rule.Date, s.Rule.Kind = "2027-02-30", loa.RuleOnce }, "rule.date"},
		{"rule weekdays", func(s *loa.Schedule) { s.Rule.Kind = loa.RuleWeekly }, "rule.weekdays"},
		{"rule zone", func(s *loa.Schedule) { s.Rule.Zone = "Mars/Olympus" }, "rule.zone"},
		{"no content", func(s *loa.Schedule) { s.Content = loa.Content{} }, "content.media_id"},
		{"both contents", func(s *loa.Schedule) { s.Content.MediaID = "m" }, "content.media_id"},
		{"bad playlist id", func(s *loa.Schedule) { s.Content.PlaylistID = "a/b" }, "content.playlist_id"},
		{"no targets", func(s *loa.Schedule) { s.Targets = loa.Targets{} }, "targets"},
		{"bad area", func(s *loa.Schedule) { s.Targets.Areas = []string{"+"} }, "targets.areas"},
		{"bad device", func(s *loa.Schedule) { s.Targets.Devices = []string{"dev#1"} }, "targets.devices"},
		{"overrun", func(s *loa.Schedule) { s.Overrun = "queue" }, "overrun"},
		{"wait without max", func(s *loa.Schedule) { s.Overrun = loa.OverrunWait }, "max_wait"},
		{"wait too long", func(s *loa.Schedule) { s.Overrun, s.MaxWait = loa.OverrunWait, 25*time.Hour }, "max_wait"},
		{"max wait on interrupt", func(s *loa.Schedule) { s.MaxWait = time.Minute }, "max_wait"},
		{"skip date", func(s *loa.Schedule) { s.Exceptions.Skip = []string{"2027-02-29"} }, "exceptions.skip"},
		{"calendar name", func(s *loa.Schedule) { s.Exceptions.Calendars = []string{""} }, "exceptions.calendars"},
		{"replace date", func(s *loa.Schedule) {
			s.Exceptions.Replace = map[string]loa.Replacement{"2027-9-2": {Time: "07:00"}}
		}, "exceptions.replace"},
		{"replace with nothing", func(s *loa.Schedule) {
			s.Exceptions.Replace = map[string]loa.Replacement{"2027-09-02": {}}
		}, "exceptions.replace.2027-09-02"},
		{"replace time", func(s *loa.Schedule) {
			s.Exceptions.Replace = map[string]loa.Replacement{"2027-09-02": {Time: "25:00"}}
		}, "exceptions.replace.2027-09-02.time"},
		{"replace content", func(s *loa.Schedule) {
			s.Exceptions.Replace = map[string]loa.Replacement{"2027-09-02": {Content: loa.Content{MediaID: "a", PlaylistID: "b"}}}
		}, "exceptions.replace.2027-09-02.media_id"},
		{"replace and skip", func(s *loa.Schedule) {
			s.Exceptions.Skip = []string{"2027-09-02"}
			s.Exceptions.Replace = map[string]loa.Replacement{"2027-09-02": {Time: "07:00"}}
		}, "exceptions.replace.2027-09-02"},
		{"replace a day the rule skips", func(s *loa.Schedule) {
			s.Rule.Kind, s.Rule.Weekdays = loa.RuleWeekly, []string{"mon"}
			s.Exceptions.Replace = map[string]loa.Replacement{"2027-09-02": {Time: "07:00"}} // a Thursday
		}, "exceptions.replace.2027-09-02"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := morning("sang")
			c.change(s)
			err := Validate(s)
			if loa.ErrorCode(err) != loa.EINVALID || !strings.HasPrefix(loa.ErrorMessage(err), c.field+":") {
				t.Fatalf("Validate = %v, want %s naming %q", err, loa.EINVALID, c.field)
			}
			if _, ok := Next(s, lt(hcm, "2027-01-01 00:00"), nil); ok {
				t.Error("an invalid schedule has an occurrence")
			}
		})
	}
	s := morning("sang")
	s.Overrun, s.MaxWait = loa.OverrunWait, 10*time.Minute
	if err := Validate(s); err != nil {
		t.Errorf("valid schedule: %v", err)
	}
}

func TestCalendars(t *testing.T) {
	if err := ValidateCalendars(Examples()); err != nil {
		t.Fatalf("examples: %v", err)
	}
	tet := Examples()["Tết 2027"].Dates
	if len(tet) != 7 || tet[0] != "2027-02-05" || tet[6] != "2027-02-11" {
		t.Errorf("Tết 2027 = %v, want 2027-02-05..2027-02-11", tet)
	}
	for _, c := range []struct {
		cals  loa.Calendars
		field string
	}{
		{loa.Calendars{"a": {Name: "b", Dates: nil}}, "calendars"},
		{loa.Calendars{"": {Name: "", Dates: nil}}, "name"},
		{loa.Calendars{"x": {Name: "x", Dates: []string{"2027-02-30"}}}, "dates[0]"},
		{loa.Calendars{"x": {Name: "x", Dates: []string{"02-30"}}}, "dates[0]"},
		{loa.Calendars{"x": {Name: "x", Dates: []string{"13-01"}}}, "dates[0]"},
	} {
		err := ValidateCalendars(c.cals)
		if loa.ErrorCode(err) != loa.EINVALID || !strings.HasPrefix(loa.ErrorMessage(err), c.field+":") {
			t.Errorf("%v: ValidateCalendars = %v, want %s naming %q", c.cals, err, loa.EINVALID, c.field)
		}
	}
	if err := ValidateCalendars(loa.Calendars{"x": {Name: "x", Dates: []string{"02-29"}}}); err != nil {
		t.Errorf("29 February every year (leap years only): %v", err)
	}
	e := loa.Exceptions{Calendars: []string{"Tết 2027", "Tết 2099"}}
	if err := CheckCalendars(e, Examples()); loa.ErrorCode(err) != loa.EINVALID || !strings.Contains(err.Error(), "Tết 2099") {
		t.Errorf("CheckCalendars = %v, want the unknown calendar named", err)
	}
}

func TestScheduleJSON(t *testing.T) {
	s := morning("sang")
	s.Rule = loa.Rule{Kind: loa.RuleWeekly, Weekdays: []string{"mon", "fri"}, Time: "17:00", Date: "2027-01-01", Until: "2027-01-14"}
	s.Exceptions = loa.Exceptions{
		Skip:      []string{"2027-01-04"},
		Calendars: []string{"Tết 2027"},
		Replace:   map[string]loa.Replacement{"2027-01-08": {Content: loa.Content{MediaID: "m"}, Time: "18:00"}},
	}
	s.Overrun, s.MaxWait = loa.OverrunWait, 5*time.Minute
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"replace":{"2027-01-08":{"media_id":"m","time":"18:00"}}`) {
		t.Errorf("replacement is not flat: %s", b)
	}
	var back loa.Schedule
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, s) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, *s)
	}
}

func TestAgenda(t *testing.T) {
	news := &loa.Schedule{
		ID: "thoi-su", Name: "Thời sự", Rule: loa.Rule{Kind: loa.RuleWeekly, Weekdays: []string{"mon", "tue", "wed", "thu", "fri"}, Time: "06:00"},
		Content: loa.Content{MediaID: "ban-tin"}, Targets: loa.Targets{Devices: []string{"d1"}}, Priority: 130, Enabled: true,
	}
	evening := morning("chieu")
	evening.Rule.Time, evening.Rule.End = "17:00", ""
	alsoSix := morning("am-nhac") // same time as sang and thoi-su, same priority as sang
	disabled := morning("tat")
	disabled.Enabled = false
	invalid := morning("hong")
	invalid.Targets = loa.Targets{}
	schedules := []*loa.Schedule{evening, morning("sang"), disabled, invalid, alsoSix, news}

	// Friday 26 and Saturday 27 March 2027.
	got := Agenda(schedules, nil, lt(hcm, "2027-03-26 00:00"), lt(hcm, "2027-03-28 00:00"))
	var keys []string
	for _, o := range got {
		keys = append(keys, o.At.In(hcm).Format("02 15:04 ")+o.ScheduleID)
	}
	want := []string{
		"26 06:00 thoi-su", // priority 130 first
		"26 06:00 am-nhac", // then 64, by id
		"26 06:00 sang",
		"26 17:00 chieu",
		"27 06:00 am-nhac", // Saturday: no news
		"27 06:00 sang",
		"27 17:00 chieu",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("Agenda:\n got %q\nwant %q", keys, want)
	}
	if got := Agenda(schedules, nil, lt(hcm, "2027-03-26 00:00"), time.Time{}); got != nil {
		t.Errorf("Agenda without an end = %d occurrences, want none", len(got))
	}
	// [from, to): an occurrence exactly at to is the next view's.
	if got := Agenda(schedules, nil, lt(hcm, "2027-03-26 06:00"), lt(hcm, "2027-03-26 17:00")); len(got) != 3 {
		t.Errorf("Agenda [06:00, 17:00) = %d occurrences, want 3", len(got))
	}
}
