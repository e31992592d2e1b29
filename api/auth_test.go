package api_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa/api"
)

func TestHealthzNeedsNoToken(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz", "", nil)
	want(t, r, http.StatusOK)
	var body struct{ OK bool }
	r.json(t, &body)
	if !body.OK {
		t.Errorf("healthz body %s", r.body)
	}
}

func TestMissingOrWrongTokenIs401(t *testing.T) {
	e := newEnv(t)
	headers := map[string]string{
		"none":          "",
		"basic":         "Basic YWRtaW46YWRtaW4=",
		"empty bearer":  "Bearer ",
		"unknown":       "Bearer loa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"not a secret":  "Bearer hunter2",
		"secret alone":  e.admin,
		"wrong scheme":  "Token " + e.admin,
		"secret suffix": "Bearer " + e.admin + "x",
		"huge":          "Bearer " + e.admin + strings.Repeat("a", 4096),
	}
	paths := []string{"GET /api/v1/areas", "GET /api/v1/devices", "POST /api/v1/sessions", "GET /api/v1/media",
		"POST /api/v1/tokens", "GET /api/v1/audit", "GET /metrics", "GET /api/v1/sessions/s-1/sdp?dest=127.0.0.1:5004"}
	for name, h := range headers {
		for _, p := range paths {
			method, path, _ := strings.Cut(p, " ")
			req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if h != "" {
				req.Header.Set("Authorization", h)
			}
			r := e.send(req)
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s %s: status %d, want 401", name, p, r.status)
				continue
			}
			want := "unauthorized" // a bad bearer token
			if h == "" {
				want = "unauthenticated" // no credentials: sign in
			}
			if _, code := r.apiError(t); code != want {
				t.Errorf("%s %s: code %q", name, p, code)
			}
		}
	}
	if n := e.sessions.count(); n != 0 {
		t.Errorf("%d sessions started without a valid token", n)
	}
}

func TestRoleForbiddenIs403AndStoresNothing(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, secret, method, path string
		body                       any
	}{
		{"technician starts a session", e.techA, "POST", "/api/v1/sessions", map[string]any{"media_id": "m-1", "targets": map[string]any{"areas": []string{"xa-a"}}}},
		{"operator provisions a device", e.opA, "POST", "/api/v1/devices", map[string]any{"id": "dev-x", "area_id": "a-1"}},
		{"operator creates an area", e.opA, "POST", "/api/v1/areas", map[string]any{"id": "a-2", "parent_id": "xa-a", "name": "Cụm 2", "kind": "cluster"}},
		{"operator issues a token", e.opA, "POST", "/api/v1/tokens", map[string]any{"name": "x", "role": "admin"}},
		{"province issues a token", e.province, "POST", "/api/v1/tokens", map[string]any{"name": "x", "role": "admin"}},
		{"operator reads the audit log", e.opA, "GET", "/api/v1/audit", nil},
		{"technician uploads media", e.techA, "POST", "/api/v1/media", "x"},
		{"technician asks for SDP", e.techA, "GET", "/api/v1/sessions/s-1/sdp?dest=127.0.0.1:5004", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.path, c.secret, c.body)
			wantError(t, r, http.StatusForbidden, "forbidden")
		})
	}
	if ids := e.deviceIDs(e.admin); slices.Contains(ids, "dev-x") {
		t.Error("forbidden device create stored dev-x")
	}
	r := e.do("GET", "/api/v1/areas/a-2", e.admin, nil)
	want(t, r, http.StatusNotFound)
	if e.sessions.count() != 0 || e.media.count() != 0 {
		t.Error("forbidden call started a session or stored media")
	}
	if got := e.auditActions(); len(got) != 0 {
		t.Errorf("audit log after only forbidden calls: %v", got)
	}
}

func TestMetricsNeedAToken(t *testing.T) {
	e := newEnv(t)
	want(t, e.do("GET", "/metrics", "", nil), http.StatusUnauthorized)
	r := e.do("GET", "/metrics", e.techA, nil)
	want(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), "loa_test_total") {
		t.Errorf("metrics do not come from the configured Gatherer:\n%s", r.body)
	}
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	e := newEnv(t)
	e.media.fail = errDiskOnFire
	r := e.do("GET", "/api/v1/media", e.admin, nil)
	wantError(t, r, http.StatusInternalServerError, "internal", "internal error")
	if strings.Contains(string(r.body), "disk") || strings.Contains(string(r.body), "/var/lib") {
		t.Errorf("internal error leaked: %s", r.body)
	}
}

func TestUnknownAPIRoutesAreJSON(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.do("GET", "/api/v1/nothing", e.admin, nil), http.StatusNotFound, "not_found", "/api/v1/nothing")
	r := e.do("DELETE", "/api/v1/areas", e.admin, nil)
	want(t, r, http.StatusMethodNotAllowed)
	r.apiError(t)
	if allow := r.header.Values("Allow"); !slices.Equal(allow, []string{"GET", "POST"}) {
		t.Errorf("Allow %v, want GET and POST", allow)
	}
}

func TestMissingServicesAre503(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(api.ValidateWithSpec(t, (&api.Server{Tokens: e.db}).Handler()))
	defer srv.Close()
	for _, p := range []string{"/api/v1/areas", "/api/v1/devices", "/api/v1/media", "/api/v1/sessions", "/api/v1/audit"} {
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		wantError(t, e.send(req), http.StatusServiceUnavailable, "unavailable", "not configured")
	}
}

func TestRequestLogNamesTheActorNotTheSecret(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	h := (&api.Server{Tokens: e.db, Areas: e.db, Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}).Handler()
	h = api.ValidateWithSpec(t, h)
	req := httptest.NewRequest("GET", "/api/v1/areas", nil)
	req.Header.Set("Authorization", "Bearer "+e.opA)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req) // synchronous: the log line is written when this returns
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	log := buf.String()
	if !strings.Contains(log, "actor="+e.tokens[e.opA].ID) || !strings.Contains(log, "status=200") {
		t.Errorf("request log lacks actor or status: %s", log)
	}
	if strings.Contains(log, e.opA) {
		t.Errorf("request log contains the secret: %s", log)
	}
}
