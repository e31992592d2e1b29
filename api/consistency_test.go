package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

// storeEnv is newEnv with the store also serving playlists and the
// credential service of credentials_test.go, behind the spec check.
func storeEnv(t *testing.T) *env {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.db.PutMedia(ctx, &loa.Media{ID: "m-1", Name: "Bản tin", Hash: strings.Repeat("ab", 32), Size: 10}); err != nil {
		t.Fatal(err)
	}
	s := &api.Server{Areas: e.db, Devices: e.db, Tokens: e.db, Audit: e.db, Playlists: e.db, Health: e.health,
		Creds: storeCreds{e, true}, Now: func() time.Time { return testNow }}
	e.srv.Close()
	e.srv = httptest.NewServer(api.ValidateWithSpec(t, s.Handler()))
	t.Cleanup(e.srv.Close)
	return e
}

// TestDurationsReadBackAsSent checks that a duration comes back in the
// form it was sent in, beside the old nanoseconds, and that the old form
// may be sent too.
func TestDurationsReadBackAsSent(t *testing.T) {
	e := storeEnv(t)
	r := e.do("POST", "/api/v1/playlists", e.opA, map[string]any{"id": "sang", "name": "Sáng",
		"items": []map[string]any{{"media_id": "m-1", "gap": "2s"}, {"media_id": "m-1"}}})
	want(t, r, http.StatusCreated)
	var p struct {
		Items []map[string]any `json:"items"`
	}
	r.json(t, &p)
	if len(p.Items) != 2 || p.Items[0]["gap"] != "2s" || p.Items[0]["gap_ns"] != 2e9 || p.Items[1]["gap"] != nil {
		t.Errorf("playlist items %s", r.body)
	}
	// What came back goes in again.
	r = e.do("POST", "/api/v1/playlists", e.opA, map[string]any{"id": "sang-2", "name": "Sáng", "items": p.Items})
	want(t, r, http.StatusCreated)
	r = e.do("GET", "/api/v1/playlists/sang-2", e.opA, nil)
	want(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"gap_ns":2000000000,"gap":"2s"`) {
		t.Errorf("playlist sent back %s", r.body)
	}
	wantError(t, e.do("POST", "/api/v1/playlists", e.opA, map[string]any{"id": "x", "name": "x",
		"items": []map[string]any{{"media_id": "m-1", "gap": "2s", "gap_ns": 1}}}), http.StatusBadRequest, loa.EINVALID, "items[0].gap", "items[0].gap_ns")
}

func TestDateOrTimeErrorSaysBoth(t *testing.T) {
	e := storeEnv(t)
	for _, path := range []string{"/api/v1/devices/dev-a1/health?from=hôm%20qua", "/api/v1/agenda?from=hôm%20qua&to=2026-11-26"} {
		wantError(t, e.do("GET", path, e.opA, nil), http.StatusBadRequest, loa.EINVALID, "from", "2026-11-25", "RFC 3339", loa.DefaultZone)
	}
}

func TestDeleteArea(t *testing.T) {
	e := storeEnv(t)
	wantError(t, e.do("DELETE", "/api/v1/areas/xa-a", e.admin, nil), http.StatusConflict, loa.ECONFLICT, "child", "a-1")
	wantError(t, e.do("DELETE", "/api/v1/areas/a-1", e.admin, nil), http.StatusConflict, loa.ECONFLICT, "dev-a1")
	wantError(t, e.do("DELETE", "/api/v1/areas/b-1", e.opA, nil), http.StatusForbidden, loa.EFORBIDDEN)
	wantError(t, e.do("DELETE", "/api/v1/areas/b-1", e.provA, nil), http.StatusNotFound, loa.ENOTFOUND, "b-1")
	wantError(t, e.do("DELETE", "/api/v1/areas/nowhere", e.admin, nil), http.StatusNotFound, loa.ENOTFOUND, "nowhere")

	r := e.do("POST", "/api/v1/areas", e.provA, map[string]any{"id": "a-2", "parent_id": "xa-a", "name": "Cụm 2", "kind": "cluster"})
	want(t, r, http.StatusCreated)
	want(t, e.do("DELETE", "/api/v1/areas/a-2", e.provA, nil), http.StatusNoContent)
	wantError(t, e.do("GET", "/api/v1/areas/a-2", e.admin, nil), http.StatusNotFound, loa.ENOTFOUND)
	if got := e.auditActions(); !slices.Contains(got, "area.delete a-2") {
		t.Errorf("audit %v", got)
	}
}

func TestDecommissionDevice(t *testing.T) {
	e := storeEnv(t)
	wantError(t, e.do("DELETE", "/api/v1/devices/dev-b1", e.techA, nil), http.StatusNotFound, loa.ENOTFOUND, "dev-b1")
	wantError(t, e.do("DELETE", "/api/v1/devices/dev-a1", e.opA, nil), http.StatusForbidden, loa.EFORBIDDEN)

	r := e.do("DELETE", "/api/v1/devices/dev-a1", e.techA, nil)
	want(t, r, http.StatusOK)
	var got struct {
		Device map[string]any `json:"device"`
		Broker string         `json:"broker"`
	}
	r.json(t, &got)
	if got.Device["decommissioned_at"] == nil || got.Device["credentials"] != loa.CredentialsRevoked || !strings.HasPrefix(got.Broker, "embedded:") {
		t.Errorf("decommission answered %s", r.body)
	}

	// Out of the list, but its record and history stay readable.
	if ids := e.deviceIDs(e.admin); slices.Contains(ids, "dev-a1") {
		t.Errorf("devices after decommission %v", ids)
	}
	want(t, e.do("GET", "/api/v1/devices/dev-a1", e.techA, nil), http.StatusOK)
	want(t, e.do("GET", "/api/v1/devices/dev-a1/health", e.techA, nil), http.StatusOK)
	want(t, e.do("GET", "/api/v1/devices/dev-a1/health", e.admin, nil), http.StatusOK)

	// Nothing brings it back.
	wantError(t, e.do("DELETE", "/api/v1/devices/dev-a1", e.techA, nil), http.StatusConflict, loa.ECONFLICT, "decommissioned")
	wantError(t, e.do("POST", "/api/v1/devices/dev-a1/credentials", e.techA, nil), http.StatusConflict, loa.ECONFLICT, "decommissioned")
	wantError(t, e.do("POST", "/api/v1/devices/dev-a1/commands", e.techA, map[string]any{"op": "reboot"}), http.StatusConflict, loa.ECONFLICT, "decommissioned")
	wantError(t, e.do("POST", "/api/v1/devices", e.techA, map[string]any{"id": "dev-a1", "area_id": "a-1"}), http.StatusConflict, loa.ECONFLICT)

	// Its area may now go.
	want(t, e.do("DELETE", "/api/v1/areas/a-1", e.admin, nil), http.StatusNoContent)
	if got := e.auditActions(); !slices.Contains(got, "device.decommission dev-a1") {
		t.Errorf("audit %v", got)
	}
}

func TestClientDecommissionsAndDeletes(t *testing.T) {
	e := storeEnv(t)
	c := api.NewClient(e.srv.URL, e.admin)
	ctx := context.Background()
	d, err := c.DecommissionDevice(ctx, "dev-b1")
	if err != nil || d.ID != "dev-b1" || !d.Decommissioned() {
		t.Fatalf("DecommissionDevice = %+v, %v", d, err)
	}
	var ce *api.ClientError
	if err := c.DeleteArea(ctx, "xa-b"); !errors.As(err, &ce) || ce.Status != http.StatusConflict {
		t.Errorf("DeleteArea of a commune with a cluster: %v, want 409", err)
	}
	if err := c.DeleteArea(ctx, "b-1"); err != nil {
		t.Errorf("DeleteArea(b-1): %v", err)
	}
}
