package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestAgenda(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		secret, id, time string
		areas            []string
	}{
		{e.opA, "a-sang", "06:00", []string{"a-1"}},
		{e.opB, "b-chieu", "17:00", []string{"xa-b"}},
		{e.province, "tinh", "11:00", []string{"hn"}},
	} {
		body := scheduleBody(c.id, c.areas...)
		body["rule"] = map[string]any{"kind": "daily", "time": c.time}
		_, r := e.createSchedule(c.secret, body)
		want(t, r, http.StatusCreated)
	}
	off := scheduleBody("a-tat", "a-1")
	off["enabled"] = false
	_, r := e.createSchedule(e.opA, off)
	want(t, r, http.StatusCreated)

	agenda := func(secret, query string) []loa.Occurrence {
		t.Helper()
		r := e.do("GET", "/api/v1/agenda"+query, secret, nil)
		want(t, r, http.StatusOK)
		var occs []loa.Occurrence
		r.json(t, &occs)
		return occs
	}
	ids := func(occs []loa.Occurrence) []string {
		out := []string{}
		for _, o := range occs {
			out = append(out, o.ScheduleID+" "+o.At.In(hcm).Format("01-02 15:04"))
		}
		return out
	}
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, hcm) }
	window := func(from, to time.Time) {
		t.Helper()
		gotFrom, gotTo := e.sched.lastAgenda()
		if !gotFrom.Equal(from) || !gotTo.Equal(to) {
			t.Errorf("agenda window [%v, %v), want [%v, %v)", gotFrom, gotTo, from, to)
		}
	}

	// Default: today in Hà Nội, whatever the zone of the clock.
	got := ids(agenda(e.admin, ""))
	window(day(2026, 11, 25), day(2026, 11, 26))
	if !slices.Equal(got, []string{"a-sang 11-25 06:00", "tinh 11-25 11:00", "b-chieu 11-25 17:00"}) {
		t.Errorf("admin's agenda today %v", got)
	}
	// Scoped: only what targets the caller's own areas.
	if got := ids(agenda(e.opA, "")); !slices.Equal(got, []string{"a-sang 11-25 06:00"}) {
		t.Errorf("operator A's agenda %v", got)
	}
	if got := ids(agenda(e.opB, "?day=2026-12-01")); !slices.Equal(got, []string{"b-chieu 12-01 17:00"}) {
		t.Errorf("operator B's agenda %v", got)
	}
	window(day(2026, 12, 1), day(2026, 12, 2))
	if got := agenda(e.province, "?week=2026-11-30"); len(got) != 21 {
		t.Errorf("province's week: %v", ids(got))
	}
	window(day(2026, 11, 30), day(2026, 12, 7))
	if got := agenda(e.opA, "?week=2026-11-30"); len(got) != 7 {
		t.Errorf("operator A's week: %v", ids(got))
	}
	q := url.Values{"from": {"2026-11-25T12:00:00+07:00"}, "to": {"2026-12-26T12:00:00+07:00"}}
	if got := agenda(e.opA, "?"+q.Encode()); len(got) != 31 {
		t.Errorf("31 days: %v", ids(got))
	}
	window(time.Date(2026, 11, 25, 12, 0, 0, 0, hcm), time.Date(2026, 12, 26, 12, 0, 0, 0, hcm))
	if got := agenda(e.admin, "?from=2026-11-25T00:00:00Z&to=2026-11-25T05:00:00Z"); !slices.Equal(ids(got), []string{"tinh 11-25 11:00"}) {
		t.Errorf("five hours: %v", ids(got))
	}
	// Dates name whole days in Hà Nội: to is the last day, included.
	if got := agenda(e.opA, "?from=2026-11-25&to=2026-11-26"); len(got) != 2 {
		t.Errorf("two days by date: %v", ids(got))
	}
	window(day(2026, 11, 25), day(2026, 11, 27))
	agenda(e.opA, "?from=2026-11-25&to=2026-11-25T12:00:00%2B07:00")
	window(day(2026, 11, 25), time.Date(2026, 11, 25, 12, 0, 0, 0, hcm))

	for _, c := range []struct{ query, param string }{
		{"?day=2026-02-30", "day"},
		{"?day=25/11/2026", "day"},
		{"?week=2026-11-25", "week"},
		{"?week=monday", "week"},
		{"?from=2026-11-25T00:00:00Z", "from, to"},
		{"?to=2026-11-25T00:00:00Z", "from, to"},
		{"?from=yesterday&to=2026-11-25T00:00:00Z", "from"},
		{"?from=2026-11-25T00:00:00Z&to=26/11/2026", "to"},
		{"?from=2026-11-25T00:00:00Z&to=2026-11-25T00:00:00Z", "to"},
		{"?from=2026-11-25T00:00:00Z&to=2026-11-24T00:00:00Z", "to"},
		{"?from=2026-11-01T00:00:00Z&to=2026-12-02T00:00:01Z", "31 days"},
		{"?day=2026-11-25&week=2026-11-23", "day, week"},
		{"?day=2026-11-25&from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z", "from, to, day"},
	} {
		wantError(t, e.do("GET", "/api/v1/agenda"+c.query, e.opA, nil), http.StatusBadRequest, "invalid", c.param)
	}
}

