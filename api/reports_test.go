package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
)

// TestBroadcastReportRoute checks the report route's period, scope,
// formats and errors over the real report service (station/reports_test.go
// checks the numbers).
func TestBroadcastReportRoute(t *testing.T) {
	e := newEnv(t)
	rs := station.NewReports(e.db)
	rs.Now = func() time.Time { return testNow }
	e.server.Reports = rs
	e.server.StationName = "Đài Hà Nội"

	report := func(secret, query string) loa.BroadcastReport {
		t.Helper()
		r := e.do("GET", "/api/v1/reports/broadcast"+query, secret, nil)
		want(t, r, http.StatusOK)
		var out loa.BroadcastReport
		r.json(t, &out)
		return out
	}
	// A scoped caller's default area is its scope; the default period is last month.
	got := report(e.opA, "")
	if got.Area.ID != "xa-a" || got.Area.Name != "Xã An Khánh" || got.From != "2026-10-01" || got.To != "2026-10-31" ||
		got.Station != "Đài Hà Nội" || got.Zone != "Asia/Ho_Chi_Minh" || !got.Start.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, hcm)) {
		t.Errorf("operator A's default report: %+v", got)
	}
	if len(got.Availability.Receivers) != 0 {
		t.Errorf("receivers made today are in October's report: %+v", got.Availability.Receivers)
	}
	today := time.Now().In(hcm).Format(time.DateOnly) // the store stamps devices with the wall clock
	got = report(e.opA, "?from="+today+"&to="+today)
	if len(got.Availability.Receivers) != 1 || got.Availability.Receivers[0].Device != "dev-a1" {
		t.Errorf("operator A's receivers %+v", got.Availability.Receivers)
	}
	got = report(e.province, "?area=hn&month=2026-11")
	if got.From != "2026-11-01" || got.To != "2026-11-30" || len(got.Communes) != 2 || got.Communes[0].Name != "Xã An Khánh" {
		t.Errorf("province report: %s..%s communes %+v", got.From, got.To, got.Communes)
	}
	got = report(e.admin, "?area=xa-b&from=2026-11-03&to=2026-11-09")
	if !got.End.Equal(time.Date(2026, 11, 10, 0, 0, 0, 0, hcm)) || got.To != "2026-11-09" {
		t.Errorf("a week: [%v, %v) to %s", got.Start, got.End, got.To)
	}

	for _, c := range []struct{ format, ctype, magic string }{
		{"csv", "text/csv", "\uFEFF"}, {"xlsx", "application/vnd.openxmlformats", "PK"}, {"pdf", "application/pdf", "%PDF"},
	} {
		r := e.do("GET", "/api/v1/reports/broadcast?area=xa-a&month=2026-11&format="+c.format, e.opA, nil)
		want(t, r, http.StatusOK)
		if !strings.HasPrefix(r.header.Get("Content-Type"), c.ctype) || !bytes.HasPrefix(r.body, []byte(c.magic)) {
			t.Errorf("%s: Content-Type %q, body starts %q", c.format, r.header.Get("Content-Type"), r.body[:min(8, len(r.body))])
		}
		if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="bao-cao-xa-a-2026-11-01-2026-11-30.`+c.format+`"` {
			t.Errorf("%s: Content-Disposition %q", c.format, cd)
		}
	}

	// Out of scope, unknown, malformed: refused, nothing computed.
	wantError(t, e.do("GET", "/api/v1/reports/broadcast?area=xa-b", e.opA, nil), http.StatusForbidden, loa.EFORBIDDEN, "xa-b")
	wantError(t, e.do("GET", "/api/v1/reports/broadcast?area=hn", e.techA, nil), http.StatusForbidden, loa.EFORBIDDEN, "area")
	wantError(t, e.do("GET", "/api/v1/reports/broadcast?area=nowhere", e.admin, nil), http.StatusNotFound, loa.ENOTFOUND, "nowhere")
	wantError(t, e.do("GET", "/api/v1/reports/broadcast", e.admin, nil), http.StatusBadRequest, loa.EINVALID, "area")
	for q, word := range map[string]string{
		"?area=hn&month=2026-13":                 "month",
		"?area=hn&month=2026-11&from=2026-11-01": "month",
		"?area=hn&from=2026-11-01":               "to",
		"?area=hn&from=2026-11-09&to=2026-11-01": "to",
		"?area=hn&from=2025-01-01&to=2026-11-01": "366",
		"?area=hn&from=1/11/2026&to=2026-11-30":  "from",
		"?area=hn&format=docx":                   "format",
		"?area=h%20n":                            "area",
	} {
		wantError(t, e.do("GET", "/api/v1/reports/broadcast"+q, e.admin, nil), http.StatusBadRequest, loa.EINVALID, word)
	}
	wantError(t, e.do("GET", "/api/v1/reports/broadcast?area=hn", "", nil), http.StatusUnauthorized, loa.EUNAUTHENTICATED)
}
