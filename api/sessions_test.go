package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

type sessionJSON struct {
	ID          string `json:"id"`
	MediaID     string `json:"media_id"`
	Priority    int    `json:"priority"`
	MaxDuration int64  `json:"max_duration_ns"`
	State       string `json:"state"`
	CreatedBy   string `json:"created_by"`
	Reason      string `json:"reason"`
	Targets     struct {
		Areas   []string `json:"areas"`
		Devices []string `json:"devices"`
	} `json:"targets"`
}

// withMedia uploads one media item and returns its id.
func (e *env) withMedia() string {
	e.t.Helper()
	r := e.upload(e.admin, map[string]string{"name": "Bản tin sáng"}, "bulletin.wav", strings.Repeat("RIFF", 100))
	want(e.t, r, http.StatusCreated)
	var m struct{ ID string }
	r.json(e.t, &m)
	return m.ID
}

func (e *env) start(secret string, body any) (sessionJSON, response) {
	e.t.Helper()
	r := e.do("POST", "/api/v1/sessions", secret, body)
	var s sessionJSON
	if r.status == http.StatusCreated {
		r.json(e.t, &s)
	}
	return s, r
}

func (e *env) sessionIDs(secret string) []string {
	e.t.Helper()
	r := e.do("GET", "/api/v1/sessions", secret, nil)
	want(e.t, r, http.StatusOK)
	var list []sessionJSON
	r.json(e.t, &list)
	ids := []string{}
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestStartSession(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	s, r := e.start(e.opA, map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"a-1"}, "devices": []string{"dev-a1"}}, "max_duration": "30m"})
	want(t, r, http.StatusCreated)
	if s.ID == "" || s.State != "playing" || s.Priority != 64 || s.MaxDuration != int64(30*time.Minute) ||
		s.CreatedBy != e.tokens[e.opA].ID || !slices.Equal(s.Targets.Areas, []string{"a-1"}) {
		t.Errorf("started %s", r.body)
	}
	if !slices.Contains(e.auditActions(), "session.start "+s.ID) {
		t.Errorf("audit %v", e.auditActions())
	}
	wantError(t, e.do("POST", "/api/v1/sessions", e.opA, map[string]any{"media_id": "m-404", "targets": map[string]any{"areas": []string{"a-1"}}}),
		http.StatusNotFound, "not_found", "m-404")
}

func TestSessionsAreScoped(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	inB, r := e.start(e.province, map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"xa-b"}}})
	want(t, r, http.StatusCreated)
	whole, r := e.start(e.province, map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"hn"}}})
	want(t, r, http.StatusCreated)
	inA, r := e.start(e.opA, map[string]any{"media_id": m, "targets": map[string]any{"devices": []string{"dev-a1"}}})
	want(t, r, http.StatusCreated)

	if got := e.sessionIDs(e.opA); !slices.Equal(got, []string{inA.ID}) {
		t.Errorf("operator A sees sessions %v, want only %s", got, inA.ID)
	}
	if got := e.sessionIDs(e.opB); !slices.Equal(got, []string{inB.ID}) {
		t.Errorf("operator B sees sessions %v, want only %s", got, inB.ID)
	}
	if got := e.sessionIDs(e.admin); len(got) != 3 {
		t.Errorf("admin sees sessions %v", got)
	}
	for _, id := range []string{inB.ID, whole.ID} {
		wantError(t, e.do("GET", "/api/v1/sessions/"+id, e.opA, nil), http.StatusNotFound, "not_found")
		wantError(t, e.do("POST", "/api/v1/sessions/"+id+"/stop", e.opA, nil), http.StatusNotFound, "not_found")
		wantError(t, e.do("GET", "/api/v1/sessions/"+id+"/sdp?dest=127.0.0.1:5004", e.opA, nil), http.StatusNotFound, "not_found")
	}
	r = e.do("GET", "/api/v1/sessions/"+inB.ID, e.opB, nil)
	want(t, r, http.StatusOK)
	var got sessionJSON
	r.json(t, &got)
	if got.State != "playing" {
		t.Errorf("operator A's stop attempt changed B's session: %s", r.body)
	}

	// Starting into another commune is refused, naming the target.
	n := e.sessions.count()
	for _, c := range []struct {
		targets map[string]any
		name    string
	}{
		{map[string]any{"areas": []string{"xa-b"}}, "targets.areas: xa-b"},
		{map[string]any{"areas": []string{"a-1", "hn"}}, "targets.areas: hn"},
		{map[string]any{"devices": []string{"dev-a1", "dev-b1"}}, "targets.devices: dev-b1"},
		{map[string]any{"devices": []string{"dev-nowhere"}}, "targets.devices: dev-nowhere"},
	} {
		_, r := e.start(e.opA, map[string]any{"media_id": m, "targets": c.targets})
		wantError(t, r, http.StatusForbidden, "forbidden", c.name)
	}
	if e.sessions.count() != n {
		t.Error("a refused session was started")
	}
}

