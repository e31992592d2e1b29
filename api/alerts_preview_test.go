package api_test

import (
	"net/http"
	"testing"

	"github.com/loa-broadcast/loa"
)

// TestAlertPreviewTargets: before sending, the desk learns how many
// targets are online, on battery and the least runtime among them; power
// shows in the fleet list; bad or foreign targets are refused.
func TestAlertPreviewTargets(t *testing.T) {
	e := newEnv(t)
	e.server.Presence = fakePresence{
		"dev-a1": {ID: "dev-a1", Online: true, Telemetry: &loa.Telemetry{Power: &loa.PowerStats{Mains: false, BatteryPct: 35, RuntimeMin: 42}}},
		"dev-b1": {ID: "dev-b1", Online: true, Telemetry: &loa.Telemetry{Power: &loa.PowerStats{Mains: true, BatteryPct: 90, RuntimeMin: 500}}},
	}
	var p struct {
		Receivers, Online, OnBattery int
		MinRuntimeMin                *int `json:"min_runtime_min"`
	}
	r := e.do("POST", "/api/v1/alerts/preview-targets", e.province, map[string]any{"targets": map[string]any{"areas": []string{"hn"}}})
	want(t, r, http.StatusOK)
	r.json(t, &p)
	var raw map[string]any
	r.json(t, &raw)
	if p.Receivers != 2 || raw["online"] != 2.0 || raw["on_battery"] != 1.0 || p.MinRuntimeMin == nil || *p.MinRuntimeMin != 42 {
		t.Errorf("preview %s, want 2 receivers, 2 online, 1 on battery with 42 min", r.body)
	}
	r = e.do("POST", "/api/v1/alerts/preview-targets", e.opB, map[string]any{"targets": map[string]any{"devices": []string{"dev-b1"}}})
	want(t, r, http.StatusOK)
	raw = nil
	r.json(t, &raw)
	if raw["on_battery"] != 0.0 || raw["min_runtime_min"] != nil {
		t.Errorf("preview %s, want none on battery and no runtime", r.body)
	}

	wantError(t, e.do("POST", "/api/v1/alerts/preview-targets", e.opA, map[string]any{"targets": map[string]any{"areas": []string{"xa-b"}}}),
		http.StatusForbidden, "forbidden")
	wantError(t, e.do("POST", "/api/v1/alerts/preview-targets", e.province, map[string]any{"targets": map[string]any{}}),
		http.StatusBadRequest, "invalid", "targets")
	wantError(t, e.do("POST", "/api/v1/alerts/preview-targets", e.admin, map[string]any{"targets": map[string]any{"devices": []string{"nope"}}}),
		http.StatusNotFound, "not_found", "targets.devices")

	var list []map[string]any
	r = e.do("GET", "/api/v1/devices", e.admin, nil)
	want(t, r, http.StatusOK)
	r.json(t, &list)
	st, _ := list[0]["state"].(map[string]any)
	tele, _ := st["telemetry"].(map[string]any)
	if power, _ := tele["power"].(map[string]any); power["mains"] != false || power["battery_pct"] != 35.0 || power["runtime_min"] != 42.0 {
		t.Errorf("fleet list power %v", tele["power"])
	}
	want(t, e.do("GET", "/api/v1/devices?problem=low_battery", e.admin, nil), http.StatusOK)
}
