package station

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// The SMS trigger (contract v2, sms): an alert naming a stored message
// (Alert.StoredCode) is also sent by SMS, signed with the station key, to
// the target receivers MQTT does not reach: at once to those offline or
// of unknown presence (the broker link down), and after SMSConfig.Wait to
// those that have not acked. One trigger per alert and receiver; sends
// are paced (SMSConfig.Rate) and logged. Receivers answer by SMS while
// their data stays down; the gateway posts those replies to the API
// (HandleReply), which merges them into the alert's report (channel sms).

// SMSSender sends one SMS text to a number: a gateway.
type SMSSender interface {
	SendSMS(ctx context.Context, to, text string) error
}

// HTTPSMSGateway is a generic HTTP SMS gateway: each SMS is a POST of the
// JSON {"to": number, "text": text} to URL, with "Authorization: Bearer
// Token" when Token is set; any 2xx answer is a send.
type HTTPSMSGateway struct {
	URL    string
	Token  string
	Client *http.Client // nil: one with a 10 s timeout
}

// NewHTTPSMSGateway checks the URL.
func NewHTTPSMSGateway(rawURL, token string) (*HTTPSMSGateway, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sms-gateway %q: want an http:// or https:// URL", rawURL)
	}
	return &HTTPSMSGateway{URL: rawURL, Token: token, Client: &http.Client{Timeout: 10 * time.Second}}, nil
}

// SendSMS posts one SMS to the gateway.
func (g *HTTPSMSGateway) SendSMS(ctx context.Context, to, text string) error {
	body, _ := json.Marshal(map[string]string{"to": to, "text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if g.Token != "" {
		req.Header.Set("Authorization", "Bearer "+g.Token)
	}
	c := g.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("sms gateway: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sms gateway: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// SMSConfig configures the SMS trigger.
type SMSConfig struct {
	DB     *store.DB
	Alerts *Alerts
	Fleet  interface {
		DeviceState(id string) (loa.DeviceState, bool)
	}
	Key    ed25519.PrivateKey // the station key
	Sender SMSSender
	// Wait is how long an online receiver has to ack an alert over MQTT
	// before it is sent the SMS trigger; 0 = DefaultSMSWait.
	Wait time.Duration
	// Rate bounds the SMS sent per second; 0 = DefaultSMSRate.
	Rate   float64
	Logger *slog.Logger
}

// Defaults of the SMS trigger.
const (
	DefaultSMSWait = 10 * time.Second
	DefaultSMSRate = 10
)

// SMS sends alerts' SMS triggers and takes their replies.
type SMS struct {
	cfg SMSConfig
	log *slog.Logger

	mu   sync.Mutex
	due  []smsDue
	sent map[string]map[string]bool // alert → devices sent its trigger
	wake chan struct{}
	out  chan smsOut

	sentN, failedN prometheus.Counter
	replies        *prometheus.CounterVec // by result: merged, late, refused
}

// Collectors are the SMS trigger's metrics.
func (s *SMS) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.sentN, s.failedN, s.replies}
}

type smsDue struct {
	alert   string
	at      time.Time
	offline bool // only the receivers MQTT does not reach now
}

type smsOut struct{ alert, device, to, text string }

// NewSMS returns the SMS trigger; Run sends.
func NewSMS(cfg SMSConfig) *SMS {
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultSMSWait
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultSMSRate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &SMS{cfg: cfg, log: cfg.Logger, sent: map[string]map[string]bool{},
		wake: make(chan struct{}, 1), out: make(chan smsOut, 4096),
		sentN: prometheus.NewCounter(prometheus.CounterOpts{Name: "loa_sms_sent_total",
			Help: "SMS triggers the gateway accepted."}),
		failedN: prometheus.NewCounter(prometheus.CounterOpts{Name: "loa_sms_failed_total",
			Help: "SMS triggers the gateway refused or did not answer, or that did not fit the queue."}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loa_sms_replies_total",
			Help: "Receivers' SMS replies the gateway posted, by result: merged into a report, late (its alert ended), refused (not a reply, or not authenticated)."},
			[]string{"result"}),
	}
	cfg.Alerts.sms = s
	return s
}

