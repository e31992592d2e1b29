package station

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

func TestSMSLength(t *testing.T) {
	for _, c := range []struct {
		text string
		n    int
		gsm7 bool
	}{
		{"Loa: mat ket noi", 16, true},
		{"a€b", 4, true}, // € is an extension character: two septets
		{"Xác nhận", 8, false},
		{"Loa 🔊", 6, false}, // outside the BMP: two UTF-16 units
	} {
		n, gsm7 := SMSLength(c.text)
		if n != c.n || gsm7 != c.gsm7 {
			t.Errorf("SMSLength(%q) = %d, %v; want %d, %v", c.text, n, gsm7, c.n, c.gsm7)
		}
	}
}

func TestFitSMS(t *testing.T) {
	link := "https://loa.quangninh.gov.vn/#/ack/0123456789ab.AbCdEfGhIjKlMnOp"
	long := "Loa: Loa mất kết nối Loa cụm 3 thôn Đồng Tâm - Xã Bình Liêu - Huyện Bình Liêu mở rộng thêm tên rất dài"
	got := fitSMS(long, "từ 20:55 03/12", link)
	if !FitsOneSMS(got) {
		t.Fatalf("not one SMS (%d): %q", len(got), got)
	}
	if n, gsm7 := SMSLength(got); !gsm7 || n > 160 {
		t.Errorf("want GSM 7-bit within 160, got %d gsm7=%v: %q", n, gsm7, got)
	}
	if !strings.HasSuffix(got, link) {
		t.Errorf("the link was cut: %q", got)
	}
	if !strings.HasPrefix(got, "Loa: Loa mat ket noi Loa cum 3 thon Dong Tam") || !strings.Contains(got, "tu 20:55 03/12") {
		t.Errorf("marks not dropped as Vietnamese SMS write them: %q", got)
	}
	// Short enough for UCS-2: marks kept.
	if got := fitSMS("Loa: Pin yếu", "từ 08:00", "h/#/a"); got != "Loa: Pin yếu từ 08:00. Xác nhận: h/#/a" {
		t.Errorf("short text: %q", got)
	}
}

func TestRenderAlarm(t *testing.T) {
	zone := time.FixedZone("ICT", 7*3600)
	al := &loa.Alarm{ID: "a1", Device: "rx-1", Area: "bc-1", Kind: loa.AlarmOffline, Severity: loa.SeverityCritical,
		Msg: "offline for 5m", RaisedAt: time.Date(2026, 12, 3, 13, 55, 0, 0, time.UTC)}
	subject, body, sms := renderAlarm(al, alarmSubject{Device: "Loa chợ", Area: "Thôn Bản Cốc"}, "https://x/#/ack/t.m", "https://x", zone)
	if subject != "[Loa] Loa mất kết nối: Loa chợ - Thôn Bản Cốc" {
		t.Errorf("subject %q", subject)
	}
	for _, want := range []string{"Thiết bị: Loa chợ\n", "Khu vực: Thôn Bản Cốc\n", "Từ lúc: 20:55 03/12/2026\n",
		"Mức độ: nghiêm trọng", "https://x/#/ack/t.m\n", "https://x/#/alarms"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if !FitsOneSMS(sms) || !strings.Contains(sms, "https://x/#/ack/t.m") || !strings.Contains(sms, "20:55 03/12") {
		t.Errorf("sms %q", sms)
	}
	// A station alarm names the station; an unknown kind still reads.
	subject, _, _ = renderAlarm(&loa.Alarm{Kind: "some_new_kind", RaisedAt: al.RaisedAt}, alarmSubject{}, "l", "", zone)
	if subject != "[Loa] Cảnh báo some_new_kind: Trạm" {
		t.Errorf("station subject %q", subject)
	}
}

func TestSMSGatewayTemplate(t *testing.T) {
	g, err := NewSMSGatewayChannel("http://127.0.0.1:1/send", "", `to={{urlquery .To}}&msg={{urlquery .Text}}`)
	if err != nil {
		t.Fatal(err)
	}
	body, err := renderSMSRequest(g.Template, NotifyMessage{To: "+84912345678", Text: "Xác nhận: a&b"})
	if err != nil || string(body) != "to=%2B84912345678&msg=X%C3%A1c+nh%E1%BA%ADn%3A+a%26b" {
		t.Errorf("form body %q, %v", body, err)
	}
	g, _ = NewSMSGatewayChannel("http://127.0.0.1:1/send", "", "")
	body, _ = renderSMSRequest(g.Template, NotifyMessage{To: "+84912345678", Text: `say "hi"`})
	if string(body) != `{"to":"+84912345678","text":"say \"hi\""}` {
		t.Errorf("default body %s", body)
	}
	if _, err := NewSMSGatewayChannel("http://h/", "", "{{.Nope}}"); err == nil {
		t.Error("a template naming an unknown field was accepted")
	}
	if _, err := NewSMSGatewayChannel("ftp://h/", "", ""); err == nil {
		t.Error("an ftp URL was accepted")
	}
}

type recordingChannel struct {
	mu   sync.Mutex
	sent []NotifyMessage
	fail error
}

func (c *recordingChannel) Send(ctx context.Context, m NotifyMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.sent = append(c.sent, m)
	return nil
}

func (c *recordingChannel) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent)
}

