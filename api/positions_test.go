package api_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

// TestDevicePositions: the map's compact rows are the placed devices in
// the caller's scope with their presence, gzipped when asked; devices
// without a position are counted, not listed.
func TestDevicePositions(t *testing.T) {
	e := newEnv(t)
	for _, d := range []map[string]any{
		{"id": "loa-cho", "area_id": "a-1", "name": "Loa chợ mới", "lat": 21.0285123, "lon": 105.8541987},
		{"id": "loa-dinh", "area_id": "b-1", "name": "Loa đình", "lat": 21.05, "lon": 105.9},
	} {
		want(t, e.do("POST", "/api/v1/devices", e.admin, d), http.StatusCreated)
	}
	e.server.Presence.(fakePresence)["loa-cho"] = loa.DeviceState{ID: "loa-cho", Online: true, Presence: loa.PresenceOnline}

	type answer struct {
		Fields   []string `json:"fields"`
		Devices  [][]any  `json:"devices"`
		Unplaced int      `json:"unplaced"`
	}
	read := func(secret, query string) answer {
		t.Helper()
		var a answer
		r := e.do("GET", "/api/v1/devices/positions"+query, secret, nil)
		want(t, r, http.StatusOK)
		r.json(t, &a)
		return a
	}
	all := read(e.admin, "")
	if len(all.Fields) != 5 || all.Fields[0] != "id" || all.Fields[4] != "presence" || all.Unplaced != 2 || len(all.Devices) != 2 {
		t.Fatalf("admin: %+v", all)
	}
	if got, _ := json.Marshal(all.Devices); string(got) != `[["loa-cho","a-1",21.02851,105.8542,"online"],["loa-dinh","b-1",21.05,105.9,"offline"]]` {
		t.Errorf("admin rows: %s", got)
	}
	if a := read(e.opA, ""); len(a.Devices) != 1 || a.Devices[0][0] != "loa-cho" || a.Unplaced != 1 {
		t.Errorf("operator of xa-a: %+v", a)
	}
	if a := read(e.admin, "?area=xa-b"); len(a.Devices) != 1 || a.Devices[0][0] != "loa-dinh" || a.Unplaced != 1 {
		t.Errorf("?area=xa-b: %+v", a)
	}
	wantError(t, e.do("GET", "/api/v1/devices/positions?area=xa-b", e.opA, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", "/api/v1/devices/positions?area=%20x", e.admin, nil), http.StatusBadRequest, "invalid")
	wantError(t, e.do("GET", "/api/v1/devices/positions", "", nil), http.StatusUnauthorized, "unauthenticated")

	// A browser takes it gzipped.
	req, err := http.NewRequest("GET", e.srv.URL+"/api/v1/devices/positions", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var gz answer
	if b, err := io.ReadAll(zr); err != nil || json.Unmarshal(b, &gz) != nil || len(gz.Devices) != 2 {
		t.Errorf("gzipped answer %+v, %v", gz, err)
	}

	// Its path is no device's id.
	wantError(t, e.do("POST", "/api/v1/devices", e.admin, map[string]any{"id": "positions", "area_id": "a-1"}), http.StatusBadRequest, "invalid", "reserved")
}

// TestMapTilesInMe: a configured tile URL reaches the console in /me's
// station, and its host the CSP's img-src; none, neither.
func TestMapTilesInMe(t *testing.T) {
	e := newEnv(t)
	var me struct {
		Station struct {
			Map *struct{ Tiles, Attribution string } `json:"map"`
		} `json:"station"`
	}
	r := e.do("GET", "/api/v1/me", e.opA, nil)
	want(t, r, http.StatusOK)
	r.json(t, &me)
	if me.Station.Map != nil {
		t.Errorf("no tiles configured, yet /me has %+v", me.Station.Map)
	}
	if csp := e.do("GET", "/", "", nil).header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:;") {
		t.Errorf("CSP without tiles: %q", csp)
	}

	e.server.MapTiles, e.server.MapAttribution = "https://{s}.tile.example.vn/{z}/{x}/{y}.png", "© Bản đồ Việt"
	e.srv.Close()
	e.srv = httptest.NewServer(api.ValidateWithSpec(t, e.server.Handler()))
	t.Cleanup(e.srv.Close)
	r = e.do("GET", "/api/v1/me", e.opA, nil)
	want(t, r, http.StatusOK)
	r.json(t, &me)
	if me.Station.Map == nil || me.Station.Map.Tiles != e.server.MapTiles || me.Station.Map.Attribution != "© Bản đồ Việt" {
		t.Errorf("/me station map: %+v", me.Station.Map)
	}
	if csp := e.do("GET", "/", "", nil).header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://*.tile.example.vn;") {
		t.Errorf("CSP with tiles: %q", csp)
	}
}
