package api_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

// fakeAlerts is an AlertService over the real store: SendAlert stores the
// alert with CreateAlert, which reserves its CAP (sender, identifier), so
// duplicates are refused by the store as in the controller. Nothing plays.
type fakeAlerts struct {
	db   *store.DB
	mu   sync.Mutex
	sent int
}

func (f *fakeAlerts) SendAlert(ctx context.Context, a *loa.Alert) error {
	if err := a.Validate(testNow); err != nil {
		return err
	}
	f.mu.Lock()
	f.sent++
	a.ID = fmt.Sprintf("al-%d", f.sent)
	f.mu.Unlock()
	a.State, a.CreatedAt = loa.AlertActive, testNow
	for _, d := range a.Targets.Devices {
		a.Report = append(a.Report, loa.Delivery{Device: d, State: loa.DeliveryQueued})
	}
	return f.db.CreateAlert(ctx, a)
}

func (f *fakeAlerts) CancelAlert(ctx context.Context, id, reason string) error {
	a, err := f.db.Alert(ctx, id)
	if err != nil {
		return err
	}
	a.State, a.Reason, a.EndedAt = loa.AlertCancelled, reason, testNow
	return f.db.PutAlert(ctx, a)
}

func (f *fakeAlerts) Alert(ctx context.Context, id string) (*loa.Alert, error) {
	return f.db.Alert(ctx, id)
}
func (f *fakeAlerts) Alerts(ctx context.Context) ([]*loa.Alert, error) { return f.db.Alerts(ctx) }
func (f *fakeAlerts) WatchAlert(ctx context.Context, id string, fn func(*loa.Alert)) error {
	a, err := f.db.Alert(ctx, id)
	if err == nil {
		fn(a)
	}
	return err
}

func (f *fakeAlerts) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

// capEnv is the API env plus the alert routes: two coded clusters, one in
// each commune, with a located receiver each.
type capEnv struct {
	*env
	alerts *fakeAlerts
	srv    *httptest.Server
}

