package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
)

// smsGateway is the controller's gateway on the simulated network; it
// keeps what it sent.
type smsGateway struct {
	gw   *firmwaresim.SMSGateway
	mu   sync.Mutex
	sent map[string]string // number → text
}

func (g *smsGateway) SendSMS(ctx context.Context, to, text string) error {
	g.mu.Lock()
	g.sent[to] = text
	g.mu.Unlock()
	return g.gw.SendSMS(ctx, to, text)
}

func (g *smsGateway) text(to string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sent[to]
}

// With MQTT down for the controller and every receiver (the external
// broker killed), an alert naming a stored message reaches every target
// receiver by SMS: each verifies the trigger, plays the message from its
// cache (its own record: the stored item, decoded), and replies by SMS;
// the gateway posts the replies to the controller, and the report says
// finished, channel sms, for every receiver. Forged, replayed, expired
// and other-area SMS are refused and play nothing.
func TestSystemSMSTriggerWithMQTTDown(t *testing.T) {
	ctx := context.Background()
	port := loatest.FreePort(t, "tcp")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	mosq := loatest.RunMosquitto(t, t.TempDir(), port, conf)

	const station, secret = "+84900000000", "gw-secret"
	net := firmwaresim.NewSMSNetwork()
	gw := &smsGateway{gw: net.Gateway(station), sent: map[string]string{}}
	cfg := testConfig(t)
	cfg.MQTTURL, cfg.SMSWait, cfg.SMSRate, cfg.SMSInboundSecret = mosq.URL, 2*time.Second, 100, secret
	m := NewMain(cfg, testLogger(t))
	m.SMSSender = gw
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c := api.NewClient(m.URL(), m.AdminToken)

	// The gateway posts what the station's number receives to the API.
	var replyMu sync.Mutex
	var replyStatus []int
	defer net.Attach(station, func(from, text string) {
		body, _ := json.Marshal(map[string]string{"from": from, "text": text})
		req, _ := http.NewRequest("POST", m.URL()+"/api/v1/sms/inbound", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		status := 0
		if resp, err := http.DefaultClient.Do(req); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		replyMu.Lock()
		replyStatus = append(replyStatus, status)
		replyMu.Unlock()
	})()

	for _, a := range []loa.Area{
		{ID: "p", Name: "Tỉnh P", Kind: loa.AreaProvince, Code: "01"},
		{ID: "a", ParentID: "p", Name: "Xã A", Kind: loa.AreaCommune, Code: "20590"},
		{ID: "b", ParentID: "p", Name: "Xã B", Kind: loa.AreaCommune, Code: "20591"},
		{ID: "a1", ParentID: "a", Name: "Thôn A1", Kind: loa.AreaCluster},
		{ID: "b1", ParentID: "b", Name: "Thôn B1", Kind: loa.AreaCluster},
	} {
		if err := c.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	const n = 4
	cfgs := make([]firmwaresim.Config, n)
	for i := range cfgs {
		id, area, codes := fmt.Sprintf("rx-%03d", i), "a1", []string{"01", "20590"}
		if i%2 == 1 {
			area, codes = "b1", []string{"01", "20591"}
		}
		number := fmt.Sprintf("+8490000010%d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: area, Name: id, MSISDN: number})
		if err != nil {
			t.Fatal(err)
		}
		cfgs[i] = firmwaresim.Config{ID: id, Password: pw, Broker: mosq.URL, Decode: true, KeepPCM: true,
			StationKey: m.StationKey.Public().(ed25519.PublicKey), SMS: net, MSISDN: number, AreaCodes: codes,
			Logger: testLogger(t).With("receiver", id)}
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	rs := fleet.Receivers()
	if err := c.WaitOnline(ctx, n, time.Minute); err != nil {
		t.Fatal(err)
	}

	// Stored message 7 in every receiver's cache, signed with the station key.
	bulletin, err := c.UploadMedia(ctx, "bulletin.wav", wavOf(t, media.Tone(700, 48000, 1500*time.Millisecond, 0.5)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.JSON(ctx, "PUT", "/api/v1/stored-messages/7",
		map[string]any{"name": "Lũ quét", "media_id": bulletin.ID, "category": "flood", "area_id": "p"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		loatest.Eventually(t, time.Minute, func() bool { return r.CacheHolding().Holds("stored:7") }, r.ID()+" holds stored message 7")
	}

	mosq.Kill()
	loatest.Eventually(t, 30*time.Second, func() bool {
		views, err := c.Devices(ctx)
		if err != nil {
			return false
		}
		return !slices.ContainsFunc(views, func(v api.DeviceView) bool { return v.State == nil || v.State.Online })
	}, "no receiver online for the controller")

	var al alertReply
	if err := c.JSON(ctx, "POST", "/api/v1/alerts", map[string]any{"title": "Lũ quét", "level": loa.AlertEmergency,
		"stored_code": 7, "targets": map[string][]string{"areas": {"p"}},
		"repeats": 1, "volume": 90, "expires_in": "10m"}, &al); err != nil {
		t.Fatal(err)
	}
	s := &system{t: t, m: m, api: c}
	end := s.waitAlert(al.ID, "finished by SMS", func(a *alertReply) bool { return a.State != loa.AlertActive })
	if end.State != loa.AlertFinished {
		t.Fatalf("alert %s (%s): %+v", end.State, end.Reason, end.Report)
	}
	for i, r := range rs {
		d := delivery(end, r.ID())
		if d.State != loa.DeliveryFinished || d.Channel != loa.ChannelSMS || d.Repeats != 1 {
			t.Errorf("%s: %+v, want finished by sms", r.ID(), d)
		}
		text := gw.text(cfgs[i].MSISDN)
		trig, _, err := protocol.ParseSMSTrigger(text)
		if err != nil {
			t.Fatalf("%s was sent %q: %v", r.ID(), text, err)
		}
		if want := cfgs[i].AreaCodes[1]; trig.Area != want || trig.Code != 7 || trig.Volume != 90 {
			t.Errorf("%s's trigger %+v, want area %s, code 7, volume 90", r.ID(), trig, want)
		}
		// Its own record: the stored message, played from its cache.
		st, ok := r.Session(trig.Session)
		if !ok || !st.Done || st.Local != "stored:7" || int(st.Played) != bulletin.Frames {
			t.Errorf("%s played %+v, want stored:7, %d frames", r.ID(), st, bulletin.Frames)
		}
		if f := dominantFrequency(r.PCM(trig.Session)); f < 690 || f > 710 {
			t.Errorf("%s played %.0f Hz, want the 700 Hz bulletin", r.ID(), f)
		}
		if sms := r.SMS(); sms.Accepted != 1 || sms.Replies != 1 {
			t.Errorf("%s modem %+v", r.ID(), sms)
		}
	}
	replyMu.Lock()
	if len(replyStatus) != n || slices.ContainsFunc(replyStatus, func(s int) bool { return s != http.StatusNoContent }) {
		t.Errorf("replies posted: %v, want %d × 204", replyStatus, n)
	}
	replyMu.Unlock()

	// Refused: the same text again, one signed by another key, an
	// expired one, one for another commune.
	r, number := rs[0], cfgs[0].MSISDN
	before := len(r.Sessions())
	_, other, _ := ed25519.GenerateKey(nil)
	sign := func(key ed25519.PrivateKey, seq uint32, area string, expires time.Time) string {
		text, err := protocol.EncodeSMSTrigger(key, protocol.SMSTrigger{Code: 7, Area: area, Repeats: 1, Priority: 240,
			Expires: expires, Seq: seq, Session: "00000000000000f1"})
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	later := time.Now().Add(time.Hour)
	for _, text := range []string{
		gw.text(number),
		sign(other, 1000, "20590", later),
		sign(m.StationKey, 1001, "20590", time.Now().Add(-time.Second)),
		sign(m.StationKey, 1002, "20591", later),
	} {
		if err := net.Send(ctx, station, number, text); err != nil {
			t.Fatal(err)
		}
	}
	loatest.Eventually(t, 10*time.Second, func() bool { return r.SMS().Received == 5 }, "the modem got the four SMS")
	sms := r.SMS()
	for _, reason := range []string{firmwaresim.SMSReplayed, firmwaresim.SMSForged, firmwaresim.SMSExpired, firmwaresim.SMSArea} {
		if sms.Refused[reason] != 1 {
			t.Errorf("refused %s: %d, want 1 (%+v)", reason, sms.Refused[reason], sms)
		}
	}
	if sms.Accepted != 1 || len(r.Sessions()) != before {
		t.Errorf("a refused SMS played: %+v, sessions %d → %d", sms, before, len(r.Sessions()))
	}
}

// wavOf is pcm (48 kHz mono) as a WAV file.
func wavOf(t *testing.T, pcm []int16) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := media.EncodeWAV(&b, pcm, 48000, 1); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
