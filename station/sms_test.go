package station_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
)

// smsSent records what the controller's gateway was given.
type smsSent struct {
	mu   sync.Mutex
	sent []struct{ to, text string }
}

func (g *smsSent) SendSMS(ctx context.Context, to, text string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sent = append(g.sent, struct{ to, text string }{to, text})
	return nil
}

func (g *smsSent) take() map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]string{}
	for _, m := range g.sent {
		out[m.to] = m.text
	}
	g.sent = nil
	return out
}

// smsCaps is the fleet with the caps the receivers announced.
type smsCaps struct {
	*fakeFleet
	caps map[string][]string
}

func (f smsCaps) DeviceState(id string) (loa.DeviceState, bool) {
	st, ok := f.fakeFleet.DeviceState(id)
	st.Caps = f.caps[id]
	if id == "d7" { // its cache holds another message only
		st.Telemetry = &loa.Telemetry{Cache: &loa.CacheStats{Version: 1, Held: []string{"stored:3"}}}
	}
	return st, ok
}

// An alert naming a stored message is sent by SMS at once to the
// receivers MQTT does not reach, and after the wait to those that did not
// ack; never to one without a number or without sms, nor twice. Replies
// that authenticate are merged into the report (channel sms); forged and
// malformed ones are refused and change nothing.
func TestSMSTriggerAndReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		fleet := newFleet("d1", "d2")
		w := newWorld(t, "", fleet, "d1", "d2", "d3", "d4", "d5", "d6", "d7")
		fleet.answer("d2", func(context.Context) error { time.Sleep(90 * time.Second); return nil })
		numbers := map[string]string{"d1": "+84900000001", "d2": "+84900000002", "d3": "+84900000003", "d5": "+84900000005",
			"d6": "+84900000006", "d7": "+84900000007"}
		for id, n := range numbers {
			if _, err := w.db.SetDeviceMSISDN(ctx, id, n); err != nil {
				t.Fatal(err)
			}
		}
		sms := []string{protocol.CapSMS}
		caps := smsCaps{fleet, map[string][]string{"d1": sms, "d2": sms, "d3": sms, "d4": sms, "d6": sms, "d7": sms}}
		_, key, _ := ed25519.GenerateKey(nil)
		gw := &smsSent{}
		w.alerts.SetStored(station.NewStored(w.db, caps, nil, key, "", discard))
		trig := station.NewSMS(station.SMSConfig{DB: w.db, Alerts: w.alerts, Fleet: caps, Key: key, Sender: gw,
			Wait: 5 * time.Second, Rate: 100, Logger: discard})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); trig.Run(runCtx) }()
		t.Cleanup(func() { cancel(); <-done })

		if _, err := w.db.PutStoredMessage(ctx, &loa.StoredMessage{Code: 7, Name: "Lũ quét", MediaID: w.media.ID, AreaID: "xa"}); err != nil {
			t.Fatal(err)
		}
		a := &loa.Alert{Title: "Lũ quét", Level: loa.AlertEmergency, Content: loa.AlertContent{MediaID: w.media.ID},
			Targets: loa.Targets{Devices: []string{"d1", "d2", "d3", "d4", "d5", "d6", "d7"}}, Repeats: 2,
			ExpiresAt: time.Now().Add(10 * time.Minute), StoredCode: 7, CreatedBy: "tok-prov"}
		if err := w.alerts.SendAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // the sends are paced (10 ms apart)
		synctest.Wait()
		pub := key.Public().(ed25519.PublicKey)
		first := gw.take()
		if len(first) != 2 || first[numbers["d3"]] == "" || first[numbers["d6"]] != first[numbers["d3"]] {
			t.Fatalf("at once: %v, want d3 and d6, the same text (offline; d4 has no number, d5 no sms, d7 not the message, d1 and d2 online)", first)
		}
		t3, err := protocol.VerifySMSTrigger(pub, first[numbers["d3"]])
		if err != nil {
			t.Fatal(err)
		}
		if t3.Code != 7 || t3.Repeats != 2 || t3.Volume != 100 || t3.Priority != 240 || t3.Area != "*" ||
			t3.Expires.Unix() != a.ExpiresAt.Unix() || t3.Session == a.SessionID || t3.Seq != 1 {
			t.Errorf("d3's trigger %+v (alert session %s)", t3, a.SessionID)
		}

		time.Sleep(5 * time.Second)
		synctest.Wait()
		second := gw.take()
		if len(second) != 1 || second[numbers["d2"]] == "" {
			t.Fatalf("after the wait: %v, want only d2 (no ack)", second)
		}
		t2, err := protocol.VerifySMSTrigger(pub, second[numbers["d2"]])
		if err != nil || t2.Session != a.SessionID || t2.Seq != 2 {
			t.Errorf("d2's trigger %+v, %v: want the alert's session and the next seq", t2, err)
		}

		// d3 played it twice, with MQTT still down: its reply.
		pw, err := w.db.ResetDeviceCredentials(ctx, "d3")
		if err != nil {
			t.Fatal(err)
		}
		started := time.Now().Add(-time.Second).Truncate(time.Second)
		reply := func(password, device string, played int) string {
			text, err := protocol.EncodeSMSReply(protocol.SMSReplyKeyFromPassword(password), protocol.SMSReply{
				Device: device, Seq: t3.Seq, Session: t3.Session, Played: played, Started: started})
			if err != nil {
				t.Fatal(err)
			}
			return text
		}
		if err := trig.HandleReply(ctx, numbers["d3"], reply("guess", "d3", 2)); loa.ErrorCode(err) != loa.EFORBIDDEN {
			t.Errorf("forged reply: %v, want forbidden", err)
		}
		if err := trig.HandleReply(ctx, numbers["d4"], reply("guess", "d4", 2)); loa.ErrorCode(err) != loa.EFORBIDDEN {
			t.Errorf("reply of a device without its password: %v, want forbidden", err)
		}
		if err := trig.HandleReply(ctx, numbers["d3"], "played it"); loa.ErrorCode(err) != loa.EINVALID {
			t.Errorf("malformed reply: %v, want invalid", err)
		}
		synctest.Wait()
		_, rep := w.report(a.ID)
		wantDelivery(t, rep["d3"], loa.DeliveryQueued, loa.ReasonOffline)
		if err := trig.HandleReply(ctx, numbers["d3"], reply(pw, "d3", 2)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		_, rep = w.report(a.ID)
		wantDelivery(t, rep["d3"], loa.DeliveryFinished, "")
		if d := rep["d3"]; d.Channel != loa.ChannelSMS || d.Repeats != 2 || !d.StartedAt.Equal(started) {
			t.Errorf("d3 %+v, want channel sms, 2 repeats, started %v", d, started)
		}
		if got := counterValue(t, trig.Collectors()[2].(*prometheus.CounterVec).WithLabelValues("refused")); got != 3 {
			t.Errorf("loa_sms_replies_total{result=refused} %v, want 3", got)
		}
		if got := counterValue(t, trig.Collectors()[0].(prometheus.Counter)); got != 3 {
			t.Errorf("loa_sms_sent_total %v, want 3", got)
		}
		// Sent again (the gateway retried): nothing changes.
		if err := trig.HandleReply(ctx, numbers["d3"], reply(pw, "d3", 2)); err != nil {
			t.Fatal(err)
		}
		// d6's reply was lost; its finished event, once its MQTT is back,
		// tells the play: 1 repeat of 2 heard.
		fleet.send("d6", protocol.Event{Type: protocol.EventFinished, TS: time.Now().UnixMilli(), Session: t3.Session,
			Stream: &protocol.StreamStats{Received: 100, Played: 100, Silence: 50}})
		synctest.Wait()
		_, rep = w.report(a.ID)
		wantDelivery(t, rep["d6"], loa.DeliveryFailed, loa.ReasonPartial)
		if d := rep["d6"]; d.Channel != loa.ChannelSMS || d.Repeats != 1 {
			t.Errorf("d6 %+v, want channel sms, 1 repeat", d)
		}
		// No late session for d3 when it comes back: it played.
		fleet.mu.Lock()
		fleet.online["d3"] = true
		fleet.mu.Unlock()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		for _, s := range w.engine.sessions() {
			if s.ID != a.SessionID {
				for _, d := range s.Devices {
					if d == "d3" {
						t.Errorf("d3 was sent a late session %s after its SMS reply", s.ID)
					}
				}
			}
		}
		if m := gw.take(); len(m) != 0 {
			t.Errorf("sent again: %v", m)
		}
		time.Sleep(90 * time.Second) // d2's ack comes at last
		synctest.Wait()
	})
}

