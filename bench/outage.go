package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/store"
)

// benchOutage makes the receivers' data paths fail in turn while an alert
// and a scheduled programme are due (issue 17): the media path (every
// receiver drops every RTP packet; a stored-message alert must play from
// their own storage), MQTT too (the receivers' links to the broker cut: an
// SMS trigger through a simulated gateway, paced by -sms-rate, must play
// it; a replayed and a forged SMS must not), then the controller itself
// (stopped before a
// scheduled programme, which must play from the receivers' caches on
// time, and be reported once a controller is back). Per phase: receivers
// that sounded, time from the trigger to the first sound, programmes aired
// from cache on time, and double plays (a frame played twice).
func benchOutage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa bench outage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nRecv := fs.Int("receivers", 1000, "simulated receivers, spread over 20 communes")
	decode := fs.Int("decode", 10, "receivers that fully decode with libopus (the rest verify packets and play out)")
	setup := fs.Duration("setup", 2*time.Minute, "time to fill the receivers' caches and run the alert phases before the scheduled programme starts")
	smsRate := fs.Float64("sms-rate", 100, "SMS the controller's gateway sends per second at most (the controller's -sms-rate)")
	length := fs.Duration("programme", 10*time.Second, "scheduled programme length")
	if err := fs.Parse(args); err != nil {
		return err
	}
	const communes = 20
	if *nRecv < 1 || *length < 4*time.Second || *setup < 5*time.Second || *smsRate <= 0 {
		return fmt.Errorf("need ≥ 1 receiver, -programme ≥ 4s, -setup ≥ 5s, -sms-rate > 0")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	dir, err := os.MkdirTemp("", "loa-bench-outage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("tcp", "127.0.0.1:0") // the broker's port, the same after the controller's restart
	if err != nil {
		return err
	}
	mqttAddr := l.Addr().String()
	l.Close()
	cfg := daemon.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.MQTTListen, cfg.RTPBind = dir, "127.0.0.1:0", mqttAddr, "127.0.0.1:0"
	cfg.TLS.MQTTListen, cfg.TLS.HTTPSAddr = "", ""
	cfg.ProgrammeCache = true
	// The SMS trigger: a gateway on a simulated mobile network; the
	// receivers' replies come back through the station's number.
	const station, smsSecret = "+84900000000", "bench-sms-inbound"
	cfg.SMSRate, cfg.SMSInboundSecret = *smsRate, smsSecret
	smsNet := firmwaresim.NewSMSNetwork()
	gw := &smsRecorder{gw: smsNet.Gateway(station), sent: map[string]smsSent{}}
	// The receivers reach the broker through a link the MQTT phase cuts.
	link, err := newMQTTLink(mqttAddr)
	if err != nil {
		return err
	}
	defer link.Close()
	m := daemon.NewMain(cfg, logger)
	m.SMSSender = gw
	if err := m.Open(ctx); err != nil {
		return err
	}
	open := true
	defer func() {
		if open {
			m.Close()
		}
	}()
	c := api.NewClient(m.URL(), m.AdminToken)
	if err := c.CreateArea(ctx, loa.Area{ID: "bench", Name: "Bench", Kind: loa.AreaProvince, Code: "01"}); err != nil {
		return err
	}
	for i := range communes {
		if err := c.CreateArea(ctx, loa.Area{ID: fmt.Sprintf("c%02d", i), ParentID: "bench", Name: fmt.Sprintf("Xã %d", i),
			Kind: loa.AreaCommune, Code: communeCode(i)}); err != nil {
			return err
		}
	}
	cfgs := make([]firmwaresim.Config, *nRecv)
	msisdn := make(map[string]string, *nRecv)
	for i := range cfgs {
		id, number := fmt.Sprintf("rx-%04d", i), fmt.Sprintf("+8491%07d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: fmt.Sprintf("c%02d", i%communes), MSISDN: number})
		if err != nil {
			return err
		}
		msisdn[id] = number
		cfgs[i] = firmwaresim.Config{ID: id, Password: pw, Broker: link.URL(), Decode: i < *decode, Logger: logger,
			StationKey: m.StationKey.Public().(ed25519.PublicKey),
			SMS:        smsNet, MSISDN: number, AreaCodes: []string{"01", communeCode(i % communes)}}
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		return err
	}
	defer fleet.Close()
	if err := c.WaitOnline(ctx, *nRecv, 2*time.Minute); err != nil {
		return err
	}
	upload := func(name string, hz float64, d time.Duration) (*loa.Media, error) {
		var wav bytes.Buffer
		if err := media.EncodeWAV(&wav, media.Tone(hz, 48000, d, 0.4), 48000, 1); err != nil {
			return nil, err
		}
		return c.UploadMedia(ctx, name, wav.Bytes())
	}
	warning, err := upload("warning.wav", 880, 2*time.Second)
	if err != nil {
		return err
	}
	programme, err := upload("programme.wav", 440, *length)
	if err != nil {
		return err
	}
	at := time.Now().Add(*setup).Truncate(time.Second)
	if err := c.JSON(ctx, "PUT", "/api/v1/stored-messages/1", map[string]any{"name": "Bão", "media_id": warning.ID, "area_id": "bench"}, nil); err != nil {
		return fmt.Errorf("stored message: %w", err)
	}
	if err := c.JSON(ctx, "POST", "/api/v1/schedules", map[string]any{"id": "outage", "name": "Bản tin", "enabled": true, "priority": 64,
		"rule":    map[string]any{"kind": "once", "date": at.UTC().Format("2006-01-02"), "time": at.UTC().Format("15:04:05"), "zone": "UTC"},
		"content": map[string]string{"media_id": programme.ID}, "targets": map[string][]string{"areas": {"bench"}}}, nil); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	items, err := m.Programmes.Items(ctx, fleet.Receivers()[0].ID(), time.Now(), 1)
	if err != nil || len(items) != 1 {
		return fmt.Errorf("the programme is not announced: %v", err)
	}
	meta, err := protocol.DecodeProgrammeMeta(items[0].Meta)
	if err != nil {
		return err
	}
	filled := time.Now()
	for _, r := range fleet.Receivers() {
		for !r.CacheHolding().Holds("stored:1") || !r.CacheHolding().Holds(items[0].Ref()) {
			if time.Now().After(at.Add(-3 * time.Second)) {
				return fmt.Errorf("%s does not hold the stored message and the programme 3 s before the programme: raise -setup", r.ID())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The controller chooses play_stored by what it last heard of each
	// receiver's holding (its acks and telemetry), which lags the
	// receiver's own: wait for that too, or the alert streams to all.
	version, err := m.Stored.Version(ctx)
	if err != nil {
		return err
	}
	for _, r := range fleet.Receivers() {
		for !m.Stored.Holds(r.ID(), 1, version) {
			if time.Now().After(at.Add(-3 * time.Second)) {
				return fmt.Errorf("the controller does not know %s holds the stored message 3 s before the programme: raise -setup", r.ID())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	say("bench outage: %d receivers in %d communes; caches filled (stored message 1, the programme at %s) in %v",
		*nRecv, communes, at.UTC().Format(time.TimeOnly), time.Since(filled).Round(time.Millisecond))

	// Phase 1: the media path down, MQTT up: a stored-message alert.
	for _, r := range fleet.Receivers() {
		r.SetLoss(1)
	}
	sent := time.Now()
	var al loa.Alert
	if err := c.JSON(ctx, "POST", "/api/v1/alerts", map[string]any{"title": "Bão số 3", "level": loa.AlertEmergency, "stored_code": 1,
		"targets": map[string][]string{"areas": {"bench"}}, "expires_in": "10m"}, &al); err != nil {
		return fmt.Errorf("send alert: %w", err)
	}
	for {
		a, err := m.Alerts.Alert(ctx, al.ID)
		if err != nil {
			return err
		}
		if a.State != loa.AlertActive {
			break
		}
		if time.Since(sent) > 2*time.Minute || time.Now().After(at.Add(-3*time.Second)) {
			break // counted as it stands
		}
		time.Sleep(20 * time.Millisecond)
	}
	var first []float64
	doubles := 0
	for _, r := range fleet.Receivers() {
		var local, stream bool
		for _, st := range r.Sessions() {
			if st.Session != al.SessionID || st.Played == 0 {
				continue
			}
			if st.Local != "" {
				local = true
				first = append(first, ms(st.FirstPlayed.Sub(sent)))
			} else {
				stream = true
			}
		}
		if local && stream {
			doubles++
		}
		r.SetLoss(0)
	}
	say("media path down: the stored-message alert sounded on %d of %d receivers; first sound after the API call p50 %.1f ms, p99 %.1f ms",
		len(first), *nRecv, pct(first, 50), pct(first, 99))

	// Phase 2: MQTT down too: the SMS trigger.
	say("MQTT down: the receivers' MQTT cut, the media path still down; SMS rate %g/s (%d SMS take %.1f s)",
		*smsRate, *nRecv, float64(*nRecv) / *smsRate)
	sms, err := outageSMS(ctx, m, c, fleet.Receivers(), msisdn, link, smsNet, gw, station, smsSecret, 1, at.Add(-3*time.Second))
	if err != nil {
		return err
	}
	doubles += sms.Doubles
	say("MQTT down: %d SMS triggers sent; the alert sounded on %d of %d receivers (their own records), %d reported by SMS reply; alert over in %v",
		sms.Sent, sms.Sounded, *nRecv, sms.Reported, sms.Took.Round(time.Millisecond))
	say("MQTT down: first sound after the gateway's send p50 %.1f ms, p99 %.1f ms; after the alert's creation p50 %.1f ms, p99 %.1f ms",
		pct(sms.FromSend, 50), pct(sms.FromSend, 99), pct(sms.FromAlert, 50), pct(sms.FromAlert, 99))
	say("MQTT down, negative control: each receiver sent its trigger again and one signed by another key: %d accepted, %d replays and %d forgeries sounded; refused %v",
		sms.Accepted, sms.ReplaySounded, sms.ForgedSounded, sms.Refused)
	back := time.Now()
	online := 0
	for _, r := range fleet.Receivers() {
		for time.Now().Before(at.Add(-2 * time.Second)) {
			if st, ok := m.Fleet.DeviceState(r.ID()); ok && st.Online {
				online++
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	say("MQTT back: %d of %d receivers online again in %v", online, *nRecv, time.Since(back).Round(time.Millisecond))

	// Phase 3: the controller stopped before the scheduled programme.
	if wait := time.Until(at.Add(-2 * time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	if err := m.Close(); err != nil {
		return err
	}
	open = false
	time.Sleep(time.Until(meta.End().Add(time.Second)))
	// A loaded host stalls the simulated play-outs (they resume where they
	// stopped, as a speaker would): wait for the copies to end.
	for _, r := range fleet.Receivers() {
		for time.Now().Before(meta.End().Add(time.Minute)) {
			if st, ok := r.Session(meta.Session); !ok || st.Done {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	grace := int(protocol.CacheGrace / protocol.FrameDuration)
	onTime, fromCache := 0, 0
	for _, r := range fleet.Receivers() {
		for _, a := range r.AiredFromCache() {
			if a.Session != meta.Session || a.Stats.Played == 0 {
				continue
			}
			fromCache++
			// On time: joined at the frame of start + grace (within a
			// check period), not early.
			if a.From <= grace+int(time.Second/protocol.FrameDuration) && !a.Stats.FirstPlayed.Before(a.At.Add(-protocol.FrameDuration)) {
				onTime++
			}
		}
	}
	m = daemon.NewMain(cfg, logger)
	if err := m.Open(ctx); err != nil {
		return err
	}
	open = true
	var reported int
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		// In-process, one event, the store's largest page: a line per
		// receiver, and more lines (newer ones first) may follow them.
		log, err := m.DB.PlayLog(ctx, loa.PlayLogFilter{From: at.Add(-time.Minute), Event: loa.PlayAiredFromCache, Limit: store.MaxPlayLogLimit}, nil, nil)
		if err != nil {
			return err
		}
		reported = 0
		for _, e := range log {
			if e.Event == loa.PlayAiredFromCache && e.SessionID == meta.Session {
				reported += len(e.Devices)
			}
		}
		if reported >= fromCache {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, r := range fleet.Receivers() {
		copyEnd := -1
		for _, a := range r.AiredFromCache() {
			if a.Session == meta.Session {
				copyEnd = a.From + int(a.Stats.Played)
			}
		}
		for _, st := range r.Sessions() {
			if st.Session == meta.Session && st.Local == "" && st.Played > 0 && copyEnd >= 0 &&
				int((st.FirstSampleTS-meta.TS0)/protocol.FrameSamples) < copyEnd {
				doubles++
			}
		}
	}
	say("controller down: the programme aired from cache on %d receivers (%d on time); %d reported \"aired from cache\" to the controller once back",
		fromCache, onTime, reported)
	say("double plays: %d", doubles)
	printJSONLine(stdout, map[string]any{
		"receivers": *nRecv, "alert_sounded_media_down": len(first), "alert_first_sound_ms_p99_media_down": pct(first, 99),
		"alert_sounded_mqtt_down": sms.Sounded, "sms_trigger_ms_p50": pct(sms.FromSend, 50), "sms_trigger_ms_p99": pct(sms.FromSend, 99),
		"sms_alert_first_sound_ms_p99": pct(sms.FromAlert, 99), "sms_rate_per_s": *smsRate, "sms_sent": sms.Sent,
		"sms_reported": sms.Reported, "sms_negative_accepted": sms.Accepted, "sms_replay_sounded": sms.ReplaySounded,
		"sms_forged_sounded": sms.ForgedSounded, "sms_refused_signature": sms.Refused[firmwaresim.SMSForged],
		"sms_refused_replayed":  sms.Refused[firmwaresim.SMSReplayed],
		"programmes_from_cache": fromCache, "programmes_from_cache_on_time": onTime, "aired_from_cache_reported": reported,
		"double_plays": doubles,
	})
	return nil
}

// communeCode is commune i's administrative code (the SMS trigger's area).
func communeCode(i int) string { return fmt.Sprintf("%05d", 20000+i) }
