package api_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

// scheduleBody is a valid schedule request: the 06:00 programme, daily.
func scheduleBody(id string, areas ...string) map[string]any {
	return map[string]any{
		"id":      id,
		"name":    "Chương trình sáng",
		"rule":    map[string]any{"kind": "daily", "date": "2026-11-01", "time": "06:00"},
		"content": map[string]any{"media_id": "m-1"},
		"targets": map[string]any{"areas": areas},
	}
}

func (e *env) createSchedule(secret string, body any) (loa.Schedule, response) {
	e.t.Helper()
	r := e.do("POST", "/api/v1/schedules", secret, body)
	var s loa.Schedule
	if r.status == http.StatusCreated {
		r.json(e.t, &s)
	}
	return s, r
}

func (e *env) scheduleIDs(secret string) []string {
	e.t.Helper()
	r := e.do("GET", "/api/v1/schedules", secret, nil)
	want(e.t, r, http.StatusOK)
	var list []loa.Schedule
	r.json(e.t, &list)
	ids := []string{}
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestCreateSchedule(t *testing.T) {
	e := newEnv(t)
	body := scheduleBody("sang", "a-1")
	body["overrun"] = "wait"
	body["max_wait"] = "10m"
	body["exceptions"] = map[string]any{"skip": []string{"2026-12-31"}, "calendars": []string{"Tết 2027"}}
	s, r := e.createSchedule(e.opA, body)
	want(t, r, http.StatusCreated)
	if s.ID != "sang" || !s.Enabled || s.Priority != api.DefaultPriority || s.MaxWait != 10*time.Minute ||
		s.Overrun != "wait" || s.CreatedBy != e.tokens[e.opA].ID || s.Rule.Time != "06:00" ||
		!slices.Equal(s.Exceptions.Calendars, []string{"Tết 2027"}) {
		t.Errorf("created %s", r.body)
	}
	if !slices.Contains(e.auditActions(), "schedule.create sang") {
		t.Errorf("audit %v", e.auditActions())
	}

	r = e.do("GET", "/api/v1/schedules/sang", e.opA, nil)
	want(t, r, http.StatusOK)
	var got loa.Schedule
	r.json(t, &got)
	if got.Name != "Chương trình sáng" || got.MaxWait != 10*time.Minute {
		t.Errorf("got %s", r.body)
	}

	off := scheduleBody("chieu", "a-1")
	off["enabled"] = false
	off["priority"] = 100
	s, r = e.createSchedule(e.opA, off)
	want(t, r, http.StatusCreated)
	if s.Enabled || s.Priority != 100 {
		t.Errorf("created %s", r.body)
	}

	wantError(t, e.do("POST", "/api/v1/schedules", e.opA, scheduleBody("sang", "a-1")), http.StatusConflict, "conflict", "sang")
	wantError(t, e.do("POST", "/api/v1/schedules", e.techA, scheduleBody("tech", "a-1")), http.StatusForbidden, "forbidden", "session")
	wantError(t, e.do("POST", "/api/v1/schedules", "", scheduleBody("anon", "a-1")), http.StatusUnauthorized, "unauthenticated")
	if n := e.sched.count(); n != 2 {
		t.Errorf("%d schedules stored, want 2", n)
	}
}

func TestSchedulesAreScoped(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		secret, id string
		areas      []string
	}{
		{e.province, "b-sang", []string{"xa-b"}},
		{e.province, "tinh", []string{"hn"}},
		{e.opA, "a-sang", []string{"a-1"}},
		{e.opB, "b-chieu", []string{"b-1"}},
	} {
		_, r := e.createSchedule(c.secret, scheduleBody(c.id, c.areas...))
		want(t, r, http.StatusCreated)
	}
	if got := e.scheduleIDs(e.opA); !slices.Equal(got, []string{"a-sang"}) {
		t.Errorf("operator A sees %v", got)
	}
	if got := e.scheduleIDs(e.opB); !slices.Equal(got, []string{"b-chieu", "b-sang"}) {
		t.Errorf("operator B sees %v", got)
	}
	if got := e.scheduleIDs(e.admin); len(got) != 4 {
		t.Errorf("admin sees %v", got)
	}
	if got := e.scheduleIDs(e.techA); !slices.Equal(got, []string{"a-sang"}) {
		t.Errorf("technician A sees %v", got)
	}

	// Operator A can neither see nor touch B's or the province's schedules.
	for _, id := range []string{"b-sang", "tinh"} {
		wantError(t, e.do("GET", "/api/v1/schedules/"+id, e.opA, nil), http.StatusNotFound, "not_found", id)
		wantError(t, e.do("GET", "/api/v1/schedules/"+id+"/next", e.opA, nil), http.StatusNotFound, "not_found")
		wantError(t, e.do("PUT", "/api/v1/schedules/"+id, e.opA, scheduleBody("", "a-1")), http.StatusNotFound, "not_found")
		wantError(t, e.do("DELETE", "/api/v1/schedules/"+id, e.opA, nil), http.StatusNotFound, "not_found")
		wantError(t, e.do("POST", "/api/v1/schedules/"+id+"/disable", e.opA, nil), http.StatusNotFound, "not_found")
		wantError(t, e.do("POST", "/api/v1/schedules/"+id+"/enable", e.opA, nil), http.StatusNotFound, "not_found")
	}
	r := e.do("GET", "/api/v1/schedules/b-sang", e.opB, nil)
	want(t, r, http.StatusOK)
	var b loa.Schedule
	r.json(t, &b)
	if !b.Enabled || b.Targets.Areas[0] != "xa-b" {
		t.Errorf("operator A's attempts changed B's schedule: %s", r.body)
	}

	// Creating or moving a schedule out of scope is refused, naming the target.
	n := e.sched.count()
	for _, c := range []struct {
		targets map[string]any
		name    string
	}{
		{map[string]any{"areas": []string{"xa-b"}}, "targets.areas: xa-b"},
		{map[string]any{"areas": []string{"a-1", "hn"}}, "targets.areas: hn"},
		{map[string]any{"devices": []string{"dev-a1", "dev-b1"}}, "targets.devices: dev-b1"},
	} {
		body := scheduleBody("x")
		body["targets"] = c.targets
		_, r := e.createSchedule(e.opA, body)
		wantError(t, r, http.StatusForbidden, "forbidden", c.name)
		body["id"] = ""
		wantError(t, e.do("PUT", "/api/v1/schedules/a-sang", e.opA, body), http.StatusForbidden, "forbidden", c.name)
	}
	if e.sched.count() != n {
		t.Error("a refused schedule was stored")
	}
	r = e.do("GET", "/api/v1/schedules/a-sang", e.opA, nil)
	want(t, r, http.StatusOK)
	var a loa.Schedule
	r.json(t, &a)
	if !slices.Equal(a.Targets.Areas, []string{"a-1"}) {
		t.Errorf("a refused replace changed the targets: %s", r.body)
	}

	// In its own commune, by device, operator A may.
	body := scheduleBody("a-loa-cho")
	body["targets"] = map[string]any{"devices": []string{"dev-a1"}}
	_, r = e.createSchedule(e.opA, body)
	want(t, r, http.StatusCreated)
}