func newCAPEnv(t *testing.T, withCAP bool) *capEnv {
	e := newEnv(t)
	ctx := context.Background()
	for _, a := range []*loa.Area{
		{ID: "a-2", ParentID: "xa-a", Name: "Thôn Đông", Kind: loa.AreaCluster, Code: "10001"},
		{ID: "b-2", ParentID: "xa-b", Name: "Thôn Tây", Kind: loa.AreaCluster, Code: "10002"},
	} {
		if err := e.db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*loa.Device{
		{ID: "dev-a2", AreaID: "a-2", Lat: 21.000, Lon: 105.800},
		{ID: "dev-b2", AreaID: "b-2", Lat: 21.000, Lon: 105.900},
	} {
		if _, err := e.db.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	c := &capEnv{env: e, alerts: &fakeAlerts{db: e.db}}
	s := &api.Server{Areas: e.db, Devices: e.db, Tokens: e.db, Audit: e.db, Media: e.media, Alerts: c.alerts,
		CAPSender: "loa.hanoi", Now: func() time.Time { return testNow }}
	if withCAP {
		s.CAP = station.NewCAP(e.db, c.alerts, e.media, func() time.Time { return testNow }, slog.Default())
	}
	c.srv = httptest.NewServer(api.ValidateWithSpec(t, s.Handler()))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *capEnv) post(secret, contentType string, body []byte) response {
	c.t.Helper()
	req, err := http.NewRequest("POST", c.srv.URL+"/api/v1/alerts/cap", bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", contentType)
	return c.send(req)
}

func (c *capEnv) get(secret, path string) response {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.srv.URL+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	return c.send(req)
}

// capXML is a CAP message sent at testNow; inner goes inside <info> after
// the headline (resources, areas).
func capXML(id, status, msgType, urgency, severity, refs, inner string) []byte {
	info := ""
	if msgType != "Cancel" {
		info = fmt.Sprintf(`<info><category>Met</category><event>Bão</event><urgency>%s</urgency><severity>%s</severity>
<certainty>Observed</certainty><headline>Bão số 5</headline>%s</info>`, urgency, severity, inner)
	}
	if refs != "" {
		refs = "<references>" + refs + "</references>"
	}
	return fmt.Appendf(nil, `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>%s</identifier>
<sender>kttv.hanoi</sender><sent>2026-11-25T09:55:00+07:00</sent><status>%s</status><msgType>%s</msgType>
<scope>Public</scope>%s%s</alert>`, id, status, msgType, refs, info)
}

// Around both located receivers.
const bothPolygon = `<area><areaDesc>Ngoại thành</areaDesc><polygon>20.9,105.7 21.1,105.7 21.1,106.0 20.9,106.0 20.9,105.7</polygon></area>`

func TestCAPPolygonReachesOnlyTheCallersReceivers(t *testing.T) {
	c := newCAPEnv(t, true)
	var a loa.Alert
	r := c.post(c.admin, "application/cap+xml", capXML("p-1", "Actual", "Alert", "Immediate", "Extreme", "", bothPolygon))
	want(t, r, http.StatusCreated)
	r.json(t, &a)
	if !slices.Equal(a.Targets.Devices, []string{"dev-a2", "dev-b2"}) || a.Level != loa.AlertEmergency || a.CreatedBy == "" {
		t.Fatalf("admin: %+v", a)
	}
	// Province staff scoped to commune A: the same polygon reaches its
	// own receiver only, not a 403 for the other commune's.
	r = c.post(c.provA, "application/cap+xml", capXML("p-2", "Actual", "Alert", "Immediate", "Extreme", "", bothPolygon))
	want(t, r, http.StatusCreated)
	r.json(t, &a)
	if !slices.Equal(a.Targets.Devices, []string{"dev-a2"}) {
		t.Fatalf("scoped: targets %+v", a.Targets)
	}
	// A geocode outside the scope is forbidden, naming it; nothing is sent.
	wantError(t, c.post(c.provA, "application/cap+xml", capXML("p-3", "Actual", "Alert", "Immediate", "Extreme", "",
		`<area><areaDesc>Thôn Tây</areaDesc><geocode><valueName>MaDVHC</valueName><value>10002</value></geocode></area>`)),
		http.StatusForbidden, loa.EFORBIDDEN, "targets.areas: b-2")
	// An operator may send ưu tiên in its scope, not khẩn cấp.
	wantError(t, c.post(c.opA, "application/cap+xml", capXML("p-4", "Actual", "Alert", "Immediate", "Severe", "", bothPolygon)),
		http.StatusForbidden, loa.EFORBIDDEN, "khẩn cấp")
	want(t, c.post(c.opA, "application/cap+xml", capXML("p-5", "Actual", "Alert", "Expected", "Severe", "", bothPolygon)), http.StatusCreated)
	if n := c.alerts.count(); n != 3 {
		t.Errorf("%d alerts sent, want 3", n)
	}
	if acts := c.auditActions(); !slices.ContainsFunc(acts, func(s string) bool { return strings.HasPrefix(s, "alert.send") }) {
		t.Errorf("audit %v", acts)
	}
}

// Concurrent copies of one message: exactly one alert, every other copy
// 409 (the store reserves the identifier with the alert).
func TestCAPDuplicateRace(t *testing.T) {
	c := newCAPEnv(t, true)
	msg := capXML("dup-1", "Actual", "Alert", "Immediate", "Extreme", "", bothPolygon)
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = c.post(c.admin, "application/cap+xml", msg).status })
	}
	wg.Wait()
	created, conflict := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			conflict++
		}
	}
	if created != 1 || conflict != n-1 {
		t.Fatalf("statuses %v: want one 201 and %d 409", statuses, n-1)
	}
	list, err := c.db.Alerts(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("%d alerts stored (%v)", len(list), err)
	}
}

