package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/loa-broadcast/loa"
)

// TestDeviceOffset: a technician sets a receiver's delay offset with a
// PATCH of the device; out of bounds, or bringing the playout delay
// (200 ms) plus the offset below 100 ms, is refused with the reason and
// changes nothing; another commune's device is not found.
func TestDeviceOffset(t *testing.T) {
	e := newEnv(t)
	r := e.do("PATCH", "/api/v1/devices/dev-a1", e.techA, map[string]any{"offset_ms": 40})
	want(t, r, http.StatusOK)
	var v map[string]any
	r.json(t, &v)
	if v["offset_ms"] != 40.0 {
		t.Errorf("answer %s, want offset_ms 40", r.body)
	}
	r = e.do("GET", "/api/v1/devices/dev-a1", e.opA, nil)
	r.json(t, &v)
	if v["offset_ms"] != 40.0 {
		t.Errorf("GET %s, want offset_ms 40", r.body)
	}
	for _, c := range []struct {
		body any
		says string
	}{
		{map[string]any{"offset_ms": -101}, "below 100 ms"},
		{map[string]any{"offset_ms": 501}, "-150..500"},
		{map[string]any{"offset_ms": -151}, "-150..500"},
		{map[string]any{}, "offset_ms"},
		{map[string]any{"offset_ms": 10, "name": "x"}, "name"},
	} {
		wantError(t, e.do("PATCH", "/api/v1/devices/dev-a1", e.techA, c.body), http.StatusBadRequest, "invalid", c.says)
	}
	d, err := e.db.Device(context.Background(), "dev-a1")
	if err != nil || d.OffsetMs != 40 {
		t.Errorf("stored %+v (%v): a refused change changed it", d, err)
	}
	want(t, e.do("PATCH", "/api/v1/devices/dev-a1", e.techA, map[string]any{"offset_ms": -100}), http.StatusOK)
	wantError(t, e.do("PATCH", "/api/v1/devices/dev-b1", e.techA, map[string]any{"offset_ms": 10}), http.StatusNotFound, "not_found")
	wantError(t, e.do("PATCH", "/api/v1/devices/dev-a1", e.opA, map[string]any{"offset_ms": 10}), http.StatusForbidden, "forbidden")
}

// TestDeviceSyncInFleetList: a receiver's sync report shows in the fleet
// list and the device's JSON, as the spec says.
func TestDeviceSyncInFleetList(t *testing.T) {
	e := newEnv(t)
	e.server.Presence = fakePresence{"dev-a1": {ID: "dev-a1", Online: true, Telemetry: &loa.Telemetry{RSSI: -71, Volume: 80,
		Sync: &loa.SyncStats{Source: "rtcp-xr", OffsetMs: 812.5, ErrMs: 0.8, RTTMs: 41, DriftPPM: -12.5, CorrMin: 30}}}}
	var list []map[string]any
	r := e.do("GET", "/api/v1/devices", e.admin, nil)
	want(t, r, http.StatusOK)
	r.json(t, &list)
	st, _ := list[0]["state"].(map[string]any)
	tele, _ := st["telemetry"].(map[string]any)
	sync, _ := tele["sync"].(map[string]any)
	if sync["sync_err_ms"] != 0.8 || sync["drift_ppm"] != -12.5 || sync["corrections_per_min"] != 30.0 || sync["source"] != "rtcp-xr" {
		t.Errorf("fleet list sync %v", sync)
	}
	want(t, e.do("GET", "/api/v1/devices/dev-a1", e.admin, nil), http.StatusOK)
	want(t, e.do("GET", "/api/v1/devices?problem=out_of_sync", e.admin, nil), http.StatusOK)
}
