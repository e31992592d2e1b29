package api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/cap"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/pki"
	"github.com/loa-broadcast/loa/station"
	"github.com/loa-broadcast/loa/store"
)

// provinceAlerts is a province's alert service over its real store: an
// alert's report has one line per device under its target areas, queued
// until the test plays them. Nothing else plays.
type provinceAlerts struct {
	db *store.DB
	mu sync.Mutex
	n  int
}

func (p *provinceAlerts) SendAlert(ctx context.Context, a *loa.Alert) error {
	if err := a.Validate(time.Now()); err != nil {
		return err
	}
	areas, err := p.db.Areas(ctx)
	if err != nil {
		return err
	}
	devices, err := p.db.Devices(ctx)
	if err != nil {
		return err
	}
	tree := loa.NewAreaTree(areas)
	p.mu.Lock()
	p.n++
	a.ID = fmt.Sprintf("pa-%d", p.n)
	p.mu.Unlock()
	a.State, a.CreatedAt = loa.AlertActive, time.Now().UTC()
	for _, d := range devices {
		for _, t := range a.Targets.Areas {
			if tree.Within(d.AreaID, t) {
				a.Report = append(a.Report, loa.Delivery{Device: d.ID, Area: d.AreaID, State: loa.DeliveryQueued, QueuedAt: a.CreatedAt})
				break
			}
		}
	}
	return p.db.CreateAlert(ctx, a)
}

func (p *provinceAlerts) CancelAlert(ctx context.Context, id, reason string) error {
	a, err := p.db.Alert(ctx, id)
	if err != nil {
		return err
	}
	a.State, a.Reason, a.EndedAt = loa.AlertCancelled, reason, time.Now().UTC()
	return p.db.PutAlert(ctx, a)
}
func (p *provinceAlerts) Alert(ctx context.Context, id string) (*loa.Alert, error) {
	return p.db.Alert(ctx, id)
}
func (p *provinceAlerts) Alerts(ctx context.Context) ([]*loa.Alert, error) { return p.db.Alerts(ctx) }
func (p *provinceAlerts) WatchAlert(ctx context.Context, id string, fn func(*loa.Alert)) error {
	return loa.Errorf(loa.EUNSUPPORTED, "not here")
}

// playAll marks every receiver of alert id as having played it.
func (p *provinceAlerts) playAll(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	a, err := p.db.Alert(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Report {
		a.Report[i].State, a.Report[i].Repeats = loa.DeliveryFinished, 1
	}
	a.State, a.EndedAt = loa.AlertFinished, time.Now().UTC()
	if err := p.db.PutAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
}

// gate is a listener that, while down, drops every connection it
// accepts: to a client the controller is unreachable.
type gate struct {
	net.Listener
	down atomic.Bool
}

func (g *gate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil || !g.down.Load() {
			return c, err
		}
		c.Close()
	}
}

// province is a province controller: its own store, CA, areas and
// receivers, the real API and CAP ingest behind HTTPS that asks for a
// client certificate (as the daemon's does).
type province struct {
	t      *testing.T
	id     string
	code   string
	db     *store.DB
	pki    *pki.Station
	alerts *provinceAlerts
	gate   *gate
	url    string
	admin  string
}

