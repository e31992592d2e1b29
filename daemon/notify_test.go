package daemon

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/station"
)

// smtpServer is a tiny SMTP server for tests: it offers STARTTLS and
// takes mail only after it (as a real submission server would), and
// keeps each message it is given.
type smtpServer struct {
	ln   net.Listener
	tls  *tls.Config
	mu   sync.Mutex
	msgs []smtpMessage
}

type smtpMessage struct {
	To  string
	Msg *mail.Message
	TLS bool
}

// startSMTP listens on loopback with a self-signed certificate for
// 127.0.0.1; client is the TLS configuration that trusts it.
func startSMTP(t *testing.T) (s *smtpServer, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s = &smtpServer{ln: ln, tls: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	secure := false
	var rcpt string
	tp.PrintfLine("220 loa-test ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		switch {
		case verb == "EHLO" && !secure:
			tp.PrintfLine("250-loa-test\r\n250-8BITMIME\r\n250 STARTTLS")
		case verb == "EHLO":
			tp.PrintfLine("250-loa-test\r\n250 8BITMIME")
		case verb == "STARTTLS" && !secure:
			tp.PrintfLine("220 go ahead")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, secure = tc, true
			tp = textproto.NewConn(tc)
		case !secure && (verb == "MAIL" || verb == "RCPT" || verb == "DATA"):
			tp.PrintfLine("530 must issue STARTTLS first")
		case verb == "MAIL":
			tp.PrintfLine("250 ok")
		case verb == "RCPT":
			rcpt = strings.Trim(line[len("RCPT TO:"):], "<> ")
			tp.PrintfLine("250 ok")
		case verb == "DATA":
			tp.PrintfLine("354 go on")
			body, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			msg, err := mail.ReadMessage(strings.NewReader(string(body)))
			if err != nil {
				tp.PrintfLine("554 bad message")
				continue
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, smtpMessage{To: rcpt, Msg: msg, TLS: secure})
			s.mu.Unlock()
			tp.PrintfLine("250 queued")
		case verb == "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("250 ok")
		}
	}
}

func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

// smsStub is an SMS gateway taking form posts (a carrier's API, as the
// request template shapes it).
type smsStub struct {
	mu   sync.Mutex
	sent []url.Values
}

func (g *smsStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer gw-secret" || r.ParseForm() != nil {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	g.mu.Lock()
	g.sent = append(g.sent, r.PostForm)
	g.mu.Unlock()
	io.WriteString(w, `{"status":"queued"}`)
}

func (g *smsStub) messages() []url.Values {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]url.Values(nil), g.sent...)
}