func TestCalendars(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/api/v1/calendars", e.opA, nil)
	want(t, r, http.StatusOK)
	var examples loa.Calendars
	r.json(t, &examples)
	if _, ok := examples["Quốc khánh"]; !ok {
		t.Errorf("a new station's calendars lack the example Quốc khánh: %s", r.body)
	}

	tet := "/api/v1/calendars/" + url.PathEscape("Tết 2027")
	r = e.do("PUT", tet, e.admin, `{"dates":["2027-02-05","2027-02-06","09-02"]}`)
	want(t, r, http.StatusOK)
	var cal loa.Calendar
	r.json(t, &cal)
	if cal.Name != "Tết 2027" || len(cal.Dates) != 3 {
		t.Errorf("put %s", r.body)
	}
	// The name in the body may repeat the path's.
	want(t, e.do("PUT", tet, e.admin, `{"name":"Tết 2027","dates":["2027-02-05"]}`), http.StatusOK)
	// An empty list clears a calendar.
	want(t, e.do("PUT", "/api/v1/calendars/trong", e.admin, `{"dates":[]}`), http.StatusOK)

	r = e.do("GET", "/api/v1/calendars", e.techA, nil)
	want(t, r, http.StatusOK)
	var cals loa.Calendars
	r.json(t, &cals)
	if len(cals) != len(examples)+1 || !slices.Equal(cals["Tết 2027"].Dates, []string{"2027-02-05"}) || cals["trong"].Dates == nil {
		t.Errorf("calendars %s", r.body)
	}

	// Station-wide calendars silence every commune's schedules: no scoped
	// token may change one, not even the province's; operators none.
	wantError(t, e.do("PUT", tet, e.opA, `{"dates":[]}`), http.StatusForbidden, "forbidden")
	wantError(t, e.do("PUT", tet, e.provA, `{"dates":[]}`), http.StatusForbidden, "forbidden")
	wantError(t, e.do("PUT", tet, e.province, `{"dates":[]}`), http.StatusForbidden, "forbidden")

	for _, c := range []struct{ body, word string }{
		{`{"dates":["2027-02-30"]}`, "dates[0]"},
		{`{"dates":"2027-02-05"}`, "dates"},
		{`{}`, "dates"},
		{`{"name":"Tết 2028","dates":[]}`, "name"},
		{`{"dates":[],"year":2027}`, "year"},
		{`{"dates":[]`, "JSON"},
	} {
		wantError(t, e.do("PUT", tet, e.admin, c.body), http.StatusBadRequest, "invalid", c.word)
	}

	acts := e.auditActions()
	if !slices.Equal(acts, []string{"calendar.put trong", "calendar.put Tết 2027", "calendar.put Tết 2027"}) {
		t.Errorf("audit %v", acts)
	}
}

// TestCalendarsScoped: a scoped token keeps the calendars of its own area
// (its new calendars are of its scope), sees those of its area and above,
// and neither sees nor changes another area's.
func TestCalendarsScoped(t *testing.T) {
	e := newEnv(t)
	path := func(name string) string { return "/api/v1/calendars/" + url.PathEscape(name) }
	r := e.do("PUT", path("Lễ hội Hà Nội"), e.province, `{"dates":["10-10"]}`)
	want(t, r, http.StatusOK)
	var cal loa.Calendar
	r.json(t, &cal)
	if cal.AreaID != "hn" {
		t.Errorf("the province's new calendar is of %q, want hn", cal.AreaID)
	}
	want(t, e.do("PUT", path("Hội làng An Khánh"), e.provA, `{"dates":["03-15"]}`), http.StatusOK)
	// Not another's, nor moved out of scope or made station-wide.
	wantError(t, e.do("PUT", path("Lễ hội Hà Nội"), e.provA, `{"dates":[]}`), http.StatusForbidden, "forbidden")
	wantError(t, e.do("PUT", path("Hội làng An Khánh"), e.provA, `{"dates":[],"area_id":"xa-b"}`), http.StatusForbidden, "forbidden", "area_id")
	wantError(t, e.do("PUT", path("Hội làng An Khánh"), e.provA, `{"dates":[],"area_id":""}`), http.StatusForbidden, "forbidden", "station-wide")
	// The province keeps its commune's calendar too.
	want(t, e.do("PUT", path("Hội làng An Khánh"), e.province, `{"dates":["03-15","03-16"]}`), http.StatusOK)

	seen := func(secret string) loa.Calendars {
		r := e.do("GET", "/api/v1/calendars", secret, nil)
		want(t, r, http.StatusOK)
		var cals loa.Calendars
		r.json(t, &cals)
		return cals
	}
	if cals := seen(e.opB); cals["Lễ hội Hà Nội"].AreaID != "hn" || cals["Hội làng An Khánh"].Dates != nil {
		t.Errorf("commune B sees %v; want the province's calendar, not commune A's", cals)
	}
	if cals := seen(e.opA); len(cals["Hội làng An Khánh"].Dates) != 2 || cals["Quốc khánh"].Dates == nil {
		t.Errorf("commune A sees %v; want its own, the province's and the station's", cals)
	}
}