func TestStopSession(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	s, r := e.start(e.opA, map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"xa-a"}}})
	want(t, r, http.StatusCreated)
	r = e.do("POST", "/api/v1/sessions/"+s.ID+"/stop", e.opA, nil)
	want(t, r, http.StatusOK)
	var stopped sessionJSON
	r.json(t, &stopped)
	if stopped.State != "stopped" || !strings.Contains(stopped.Reason, e.tokens[e.opA].ID) {
		t.Errorf("stopped %s", r.body)
	}
	if !slices.Contains(e.auditActions(), "session.stop "+s.ID) {
		t.Errorf("audit %v", e.auditActions())
	}
	wantError(t, e.do("POST", "/api/v1/sessions/"+s.ID+"/stop", e.opA, nil), http.StatusConflict, "conflict")
	wantError(t, e.do("POST", "/api/v1/sessions/s-404/stop", e.admin, nil), http.StatusNotFound, "not_found")
}

func TestEmergencyBandNeedsAdminOrProvince(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	body := map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"xa-a"}}, "priority": 224}
	_, r := e.start(e.opA, body)
	wantError(t, r, http.StatusForbidden, "forbidden", "priority", "emergency")
	if e.sessions.count() != 0 {
		t.Fatal("operator started an emergency session")
	}
	body["priority"] = 223
	_, r = e.start(e.opA, body)
	want(t, r, http.StatusCreated)
	body["priority"] = 255
	s, r := e.start(e.provA, body)
	want(t, r, http.StatusCreated)
	if s.Priority != 255 {
		t.Errorf("priority %d", s.Priority)
	}
	_, r = e.start(e.admin, body)
	want(t, r, http.StatusCreated)
}

func TestBadSessionBodiesAre400(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	cases := []struct {
		name, body string
		words      []string
	}{
		{"priority too high", `{"media_id":"` + m + `","targets":{"areas":["a-1"]},"priority":256}`, []string{"priority", "0–255"}},
		{"priority negative", `{"media_id":"` + m + `","targets":{"areas":["a-1"]},"priority":-1}`, []string{"priority"}},
		{"priority fraction", `{"media_id":"` + m + `","targets":{"areas":["a-1"]},"priority":64.5}`, []string{"priority", "integer"}},
		{"priority word", `{"media_id":"` + m + `","targets":{"areas":["a-1"]},"priority":"high"}`, []string{"priority", "integer"}},
		{"duration", `{"media_id":"` + m + `","targets":{"areas":["a-1"]},"max_duration":"soon"}`, []string{"max_duration", "30m"}},
		{"duration number", `{"media_id":"` + m + `","targets":{"areas":["a-1"]},"max_duration":1800}`, []string{"max_duration", "string"}},
		{"duration too long", `{"media_id":"` + m + `","targets":{"areas":["a-1"]},"max_duration":"25h"}`, []string{"max_duration"}},
		{"duration negative", `{"media_id":"` + m + `","targets":{"areas":["a-1"]},"max_duration":"-5m"}`, []string{"max_duration"}},
		{"no media", `{"targets":{"areas":["a-1"]}}`, []string{"media_id"}},
		{"no targets", `{"media_id":"` + m + `"}`, []string{"targets"}},
		{"empty targets", `{"media_id":"` + m + `","targets":{"areas":[],"devices":[]}}`, []string{"targets"}},
		{"bad area id", `{"media_id":"` + m + `","targets":{"areas":["Xã A"]}}`, []string{"targets.areas"}},
		{"unknown target kind", `{"media_id":"` + m + `","targets":{"villages":["a-1"]}}`, []string{"villages"}},
		{"targets not object", `{"media_id":"` + m + `","targets":["a-1"]}`, []string{"targets"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/api/v1/sessions", e.admin, c.body), http.StatusBadRequest, "invalid", c.words...)
		})
	}
	if n := e.sessions.count(); n != 0 {
		t.Errorf("bad bodies started %d sessions", n)
	}
}

