package api_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestPlayLog(t *testing.T) {
	e := newEnv(t)
	at := time.Date(2026, 11, 25, 6, 0, 0, 0, hcm)
	e.playlog.entries = []loa.PlayLogEntry{
		{At: at, Event: loa.PlayStarted, SessionID: "s-1", ScheduleID: "a-sang", Devices: []string{"dev-a1"}, Areas: []string{"a-1"}, By: "schedule:a-sang"},
		{At: at, Event: loa.PlayStarted, SessionID: "s-2", ScheduleID: "b-sang", Devices: []string{"dev-b1"}, Areas: []string{"xa-b"}, By: "schedule:b-sang"},
		{At: at, Event: loa.PlayStarted, SessionID: "s-3", Devices: []string{"dev-a1", "dev-b1"}, Areas: []string{"hn"}, By: "tok-province"},
		{At: at, Event: loa.PlayMissed, ScheduleID: "b-chieu", Areas: []string{"b-1"}, By: "schedule:b-chieu"},
	}
	playlog := func(secret, query string) []loa.PlayLogEntry {
		t.Helper()
		r := e.do("GET", "/api/v1/playlog"+query, secret, nil)
		want(t, r, http.StatusOK)
		var out []loa.PlayLogEntry
		r.json(t, &out)
		return out
	}
	sessions := func(entries []loa.PlayLogEntry) []string {
		out := []string{}
		for _, e := range entries {
			out = append(out, e.SessionID+e.ScheduleID)
		}
		return out
	}

	// Unscoped: everything, the filter as given.
	got := playlog(e.admin, "?from=2026-11-25T00:00:00%2B07:00&to=2026-11-26T00:00:00%2B07:00&device=dev-b1&limit=20")
	if len(got) != 4 {
		t.Errorf("admin's play log %v", sessions(got))
	}
	f := e.playlog.lastFilter()
	if !f.From.Equal(time.Date(2026, 11, 25, 0, 0, 0, 0, hcm)) || !f.To.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, hcm)) ||
		f.Area != "" || f.Device != "dev-b1" || f.Limit != 20 {
		t.Errorf("admin's filter %+v", f)
	}
	// A date is a whole day in Hà Nội, to included: the same window.
	playlog(e.admin, "?from=2026-11-25&to=2026-11-25&device=dev-b1&limit=20")
	if g := e.playlog.lastFilter(); !g.From.Equal(f.From) || !g.To.Equal(f.To) {
		t.Errorf("filter by dates %+v, want [%v, %v)", g, f.From, f.To)
	}
	playlog(e.admin, "")
	if f := e.playlog.lastFilter(); f.Limit != 100 || !f.From.IsZero() || !f.To.IsZero() {
		t.Errorf("default filter %+v", f)
	}

	// Scoped with no area: the scope is the area, and only entries that
	// touch it come back, listing only the caller's receivers.
	got = playlog(e.opA, "")
	if f := e.playlog.lastFilter(); f.Area != "xa-a" {
		t.Errorf("operator A's filter area %q, want xa-a", f.Area)
	}
	if !slices.Equal(sessions(got), []string{"s-1a-sang", "s-3"}) {
		t.Errorf("operator A's play log %v", sessions(got))
	}
	if !slices.Equal(got[1].Devices, []string{"dev-a1"}) {
		t.Errorf("province-wide entry lists devices %v to operator A", got[1].Devices)
	}
	got = playlog(e.opB, "?area=b-1")
	if f := e.playlog.lastFilter(); f.Area != "b-1" {
		t.Errorf("operator B's filter area %q", f.Area)
	}
	if !slices.Equal(sessions(got), []string{"s-2b-sang", "s-3", "b-chieu"}) {
		t.Errorf("operator B's play log %v", sessions(got))
	}
	playlog(e.techA, "?device=dev-a1")
	if f := e.playlog.lastFilter(); f.Area != "xa-a" || f.Device != "dev-a1" {
		t.Errorf("technician A's filter %+v", f)
	}

	// Outside the scope: refused, naming the parameter.
	wantError(t, e.do("GET", "/api/v1/playlog?area=xa-b", e.opA, nil), http.StatusForbidden, "forbidden", "area", "xa-b")
	wantError(t, e.do("GET", "/api/v1/playlog?area=hn", e.opA, nil), http.StatusForbidden, "forbidden", "area", "hn")
	wantError(t, e.do("GET", "/api/v1/playlog?device=dev-b1", e.opA, nil), http.StatusForbidden, "forbidden", "device", "dev-b1")

	for _, c := range []struct{ query, param string }{
		{"?from=today", "from"},
		{"?to=25-11-2026", "to"},
		{"?from=2026-11-25T00:00:00Z&to=2026-11-24T00:00:00Z", "to"},
		{"?limit=0", "limit"},
		{"?limit=1001", "limit"},
		{"?limit=all", "limit"},
		{"?area=Xã%20A", "area"},
		{"?device=../etc", "device"},
	} {
		wantError(t, e.do("GET", "/api/v1/playlog"+c.query, e.opA, nil), http.StatusBadRequest, "invalid", c.param)
	}
	wantError(t, e.do("GET", "/api/v1/playlog", "", nil), http.StatusUnauthorized, "unauthenticated")
}
