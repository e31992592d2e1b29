package api_test

import (
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestPlayLogFiltersAndCSV(t *testing.T) {
	e := newEnv(t)
	var m loa.Media
	r := e.upload(e.opA, map[string]string{"name": "Bản tin sáng"}, "a.wav", "RIFF....WAVE")
	want(t, r, http.StatusCreated)
	r.json(t, &m)
	at := time.Date(2026, 11, 25, 23, 30, 5, 0, time.UTC) // 06:30 on the 26th in Việt Nam
	e.playlog.entries = []loa.PlayLogEntry{
		{At: at, Event: loa.PlayAired, SessionID: "s-1", Content: loa.Content{MediaID: m.ID}, Devices: []string{"dev-a1"}, Areas: []string{"a-1"}, By: "schedule:sang"},
		{At: at, Event: loa.PlayStarted, SessionID: "s-1", Content: loa.Content{MediaID: m.ID}, Areas: []string{"a-1"}, By: "schedule:sang", Detail: "lần 1, \"đầu\""},
	}

	// The event and paging filters go to the reader.
	r = e.do("GET", "/api/v1/playlog?event=aired&offset=50&limit=50", e.admin, nil)
	want(t, r, http.StatusOK)
	if f := e.playlog.lastFilter(); f.Event != loa.PlayAired || f.Offset != 50 || f.Limit != 50 {
		t.Errorf("filter %+v", f)
	}
	wantError(t, e.do("GET", "/api/v1/playlog?event=played", e.admin, nil), http.StatusBadRequest, "invalid", "event")
	wantError(t, e.do("GET", "/api/v1/playlog?offset=-1", e.admin, nil), http.StatusBadRequest, "invalid", "offset")
	wantError(t, e.do("GET", "/api/v1/playlog?format=xls", e.admin, nil), http.StatusBadRequest, "invalid", "format")

	// CSV: the whole range by default, Vietnamese, the station's time.
	r = e.do("GET", "/api/v1/playlog?format=csv&from=2026-11-26&to=2026-11-26&device=dev-a1", e.opA, nil)
	want(t, r, http.StatusOK)
	if f := e.playlog.lastFilter(); f.Limit != 10000 || f.Device != "dev-a1" || f.Area != "xa-a" {
		t.Errorf("CSV filter %+v", f)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment") {
		t.Errorf("Content-Type %q, Content-Disposition %q", ct, r.header.Get("Content-Disposition"))
	}
	body, ok := strings.CutPrefix(string(r.body), "\uFEFF")
	if !ok {
		t.Fatalf("no byte order mark: %q", r.body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "Thời gian (Time)" {
		t.Fatalf("rows %q", rows)
	}
	if got := strings.Join(rows[1], "|"); got != "26/11/2026 06:30:05|đã phát (thiết bị xác nhận)|Bản tin sáng|Cụm 1|dev-a1|schedule:sang||s-1" {
		t.Errorf("row 1: %s", got)
	}
	if rows[2][1] != "bắt đầu" || rows[2][6] != "lần 1, \"đầu\"" {
		t.Errorf("row 2: %q", rows[2])
	}
	wantError(t, e.do("GET", "/api/v1/playlog?format=csv&limit=10001", e.admin, nil), http.StatusBadRequest, "invalid", "limit")
}
