package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

// env is an API server over a real store in a temp dir, with fakes for the
// services composed in cmd/loa. The area tree is
//
//	hn (province)
//	├── xa-a (commune) ── a-1 (cluster): device dev-a1
//	└── xa-b (commune) ── b-1 (cluster): device dev-b1
type env struct {
	t        *testing.T
	db       *store.DB
	srv      *httptest.Server
	media    *fakeMedia
	sessions *fakeSessions
	sched    *schedules
	playlog  *fakePlayLog
	alarms   *fakeAlarms // alarms_test.go
	health   *fakeHealth // alarms_test.go
	registry *prometheus.Registry
	server   *api.Server

	admin, province, opA, opB, techA, provA string // token secrets
	tokens                                  map[string]*loa.Token
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, store.Options{})
}

// newEnvWith is newEnv with a store opened with opt (write faults).
func newEnvWith(t *testing.T, opt store.Options) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	for _, a := range []*loa.Area{
		{ID: "hn", Name: "Hà Nội", Kind: loa.AreaProvince},
		{ID: "xa-a", ParentID: "hn", Name: "Xã An Khánh", Kind: loa.AreaCommune},
		{ID: "xa-b", ParentID: "hn", Name: "Xã Bình Minh", Kind: loa.AreaCommune},
		{ID: "a-1", ParentID: "xa-a", Name: "Cụm 1", Kind: loa.AreaCluster},
		{ID: "b-1", ParentID: "xa-b", Name: "Cụm 1", Kind: loa.AreaCluster},
	} {
		if err := db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*loa.Device{
		{ID: "dev-a1", AreaID: "a-1", Name: "Loa chợ"},
		{ID: "dev-b1", AreaID: "b-1", Name: "Loa đình"},
	} {
		if _, err := db.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	// The programme the schedule tests name, recorded as an import would
	// (the real schedule service checks content exists).
	if err := db.PutMedia(ctx, &loa.Media{ID: "m-1", Name: "Bản tin sáng", Hash: strings.Repeat("ab", 32),
		Duration: time.Minute, Frames: 3000}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, media: &fakeMedia{}, registry: prometheus.NewRegistry(), tokens: map[string]*loa.Token{}}
	e.sessions = &fakeSessions{media: e.media}
	e.sched = &schedules{realSchedules: station.NewSchedules(db, slog.New(slog.DiscardHandler)), db: db}
	e.playlog = &fakePlayLog{}
	e.alarms, e.health = newFakeAlarms(), &fakeHealth{}
	token := func(name, role, area string) string {
		tok := &loa.Token{Name: name, Role: role, AreaID: area}
		if role != loa.RoleTechnician {
			tok.CAPSenders = []string{"kttv.hanoi"} // the province's weather service
		}
		secret, err := db.CreateToken(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[secret] = tok
		return secret
	}
	e.admin = token("admin", loa.RoleAdmin, "")
	e.province = token("sở", loa.RoleProvince, "hn")
	e.provA = token("province staff scoped to xa-a", loa.RoleProvince, "xa-a")
	e.opA = token("operator A", loa.RoleOperator, "xa-a")
	e.opB = token("operator B", loa.RoleOperator, "xa-b")
	e.techA = token("technician A", loa.RoleTechnician, "xa-a")

	e.registry.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "loa_test_total", Help: "test"}))
	s := &api.Server{
		Areas: db, Devices: db, Tokens: db, Audit: db, Users: db,
		Media: e.media, Sessions: e.sessions, Deliveries: e.sessions, Playlists: db, Alerts: &fakeAlerts{db: db},
		Schedules: e.sched, PlayLog: e.playlog, Now: func() time.Time { return testNow },
		Alarms: e.alarms, Health: e.health, Storage: db,
		Presence: fakePresence{"dev-a1": {ID: "dev-a1", Online: true, Telemetry: &loa.Telemetry{RSSI: -71, Volume: 80,
			Stream: &loa.StreamStats{Received: 990, Lost: 10}}}},
		Gatherer:  e.registry,
		MaxUpload: 64 << 10,
		SDPAllow:  []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}, // a listening lab
	}
	enrolment := station.NewEnrolment(station.EnrolmentConfig{DB: db, Endpoints: enrolEndpoints{}})
	s.Claims, s.Enrol = enrolment, enrolment
	s.Notify = newTestNotifier(db, e.alarms)
	e.server = s
	e.srv = httptest.NewServer(api.ValidateWithSpec(t, s.Handler()))
	t.Cleanup(e.srv.Close)
	return e
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v, failing the test if it is not JSON.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON; body %s", ct, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// apiError decodes an error body, checking its shape.
func (r response) apiError(t *testing.T) (msg, code string) {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	extra := 0
	for _, k := range []string{"field", "used_by"} {
		if _, ok := m[k]; ok {
			extra++
		}
	}
	if len(m) != 2+extra {
		t.Errorf("error body %s: want exactly error and code (and field, used_by)", r.body)
	}
	msg, _ = m["error"].(string)
	code, _ = m["code"].(string)
	if msg == "" || code == "" {
		t.Errorf("error body %s: error and code must be non-empty strings", r.body)
	}
	return msg, code
}

// do sends a request; body is sent as is if it is a string or []byte,
// else encoded as JSON.
func (e *env) do(method, path, secret string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) response {
	e.t.Helper()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// want fails the test unless the response has status.
func want(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// wantError fails the test unless r is an error with status and code whose
// message contains each of words.
func wantError(t *testing.T, r response, status int, code string, words ...string) {
	t.Helper()
	want(t, r, status)
	msg, c := r.apiError(t)
	if c != code {
		t.Errorf("code %q, want %q (message %q)", c, code, msg)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not mention %q", msg, w)
		}
	}
}

func (e *env) deviceIDs(secret string) []string {
	e.t.Helper()
	r := e.do("GET", "/api/v1/devices", secret, nil)
	want(e.t, r, http.StatusOK)
	var list []struct {
		ID string `json:"id"`
	}
	r.json(e.t, &list)
	ids := []string{}
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	return ids
}

func (e *env) auditActions() []string {
	e.t.Helper()
	recs, err := e.db.AuditLog(context.Background(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Action+" "+r.Object)
	}
	return out
}