// alertSent is told by Alerts of every alert that names a stored
// message: the receivers out of reach now get its trigger at once, the
// others once they had Wait to ack.
func (s *SMS) alertSent(id string) {
	now := time.Now()
	s.mu.Lock()
	s.due = append(s.due, smsDue{alert: id, at: now, offline: true}, smsDue{alert: id, at: now.Add(s.cfg.Wait)})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run checks the alerts due and sends their triggers, paced, until ctx
// ends.
func (s *SMS) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.send(ctx)
	}()
	defer wg.Wait()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		s.mu.Lock()
		var ready []smsDue
		next := now.Add(time.Hour)
		s.due = slices.DeleteFunc(s.due, func(d smsDue) bool {
			if !d.at.After(now) {
				ready = append(ready, d)
				return true
			}
			if d.at.Before(next) {
				next = d.at
			}
			return false
		})
		s.mu.Unlock()
		for _, d := range ready {
			if err := s.trigger(ctx, d); err != nil {
				s.log.Error("sms trigger not sent", "alert", d.alert, "err", err)
			}
		}
		t.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// trigger sends alert d's trigger to its receivers still waiting for it
// (all of them, or only those out of MQTT's reach).
func (s *SMS) trigger(ctx context.Context, d smsDue) error {
	if !d.offline {
		// The alert's last check: forget whom it was sent to.
		defer func() {
			s.mu.Lock()
			delete(s.sent, d.alert)
			s.mu.Unlock()
		}()
	}
	a, sessions, ok := s.cfg.Alerts.smsTargets(d.alert)
	if !ok {
		return nil // ended, or every receiver heard
	}
	areas, err := s.cfg.DB.Areas(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]*loa.Area, len(areas))
	for _, ar := range areas {
		byID[ar.ID] = ar
	}
	type group struct{ session, area string }
	groups := map[group][]*loa.Device{}
	s.mu.Lock()
	sent := s.sent[a.ID]
	if sent == nil {
		sent = map[string]bool{}
		s.sent[a.ID] = sent
	}
	s.mu.Unlock()
	skipped := 0
	for _, id := range slices.Sorted(maps.Keys(sessions)) {
		st, known := s.cfg.Fleet.DeviceState(id)
		if d.offline && known && st.Online {
			continue // MQTT reaches it: it has Wait to ack
		}
		s.mu.Lock()
		done := sent[id]
		s.mu.Unlock()
		if done {
			continue
		}
		dev, err := s.cfg.DB.Device(ctx, id)
		if err != nil || dev.MSISDN == "" || !known || !st.HasCap(protocol.CapSMS) || !s.cfg.Alerts.mayHold(st, a.StoredCode) {
			skipped++ // no modem number, no SMS trigger in its firmware, or not the message
			continue
		}
		g := group{sessions[id], areaCode(byID, dev.AreaID)}
		groups[g] = append(groups[g], dev)
	}
	if len(groups) == 0 {
		return nil
	}
	seq, err := s.cfg.DB.NextSMSSeq(ctx)
	if err != nil {
		return err
	}
	vol := 0
	if a.Priority().Emergency() {
		vol = a.Volume
	}
	n := 0
	for g, devs := range groups {
		text, err := protocol.EncodeSMSTrigger(s.cfg.Key, protocol.SMSTrigger{Code: a.StoredCode, Area: g.area,
			Repeats: a.Repeats, Volume: vol, Priority: uint8(a.Priority()), Expires: a.ExpiresAt, Seq: seq, Session: g.session})
		if err != nil {
			return err
		}
		for _, dev := range devs {
			select {
			case s.out <- smsOut{alert: a.ID, device: dev.ID, to: dev.MSISDN, text: text}:
				s.mu.Lock()
				sent[dev.ID] = true
				s.mu.Unlock()
				n++
			default:
				s.failedN.Inc()
				s.log.Warn("sms queue full; trigger not sent", "alert", a.ID, "device", dev.ID)
			}
		}
	}
	s.log.Info("sms trigger queued", "alert", a.ID, "seq", seq, "code", a.StoredCode, "receivers", n,
		"without_sms", skipped, "out_of_reach_only", d.offline)
	return nil
}