func newProvince(t *testing.T, id, name, code string, communes map[string][]string) *province {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := db.CreateArea(ctx, &loa.Area{ID: id, Name: name, Kind: loa.AreaProvince, Code: code}); err != nil {
		t.Fatal(err)
	}
	for commune, devices := range communes {
		if err := db.CreateArea(ctx, &loa.Area{ID: commune, ParentID: id, Name: "Xã " + commune, Kind: loa.AreaCommune}); err != nil {
			t.Fatal(err)
		}
		for _, d := range devices {
			if _, err := db.CreateDevice(ctx, &loa.Device{ID: d, AreaID: commune}); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin, err := db.CreateToken(ctx, &loa.Token{Name: "admin", Role: loa.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pki.Open(pki.Config{Dir: filepath.Join(dir, "tls"), Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	p := &province{t: t, id: id, code: code, db: db, pki: st, alerts: &provinceAlerts{db: db}, admin: admin}
	s := &api.Server{Areas: db, Devices: db, Tokens: db, Audit: db, Alerts: p.alerts,
		CAP: station.NewCAP(db, p.alerts, nil, nil, slog.New(slog.DiscardHandler))}
	cfg := st.ServerConfig()
	cfg.ClientAuth = tls.RequestClientCert
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.gate = &gate{Listener: ln}
	srv := &http.Server{Handler: api.ValidateWithSpec(t, s.Handler()), TLSConfig: cfg,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go srv.ServeTLS(p.gate, "", "") //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	p.url = "https://" + ln.Addr().String()
	return p
}

// client is an HTTPS client trusting the province's CA and presenting
// cert (none when nil).
func (p *province) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: p.pki.Pool()}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// exchange sends one request: body as JSON unless it is []byte (CAP XML).
func exchange(t *testing.T, c *http.Client, method, url, secret string, body any) response {
	t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ct = bytes.NewReader(b), "application/cap+xml"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// nationalCtl is a national controller: its store, its client identity
// and its API.
type nationalCtl struct {
	db    *store.DB
	cert  *tls.Certificate
	srv   *httptest.Server
	admin string
	// source is the national warning source's token: its CAP sender only.
	source string
}

const nationalSender = "canhbao.gov.vn"

func newNationalCtl(t *testing.T) *nationalCtl {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := pki.Open(pki.Config{Dir: filepath.Join(dir, "tls")})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := st.ClientCertificate(nationalSender)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := db.CreateToken(context.Background(), &loa.Token{Name: "admin", Role: loa.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	source, err := db.CreateToken(context.Background(), &loa.Token{Name: "NCHMF", Role: loa.RoleProvince, CAPSenders: []string{"nchmf.gov.vn"}})
	if err != nil {
		t.Fatal(err)
	}
	return &nationalCtl{db: db, cert: cert, admin: admin, source: source}
}

// run starts a national role over the controller's store (a fresh one
// each call, as after a restart) and its API; stop ends both.
func (n *nationalCtl) run(t *testing.T) (stop func()) {
	t.Helper()
	nat := station.NewNational(station.NationalConfig{DB: n.db, Sender: nationalSender, Cert: n.cert,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, PollEvery: 20 * time.Millisecond,
		Timeout: 5 * time.Second})
	s := &api.Server{Areas: n.db, Devices: n.db, Tokens: n.db, Audit: n.db, National: nat}
	n.srv = httptest.NewServer(api.ValidateWithSpec(t, s.Handler()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); nat.Run(ctx) }()
	return func() { cancel(); <-done; n.srv.Close() }
}

func (n *nationalCtl) do(t *testing.T, method, path string, body any) response {
	t.Helper()
	return exchange(t, n.srv.Client(), method, n.srv.URL+path, n.admin, body)
}

func (n *nationalCtl) alert(t *testing.T, id string) loa.NationalAlert {
	t.Helper()
	var a loa.NationalAlert
	r := n.do(t, "GET", "/api/v1/national/alerts/"+id, nil)
	want(t, r, http.StatusOK)
	r.json(t, &a)
	return a
}

func push(a loa.NationalAlert, province string) loa.ProvincePush {
	for _, p := range a.Provinces {
		if p.Province == province {
			return p
		}
	}
	return loa.ProvincePush{}
}

// Two province controllers and a national one over real HTTPS with client
// certificates: each province binds the national certificate to a token;
// an alert to both is delivered with each province's own report (per
// province and per commune), live; a province that is down is retried
// until it is back, and one still down at expiry is shown expired; pushes
// left by a restart resume; another certificate is refused.
func TestNationalAlertsReachProvinces(t *testing.T) {
	qn := newProvince(t, "qn", "Quảng Ngãi", "51", map[string][]string{"bc": {"bc-1", "bc-2"}, "tk": {"tk-1"}})
	hn := newProvince(t, "hn", "Hà Nội", "01", map[string][]string{"ba": {"ba-1", "ba-2"}})
	nat := newNationalCtl(t)
	stop := nat.run(t)
	defer func() { stop() }()

	// The identity provinces bind: the sender and the certificate.
	var id loa.NationalIdentity
	r := nat.do(t, "GET", "/api/v1/national/identity", nil)
	want(t, r, http.StatusOK)
	r.json(t, &id)
	if id.Sender != nationalSender || id.CertSHA256 != loa.CertSHA256(nat.cert.Certificate[0]) {
		t.Fatalf("identity %+v", id)
	}
	for _, p := range []*province{qn, hn} {
		// Each province's admin makes the national token: bound to the
		// certificate, the national sender, scoped to the province.
		r := exchange(t, p.client(nil), "POST", p.url+"/api/v1/tokens", p.admin, map[string]any{
			"name": "Trung ương", "role": "province", "area_id": p.id,
			"cap_senders": []string{id.Sender}, "client_cert_sha256": id.CertSHA256})
		want(t, r, http.StatusCreated)
		var created struct{ Secret string }
		r.json(t, &created)
		// Its secret alone, without the certificate, is refused.
		wantError(t, exchange(t, p.client(nil), "GET", p.url+"/api/v1/alerts", created.Secret, nil),
			http.StatusUnauthorized, loa.EUNAUTHORIZED, "bound to a client certificate")
		wantError(t, exchange(t, p.client(nil), "POST", p.url+"/api/v1/tokens", p.admin, map[string]any{
			"name": "x", "role": "province", "client_cert_sha256": "abc"}), http.StatusBadRequest, loa.EINVALID, "client_cert_sha256")
		r = nat.do(t, "POST", "/api/v1/national/provinces", map[string]any{
			"id": p.id, "name": "Tỉnh " + p.id, "code": p.code, "url": p.url, "ca_pem": string(p.pki.CACertPEM())})
		want(t, r, http.StatusCreated)
	}
	wantError(t, nat.do(t, "POST", "/api/v1/national/provinces", map[string]any{
		"id": "x", "name": "X", "code": "99", "url": "http://plain.example", "ca_pem": string(qn.pki.CACertPEM())}),
		http.StatusBadRequest, loa.EINVALID, "https://")
	wantError(t, nat.do(t, "POST", "/api/v1/national/provinces", map[string]any{
		"id": "x", "name": "X", "code": "99", "url": "https://x.example", "ca_pem": "not a certificate"}),
		http.StatusBadRequest, loa.EINVALID, "ca_pem")

	// Another certificate, or none, is not the national controller.
	other, err := pki.Open(pki.Config{Dir: filepath.Join(t.TempDir(), "tls")})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.ClientCertificate(nationalSender)
	if err != nil {
		t.Fatal(err)
	}
	msg := capXMLFrom(nationalSender, "forged-1", "51")
	wantError(t, exchange(t, qn.client(stranger), "POST", qn.url+"/api/v1/alerts/cap", "", msg),
		http.StatusUnauthorized, loa.EUNAUTHORIZED, "client certificate")
	wantError(t, exchange(t, qn.client(nil), "POST", qn.url+"/api/v1/alerts/cap", "", msg),
		http.StatusUnauthorized, loa.EUNAUTHENTICATED)
	if n := qn.alerts.n; n != 0 {
		t.Fatalf("%d alerts sounded in qn from refused messages", n)
	}

	// Hà Nội is down: Quảng Ngãi takes the alert, Hà Nội is retried.
	hn.gate.down.Store(true)
	var a loa.NationalAlert
	r = nat.do(t, "POST", "/api/v1/national/alerts", map[string]any{"title": "Bão số 9", "level": loa.AlertEmergency,
		"text": "Bão số 9 đổ bộ, người dân ở trong nhà.", "expires_at": time.Now().Add(10 * time.Minute).Format(time.RFC3339)})
	want(t, r, http.StatusCreated)
	r.json(t, &a)
	if len(a.Provinces) != 2 || a.Sender != nationalSender {
		t.Fatalf("national alert %+v", a)
	}
	loatest.Eventually(t, 10*time.Second, func() bool {
		a = nat.alert(t, a.ID)
		q, h := push(a, "qn"), push(a, "hn")
		return q.State == loa.PushDelivered && q.Totals.Receivers == 3 && h.State == loa.PushUnreachable && h.Attempts >= 2
	}, "qn delivered with its 3 receivers, hn unreachable and retried")
	q := push(a, "qn")
	pa, err := qn.db.Alert(context.Background(), q.AlertID)
	if err != nil {
		t.Fatal(err)
	}
	if pa.Level != loa.AlertEmergency || pa.CAP == nil || pa.CAP.Sender != nationalSender || len(pa.Targets.Areas) != 1 || pa.Targets.Areas[0] != "qn" {
		t.Fatalf("qn's alert %+v (CAP %+v)", pa, pa.CAP)
	}
	if h := push(a, "hn"); h.Reason == "" {
		t.Errorf("hn unreachable without a reason: %+v", h)
	}

	// Quảng Ngãi's receivers play it: the national report follows, per commune.
	qn.alerts.playAll(t, q.AlertID)
	loatest.Eventually(t, 10*time.Second, func() bool {
		a = nat.alert(t, a.ID)
		q = push(a, "qn")
		return q.Totals.Finished == 3 && q.AlertState == loa.AlertFinished
	}, "qn's report (3 finished) in the national alert")
	if len(q.Communes) != 2 || q.Communes[0].ID != "bc" || q.Communes[0].Name != "Xã bc" || q.Communes[0].Totals.Finished != 2 ||
		q.Communes[1].ID != "tk" || q.Communes[1].Totals.Finished != 1 {
		t.Errorf("qn per commune %+v", q.Communes)
	}

	// Hà Nội comes back before expiry: delivered, its own report in.
	hn.gate.down.Store(false)
	loatest.Eventually(t, 10*time.Second, func() bool {
		a = nat.alert(t, a.ID)
		h := push(a, "hn")
		return h.State == loa.PushDelivered && h.Totals.Receivers == 2 && a.Totals.Receivers == 5
	}, "hn delivered once back, 5 receivers in all")
	if n := qn.alerts.n; n != 1 {
		t.Errorf("qn sounded %d alerts, want 1 (retries must not repeat a delivered push)", n)
	}

	// Cancelled: each province is sent a CAP Cancel; Hà Nội's alert, still
	// running, is cancelled there (Quảng Ngãi's had finished).
	r = nat.do(t, "POST", "/api/v1/national/alerts/"+a.ID+"/cancel", map[string]any{"reason": "báo nhầm"})
	want(t, r, http.StatusOK)
	loatest.Eventually(t, 10*time.Second, func() bool {
		a = nat.alert(t, a.ID)
		return push(a, "qn").CancelState == loa.PushDelivered && push(a, "hn").CancelState == loa.PushDelivered
	}, "the cancel delivered to both provinces")
	if ha, err := hn.db.Alert(context.Background(), push(a, "hn").AlertID); err != nil || ha.State != loa.AlertCancelled || !strings.Contains(ha.Reason, "báo nhầm") {
		t.Errorf("hn's alert after the cancel: %+v %v", ha, err)
	}
	wantError(t, nat.do(t, "POST", "/api/v1/national/alerts/"+a.ID+"/cancel", nil), http.StatusConflict, loa.ECONFLICT)

	// A restart: pushes stored pending go out from the new process.
	stop()
	hn.gate.down.Store(true)
	stop = nat.run(t) // the API up, then the national role resumes
	r = nat.do(t, "POST", "/api/v1/national/alerts", map[string]any{"title": "Lũ", "level": loa.AlertPriority,
		"text": "Lũ trên sông Trà Khúc.", "expires_at": time.Now().Add(10 * time.Minute).Format(time.RFC3339), "provinces": []string{"hn"}})
	want(t, r, http.StatusCreated)
	var b loa.NationalAlert
	r.json(t, &b)
	loatest.Eventually(t, 10*time.Second, func() bool { return push(nat.alert(t, b.ID), "hn").Attempts >= 1 }, "hn tried")
	stop()
	hn.gate.down.Store(false)
	stop = nat.run(t)
	loatest.Eventually(t, 10*time.Second, func() bool { return push(nat.alert(t, b.ID), "hn").State == loa.PushDelivered },
		"hn delivered by the restarted controller")

	// Down until expiry: expired, with the last reason.
	hn.gate.down.Store(true)
	r = nat.do(t, "POST", "/api/v1/national/alerts", map[string]any{"title": "Thử", "level": loa.AlertPriority,
		"text": "Thử.", "expires_at": time.Now().Add(1500 * time.Millisecond).Format(time.RFC3339Nano), "provinces": []string{"hn"}})
	want(t, r, http.StatusCreated)
	r.json(t, &b)
	loatest.Eventually(t, 10*time.Second, func() bool { return push(nat.alert(t, b.ID), "hn").State == loa.PushExpired }, "hn expired")

	// A CAP message of the national source is pushed to the province its
	// geocode names, under the national sender.
	hn.gate.down.Store(false)
	src := capXMLFrom("nchmf.gov.vn", "src-1", "01")
	r = exchange(t, nat.srv.Client(), "POST", nat.srv.URL+"/api/v1/alerts/cap", nat.source, src)
	want(t, r, http.StatusCreated)
	r.json(t, &b)
	if len(b.Provinces) != 1 || b.Provinces[0].Province != "hn" || b.Source != "nchmf.gov.vn,src-1" {
		t.Fatalf("from CAP: %+v", b)
	}
	loatest.Eventually(t, 10*time.Second, func() bool { return push(nat.alert(t, b.ID), "hn").State == loa.PushDelivered }, "CAP pushed to hn")
	// The source's Cancel of that message cancels it in the province.
	cancel := fmt.Appendf(nil, `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>src-1c</identifier>
<sender>nchmf.gov.vn</sender><sent>%s</sent><status>Actual</status><msgType>Cancel</msgType><scope>Public</scope>
<note>hết bão</note><references>nchmf.gov.vn,src-1,%s</references></alert>`, cap.FormatTime(time.Now().In(ict)), cap.FormatTime(time.Now().In(ict)))
	r = exchange(t, nat.srv.Client(), "POST", nat.srv.URL+"/api/v1/alerts/cap", nat.source, cancel)
	want(t, r, http.StatusOK)
	loatest.Eventually(t, 10*time.Second, func() bool { return push(nat.alert(t, b.ID), "hn").CancelState == loa.PushDelivered }, "the source's cancel relayed to hn")
	if ha, err := hn.db.Alert(context.Background(), push(nat.alert(t, b.ID), "hn").AlertID); err != nil || ha.State != loa.AlertCancelled {
		t.Errorf("hn's alert after the source's cancel: %+v %v", ha, err)
	}
	wantError(t, exchange(t, nat.srv.Client(), "POST", nat.srv.URL+"/api/v1/alerts/cap", nat.source, capXMLFrom("nchmf.gov.vn", "src-2", "77")),
		http.StatusBadRequest, loa.EINVALID, "no geocode names a registered province")
	wantError(t, exchange(t, nat.srv.Client(), "POST", nat.srv.URL+"/api/v1/alerts/cap", nat.source, capXMLFrom("other.source", "src-3", "01")),
		http.StatusForbidden, loa.EFORBIDDEN, "sender")
}

var ict = time.FixedZone("ICT", 7*3600)

// capXMLFrom is a CAP alert from sender for the area with code, sent now.
func capXMLFrom(sender, id, code string) []byte {
	now := time.Now()
	return fmt.Appendf(nil, `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>%s</identifier>
<sender>%s</sender><sent>%s</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
<info><language>vi-VN</language><category>Met</category><event>Bão</event><urgency>Immediate</urgency><severity>Extreme</severity>
<certainty>Observed</certainty><expires>%s</expires><headline>Bão số 9</headline><description>Bão đổ bộ.</description>
<area><areaDesc>Tỉnh</areaDesc><geocode><valueName>MaDVHC</valueName><value>%s</value></geocode></area></info></alert>`,
		id, sender, cap.FormatTime(now.In(ict)), cap.FormatTime(now.Add(time.Hour).In(ict)), code)
}
