package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/cap"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
)

// capSystem is a controller with a Quảng Ngãi-shaped area tree (communes
// with administrative codes, one marked for tests) and receivers at real
// coastal and inland positions.
type capSystem struct {
	t   *testing.T
	m   *Main
	api *api.Client
	rx  map[string]*firmwaresim.Receiver
	// cfgs start a receiver again; fwKey is the operator's secret firmware
	// key file, whose public half the controller and receivers hold.
	cfgs  map[string]firmwaresim.Config
	fwKey string
}

// The communes, their codes, and where their receivers stand.
var capTopology = []struct {
	area, name, code string
	tests            bool
	devices          map[string][2]float64
}{
	{"bc", "Xã Bình Châu", "20590", false, map[string][2]float64{"bc-1": {15.230, 108.870}, "bc-2": {15.236, 108.874}}},
	{"tk", "Phường Tịnh Kỳ", "21070", false, map[string][2]float64{"tk-1": {15.190, 108.880}}},
	{"na", "Xã Nghĩa An", "21091", true, map[string][2]float64{"na-1": {15.120, 108.860}, "na-2": {15.125, 108.862}}},
	{"sh", "Thị trấn Di Lăng", "21244", false, map[string][2]float64{"sh-1": {15.030, 108.480}}},
}

func startCAPSystem(t *testing.T) *capSystem {
	t.Helper()
	loatest.Tool(t, "espeak-ng") // CAP alerts speak their headline
	ctx := context.Background()
	keys := filepath.Join(t.TempDir(), "keys", "operator")
	pub := writeFirmwareKeys(t, keys)
	cfg := testConfig(t)
	cfg.FirmwareKey = keys + ".pub"
	m := NewMain(cfg, testLogger(t))
	if err := m.Open(ctx); err != nil {
		t.Fatalf("open controller: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close controller: %v", err)
		}
	})
	s := &capSystem{t: t, m: m, api: api.NewClient(m.URL(), m.AdminToken), rx: map[string]*firmwaresim.Receiver{},
		cfgs: map[string]firmwaresim.Config{}, fwKey: keys + ".key"}
	if err := s.api.CreateArea(ctx, loa.Area{ID: "qn", Name: "Tỉnh Quảng Ngãi", Kind: loa.AreaProvince, Code: "51"}); err != nil {
		t.Fatal(err)
	}
	var cfgs []firmwaresim.Config
	for _, c := range capTopology {
		area := map[string]any{"id": c.area, "parent_id": "qn", "name": c.name, "kind": loa.AreaCommune, "code": c.code, "tests": c.tests}
		if err := s.api.JSON(ctx, "POST", "/api/v1/areas", area, nil); err != nil {
			t.Fatal(err)
		}
		for id, p := range c.devices {
			pw, err := s.api.CreateDevice(ctx, loa.Device{ID: id, AreaID: c.area, Name: id, Lat: p[0], Lon: p[1]})
			if err != nil {
				t.Fatal(err)
			}
			cfgs = append(cfgs, firmwaresim.Config{ID: id, Password: pw, Broker: m.MQTTURL(), Decode: true, KeepPCM: true,
				FirmwareKey: pub, Logger: testLogger(t).With("receiver", id)})
			s.cfgs[id] = cfgs[len(cfgs)-1]
		}
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	for _, r := range fleet.Receivers() {
		s.rx[r.ID()] = r
	}
	if err := s.api.WaitOnline(ctx, len(cfgs), time.Minute); err != nil {
		t.Fatal(err)
	}
	return s
}

// capMessage is a CAP 1.2 message sent now, expiring in an hour.
type capMessage struct {
	id, status, msgType, urgency, severity, headline, references string
	areaXML                                                      string // the <area> elements
	resourceXML                                                  string
	expires                                                      time.Time
}