func TestCAPCancelAuthority(t *testing.T) {
	c := newCAPEnv(t, true)
	want(t, c.post(c.admin, "application/cap+xml", capXML("c-1", "Actual", "Alert", "Immediate", "Extreme", "", bothPolygon)), http.StatusCreated)
	cancel := capXML("c-2", "Actual", "Cancel", "", "", "kttv.hanoi,c-1,2026-11-25T09:55:00+07:00", "")
	// The operator of commune A does not see an alert reaching commune B
	// too: to it the reference is unknown.
	wantError(t, c.post(c.opA, "application/cap+xml", cancel), http.StatusNotFound, loa.ENOTFOUND, "kttv.hanoi,c-1")
	var a loa.Alert
	r := c.post(c.province, "application/cap+xml", cancel)
	want(t, r, http.StatusOK)
	r.json(t, &a)
	if a.State != loa.AlertCancelled || !strings.Contains(a.Reason, "CAP Cancel kttv.hanoi,c-2") {
		t.Fatalf("cancelled: %s %q", a.State, a.Reason)
	}
	// The same Cancel again answers the alert as it is.
	want(t, c.post(c.province, "application/cap+xml", cancel), http.StatusOK)
}

func TestCAPNotSounded(t *testing.T) {
	c := newCAPEnv(t, true)
	for _, m := range [][]byte{
		capXML("s-1", "System", "Alert", "Unknown", "Unknown", "", ""),
		capXML("s-2", "Draft", "Alert", "Immediate", "Extreme", "", bothPolygon),
		capXML("s-3", "Actual", "Ack", "Unknown", "Unknown", "kttv.hanoi,x,2026-11-25T09:00:00+07:00", ""),
	} {
		var out struct {
			Sounded bool   `json:"sounded"`
			Reason  string `json:"reason"`
		}
		r := c.post(c.admin, "application/xml", m)
		want(t, r, http.StatusAccepted)
		r.json(t, &out)
		if out.Sounded || out.Reason == "" {
			t.Errorf("%+v", out)
		}
	}
	if n := c.alerts.count(); n != 0 {
		t.Errorf("%d alerts sent", n)
	}
}

func TestCAPRequestErrors(t *testing.T) {
	c := newCAPEnv(t, true)
	msg := capXML("e-1", "Actual", "Alert", "Immediate", "Extreme", "", bothPolygon)
	wantError(t, c.post(c.admin, "text/plain", msg), http.StatusUnsupportedMediaType, loa.EUNSUPPORTED, "application/cap+xml")
	wantError(t, c.post(c.admin, "application/cap+xml", []byte("<alert")), http.StatusBadRequest, loa.EINVALID, "XML")
	wantError(t, c.post(c.techA, "application/cap+xml", msg), http.StatusForbidden, loa.EFORBIDDEN)
	if n := c.alerts.count(); n != 0 {
		t.Errorf("%d alerts sent", n)
	}
	// Without the CAP index the route is unavailable, not half-working.
	noIndex := newCAPEnv(t, false)
	wantError(t, noIndex.post(noIndex.admin, "application/cap+xml", msg), http.StatusServiceUnavailable, loa.EUNAVAILABLE)
}

func TestCAPExportScope(t *testing.T) {
	c := newCAPEnv(t, true)
	var a loa.Alert
	r := c.post(c.admin, "application/cap+xml", capXML("x-1", "Actual", "Alert", "Immediate", "Extreme", "", bothPolygon))
	want(t, r, http.StatusCreated)
	r.json(t, &a)
	r = c.get(c.province, "/api/v1/alerts/"+a.ID+"/cap")
	want(t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cap+xml") || !strings.Contains(string(r.body), "<identifier>x-1</identifier>") {
		t.Errorf("%s\n%s", ct, r.body)
	}
	wantError(t, c.get(c.opB, "/api/v1/alerts/"+a.ID+"/cap"), http.StatusNotFound, loa.ENOTFOUND)
	wantError(t, c.get(c.admin, "/api/v1/alerts/nope/cap"), http.StatusNotFound, loa.ENOTFOUND)
}