type fixedAlarms struct {
	mu   sync.Mutex
	list []loa.Alarm
}

func (f *fixedAlarms) Active() []loa.Alarm {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]loa.Alarm(nil), f.list...)
}

// TestNotifierEscalation walks one alarm along a two-step chain on an
// injected clock: nothing before the rule's minutes, the e-mail, the SMS
// after its own minutes, nothing twice (a new Notifier on the same store
// included), and the acknowledgement ends it.
func TestNotifierEscalation(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, a := range []*loa.Area{{ID: "qn", Name: "Quảng Ninh", Kind: loa.AreaProvince}, {ID: "bc", ParentID: "qn", Name: "Bình Liêu", Kind: loa.AreaCommune}} {
		if err := db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []*loa.User{
		{Username: "tech", Name: "Kỹ thuật", Role: loa.RoleTechnician, Email: "tech@example.vn", Phone: "+84900000001"},
		{Username: "boss", Name: "Trưởng đài", Role: loa.RoleProvince, Phone: "+84900000002"},
	} {
		if err := db.CreateUser(ctx, u, "a long password"); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	mail, sms := &recordingChannel{}, &recordingChannel{}
	alarms := &fixedAlarms{list: []loa.Alarm{{ID: "al1", Device: "rx-1", Area: "bc", Kind: loa.AlarmOffline, Severity: loa.SeverityCritical, RaisedAt: now}}}
	newNotifier := func() *Notifier {
		return NewNotifier(NotifierConfig{DB: db, Alarms: alarms, Key: []byte("k"), PublicURL: "https://loa.example.vn/",
			Channels: map[string]NotifyChannel{loa.ChannelEmail: mail, loa.ChannelSMS: sms}, Now: clock})
	}
	n := newNotifier()
	rule := &loa.NotifyRule{AreaID: "qn", Event: loa.NotifyAlarm, AlarmKinds: []string{loa.AlarmOffline}, AfterMinutes: 2, Enabled: true,
		Chain: []loa.NotifyStep{{Username: "tech", Channel: loa.ChannelEmail}, {Username: "boss", Channel: loa.ChannelSMS, AfterMinutes: 5}}}
	if err := n.PutRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	other := &loa.NotifyRule{AreaID: "qn", Event: loa.NotifyAlarm, AlarmKinds: []string{loa.AlarmAmpFault}, Enabled: true,
		Chain: []loa.NotifyStep{{Username: "tech", Channel: loa.ChannelEmail}}}
	if err := n.PutRule(ctx, other); err != nil {
		t.Fatal(err)
	}
	round := func(n *Notifier) {
		t.Helper()
		if err := n.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	round(n)
	if mail.count() != 0 {
		t.Fatal("e-mailed before the rule's minutes")
	}
	now = now.Add(2 * time.Minute)
	round(n)
	round(n)
	if mail.count() != 1 || sms.count() != 0 {
		t.Fatalf("after 2 min: %d e-mails, %d SMS; want 1, 0", mail.count(), sms.count())
	}
	m := mail.sent[0]
	if m.To != "tech@example.vn" || !strings.Contains(m.Body, "Khu vực: Bình Liêu") || !strings.HasPrefix(m.Link, "https://loa.example.vn/#/ack/") {
		t.Errorf("e-mail %+v", m)
	}
	token := strings.TrimPrefix(m.Link, "https://loa.example.vn/#/ack/")
	if e, err := n.AckLink(ctx, token); err != nil || e.AlarmID != "al1" {
		t.Errorf("AckLink = %+v, %v", e, err)
	}
	if _, err := n.AckLink(ctx, token[:len(token)-1]+"x"); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("a forged token: %v", err)
	}
	now = now.Add(4 * time.Minute)
	round(n)
	if sms.count() != 0 {
		t.Fatal("SMS before its 5 minutes")
	}
	now = now.Add(time.Minute)
	n = newNotifier() // a restart: the state is in the store
	round(n)
	round(n)
	if sms.count() != 1 || mail.count() != 1 {
		t.Fatalf("after 7 min: %d e-mails, %d SMS; want 1, 1", mail.count(), sms.count())
	}
	if s := sms.sent[0]; s.To != "+84900000002" || !FitsOneSMS(s.Text) || !strings.Contains(s.Text, token) {
		t.Errorf("sms %+v", s)
	}
	alarms.mu.Lock()
	alarms.list[0].Ack = &loa.AlarmAck{By: "user:boss", At: now}
	alarms.mu.Unlock()
	round(n)
	if _, err := n.AckLink(ctx, token); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("a link after the ack: %v", err)
	}
	log, err := n.NotifyLog(ctx, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		got = append(got, e.Status+" "+e.Channel+" "+e.Username+e.By)
	}
	want := []string{"acked  user:boss", "sent sms boss", "sent email tech"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("log %q, want %q", got, want)
	}
	audit, _ := db.AuditLog(ctx, 10)
	if len(audit) < 3 || audit[0].Action != "notify.acked" || audit[1].Action != "notify.sent" {
		t.Errorf("audit %+v", audit)
	}
}

// TestNotifierFailureMovesOn: a person without an address, or a channel
// that refuses, is logged failed and the chain goes on.
func TestNotifierFailureMovesOn(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateUser(ctx, &loa.User{Username: "noone", Role: loa.RoleTechnician}, "a long password"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, &loa.User{Username: "tech", Role: loa.RoleTechnician, Phone: "+84900000001"}, "a long password"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	sms := &recordingChannel{fail: errors.New("gateway down")}
	n := NewNotifier(NotifierConfig{DB: db, Key: []byte("k"), Now: func() time.Time { return now },
		Alarms:   &fixedAlarms{list: []loa.Alarm{{ID: "s1", Kind: loa.AlarmDiskSpace, Severity: loa.SeverityWarning, RaisedAt: now}}},
		Channels: map[string]NotifyChannel{loa.ChannelSMS: sms}})
	if err := n.PutRule(ctx, &loa.NotifyRule{Event: loa.NotifyAlarm, Enabled: true, Chain: []loa.NotifyStep{
		{Username: "noone", Channel: loa.ChannelEmail}, {Username: "tech", Channel: loa.ChannelSMS}}}); err != nil {
		t.Fatal(err)
	}
	n.Round(ctx)
	n.Round(ctx)
	log, _ := n.NotifyLog(ctx, 10, nil)
	if len(log) != 2 || log[1].Status != loa.NotifyFailed || !strings.Contains(log[1].Error, "no email address") ||
		log[0].Status != loa.NotifyFailed || !strings.Contains(log[0].Error, "gateway down") {
		t.Errorf("log %+v", log)
	}
}

// TestNotifierAlertDelivery: an alert that ends reaching fewer receivers
// than a rule's percentage tells its chain (a cancelled one, or one that
// reached enough, nobody); the escalation ends once everyone was told, or
// when someone acknowledges its link.
func TestNotifierAlertDelivery(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, a := range []*loa.Area{{ID: "qn", Name: "Quảng Ninh", Kind: loa.AreaProvince}, {ID: "bc", ParentID: "qn", Name: "Bình Châu", Kind: loa.AreaCommune},
		{ID: "hn", Name: "Hà Nội", Kind: loa.AreaProvince}} {
		if err := db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateUser(ctx, &loa.User{Username: "boss", Role: loa.RoleProvince, Phone: "+84900000002"}, "a long password"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	sms := &recordingChannel{}
	n := NewNotifier(NotifierConfig{DB: db, Key: []byte("k"), Now: func() time.Time { return now }, Alarms: &fixedAlarms{},
		Channels: map[string]NotifyChannel{loa.ChannelSMS: sms}})
	if err := n.PutRule(ctx, &loa.NotifyRule{AreaID: "qn", Event: loa.NotifyAlertDelivery, BelowPercent: 80, Enabled: true,
		Chain: []loa.NotifyStep{{Username: "boss", Channel: loa.ChannelSMS}}}); err != nil {
		t.Fatal(err)
	}
	alert := func(id, state, area string, reached, of int) *loa.Alert {
		a := &loa.Alert{ID: id, Title: "Bão số 3 đổ bộ", State: state, EndedAt: now}
		for i := range of {
			d := loa.Delivery{Device: fmt.Sprint("rx", i), Area: area, State: loa.DeliveryFailed}
			if i < reached {
				d.State = loa.DeliveryFinished
			}
			a.Report = append(a.Report, d)
		}
		return a
	}
	n.AlertEnded(alert("enough", loa.AlertFinished, "bc", 8, 10))
	n.AlertEnded(alert("cancelled", loa.AlertCancelled, "bc", 0, 10))
	n.AlertEnded(alert("elsewhere", loa.AlertExpired, "hn", 0, 10))
	n.AlertEnded(alert("few", loa.AlertExpired, "bc", 5, 10))
	for range 2 {
		if err := n.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if sms.count() != 1 {
		t.Fatalf("%d SMS, want 1 (the alert that reached 5 of 10 in the rule's province)", sms.count())
	}
	if m := sms.sent[0]; !FitsOneSMS(m.Text) || !strings.Contains(m.Text, "5/10") || !strings.Contains(m.Subject, "50%") {
		t.Errorf("message %+v", m)
	}
	log, _ := n.NotifyLog(ctx, 10, nil)
	if len(log) != 2 || log[0].Status != loa.NotifyStopped || log[1].Status != loa.NotifySent || log[1].AlertID != "few" || log[1].AreaID != "qn" {
		t.Errorf("log %+v", log)
	}

	// A second such alert, acknowledged from its link before anyone is told.
	if err := n.PutRule(ctx, &loa.NotifyRule{Event: loa.NotifyAlertDelivery, BelowPercent: 100, AfterMinutes: 30, Enabled: true,
		Chain: []loa.NotifyStep{{Username: "boss", Channel: loa.ChannelSMS}}}); err != nil {
		t.Fatal(err)
	}
	n.AlertEnded(alert("later", loa.AlertFinished, "hn", 9, 10))
	n.Round(ctx)
	escs, _ := db.NotifyEscalations(ctx)
	if len(escs) != 1 || escs[0].AlertID != "later" {
		t.Fatalf("escalations %+v", escs)
	}
	e, err := n.AckLink(ctx, n.AckToken(escs[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AckEscalation(ctx, e.ID, "user:boss", "đã biết"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	n.Round(ctx)
	if sms.count() != 1 {
		t.Errorf("told after the acknowledgement: %d SMS", sms.count())
	}
}

// FuzzAckLink: a link's token is outside input; nothing but a token the
// station signed for an escalation it keeps resolves.
func FuzzAckLink(f *testing.F) {
	db, err := store.Open(filepath.Join(f.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	n := NewNotifier(NotifierConfig{DB: db, Key: []byte("k"), Alarms: &fixedAlarms{}})
	ctx := context.Background()
	if _, err := db.StartNotifyEscalation(ctx, &loa.NotifyEscalation{ID: "0123456789ab", RuleID: "r", AlarmID: "a"}); err != nil {
		f.Fatal(err)
	}
	good := n.AckToken("0123456789ab")
	for _, s := range []string{good, "", ".", "0123456789ab.", good + "x", "a.b.c", strings.Repeat("é", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		e, err := n.AckLink(ctx, token)
		if (err == nil) != (token == good) {
			t.Fatalf("AckLink(%q) = %+v, %v", token, e, err)
		}
		if err != nil && loa.ErrorCode(err) != loa.EINVALID && loa.ErrorCode(err) != loa.ENOTFOUND {
			t.Fatalf("AckLink(%q): %v", token, err)
		}
	})
}