func (c capMessage) xml() []byte {
	now := time.Now()
	if c.status == "" {
		c.status = "Actual"
	}
	if c.msgType == "" {
		c.msgType = "Alert"
	}
	if c.urgency == "" {
		c.urgency, c.severity = "Immediate", "Extreme"
	}
	if c.headline == "" {
		c.headline = "Cảnh báo lũ quét"
	}
	if c.expires.IsZero() {
		c.expires = now.Add(time.Hour)
	}
	var info string
	if c.msgType != "Cancel" {
		info = fmt.Sprintf(`
  <info>
    <language>vi-VN</language>
    <category>Geo</category>
    <event>Lũ quét</event>
    <urgency>%s</urgency>
    <severity>%s</severity>
    <certainty>Observed</certainty>
    <expires>%s</expires>
    <headline>%s</headline>%s
    %s
  </info>`, c.urgency, c.severity, cap.FormatTime(c.expires), c.headline, c.resourceXML, c.areaXML)
	}
	refs := ""
	if c.references != "" {
		refs = "\n  <references>" + c.references + "</references>"
	}
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>%s</identifier>
  <sender>pctt.quangngai.gov.vn</sender>
  <sent>%s</sent>
  <status>%s</status>
  <msgType>%s</msgType>
  <scope>Public</scope>%s%s
</alert>
`, c.id, cap.FormatTime(now), c.status, c.msgType, refs, info)
}

func geocodeArea(codes ...string) string {
	var b strings.Builder
	b.WriteString("<area><areaDesc>Các xã</areaDesc>")
	for _, c := range codes {
		fmt.Fprintf(&b, "<geocode><valueName>MaDVHC</valueName><value>%s</value></geocode>", c)
	}
	b.WriteString("</area>")
	return b.String()
}

// alertJSON is an alert as the API answers it.
type alertJSON struct {
	loa.Alert
	Totals struct {
		All loa.AlertTotals `json:"all"`
	} `json:"totals"`
}

func (s *capSystem) post(body []byte) (*alertJSON, error) {
	var a alertJSON
	err := s.api.Do(context.Background(), "POST", "/api/v1/alerts/cap", "application/cap+xml", bytes.NewReader(body), &a)
	return &a, err
}

func (s *capSystem) mustPost(body []byte) *alertJSON {
	s.t.Helper()
	a, err := s.post(body)
	if err != nil {
		s.t.Fatalf("POST CAP: %v\n%s", err, body)
	}
	return a
}

func (s *capSystem) alert(id string) *alertJSON {
	s.t.Helper()
	var a alertJSON
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/alerts/"+id, nil, &a); err != nil {
		s.t.Fatal(err)
	}
	return &a
}

func reportDevices(a *alertJSON) []string {
	var ids []string
	for _, d := range a.Report {
		ids = append(ids, d.Device)
	}
	slices.Sort(ids)
	return ids
}

// waitPlayed waits until every receiver of want has played frames of the
// alert's session, and checks that no other receiver has the session.
func (s *capSystem) waitPlayed(a *alertJSON, want ...string) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, id := range want {
		for {
			if st, ok := s.rx[id].Session(a.SessionID); ok && st.Played > 0 {
				break
			}
			if time.Now().After(deadline) {
				st, _ := s.rx[id].Session(a.SessionID)
				s.t.Fatalf("receiver %s never played alert %s (session %s): %+v; report %+v", id, a.ID, a.SessionID, st, s.alert(a.ID).Report)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for id, r := range s.rx {
		if _, ok := r.Session(a.SessionID); ok && !slices.Contains(want, id) {
			s.t.Errorf("receiver %s, not a target, got alert %s", id, a.ID)
		}
	}
}

func (s *capSystem) alerts() []alertJSON {
	s.t.Helper()
	var list []alertJSON
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/alerts", nil, &list); err != nil {
		s.t.Fatal(err)
	}
	return list
}

// A CAP geocode alert reaches only the communes with those codes, at the
// emergency level (through a receiver's mute); the same identifier again
// is refused and sends nothing; a CAP Cancel stops it everywhere.
func TestCAPGeocodeAlertDuplicateAndCancel(t *testing.T) {
	s := startCAPSystem(t)
	ctx := context.Background()
	// An emergency plays through mute: a muted target still sounds.
	if err := s.api.JSON(ctx, "POST", "/api/v1/devices/bc-2/commands", map[string]any{"op": "mute", "args": map[string]bool{"muted": true}}, nil); err != nil {
		t.Fatal(err)
	}
	msg := capMessage{id: "QNG-2026-0142", areaXML: geocodeArea("20590")}.xml()
	a := s.mustPost(msg)
	if a.Level != loa.AlertEmergency || a.CAP == nil || a.CAP.Identifier != "QNG-2026-0142" || a.Title != "Cảnh báo lũ quét" {
		t.Fatalf("alert %+v", a.Alert)
	}
	if got := reportDevices(a); !slices.Equal(got, []string{"bc-1", "bc-2"}) {
		t.Fatalf("report devices %v, want bc-1 bc-2", got)
	}
	var sess loa.Session
	if err := s.api.JSON(ctx, "GET", "/api/v1/sessions/"+a.SessionID, nil, &sess); err != nil {
		t.Fatal(err)
	}
	if !sess.Priority.Emergency() {
		t.Errorf("session priority %d is not in the emergency band", sess.Priority)
	}
	s.waitPlayed(a, "bc-1", "bc-2")
	if st, _ := s.rx["bc-2"].Session(a.SessionID); st.Muted != 0 {
		t.Errorf("muted receiver played %d of %d alert frames as silence", st.Muted, st.Played)
	}

	// The same message again: 409, and nothing new anywhere.
	_, err := s.post(msg)
	var ae *api.ClientError
	if !asAPIError(err, &ae) || ae.Status != 409 || ae.Code != loa.ECONFLICT || !strings.Contains(ae.Message, "QNG-2026-0142") {
		t.Fatalf("duplicate: %v", err)
	}
	if n := len(s.alerts()); n != 1 {
		t.Errorf("%d alerts after a duplicate, want 1", n)
	}
	for id, r := range s.rx {
		if n := len(r.Sessions()); (id == "bc-1" || id == "bc-2") && n != 1 || !(id == "bc-1" || id == "bc-2") && n != 0 {
			t.Errorf("receiver %s has %d sessions", id, n)
		}
	}

	// Cancel by CAP: 200, the alert cancelled, the receivers stop.
	ref := "pctt.quangngai.gov.vn,QNG-2026-0142," + a.CAP.Sent
	var cancelled alertJSON
	err = s.api.Do(ctx, "POST", "/api/v1/alerts/cap", "application/cap+xml",
		bytes.NewReader(capMessage{id: "QNG-2026-0143", msgType: "Cancel", references: ref}.xml()), &cancelled)
	if err != nil {
		t.Fatal(err)
	}
	if cancelled.ID != a.ID || cancelled.State != loa.AlertCancelled || !strings.Contains(cancelled.Reason, "QNG-2026-0143") {
		t.Fatalf("cancel answered %s %s %q", cancelled.ID, cancelled.State, cancelled.Reason)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range []string{"bc-1", "bc-2"} {
		for {
			if st, _ := s.rx[id].Session(a.SessionID); st.Done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("receiver %s still plays the cancelled alert", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A Cancel naming a message no alert came from is 404.
	err = s.api.Do(ctx, "POST", "/api/v1/alerts/cap", "application/cap+xml",
		bytes.NewReader(capMessage{id: "QNG-2026-0144", msgType: "Cancel", references: "pctt.quangngai.gov.vn,NO-SUCH,2026-10-12T06:00:00+07:00"}.xml()), nil)
	if !asAPIError(err, &ae) || ae.Status != 404 {
		t.Fatalf("cancel of an unknown message: %v", err)
	}
}

// A CAP polygon reaches the receivers located inside it, whatever commune
// they are in, and no other.
func TestCAPPolygonAlert(t *testing.T) {
	s := startCAPSystem(t)
	// Around Tịnh Kỳ and Nghĩa An: not Bình Châu (north) nor Di Lăng (inland).
	area := `<area><areaDesc>Ven biển Tịnh Kỳ – Nghĩa An</areaDesc>
      <polygon>15.10,108.80 15.20,108.80 15.20,108.95 15.10,108.95 15.10,108.80</polygon></area>`
	a := s.mustPost(capMessage{id: "NCHMF-TC-13", urgency: "Expected", severity: "Extreme", headline: "Bão số 13", areaXML: area}.xml())
	if a.Level != loa.AlertPriority {
		t.Errorf("Expected+Extreme: level %s, want %s", a.Level, loa.AlertPriority)
	}
	want := []string{"na-1", "na-2", "tk-1"}
	if got := reportDevices(a); !slices.Equal(got, want) {
		t.Fatalf("report devices %v, want %v", got, want)
	}
	s.waitPlayed(a, want...)

	// An Update replaces it: the new alert is sent, the old one cancelled.
	ref := "pctt.quangngai.gov.vn,NCHMF-TC-13," + a.CAP.Sent
	b := s.mustPost(capMessage{id: "NCHMF-TC-13-U1", msgType: "Update", references: ref, urgency: "Immediate", severity: "Severe",
		headline: "Bão số 13 đổ bộ", areaXML: area}.xml())
	if b.ID == a.ID || b.Level != loa.AlertEmergency {
		t.Fatalf("update: %s %s", b.ID, b.Level)
	}
	if old := s.alert(a.ID); old.State != loa.AlertCancelled || !strings.Contains(old.Reason, "NCHMF-TC-13-U1") {
		t.Errorf("superseded alert: %s %q", old.State, old.Reason)
	}
	s.waitPlayed(b, want...)
}

// An Exercise sounds only in the areas marked for tests, even when it
// names the whole province.
func TestCAPExercise(t *testing.T) {
	s := startCAPSystem(t)
	a := s.mustPost(capMessage{id: "DIEN-TAP-03", status: "Exercise", headline: "Đây là tin diễn tập", areaXML: geocodeArea("51")}.xml())
	if !a.Test {
		t.Error("an Exercise is not a test alert")
	}
	if got := reportDevices(a); !slices.Equal(got, []string{"na-1", "na-2"}) {
		t.Fatalf("report devices %v, want the test-marked commune's na-1 na-2", got)
	}
	s.waitPlayed(a, "na-1", "na-2")

	// System and Draft messages are taken (202) and sound nowhere.
	for _, status := range []string{"System", "Draft"} {
		var out map[string]any
		err := s.api.Do(context.Background(), "POST", "/api/v1/alerts/cap", "application/cap+xml",
			bytes.NewReader(capMessage{id: "HB-" + status, status: status, areaXML: geocodeArea("51")}.xml()), &out)
		if err != nil || out["sounded"] != false {
			t.Errorf("%s: %v %v", status, err, out)
		}
	}
	if n := len(s.alerts()); n != 1 {
		t.Errorf("%d alerts, want only the exercise", n)
	}
}

// Audio embedded in the message is imported and played as it is.
func TestCAPEmbeddedAudio(t *testing.T) {
	s := startCAPSystem(t)
	signal := testSignal(1500 * time.Millisecond)
	var wav bytes.Buffer
	if err := media.EncodeWAV(&wav, signal, 48000, 1); err != nil {
		t.Fatal(err)
	}
	res := fmt.Sprintf(`
    <resource><resourceDesc>Bản tin ghi âm</resourceDesc><mimeType>audio/wav</mimeType>
      <derefUri>%s</derefUri></resource>`, base64.StdEncoding.EncodeToString(wav.Bytes()))
	a := s.mustPost(capMessage{id: "QNG-TRIEU-1", resourceXML: res, areaXML: geocodeArea("21070")}.xml())
	if a.Content.MediaID == "" || a.Content.Text != "" {
		t.Fatalf("content %+v, want the imported media", a.Content)
	}
	s.waitPlayed(a, "tk-1")
	// The recording plays after the attention tone, which is whole 20 ms
	// frames of media.AttentionTone.
	toneLen := (len(media.AttentionTone(48000)) + 959) / 960 * 960
	deadline := time.Now().Add(time.Minute)
	for {
		pcm := s.rx["tk-1"].PCM(a.SessionID)
		if c := bestCorrelation(signal, pcm[min(toneLen, len(pcm)):]); c > 0.9 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the receiver never played the embedded recording (best correlation %.2f)", c)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Bad CAP input is a clear 4xx and sends nothing.
func TestCAPBadInput(t *testing.T) {
	s := startCAPSystem(t)
	ctx := context.Background()
	var tok, other struct{ Secret string }
	if err := s.api.JSON(ctx, "POST", "/api/v1/tokens", map[string]any{"name": "xa-bc", "role": loa.RoleOperator, "area_id": "bc",
		"cap_senders": []string{"pctt.quangngai.gov.vn"}}, &tok); err != nil {
		t.Fatal(err)
	}
	operator := api.NewClient(s.m.URL(), tok.Secret)
	if err := s.api.JSON(ctx, "POST", "/api/v1/tokens", map[string]any{"name": "xa-bc, no CAP", "role": loa.RoleOperator, "area_id": "bc"}, &other); err != nil {
		t.Fatal(err)
	}
	ungranted := api.NewClient(s.m.URL(), other.Secret)
	long := strings.Repeat("Mưa lớn gây ngập sâu. ", 100)
	cases := []struct {
		name   string
		client *api.Client
		ctype  string
		body   []byte
		status int
		msg    string
	}{
		{"malformed XML", nil, "", []byte("<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>x</alert>"), 400, "XML:"},
		{"not CAP", nil, "", []byte(`{"identifier":"x"}`), 400, "XML:"},
		{"JSON content type", nil, "application/json", capMessage{id: "X1", areaXML: geocodeArea("20590")}.xml(), 415, "Content-Type"},
		{"unknown geocode", nil, "", capMessage{id: "X2", areaXML: geocodeArea("20590", "99999")}.xml(), 400, `no area has code "99999"`},
		{"polygon over the sea", nil, "", capMessage{id: "X3", areaXML: `<area><areaDesc>Biển</areaDesc><polygon>12,112 12.5,112 12.5,112.5 12,112 </polygon></area>`}.xml(), 400, "covers no receiver"},
		{"expired on arrival", nil, "", capMessage{id: "X4", areaXML: geocodeArea("20590"), expires: time.Now().Add(-time.Minute)}.xml(), 400, "expired before it arrived"},
		{"text too long for speech", nil, "", capMessage{id: "X5", headline: long, areaXML: geocodeArea("20590")}.xml(), 400, "speech engine"},
		{"bad urgency", nil, "", capMessage{id: "X6", urgency: "Soon", severity: "Extreme", areaXML: geocodeArea("20590")}.xml(), 400, `info[0].urgency: "Soon" is not`},
		{"operator sends khẩn cấp", operator, "", capMessage{id: "X7", areaXML: geocodeArea("20590")}.xml(), 403, "khẩn cấp"},
		{"sender not granted", ungranted, "", capMessage{id: "X11", urgency: "Expected", severity: "Moderate", areaXML: geocodeArea("20590")}.xml(), 403, "CAP senders"},
		{"operator outside its scope", operator, "", capMessage{id: "X8", urgency: "Expected", severity: "Moderate", areaXML: geocodeArea("21070")}.xml(), 403, "targets.areas: tk"},
		{"exercise with no test area", nil, "", capMessage{id: "X9", status: "Test", areaXML: geocodeArea("20590")}.xml(), 400, "marked for tests"},
		{"too large", nil, "", bytes.Repeat([]byte(" "), cap.MaxSize+1), 413, "at most"},
		{"embedded audio that is not audio", nil, "", capMessage{id: "X10", areaXML: geocodeArea("20590"),
			resourceXML: "<resource><resourceDesc>x</resourceDesc><mimeType>audio/mpeg</mimeType><derefUri>" +
				base64.StdEncoding.EncodeToString([]byte("this is not an mp3 file at all")) + "</derefUri></resource>"}.xml(), 415, "info.resource (audio/mpeg)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, ctype := c.client, c.ctype
			if client == nil {
				client = s.api
			}
			if ctype == "" {
				ctype = "application/cap+xml"
			}
			err := client.Do(ctx, "POST", "/api/v1/alerts/cap", ctype, bytes.NewReader(c.body), nil)
			var ae *api.ClientError
			if !asAPIError(err, &ae) || ae.Status != c.status || !strings.Contains(ae.Message, c.msg) {
				t.Fatalf("got %v, want %d %q", err, c.status, c.msg)
			}
		})
	}
	if n := len(s.alerts()); n != 0 {
		t.Errorf("%d alerts after only bad input", n)
	}
	for id, r := range s.rx {
		if n := len(r.Sessions()); n != 0 {
			t.Errorf("receiver %s played %d sessions after only bad input", id, n)
		}
	}
	var list []loa.Media
	if err := s.api.JSON(ctx, "GET", "/api/v1/media", nil, &list); err != nil || len(list) != 0 {
		t.Errorf("media after only bad input: %v %d", err, len(list))
	}
}

// GET on an alert exports it as CAP: the message it came from, byte for
// byte; a native alert as a generated message that CAP tools can read.
func TestCAPExport(t *testing.T) {
	s := startCAPSystem(t)
	ctx := context.Background()
	msg := capMessage{id: "QNG-EXPORT-1", areaXML: geocodeArea("20590")}.xml()
	a := s.mustPost(msg)
	for _, path := range []string{"/api/v1/alerts/" + a.ID + "/cap", "/api/v1/alerts/" + a.ID + "?format=cap"} {
		var got string
		if err := s.api.Do(ctx, "GET", path, "", nil, &got); err != nil || got != string(msg) {
			t.Errorf("%s: %v\n%s", path, err, got)
		}
	}
	var native alertJSON
	err := s.api.JSON(ctx, "POST", "/api/v1/alerts", map[string]any{"title": "Cảnh báo cháy rừng", "level": loa.AlertPriority,
		"content": map[string]string{"text": "Nguy cơ cháy rừng cấp năm."}, "targets": loa.Targets{Areas: []string{"sh"}}}, &native)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := s.api.Do(ctx, "GET", "/api/v1/alerts/"+native.ID+"/cap", "", nil, &out); err != nil {
		t.Fatal(err)
	}
	m, err := cap.Parse([]byte(out))
	if err != nil {
		t.Fatalf("export does not parse: %v\n%s", err, out)
	}
	if m.Identifier != native.ID || m.Sender != s.m.Config.CAPSender || m.MsgType != "Alert" || m.Status != "Actual" ||
		len(m.Info) != 1 || len(m.Info[0].Area) != 1 || m.Info[0].Area[0].Geocode[0].Value != "21244" || m.Info[0].Urgency != "Expected" {
		t.Errorf("export:\n%s", out)
	}
	err = s.api.Do(ctx, "GET", "/api/v1/alerts/"+native.ID+"?format=pdf", "", nil, nil)
	var ae *api.ClientError
	if !asAPIError(err, &ae) || ae.Status != 400 {
		t.Errorf("format=pdf: %v", err)
	}
}