func TestScheduleEmergencyBand(t *testing.T) {
	e := newEnv(t)
	body := scheduleBody("bao", "xa-a")
	body["priority"] = 224
	_, r := e.createSchedule(e.opA, body)
	wantError(t, r, http.StatusForbidden, "forbidden", "priority", "emergency")
	if e.sched.count() != 0 {
		t.Fatal("operator stored an emergency schedule")
	}
	s, r := e.createSchedule(e.provA, body)
	want(t, r, http.StatusCreated)
	if s.Priority != 224 {
		t.Errorf("priority %d", s.Priority)
	}

	// The operator sees it (it targets their commune) but may not change it.
	want(t, e.do("GET", "/api/v1/schedules/bao", e.opA, nil), http.StatusOK)
	lower := scheduleBody("bao", "xa-a")
	wantError(t, e.do("PUT", "/api/v1/schedules/bao", e.opA, lower), http.StatusForbidden, "forbidden", "emergency")
	wantError(t, e.do("POST", "/api/v1/schedules/bao/disable", e.opA, nil), http.StatusForbidden, "forbidden", "emergency")
	wantError(t, e.do("DELETE", "/api/v1/schedules/bao", e.opA, nil), http.StatusForbidden, "forbidden", "emergency")

	// Nor raise their own into the band.
	_, r = e.createSchedule(e.opA, scheduleBody("thuong", "xa-a"))
	want(t, r, http.StatusCreated)
	body["id"] = "thuong"
	wantError(t, e.do("PUT", "/api/v1/schedules/thuong", e.opA, body), http.StatusForbidden, "forbidden", "emergency")

	want(t, e.do("POST", "/api/v1/schedules/bao/disable", e.province, nil), http.StatusOK)
	want(t, e.do("DELETE", "/api/v1/schedules/bao", e.admin, nil), http.StatusNoContent)
}