// send sends the queued SMS, at most Rate per second, until ctx ends.
func (s *SMS) send(ctx context.Context) {
	every := time.Duration(float64(time.Second) / s.cfg.Rate)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.out:
			if wait := time.Until(last.Add(every)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			last = time.Now()
			sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := s.cfg.Sender.SendSMS(sctx, m.to, m.text)
			cancel()
			if err != nil {
				s.failedN.Inc()
				s.log.Warn("sms trigger not sent", "alert", m.alert, "device", m.device, "to", m.to, "err", err)
				continue
			}
			s.sentN.Inc()
			s.log.Info("sms trigger sent", "alert", m.alert, "device", m.device, "to", m.to)
		}
	}
}

// areaCode is the administrative code of the device's area, or of the
// nearest area above it that has one; "*" when none has.
func areaCode(areas map[string]*loa.Area, id string) string {
	for range 8 {
		a := areas[id]
		if a == nil {
			break
		}
		if a.Code != "" {
			return a.Code
		}
		id = a.ParentID
	}
	return protocol.SMSAllAreas
}

// HandleReply takes an SMS a receiver sent (from, text), as the gateway
// posts it: a reply authenticated with the device's key is merged into
// its alert's report. A text that is no reply is EINVALID; one that does
// not authenticate (forged, or a device without credentials) EFORBIDDEN.
func (s *SMS) HandleReply(ctx context.Context, from, text string) error {
	r, _, err := protocol.ParseSMSReply(text)
	if err != nil {
		s.replies.WithLabelValues("refused").Inc()
		return loa.Errorf(loa.EINVALID, "text: not an SMS reply of a receiver (%v)", err)
	}
	sum, err := s.cfg.DB.DevicePasswordHash(ctx, r.Device)
	if err != nil && loa.ErrorCode(err) != loa.ENOTFOUND {
		return err
	}
	if err == nil {
		_, err = protocol.VerifySMSReply(protocol.SMSReplyKey(sum), text)
	}
	if err != nil {
		s.replies.WithLabelValues("refused").Inc()
		s.log.Warn("sms reply refused", "from", from, "device", r.Device, "err", err)
		return loa.Errorf(loa.EFORBIDDEN, "text: the reply does not authenticate")
	}
	if dev, err := s.cfg.DB.Device(ctx, r.Device); err == nil && dev.MSISDN != from {
		// Authenticated all the same: a number ported or badly entered.
		s.log.Warn("sms reply from a number the device does not have", "device", r.Device, "from", from, "msisdn", dev.MSISDN)
	}
	merged := s.cfg.Alerts.smsPlayed(r.Session, r.Device, r.Played, r.Started)
	result := "merged"
	if !merged {
		result = "late" // its alert ended, or the receiver's line was settled by its own events
	}
	s.replies.WithLabelValues(result).Inc()
	s.log.Info("sms reply", "device", r.Device, "session", r.Session, "seq", r.Seq, "played", r.Played, "merged", merged)
	return nil
}