// TestNotifyEscalation: a receiver that never comes online raises an
// offline alarm; nobody acknowledges it, so the technician is e-mailed
// (through STARTTLS, in Vietnamese, with the link), then the next person
// gets one SMS through the gateway's template; the link acknowledges the
// alarm, which ends the escalation before its third step; a restart
// between the steps sends nothing twice. An alert that
// then expires without reaching the receiver tells the province staff by
// SMS. Rule minutes are seconds here.
func TestNotifyEscalation(t *testing.T) {
	smtpd, trust := startSMTP(t)
	gw := &smsStub{}
	gwSrv := httptest.NewServer(gw)
	defer gwSrv.Close()
	cfg := testConfig(t)
	cfg.Alarms.Offline = time.Second
	cfg.NotifyMinute, cfg.NotifyTick = time.Second, 100*time.Millisecond
	cfg.PublicURL = "https://loa.binhlieu.example.vn"
	cfg.SMTPAddr, cfg.SMTPFrom, cfg.SMTPTLS = smtpd.ln.Addr().String(), "loa@binhlieu.example.vn", trust
	cfg.SMSGatewayURL, cfg.SMSGatewayToken = gwSrv.URL, "gw-secret"
	cfg.SMSGatewayTemplate = `to={{urlquery .To}}&text={{urlquery .Text}}`
	m := openMain(t, cfg)
	defer func() { m.Close() }()
	ctx := context.Background()
	c := api.NewClient(m.URL(), m.AdminToken)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.CreateArea(ctx, loa.Area{ID: "qn", Name: "Quảng Ninh", Kind: loa.AreaProvince}))
	must(c.CreateArea(ctx, loa.Area{ID: "bl", ParentID: "qn", Name: "Xã Bình Liêu", Kind: loa.AreaCommune}))
	must(c.CreateArea(ctx, loa.Area{ID: "tt", ParentID: "qn", Name: "Xã Tiên Yên", Kind: loa.AreaCommune}))
	for _, u := range []map[string]string{
		{"username": "kythuat", "name": "Kỹ thuật viên", "role": "technician", "area_id": "bl", "password": "mật khẩu dài đủ", "email": "kythuat@binhlieu.example.vn"},
		{"username": "truongdai", "name": "Trưởng đài", "role": "province", "area_id": "qn", "password": "mật khẩu dài đủ", "phone": "+84912345678"},
	} {
		must(c.JSON(ctx, "POST", "/api/v1/users", u, nil))
	}
	// Bad input is refused and changes nothing.
	err := c.JSON(ctx, "POST", "/api/v1/notify/rules", map[string]any{"event": "alarm",
		"chain": []map[string]any{{"username": "nobody", "channel": "email", "after_minutes": 0}}}, nil)
	if errCode(err) != loa.EINVALID || !strings.Contains(err.Error(), "chain.username") {
		t.Errorf("a chain naming nobody: %v", err)
	}
	var rule loa.NotifyRule
	must(c.JSON(ctx, "POST", "/api/v1/notify/rules", map[string]any{
		"name": "Loa mất kết nối", "area_id": "bl", "event": "alarm", "alarm_kinds": []string{"offline"}, "after_minutes": 1,
		"chain": []map[string]any{
			{"username": "kythuat", "channel": "email", "after_minutes": 0},
			{"username": "truongdai", "channel": "sms", "after_minutes": 1},
			{"username": "admin", "channel": "email", "after_minutes": 600}, // never reached: acknowledged first
		}}, &rule))
	if !rule.Enabled || rule.ID == "" {
		t.Fatalf("rule %+v", rule)
	}
	_, err = c.CreateDevice(ctx, loa.Device{ID: "rx-bl-1", Name: "Loa chợ Bình Liêu", AreaID: "bl"})
	must(err)

	loatest.Eventually(t, 20*time.Second, func() bool { return len(smtpd.messages()) > 0 }, "the technician e-mailed")
	em := smtpd.messages()[0]
	subject, _ := new(mime.WordDecoder).DecodeHeader(em.Msg.Header.Get("Subject"))
	if em.To != "kythuat@binhlieu.example.vn" || !em.TLS || subject != "[Loa] Loa mất kết nối: Loa chợ Bình Liêu - Xã Bình Liêu" {
		t.Errorf("e-mail to %s (TLS %v): %q", em.To, em.TLS, subject)
	}
	body, _ := io.ReadAll(em.Msg.Body)
	text := decodeBase64Body(t, body)
	i := strings.Index(text, cfg.PublicURL+"/#/ack/")
	if i < 0 || !strings.Contains(text, "Thiết bị: Loa chợ Bình Liêu") {
		t.Fatalf("e-mail body lacks the device or the link:\n%s", text)
	}
	link := strings.Fields(text[i:])[0]
	token := strings.TrimPrefix(link, cfg.PublicURL+"/#/ack/")

	// A restart between the steps: the escalation resumes from the store,
	// the e-mail is not sent again.
	admin := m.AdminToken
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openMain(t, cfg)
	c = api.NewClient(m.URL(), admin)
	loatest.Eventually(t, 20*time.Second, func() bool { return len(gw.messages()) > 0 }, "the next person sent an SMS")
	sms := gw.messages()[0]
	if sms.Get("to") != "+84912345678" || !station.FitsOneSMS(sms.Get("text")) || !strings.HasSuffix(sms.Get("text"), link) {
		t.Errorf("SMS %v", sms)
	}

	// The link, opened by someone of another commune: not theirs to acknowledge.
	other := scopedToken(t, c, "technician", "tt")
	err = api.NewClient(m.URL(), other).JSON(ctx, "POST", "/api/v1/notify/ack", map[string]string{"token": token}, nil)
	if errCode(err) != loa.ENOTFOUND {
		t.Errorf("another commune acknowledging: %v", err)
	}
	err = c.JSON(ctx, "POST", "/api/v1/notify/ack", map[string]string{"token": token[:len(token)-2] + "xx"}, nil)
	if errCode(err) != loa.EINVALID {
		t.Errorf("a forged link: %v", err)
	}
	tech := scopedToken(t, c, "technician", "bl")
	var acked struct{ Alarm loa.Alarm }
	must(api.NewClient(m.URL(), tech).JSON(ctx, "POST", "/api/v1/notify/ack", map[string]string{"token": token, "note": "đang đi sửa"}, &acked))
	if al := acked.Alarm; al.Ack == nil || al.Kind != loa.AlarmOffline || !strings.Contains(al.Ack.Note, "đang đi sửa") {
		t.Errorf("acknowledged %+v", al)
	}
	var log []loa.NotifyLogEntry
	loatest.Eventually(t, 10*time.Second, func() bool {
		must(c.JSON(ctx, "GET", "/api/v1/notify/log", nil, &log))
		return len(log) > 0 && log[0].Status == loa.NotifyAcked
	}, "the escalation acknowledged")
	if len(log) != 3 || log[1].Channel != "sms" || log[1].Status != "sent" || log[2].Channel != "email" || log[2].Username != "kythuat" {
		t.Errorf("log %+v", log)
	}
	// Ended: the third step can never be claimed, and the link is spent.
	if escs, err := m.DB.NotifyEscalations(ctx); err != nil || len(escs) != 0 {
		t.Errorf("escalations left: %+v, %v", escs, err)
	}
	if err := c.JSON(ctx, "POST", "/api/v1/notify/ack", map[string]string{"token": token}, nil); errCode(err) != loa.ENOTFOUND {
		t.Errorf("a spent link: %v", err)
	}
	if n := len(smtpd.messages()); n != 1 {
		t.Errorf("%d e-mails, want 1", n)
	}
	// An alert that ends reaching none of its receivers tells province staff.
	must(c.JSON(ctx, "POST", "/api/v1/notify/rules", map[string]any{"area_id": "qn", "event": "alert_delivery", "below_percent": 90,
		"chain": []map[string]any{{"username": "truongdai", "channel": "sms", "after_minutes": 0}}}, nil))
	must(c.JSON(ctx, "POST", "/api/v1/alerts", map[string]any{"title": "Lũ quét", "level": loa.AlertEmergency,
		"content": map[string]any{"text": "Lũ quét"}, "targets": map[string][]string{"devices": {"rx-bl-1"}}, "expires_in": "2s"}, nil))
	loatest.Eventually(t, 30*time.Second, func() bool { return len(gw.messages()) > 1 }, "province staff told of the alert's delivery")
	if sms := gw.messages()[1]; sms.Get("to") != "+84912345678" || !strings.Contains(sms.Get("text"), "0/1") || !station.FitsOneSMS(sms.Get("text")) {
		t.Errorf("SMS %v", sms)
	}
	var audit []loa.AuditRecord
	must(c.JSON(ctx, "GET", "/api/v1/audit", nil, &audit))
	seen := map[string]bool{}
	for _, r := range audit {
		seen[r.Action] = true
	}
	for _, a := range []string{"notify.sent", "notify.ack", "notify.acked", "notify.rule.create"} {
		if !seen[a] {
			t.Errorf("the audit log lacks %s", a)
		}
	}
}

// scopedToken makes an API token of role within area.
func scopedToken(t *testing.T, c *api.Client, role, area string) string {
	t.Helper()
	var out struct {
		Secret string `json:"secret"`
	}
	if err := c.JSON(context.Background(), "POST", "/api/v1/tokens", map[string]string{"name": role + " " + area, "role": role, "area_id": area}, &out); err != nil {
		t.Fatal(err)
	}
	return out.Secret
}

func decodeBase64Body(t *testing.T, b []byte) string {
	t.Helper()
	var clean strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		clean.WriteString(strings.TrimSpace(sc.Text()))
	}
	out, err := base64.StdEncoding.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("body not base64: %v", err)
	}
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

// errCode is the API error code of a client call's error, "" if none.
func errCode(err error) string {
	var ce *api.ClientError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}