// TestCAPSendersBoundToTheCaller: a ưu tiên token of another province can
// neither send as this province's sender nor, with its own sender, block
// this province's khẩn cấp message; a repeat's 409 names the alert only
// to a caller who may see it.
func TestCAPSendersBoundToTheCaller(t *testing.T) {
	c := newCAPEnv(t, true)
	ctx := context.Background()
	if err := c.db.CreateAreas(ctx, []*loa.Area{
		{ID: "dn", Name: "Đà Nẵng", Kind: loa.AreaProvince},
		{ID: "xa-d", ParentID: "dn", Name: "Xã Hòa Vang", Kind: loa.AreaCommune},
		{ID: "d-1", ParentID: "xa-d", Name: "Thôn Nam", Kind: loa.AreaCluster, Code: "20001"},
	}); err != nil {
		t.Fatal(err)
	}
	other := &loa.Token{Name: "Sở Đà Nẵng", Role: loa.RoleOperator, AreaID: "dn", CAPSenders: []string{"kttv.danang"}}
	otherSecret, err := c.db.CreateToken(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	from := func(sender string, msg []byte) []byte {
		return bytes.Replace(msg, []byte("<sender>kttv.hanoi</sender>"), []byte("<sender>"+sender+"</sender>"), 1)
	}
	theirArea := `<area><areaDesc>Thôn Nam</areaDesc><geocode><valueName>MaDVHC</valueName><value>20001</value></geocode></area>`
	squat := capXML("bao-so-5", "Actual", "Alert", "Expected", "Severe", "", theirArea)

	wantError(t, c.post(otherSecret, "application/cap+xml", squat), http.StatusForbidden, loa.EFORBIDDEN, "sender", "kttv.hanoi")
	want(t, c.post(otherSecret, "application/cap+xml", from("kttv.danang", squat)), http.StatusCreated)

	genuine := capXML("bao-so-5", "Actual", "Alert", "Immediate", "Extreme", "", bothPolygon)
	r := c.post(c.province, "application/cap+xml", genuine)
	want(t, r, http.StatusCreated)
	var a loa.Alert
	r.json(t, &a)
	if a.Level != loa.AlertEmergency || a.CAP == nil || a.CAP.Sender != "kttv.hanoi" {
		t.Fatalf("genuine alert %+v", a)
	}

	// A repeat: the province sees which alert it was; the operator of
	// commune B (the alert reaches commune A too) and the other province
	// learn nothing of it.
	wantError(t, c.post(c.province, "application/cap+xml", genuine), http.StatusConflict, loa.ECONFLICT, a.ID)
	for _, secret := range []string{c.opB, c.provA} {
		r := c.post(secret, "application/cap+xml", capXML("bao-so-5", "Actual", "Alert", "Expected", "Severe", "", bothPolygon))
		wantError(t, r, http.StatusConflict, loa.ECONFLICT)
		if strings.Contains(string(r.body), a.ID) || strings.Contains(string(r.body), "al-") {
			t.Errorf("409 to another scope names the alert: %s", r.body)
		}
	}
	// Nor may the other province cancel this province's message.
	cancel := from("kttv.danang", capXML("huy-1", "Actual", "Cancel", "", "", "kttv.hanoi,bao-so-5,2026-11-25T09:55:00+07:00", ""))
	wantError(t, c.post(otherSecret, "application/cap+xml", cancel), http.StatusNotFound, loa.ENOTFOUND)
	if got, _ := c.alerts.Alert(ctx, a.ID); got.State != loa.AlertActive {
		t.Errorf("the genuine alert is %s", got.State)
	}
}