// The HTTP gateway posts {to, text} with its token; a refusal is an error.
func TestHTTPSMSGateway(t *testing.T) {
	var got struct {
		auth, ctype string
		body        map[string]string
	}
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.auth, got.ctype = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		json.NewDecoder(r.Body).Decode(&got.body)
		w.WriteHeader(status)
		w.Write([]byte("quota exceeded"))
	}))
	defer srv.Close()
	gw, err := station.NewHTTPSMSGateway(srv.URL+"/sms", "tok")
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.SendSMS(context.Background(), "+84912345678", "LOA1 x"); err != nil {
		t.Fatal(err)
	}
	if got.auth != "Bearer tok" || got.ctype != "application/json" || got.body["to"] != "+84912345678" || got.body["text"] != "LOA1 x" {
		t.Errorf("gateway got %+v", got)
	}
	status = http.StatusTooManyRequests
	if err := gw.SendSMS(context.Background(), "+84912345678", "LOA1 x"); err == nil || !strings.Contains(err.Error(), "quota exceeded") {
		t.Errorf("a 429: %v", err)
	}
	for _, bad := range []string{"", "ftp://x", "http://"} {
		if _, err := station.NewHTTPSMSGateway(bad, ""); err == nil {
			t.Errorf("gateway URL %q accepted", bad)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