// smsTargets returns alert id, if active, and its receivers still queued
// (not acked, nothing played), each with the session its trigger names:
// the one carrying it to the receiver, else the alert's SMS session.
func (s *Alerts) smsTargets(id string) (*loa.Alert, map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.live[id]
	if l == nil || l.final || l.a.State != loa.AlertActive || l.a.StoredCode == 0 {
		return nil, nil, false
	}
	out := map[string]string{}
	for i := range l.a.Report {
		d := &l.a.Report[i]
		if d.State != loa.DeliveryQueued {
			continue
		}
		sess := l.dev[d.Device].session
		if sess == "" {
			if l.smsSession == "" {
				l.smsSession = newID()
				s.bySession[l.smsSession] = l
			}
			sess = l.smsSession
		}
		out[d.Device] = sess
	}
	if len(out) == 0 {
		return nil, nil, false
	}
	return cloneAlert(l.a), out, true
}

// smsPlayed merges a receiver's SMS reply: it played the alert of
// session played times in full from its first frame at started. It
// reports whether a live alert took it.
func (s *Alerts) smsPlayed(session, device string, played int, started time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.bySession[session]
	if l == nil || l.final {
		return false
	}
	tr, i := l.dev[device], l.idx[device]
	if tr == nil {
		return false
	}
	d := &l.a.Report[i]
	if d.State == loa.DeliveryFinished || (finalDelivery(d) && !revisable(d) && d.Reason != loa.ReasonOffline && d.Reason != loa.ReasonExpiredHere) {
		return false // its own events told more, or a cancel stands
	}
	now := time.Now().UTC()
	d.Channel, d.Reason, d.Detail = loa.ChannelSMS, "", ""
	d.Repeats = max(d.Repeats, min(played, l.a.Repeats))
	if d.StartedAt.IsZero() && !started.IsZero() {
		d.StartedAt = started.UTC()
	}
	if d.Repeats >= l.a.Repeats {
		d.State, d.EndedAt = loa.DeliveryFinished, now
	} else {
		l.fail(d, loa.ReasonPartial, now)
		d.Detail = fmt.Sprintf("played %d of %d repeats (sms)", d.Repeats, l.a.Repeats)
	}
	// It played: no late session for it.
	tr.pending, tr.back = false, false
	l.changedLocked()
	s.poke()
	return true
}

// smsEvent takes a receiver's finished event for an alert's SMS session:
// sent once its MQTT is back, it tells the play an SMS trigger started
// when the SMS reply was lost or never sent. Its stats cover the whole
// local play (received: every frame of every repeat).
func (s *Alerts) smsEvent(device string, ev protocol.Event) {
	if ev.Type != protocol.EventFinished || ev.Stream == nil || ev.Stream.Received == 0 {
		return
	}
	s.mu.Lock()
	l := s.bySession[ev.Session]
	ok := l != nil && l.smsSession == ev.Session
	repeats, alert := 0, ""
	if ok {
		repeats, alert = l.a.Repeats, l.a.ID
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	st := ev.Stream
	heard := st.Played - min(st.Played, st.Silence)
	played := int(min(heard*uint64(repeats)/st.Received, uint64(repeats)))
	started := time.UnixMilli(ev.TS).Add(-time.Duration(st.Played) * protocol.FrameDuration)
	if s.smsPlayed(ev.Session, device, played, started) {
		s.logger.Info("sms trigger's play told by its finished event", "alert", alert, "device", device, "played", played)
	}
}

// mayHold reports whether receiver st.ID may hold stored message code:
// false only when what it last reported holding (its last manifest's ack,
// else its telemetry) lacks it, at whatever version: an SMS it would
// refuse (not_cached) is not sent.
func (s *Alerts) mayHold(st loa.DeviceState, code int) bool {
	if s.stored == nil {
		return true
	}
	ref := protocol.CacheKindStored + ":" + protocol.StoredKey(code)
	s.stored.mu.Lock()
	h, ok := s.stored.holding[st.ID]
	s.stored.mu.Unlock()
	if ok {
		return h.Holds(ref)
	}
	if st.Telemetry != nil && st.Telemetry.Cache != nil {
		return protocol.CacheHolding{Held: st.Telemetry.Cache.Held}.Holds(ref)
	}
	return true
}