func TestReplaceEnableDeleteSchedule(t *testing.T) {
	e := newEnv(t)
	_, r := e.createSchedule(e.opA, scheduleBody("sang", "a-1"))
	want(t, r, http.StatusCreated)

	r = e.do("POST", "/api/v1/schedules/sang/disable", e.opA, nil)
	want(t, r, http.StatusOK)
	var s loa.Schedule
	r.json(t, &s)
	if s.Enabled {
		t.Errorf("disabled %s", r.body)
	}

	// A replace without "enabled" keeps it; created_by is kept.
	body := scheduleBody("", "xa-a")
	body["rule"] = map[string]any{"kind": "weekly", "weekdays": []string{"mon", "fri"}, "time": "17:00"}
	body["overrun"], body["max_wait"] = "wait", "90s" // max_wait bounds a wait
	r = e.do("PUT", "/api/v1/schedules/sang", e.province, body)
	want(t, r, http.StatusOK)
	r.json(t, &s)
	if s.ID != "sang" || s.Enabled || s.Rule.Kind != "weekly" || s.MaxWait != 90*time.Second ||
		s.CreatedBy != e.tokens[e.opA].ID || !slices.Equal(s.Targets.Areas, []string{"xa-a"}) {
		t.Errorf("replaced %s", r.body)
	}
	body["id"] = "sang"
	body["enabled"] = true
	r = e.do("PUT", "/api/v1/schedules/sang", e.opA, body)
	want(t, r, http.StatusOK)
	r.json(t, &s)
	if !s.Enabled {
		t.Errorf("replaced %s", r.body)
	}

	r = e.do("POST", "/api/v1/schedules/sang/enable", e.opA, nil)
	want(t, r, http.StatusOK)
	r.json(t, &s)
	if !s.Enabled || s.Rule.Time != "17:00" {
		t.Errorf("enabled %s", r.body)
	}

	r = e.do("DELETE", "/api/v1/schedules/sang", e.opA, nil)
	want(t, r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("204 with body %q", r.body)
	}
	wantError(t, e.do("GET", "/api/v1/schedules/sang", e.opA, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("DELETE", "/api/v1/schedules/sang", e.opA, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("PUT", "/api/v1/schedules/nope", e.admin, scheduleBody("", "a-1")), http.StatusNotFound, "not_found")
	wantError(t, e.do("POST", "/api/v1/schedules/nope/enable", e.admin, nil), http.StatusNotFound, "not_found")

	acts := e.auditActions()
	for _, a := range []string{"schedule.create sang", "schedule.disable sang", "schedule.update sang", "schedule.enable sang", "schedule.delete sang"} {
		if !slices.Contains(acts, a) {
			t.Errorf("audit %v lacks %q", acts, a)
		}
	}
	if n := len(acts); n != 6 {
		t.Errorf("%d audit records %v, want 6", n, acts)
	}

	r = e.do("PATCH", "/api/v1/schedules/sang", e.opA, "{}")
	want(t, r, http.StatusMethodNotAllowed)
	if allow := r.header.Values("Allow"); !slices.Equal(allow, []string{"GET", "PUT", "DELETE"}) {
		t.Errorf("Allow %v", allow)
	}
}

func TestBadScheduleBodiesAre400(t *testing.T) {
	e := newEnv(t)
	valid := `"name":"Sáng","rule":{"kind":"daily","time":"06:00"},"content":{"media_id":"m-1"},"targets":{"areas":["a-1"]}`
	cases := []struct {
		name, body string
		words      []string
	}{
		{"malformed", `{"id":"x",` + valid, []string{"body", "JSON"}},
		{"not an object", `["x"]`, []string{"body"}},
		{"empty", ``, []string{"body", "empty"}},
		{"trailing", `{"id":"x",` + valid + `} {}`, []string{"body", "after"}},
		{"unknown field", `{"id":"x",` + valid + `,"colour":"red"}`, []string{"colour"}},
		{"max_wait and max_wait_ns apart", `{"id":"x",` + valid + `,"max_wait":"2m","max_wait_ns":60000000000}`, []string{"max_wait_ns"}},
		{"created_by", `{"id":"x",` + valid + `,"created_by":"someone"}`, []string{"created_by"}},
		{"unknown rule field", `{"id":"x","name":"S","rule":{"kind":"daily","time":"06:00","hour":6},"content":{"media_id":"m-1"},"targets":{"areas":["a-1"]}}`, []string{"hour"}},
		{"bad max_wait", `{"id":"x",` + valid + `,"max_wait":"a while"}`, []string{"max_wait", "10m"}},
		{"max_wait number", `{"id":"x",` + valid + `,"max_wait":600}`, []string{"max_wait", "string"}},
		{"negative max_wait", `{"id":"x",` + valid + `,"max_wait":"-1m"}`, []string{"max_wait"}},
		{"priority too high", `{"id":"x",` + valid + `,"priority":256}`, []string{"priority", "0–255"}},
		{"priority word", `{"id":"x",` + valid + `,"priority":"high"}`, []string{"priority", "integer"}},
		{"enabled word", `{"id":"x",` + valid + `,"enabled":"yes"}`, []string{"enabled"}},
		{"weekdays not list", `{"id":"x","name":"S","rule":{"kind":"weekly","time":"06:00","weekdays":"mon"},"content":{"media_id":"m-1"},"targets":{"areas":["a-1"]}}`, []string{"rule.weekdays"}},
		// From the service: the rule itself.
		{"empty weekdays", `{"id":"x","name":"S","rule":{"kind":"weekly","time":"06:00","weekdays":[]},"content":{"media_id":"m-1"},"targets":{"areas":["a-1"]}}`, []string{"rule.weekdays"}},
		{"february 30", `{"id":"x","name":"S","rule":{"kind":"once","date":"2027-02-30","time":"06:00"},"content":{"media_id":"m-1"},"targets":{"areas":["a-1"]}}`, []string{"rule.date"}},
		{"no id", `{` + valid + `}`, []string{"id"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/api/v1/schedules", e.admin, c.body), http.StatusBadRequest, "invalid", c.words...)
		})
	}
	if n := e.sched.count(); n != 0 {
		t.Fatalf("bad bodies stored %d schedules", n)
	}

	_, r := e.createSchedule(e.admin, scheduleBody("sang", "a-1"))
	want(t, r, http.StatusCreated)
	wantError(t, e.do("PUT", "/api/v1/schedules/sang", e.admin, scheduleBody("chieu", "a-1")), http.StatusBadRequest, "invalid", "id", "chieu", "sang")
	wantError(t, e.do("PUT", "/api/v1/schedules/sang", e.admin, `{"rule":{"kind":"weekly","time":"06:00"},"name":"S","content":{"media_id":"m-1"},"targets":{"areas":["a-1"]}}`),
		http.StatusBadRequest, "invalid", "rule.weekdays")
	wantError(t, e.do("PUT", "/api/v1/schedules/sang", e.admin, `{"max_wait":"soon"}`), http.StatusBadRequest, "invalid", "max_wait")
	if acts := e.auditActions(); len(acts) != 1 {
		t.Errorf("audit %v: refused changes were recorded", acts)
	}
}

func TestNextOccurrences(t *testing.T) {
	e := newEnv(t)
	_, r := e.createSchedule(e.opA, scheduleBody("sang", "a-1"))
	want(t, r, http.StatusCreated)

	next := func(query string) []loa.Occurrence {
		t.Helper()
		r := e.do("GET", "/api/v1/schedules/sang/next"+query, e.opA, nil)
		want(t, r, http.StatusOK)
		var occs []loa.Occurrence
		r.json(t, &occs)
		return occs
	}
	// Default: 10 after now (10:00 on 25 November), so from the 26th.
	occs := next("")
	if len(occs) != 10 || !occs[0].At.Equal(time.Date(2026, 11, 26, 6, 0, 0, 0, hcm)) || occs[0].ScheduleID != "sang" {
		t.Fatalf("next: %d, first %v", len(occs), occs)
	}
	occs = next("?n=3&after=2026-12-31T05:00:00%2B07:00")
	if len(occs) != 3 || !occs[0].At.Equal(time.Date(2026, 12, 31, 6, 0, 0, 0, hcm)) ||
		!occs[2].At.Equal(time.Date(2027, 1, 2, 6, 0, 0, 0, hcm)) {
		t.Errorf("next 3: %v", occs)
	}
	// An unescaped '+' arrives as a space; it is understood.
	occs = next("?n=1&after=2026-12-31T06:00:00+07:00")
	if len(occs) != 1 || !occs[0].At.Equal(time.Date(2027, 1, 1, 6, 0, 0, 0, hcm)) {
		t.Errorf("next after 06:00: %v", occs)
	}
	if occs := next("?n=100"); len(occs) != 100 {
		t.Errorf("n=100 gave %d", len(occs))
	}

	for _, c := range []struct{ query, param string }{
		{"?n=0", "n"}, {"?n=101", "n"}, {"?n=-1", "n"}, {"?n=ten", "n"}, {"?n=", ""},
		{"?after=tomorrow", "after"}, {"?after=2026-12-31", "after"}, {"?after=2026-12-31T06:00:00", "after"},
	} {
		r := e.do("GET", "/api/v1/schedules/sang/next"+c.query, e.opA, nil)
		if c.param == "" {
			want(t, r, http.StatusOK)
			continue
		}
		wantError(t, r, http.StatusBadRequest, "invalid", c.param)
	}
	wantError(t, e.do("GET", "/api/v1/schedules/nope/next", e.admin, nil), http.StatusNotFound, "not_found")
}

func TestSchedulesUnavailable(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(api.ValidateWithSpec(t, (&api.Server{Areas: e.db, Devices: e.db, Tokens: e.db, Audit: e.db}).Handler()))
	defer srv.Close()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/schedules", ""},
		{"POST", "/api/v1/schedules", `{"id":"x","name":"S","rule":{"kind":"daily","time":"06:00"},"content":{"media_id":"m-1"},"targets":{"areas":["a-1"]}}`},
		{"GET", "/api/v1/schedules/x", ""},
		{"PUT", "/api/v1/schedules/x", `{"name":"S"}`},
		{"DELETE", "/api/v1/schedules/x", ""},
		{"POST", "/api/v1/schedules/x/enable", ""},
		{"GET", "/api/v1/schedules/x/next", ""},
		{"GET", "/api/v1/agenda", ""},
		{"GET", "/api/v1/calendars", ""},
		{"PUT", "/api/v1/calendars/tet", `{"dates":[]}`},
		{"GET", "/api/v1/playlog", ""},
	} {
		req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.admin)
		wantError(t, e.send(req), http.StatusServiceUnavailable, "unavailable")
	}
}

