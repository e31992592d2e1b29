package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/protocol"
)

// smsRecorder is the controller's SMS gateway on the simulated network;
// it keeps each number's last text and when the controller sent it.
type smsRecorder struct {
	gw   *firmwaresim.SMSGateway
	mu   sync.Mutex
	sent map[string]smsSent // number → last SMS
}

type smsSent struct {
	text string
	at   time.Time
}

func (g *smsRecorder) SendSMS(ctx context.Context, to, text string) error {
	at := time.Now()
	if err := g.gw.SendSMS(ctx, to, text); err != nil {
		return err
	}
	g.mu.Lock()
	g.sent[to] = smsSent{text, at}
	g.mu.Unlock()
	return nil
}

func (g *smsRecorder) last(to string) (smsSent, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.sent[to]
	return s, ok
}

// smsOutage is the MQTT-down phase's outcome. Sounded and the delays
// come from the receivers' own records (their local play of the
// trigger's session), Reported from the controller's report.
type smsOutage struct {
	Sent, Sounded, Reported int
	FromSend, FromAlert     []float64 // ms to the first sound, from the gateway's send / the alert's creation
	Doubles                 int       // receivers that played the alert twice
	ForgedSounded           int       // receivers that sounded a trigger signed by another key
	ReplaySounded           int       // receivers that sounded their trigger sent again
	Accepted                int       // of those two SMS, accepted by a receiver's checks
	Refused                 map[string]int
	Took                    time.Duration // from the alert's creation to its end (or the deadline)
}

// outageSMS runs the MQTT-down phase: the receivers' MQTT cut at link
// and their media path down, an alert naming stored message code goes
// out by SMS through gw (paced by the controller's -sms-rate); the
// receivers' replies reach the controller through the gateway's number
// station. Then, as a negative control, every receiver is sent its
// trigger again (a replay) and one signed by another key (a forgery):
// neither may sound. Waits end at deadline, counted as they stand.
func outageSMS(ctx context.Context, m *daemon.Main, c *api.Client, rs []*firmwaresim.Receiver, msisdn map[string]string,
	link *mqttLink, smsNet *firmwaresim.SMSNetwork, gw *smsRecorder, station, secret string, code int, deadline time.Time,
) (smsOutage, error) {
	res := smsOutage{Refused: map[string]int{}}
	detach := smsNet.Attach(station, func(from, text string) {
		// The gateway posts the receivers' replies to the API.
		body, _ := json.Marshal(map[string]string{"from": from, "text": text})
		req, err := http.NewRequestWithContext(ctx, "POST", m.URL()+"/api/v1/sms/inbound", bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	defer detach()

	for _, r := range rs {
		r.SetLoss(1)
	}
	link.SetCut(true)
	for _, r := range rs {
		for {
			if st, ok := m.Fleet.DeviceState(r.ID()); !ok || !st.Online {
				break
			}
			if time.Now().After(deadline) {
				return res, fmt.Errorf("%s still online for the controller with its MQTT cut", r.ID())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	created := time.Now()
	var al loa.Alert
	if err := c.JSON(ctx, "POST", "/api/v1/alerts", map[string]any{"title": "Lũ quét", "level": loa.AlertEmergency, "stored_code": code,
		"targets": map[string][]string{"areas": {"bench"}}, "repeats": 1, "expires_in": "10m"}, &al); err != nil {
		return res, fmt.Errorf("send alert: %w", err)
	}
	for {
		a, err := m.Alerts.Alert(ctx, al.ID)
		if err != nil {
			return res, err
		}
		if a.State != loa.AlertActive || time.Now().After(deadline) {
			res.Took = time.Since(created)
			for _, d := range a.Report {
				if d.State == loa.DeliveryFinished && d.Channel == loa.ChannelSMS {
					res.Reported++
				}
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The receivers' own records: the trigger's session, played from the
	// stored message.
	trigs := make([]protocol.SMSTrigger, len(rs))
	texts := make([]string, len(rs))
	for i, r := range rs {
		s, ok := gw.last(msisdn[r.ID()])
		if !ok {
			continue
		}
		res.Sent++
		t, _, err := protocol.ParseSMSTrigger(s.text)
		if err != nil {
			return res, fmt.Errorf("%s was sent %q: %w", r.ID(), s.text, err)
		}
		trigs[i], texts[i] = t, s.text
		if st, ok := r.Session(t.Session); ok && st.Played > 0 && st.Local != "" {
			res.Sounded++
			res.FromSend = append(res.FromSend, ms(st.FirstPlayed.Sub(s.at)))
			res.FromAlert = append(res.FromAlert, ms(st.FirstPlayed.Sub(created)))
		}
		plays := 0
		for _, st := range r.Sessions() {
			if (st.Session == t.Session || st.Session == al.SessionID) && st.Played > 0 {
				plays++
			}
		}
		if plays > 1 {
			res.Doubles++
		}
	}

	// Negative control: a replay and a forgery to every receiver sent one.
	_, forger, err := ed25519.GenerateKey(nil)
	if err != nil {
		return res, err
	}
	const forgedSession = "00000000000000f1"
	before := make([]firmwaresim.SMSStats, len(rs))
	sessions := make([]int, len(rs))
	for i, r := range rs {
		if texts[i] == "" {
			continue
		}
		t := trigs[i]
		t.Seq, t.Session, t.Expires = t.Seq+1000, forgedSession, time.Now().Add(time.Hour)
		forged, err := protocol.EncodeSMSTrigger(forger, t)
		if err != nil {
			return res, err
		}
		before[i], sessions[i] = r.SMS(), len(r.Sessions())
		for _, text := range []string{texts[i], forged} {
			if err := smsNet.Send(ctx, station, msisdn[r.ID()], text); err != nil {
				return res, err
			}
		}
	}
	for i, r := range rs {
		if texts[i] == "" {
			continue
		}
		for r.SMS().Received < before[i].Received+2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		after := r.SMS()
		for reason, n := range after.Refused {
			res.Refused[reason] += n - before[i].Refused[reason]
		}
		if st, ok := r.Session(forgedSession); ok && st.Played > 0 {
			res.ForgedSounded++
		}
		res.Accepted += after.Accepted - before[i].Accepted
		extra := len(r.Sessions()) - sessions[i]
		if _, ok := r.Session(forgedSession); ok {
			extra--
		}
		if extra > 0 {
			res.ReplaySounded++
		}
	}

	link.SetCut(false)
	for _, r := range rs {
		r.SetLoss(0)
	}
	return res, nil
}