func TestSessionSDP(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	s, r := e.start(e.opA, map[string]any{"media_id": m, "targets": map[string]any{"areas": []string{"xa-a"}}})
	want(t, r, http.StatusCreated)
	r = e.do("GET", "/api/v1/sessions/"+s.ID+"/sdp?dest=192.0.2.7:5004", e.opA, nil)
	want(t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.HasPrefix(string(r.body), "v=0\r\n") || !strings.Contains(string(r.body), "m=audio 5004 ") {
		t.Errorf("SDP body %q", r.body)
	}
	if got := e.sessions.dests; len(got) != 1 || got[0].String() != "192.0.2.7:5004" {
		t.Errorf("SessionSDP got dests %v", got)
	}
	for _, q := range []string{"", "?dest=", "?dest=192.0.2.7", "?dest=example.com:5004", "?dest=192.0.2.7:0", "?dest=0.0.0.0:5004", "?dest=192.0.2.7:70000"} {
		wantError(t, e.do("GET", "/api/v1/sessions/"+s.ID+"/sdp"+q, e.opA, nil), http.StatusBadRequest, "invalid", "dest")
	}
	want(t, e.do("GET", "/api/v1/sessions/"+s.ID+"/sdp?dest=[2001:db8::1]:5004", e.opA, nil), http.StatusOK)
	wantError(t, e.do("GET", "/api/v1/sessions/s-404/sdp?dest=192.0.2.7:5004", e.opA, nil), http.StatusNotFound, "not_found")
	if len(e.sessions.dests) != 2 {
		t.Errorf("dests %v", e.sessions.dests)
	}

	// Plain RTP only when an admin asks for it; SRTP otherwise.
	wantError(t, e.do("GET", "/api/v1/sessions/"+s.ID+"/sdp?plain=1&dest=192.0.2.7:5004", e.opA, nil), http.StatusForbidden, "forbidden", "admin")
	wantError(t, e.do("GET", "/api/v1/sessions/"+s.ID+"/sdp?plain=yes&dest=192.0.2.7:5004", e.admin, nil), http.StatusBadRequest, "invalid", "plain")
	want(t, e.do("GET", "/api/v1/sessions/"+s.ID+"/sdp?plain=1&dest=192.0.2.7:5004", e.admin, nil), http.StatusOK)
	if got := e.sessions.plain; len(got) != 3 || got[0] || got[1] || !got[2] {
		t.Errorf("plain per SDP %v, want only the admin's last one", got)
	}
}

type deliveryJSON struct {
	SessionID string         `json:"session_id"`
	Totals    map[string]int `json:"totals"`
	Receivers []struct {
		Device string `json:"device"`
		State  string `json:"state"`
		Reason string `json:"reason"`
	} `json:"receivers"`
	NextCursor string `json:"next_cursor"`
}

func (e *env) delivery(secret, id, query string) deliveryJSON {
	e.t.Helper()
	r := e.do("GET", "/api/v1/sessions/"+id+"/delivery"+query, secret, nil)
	want(e.t, r, http.StatusOK)
	var d deliveryJSON
	r.json(e.t, &d)
	return d
}

func devicesOf(d deliveryJSON) []string {
	var out []string
	for _, l := range d.Receivers {
		out = append(out, l.Device)
	}
	return out
}

// TestSessionDeliveryReport: a session's report is scoped as the session,
// and within it to the receivers in the caller's scope (one moved out
// since); totals count them all, ?state= filters the page, limit and cursor
// page it; bad parameters are 400.
func TestSessionDeliveryReport(t *testing.T) {
	e := newEnv(t)
	m := e.withMedia()
	inA, r := e.start(e.opA, map[string]any{"media_id": m, "targets": map[string]any{"devices": []string{"dev-a1"}, "areas": []string{"a-1"}}})
	want(t, r, http.StatusCreated)
	e.sessions.mu.Lock()
	e.sessions.moved = []loa.ReceiverDelivery{{Device: "dev-b1", State: loa.DeliveryFinished}}
	e.sessions.mu.Unlock()

	d := e.delivery(e.opA, inA.ID, "")
	if d.SessionID != inA.ID || !slices.Equal(devicesOf(d), []string{"dev-a1"}) || d.Totals["receivers"] != 1 || d.Totals["failed"] != 1 {
		t.Errorf("operator A's report %+v, want dev-a1 only (failed)", d)
	}
	d = e.delivery(e.admin, inA.ID, "?limit=1")
	if !slices.Equal(devicesOf(d), []string{"dev-a1"}) || d.NextCursor != "dev-a1" || d.Totals["receivers"] != 2 || d.Totals["finished"] != 1 {
		t.Errorf("admin's first page %+v, want dev-a1 and a cursor, 2 receivers", d)
	}
	if d = e.delivery(e.admin, inA.ID, "?limit=1&cursor=dev-a1"); !slices.Equal(devicesOf(d), []string{"dev-b1"}) || d.NextCursor != "" {
		t.Errorf("admin's second page %+v, want dev-b1", d)
	}
	if d = e.delivery(e.admin, inA.ID, "?state=failed"); !slices.Equal(devicesOf(d), []string{"dev-a1"}) || d.Receivers[0].Reason != loa.ReasonNoStream {
		t.Errorf("failed %+v, want dev-a1 no_stream", d)
	}
	wantError(t, e.do("GET", "/api/v1/sessions/"+inA.ID+"/delivery", e.opB, nil), http.StatusNotFound, "not_found")
	for _, q := range []string{"?state=heard", "?limit=0", "?limit=1001", "?cursor=a%20b"} {
		wantError(t, e.do("GET", "/api/v1/sessions/"+inA.ID+"/delivery"+q, e.admin, nil), http.StatusBadRequest, "invalid")
	}
}
