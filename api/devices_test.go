package api_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestDevicesAreScoped(t *testing.T) {
	e := newEnv(t)
	if got := e.deviceIDs(e.admin); !slices.Equal(got, []string{"dev-a1", "dev-b1"}) {
		t.Errorf("admin sees %v", got)
	}
	if got := e.deviceIDs(e.opA); !slices.Equal(got, []string{"dev-a1"}) {
		t.Errorf("operator A sees %v, want only dev-a1", got)
	}
	if got := e.deviceIDs(e.opB); !slices.Equal(got, []string{"dev-b1"}) {
		t.Errorf("operator B sees %v, want only dev-b1", got)
	}
	want(t, e.do("GET", "/api/v1/devices/dev-a1", e.opA, nil), http.StatusOK)

	// Another commune's device and a missing one look the same.
	other := e.do("GET", "/api/v1/devices/dev-b1", e.opA, nil)
	missing := e.do("GET", "/api/v1/devices/dev-zz", e.opA, nil)
	wantError(t, other, http.StatusNotFound, "not_found")
	wantError(t, missing, http.StatusNotFound, "not_found")
	if strings.ReplaceAll(string(other.body), "dev-b1", "X") != strings.ReplaceAll(string(missing.body), "dev-zz", "X") {
		t.Errorf("out-of-scope and missing devices answer differently: %s vs %s", other.body, missing.body)
	}
}

func TestDeviceStateIsIncluded(t *testing.T) {
	e := newEnv(t)
	var list []map[string]any
	r := e.do("GET", "/api/v1/devices", e.admin, nil)
	want(t, r, http.StatusOK)
	r.json(t, &list)
	if len(list) != 2 {
		t.Fatalf("devices %s", r.body)
	}
	a1, b1 := list[0], list[1]
	if a1["area_id"] != "a-1" || a1["name"] != "Loa chợ" {
		t.Errorf("device fields missing: %v", a1)
	}
	st, ok := a1["state"].(map[string]any)
	if !ok || st["online"] != true {
		t.Errorf("dev-a1 state %v, want online", a1["state"])
	}
	if v, ok := b1["state"]; !ok || v != nil {
		t.Errorf(`dev-b1 "state" = %v (present %v), want null`, v, ok)
	}
}

func TestCreateDeviceWithinScope(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/api/v1/devices", e.techA, map[string]any{"id": "dev-b2", "area_id": "b-1", "name": "x"})
	wantError(t, r, http.StatusForbidden, "forbidden", "area_id", "b-1")
	if slices.Contains(e.deviceIDs(e.admin), "dev-b2") {
		t.Fatal("out-of-scope device was stored")
	}

	r = e.do("POST", "/api/v1/devices", e.techA, map[string]any{"id": "dev-a2", "area_id": "a-1", "name": "Loa trường học", "lat": 21.0, "lon": 105.8})
	want(t, r, http.StatusCreated)
	var created struct {
		Device struct {
			ID, AreaID, Name string
		} `json:"device"`
		Password string `json:"password"`
	}
	r.json(t, &created)
	if created.Device.ID != "dev-a2" || created.Device.Name != "Loa trường học" || len(created.Password) < 16 {
		t.Errorf("created %s", r.body)
	}
	ok, err := e.db.CheckDeviceCredentials(t.Context(), "dev-a2", created.Password)
	if err != nil || !ok {
		t.Errorf("returned password does not authenticate the device: %v %v", ok, err)
	}
	// The password is shown once: reading the device back does not show it.
	r = e.do("GET", "/api/v1/devices/dev-a2", e.techA, nil)
	want(t, r, http.StatusOK)
	if strings.Contains(string(r.body), created.Password) || strings.Contains(string(r.body), "password") {
		t.Errorf("device read shows the password: %s", r.body)
	}
	if !slices.Contains(e.auditActions(), "device.create dev-a2") {
		t.Errorf("audit %v lacks device.create dev-a2", e.auditActions())
	}
	r = e.do("POST", "/api/v1/devices", e.techA, map[string]any{"id": "dev-a2", "area_id": "a-1"})
	wantError(t, r, http.StatusConflict, "conflict", "dev-a2")
}

func TestBadDeviceBodiesAre400(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, body string
		words      []string
	}{
		{"bad id", `{"id":"Loa 1","area_id":"a-1"}`, []string{"id"}},
		{"no area", `{"id":"dev-x"}`, []string{"area_id"}},
		{"latitude", `{"id":"dev-x","area_id":"a-1","lat":91}`, []string{"lat"}},
		{"longitude", `{"id":"dev-x","area_id":"a-1","lon":-200}`, []string{"lon"}},
		{"unknown field", `{"id":"dev-x","area_id":"a-1","password":"x"}`, []string{"password"}},
		{"wrong type", `{"id":"dev-x","area_id":"a-1","lat":"21.0"}`, []string{"lat", "number"}},
		{"id not a string", `{"id":7,"area_id":"a-1"}`, []string{"id", "string"}},
		{"syntax", `{"id":"dev-x",`, []string{"JSON"}},
		{"not an object", `["dev-x"]`, []string{"body"}},
		{"trailing data", `{"id":"dev-x","area_id":"a-1"}{}`, []string{"after"}},
		{"empty", ``, []string{"empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/api/v1/devices", e.admin, c.body)
			wantError(t, r, http.StatusBadRequest, "invalid", c.words...)
		})
	}
	// Too large is 413, whether the length is declared or not.
	huge := `{"id":"dev-x","area_id":"a-1","name":"` + strings.Repeat("a", 1<<20) + `"}`
	wantError(t, e.do("POST", "/api/v1/devices", e.admin, huge), http.StatusRequestEntityTooLarge, "too_large", "body", "1 MiB")
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/devices", struct{ io.Reader }{strings.NewReader(huge)}) // chunked
	req.Header.Set("Authorization", "Bearer "+e.admin)
	req.Header.Set("Content-Type", "application/json")
	wantError(t, e.send(req), http.StatusRequestEntityTooLarge, "too_large", "body", "1 MiB")
	if got := e.deviceIDs(e.admin); len(got) != 2 {
		t.Errorf("bad bodies stored devices: %v", got)
	}
	if got := e.auditActions(); len(got) != 0 {
		t.Errorf("bad bodies were audited: %v", got)
	}
}
