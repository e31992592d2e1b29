package api_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
)

// The fake alert service speaks a preview as a few bytes of "Ogg".
func (f *fakeAlerts) PreviewAlert(ctx context.Context, text string, tone bool) ([]byte, error) {
	return fakeOgg, nil
}

func TestAlertAudienceAndCheck(t *testing.T) {
	e := newEnv(t)
	type audience struct {
		Receivers, Online int
		Areas             map[string]struct{ Receivers, Online int }
	}
	var got audience
	r := e.do("GET", "/api/v1/alerts/audience", e.admin, nil)
	want(t, r, http.StatusOK)
	r.json(t, &got)
	if got.Receivers != 2 || got.Online != 1 || got.Areas["hn"].Receivers != 2 || got.Areas["xa-a"].Online != 1 || got.Areas["b-1"].Receivers != 1 || got.Areas["b-1"].Online != 0 {
		t.Errorf("admin's audience %s", r.body)
	}
	r = e.do("GET", "/api/v1/alerts/audience", e.opA, nil)
	want(t, r, http.StatusOK)
	got = audience{}
	r.json(t, &got)
	if _, ok := got.Areas["hn"]; ok || got.Receivers != 1 || got.Areas["xa-a"].Receivers != 1 {
		t.Errorf("a commune operator's audience %s", r.body)
	}
	r = e.do("GET", "/api/v1/alerts/audience?test=true", e.admin, nil)
	want(t, r, http.StatusOK)
	got = audience{}
	r.json(t, &got)
	if got.Receivers != 0 {
		t.Errorf("test audience without test areas %s", r.body)
	}

	alert := func(areas ...string) map[string]any {
		return map[string]any{"title": "Lũ", "level": "uu_tien", "content": map[string]any{"text": "Sơ tán."}, "targets": map[string]any{"areas": areas}}
	}
	r = e.do("POST", "/api/v1/alerts/check", e.opA, alert("xa-a"))
	want(t, r, http.StatusOK)
	got = audience{}
	r.json(t, &got)
	if got.Receivers != 1 || got.Online != 1 || got.Areas["a-1"].Receivers != 1 {
		t.Errorf("check %s", r.body)
	}
	r = e.do("POST", "/api/v1/alerts/check", e.admin, alert("xa-a", "xa-b"))
	want(t, r, http.StatusOK)
	got = audience{}
	r.json(t, &got)
	if got.Receivers != 2 || got.Areas["hn"].Receivers != 2 {
		t.Errorf("check of two communes %s", r.body)
	}
	bad := alert("xa-a")
	bad["repeats"] = 11
	wantError(t, e.do("POST", "/api/v1/alerts/check", e.opA, bad), http.StatusBadRequest, "invalid", "repeats")
	wantError(t, e.do("POST", "/api/v1/alerts/check", e.opA, alert("xa-b")), http.StatusForbidden, "forbidden", "xa-b")
	test := alert("xa-a")
	test["test"] = true
	wantError(t, e.do("POST", "/api/v1/alerts/check", e.opA, test), http.StatusBadRequest, "invalid", "marked for tests")
	emergency := alert("xa-a")
	emergency["level"] = "khan_cap"
	wantError(t, e.do("POST", "/api/v1/alerts/check", e.opA, emergency), http.StatusForbidden, "forbidden", "level")
	if n := len(e.auditActions()); n != 0 {
		t.Errorf("a dry run left %d audit records", n)
	}
}

func TestAlertPreview(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"text": "Bà con sơ tán ngay.", "language": "vi", "tone": true}
	r := e.do("POST", "/api/v1/alerts/preview", e.province, body)
	want(t, r, http.StatusOK)
	if r.header.Get("Content-Type") != "audio/ogg" || string(r.body) != string(fakeOgg) {
		t.Errorf("preview %s %q", r.header.Get("Content-Type"), r.body)
	}
	wantError(t, e.do("POST", "/api/v1/alerts/preview", e.province, map[string]any{"text": "  "}), http.StatusBadRequest, "invalid", "text")
	wantError(t, e.do("POST", "/api/v1/alerts/preview", e.province, map[string]any{"text": "x", "language": "en"}), http.StatusBadRequest, "invalid", "language")
	wantError(t, e.do("POST", "/api/v1/alerts/preview", e.province, map[string]any{"text": strings.Repeat("á", 2001)}), http.StatusBadRequest, "invalid", "text")
	wantError(t, e.do("POST", "/api/v1/alerts/preview", e.techA, body), http.StatusForbidden, "forbidden")
	for range 5 {
		want(t, e.do("POST", "/api/v1/alerts/preview", e.province, body), http.StatusOK)
	}
	r = e.do("POST", "/api/v1/alerts/preview", e.province, body)
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	want(t, e.do("POST", "/api/v1/alerts/preview", e.admin, body), http.StatusOK) // another caller has its own
}

func TestAlertHistoryPagesAndCSV(t *testing.T) {
	e := newEnv(t)
	for _, title := range []string{"Một", "Hai", "Ba"} {
		a := map[string]any{"title": title, "level": "khan_cap", "content": map[string]any{"text": "Sơ tán."},
			"targets": map[string]any{"devices": []string{"dev-a1", "dev-b1"}}}
		want(t, e.do("POST", "/api/v1/alerts", e.admin, a), http.StatusCreated)
	}
	r := e.do("GET", "/api/v1/alerts?limit=2&offset=1&report=false", e.admin, nil)
	want(t, r, http.StatusOK)
	var page []struct {
		Title  string
		Report []loa.Delivery
		Totals struct{ All loa.AlertTotals }
	}
	r.json(t, &page)
	if len(page) != 2 || len(page[0].Report) != 0 || page[0].Totals.All.Receivers != 2 {
		t.Errorf("page %s", r.body)
	}
	wantError(t, e.do("GET", "/api/v1/alerts?limit=0", e.admin, nil), http.StatusBadRequest, "invalid", "limit")
	wantError(t, e.do("GET", "/api/v1/alerts?report=maybe", e.admin, nil), http.StatusBadRequest, "invalid", "report")

	r = e.do("GET", "/api/v1/alerts?format=csv", e.admin, nil)
	want(t, r, http.StatusOK)
	body, ok := strings.CutPrefix(string(r.body), "\uFEFF")
	if !ok || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("CSV without a byte order mark: %s %q", r.header.Get("Content-Type"), r.body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][1] != "Tiêu đề (Title)" || rows[1][2] != "Khẩn cấp" || rows[1][3] != "đang phát" || rows[1][6] != "2" || rows[1][5] != "dev-a1, dev-b1" {
		t.Errorf("rows %q", rows)
	}
}