// TestScheduleConflictsEndpoint: POST /api/v1/schedules/conflicts lists
// the proposed schedule's overlaps in the next four weeks, names no
// schedule the caller may not see, checks the body as a create does, and
// stores nothing.
func TestScheduleConflictsEndpoint(t *testing.T) {
	e := newEnv(t)
	_, r := e.createSchedule(e.opA, scheduleBody("sang", "a-1"))
	want(t, r, http.StatusCreated)
	_, r = e.createSchedule(e.province, scheduleBody("toan-tinh", "a-1", "b-1"))
	want(t, r, http.StatusCreated)

	type answer struct {
		From, To  time.Time
		Conflicts []loa.ScheduleConflict
	}
	conflicts := func(body map[string]any) answer {
		t.Helper()
		r := e.do("POST", "/api/v1/schedules/conflicts", e.opA, body)
		want(t, r, http.StatusOK)
		if strings.Contains(string(r.body), "toan-tinh") {
			t.Errorf("the answer names a schedule of another scope: %s", r.body)
		}
		var a answer
		r.json(t, &a)
		return a
	}
	a := conflicts(scheduleBody("chieu", "xa-a"))
	if !a.From.Equal(testNow) || a.To.Sub(a.From) != 28*24*time.Hour {
		t.Errorf("window %v–%v, want four weeks from now", a.From, a.To)
	}
	// Now is 10:00 on 25 November: from the 26th, 28 days, two each.
	if len(a.Conflicts) != 56 {
		t.Fatalf("%d conflicts, want 56", len(a.Conflicts))
	}
	first := time.Date(2026, 11, 26, 6, 0, 0, 0, hcm)
	seen, hidden := a.Conflicts[0], a.Conflicts[1]
	if seen.ScheduleID == "" {
		seen, hidden = hidden, seen
	}
	if !seen.At.Equal(first) || !seen.OtherAt.Equal(first) || seen.ScheduleID != "sang" || seen.Name != "Chương trình sáng" || !seen.End.After(seen.At) {
		t.Errorf("the visible conflict: %+v", seen)
	}
	if !hidden.At.Equal(first) || hidden.ScheduleID != "" || hidden.Name != "" || !hidden.Targets.Empty() {
		t.Errorf("the other scope's conflict: %+v, want its times only", hidden)
	}
	// Its own change is not a conflict with itself; another hour has none.
	if got := conflicts(scheduleBody("sang", "a-1")).Conflicts; len(got) != 28 || got[0].ScheduleID != "" {
		t.Errorf("sang's own change: %d conflicts, first %+v; want the hidden one's 28", len(got), got)
	}
	later := scheduleBody("chieu", "xa-a")
	later["rule"] = map[string]any{"kind": "daily", "date": "2027-01-01", "time": "17:00"}
	if a := conflicts(later); len(a.Conflicts) != 0 || !a.From.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, hcm)) {
		t.Errorf("17:00 from January: %d conflicts from %v, want none from its first day", len(a.Conflicts), a.From)
	}

	wantError(t, e.do("POST", "/api/v1/schedules/conflicts", e.opA, scheduleBody("x", "b-1")), http.StatusForbidden, "forbidden")
	bad := scheduleBody("x", "a-1")
	bad["rule"] = map[string]any{"kind": "daily", "time": "25:00"}
	wantError(t, e.do("POST", "/api/v1/schedules/conflicts", e.opA, bad), http.StatusBadRequest, "invalid", "rule.time")
	wantError(t, e.do("POST", "/api/v1/schedules/conflicts", e.techA, scheduleBody("x", "a-1")), http.StatusForbidden, "forbidden")
	if ids := e.scheduleIDs(e.admin); !slices.Equal(ids, []string{"sang", "toan-tinh"}) {
		t.Errorf("schedules after asking: %v", ids)
	}
}
