package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
)

// benchAlert plays a programme to every simulated receiver, sends an
// emergency alert to the whole province through the API and measures,
// per receiver, how long after the API call the first alert frame played
// (on the receiver's clock, less its playout delay, which is fixed by
// design), and how long until the delivery report knew every receiver's
// fate (started, finished or failed) and until it was final.
func benchAlert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa bench alert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nRecv := fs.Int("receivers", 1000, "simulated receivers, spread over 20 communes")
	length := fs.Duration("length", 2*time.Second, "alert content length")
	repeats := fs.Int("repeats", 1, "alert repeats")
	decode := fs.Int("decode", 10, "receivers that fully decode with libopus (the rest verify packets and play out)")
	lead := fs.Duration("lead", daemon.DefaultConfig().Lead, "controller -lead: the longest a session waits for its receivers to tune")
	withProgramme := fs.Bool("programme", true, "play a programme to every receiver before the alert (the alert preempts it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	const communes = 20
	if *nRecv < 1 || *length < 100*time.Millisecond || *repeats < 1 || *repeats > loa.MaxAlertRepeats {
		return fmt.Errorf("need ≥ 1 receiver, -length ≥ 100ms, -repeats 1..%d", loa.MaxAlertRepeats)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := daemon.DefaultConfig()
	cfg.Lead = *lead
	m, closeController, err := openBenchController(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeController()
	c := api.NewClient(m.URL(), m.AdminToken)
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	if err := c.CreateArea(ctx, loa.Area{ID: "bench", Name: "Bench", Kind: loa.AreaProvince}); err != nil {
		return err
	}
	for i := range communes {
		if err := c.CreateArea(ctx, loa.Area{ID: fmt.Sprintf("c%02d", i), ParentID: "bench", Name: fmt.Sprintf("Xã %d", i), Kind: loa.AreaCommune}); err != nil {
			return err
		}
	}
	cfgs := make([]firmwaresim.Config, *nRecv)
	for i := range cfgs {
		id := fmt.Sprintf("rx-%04d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: fmt.Sprintf("c%02d", i%communes)})
		if err != nil {
			return err
		}
		cfgs[i] = firmwaresim.Config{ID: id, Password: pw, Broker: m.MQTTURL(), Decode: i < *decode, Logger: logger}
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
	programme, err := upload("programme.wav", 440, 5*time.Minute)
	if err != nil {
		return err
	}
	bulletin, err := upload("bulletin.wav", 880, *length)
	if err != nil {
		return err
	}

	if *withProgramme {
		prog, err := c.StartSession(ctx, api.SessionRequest{MediaID: programme.ID, Targets: loa.Targets{Areas: []string{"bench"}}})
		if err != nil {
			return err
		}
		// Stop it, and let the receivers hear the stop, before they leave:
		// otherwise shutdown logs a thousand failed retunes of a programme
		// nobody hears.
		defer func() {
			if c.StopSession(context.WithoutCancel(ctx), prog.ID) == nil {
				waitFleetEnded(ctx, fleet, prog.ID, 10*time.Second)
			}
		}()
		if err := waitFleetPlaying(ctx, fleet, prog.ID, time.Minute); err != nil {
			return err
		}
	}
	// The simulated receivers share this process, and its cores, with the
	// controller: how busy the host is before the alert says how much of
	// what follows is the simulator's cost.
	cpu0, wall0 := selfCPU(), time.Now()
	time.Sleep(2 * time.Second)
	busy := float64(selfCPU()-cpu0) / float64(time.Since(wall0)) / float64(runtime.NumCPU())
	say("bench alert: %d receivers in %d communes (%d decoding), programme playing: %v, host CPU %.0f%% busy (%d cores); sending a %v khẩn cấp alert ×%d to the province",
		*nRecv, communes, min(*decode, *nRecv), *withProgramme, 100*busy, runtime.NumCPU(), *length, *repeats)

	sent := time.Now()
	var al loa.Alert
	if err := c.JSON(ctx, "POST", "/api/v1/alerts", map[string]any{"title": "bench", "level": loa.AlertEmergency,
		"content": map[string]any{"media_id": bulletin.ID}, "targets": map[string][]string{"areas": {"bench"}},
		"repeats": *repeats, "expires_in": "10m"}, &al); err != nil {
		return fmt.Errorf("send alert: %w", err)
	}
	answered := time.Since(sent)

	// The report, polled in-process: every receiver's fate known, then final.
	var known, final time.Duration
	var end *loa.Alert
	deadline := time.Now().Add(*length*time.Duration(*repeats) + *lead + 2*time.Minute)
	for final == 0 {
		a, err := m.Alerts.Alert(ctx, al.ID)
		if err != nil {
			return err
		}
		var t loa.AlertTotals
		for i := range a.Report {
			t.Add(&a.Report[i])
		}
		if known == 0 && t.Started+t.Finished+t.Failed == t.Receivers {
			known = time.Since(sent)
		}
		if a.State != loa.AlertActive {
			final, end = time.Since(sent), a
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("alert %s still %s after %v: %+v", al.ID, a.State, time.Since(sent), t)
		}
		time.Sleep(5 * time.Millisecond)
	}

	var first []float64
	for _, r := range fleet.Receivers() {
		if st, ok := r.Session(al.SessionID); ok && !st.FirstPlayed.IsZero() {
			first = append(first, ms(st.FirstPlayed.Sub(sent)-cfg.Delay))
		}
	}
	// Where the time went on the controller: the session handed to the
	// engine (alert validated, stored, session stored), and packet 0 sent
	// (once every receiver tuned and opened its NAT, or after -lead).
	var started, streamed float64
	if sess, err := m.Sessions.Session(ctx, al.SessionID); err == nil {
		started = ms(sess.StartedAt.Sub(sent))
	}
	if first, ok := m.Sessions.FirstSent(al.SessionID); ok {
		streamed = ms(first.Sub(sent))
	}
	var tot loa.AlertTotals
	reasons := map[string]int{}
	for i := range end.Report {
		tot.Add(&end.Report[i])
		if r := end.Report[i].Reason; r != "" {
			reasons[r]++
		}
	}
	res := map[string]any{
		"receivers": *nRecv, "played": len(first), "finished": tot.Finished, "failed": tot.Failed,
		"first_frame_ms_p50": pct(first, 50), "first_frame_ms_p99": pct(first, 99), "first_frame_ms_max": pct(first, 100),
		"report_complete_ms": ms(known), "report_final_ms": ms(final), "api_ms": ms(answered),
		"alert_ms": float64(*repeats) * float64(length.Milliseconds()), "playout_delay_ms": ms(cfg.Delay), "lead_ms": ms(*lead),
		"programme": *withProgramme, "host_cpu_busy": busy, "session_start_ms": started, "first_packet_ms": streamed,
	}
	say("API call answered in %.1f ms; alert stored and its session created after %.1f ms, packet 0 sent after %.1f ms (lead %v)", ms(answered), started, streamed, *lead)
	say("first alert frame played, after the API call, less the %v playout delay: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d of %d receivers)",
		cfg.Delay, res["first_frame_ms_p50"], res["first_frame_ms_p99"], res["first_frame_ms_max"], len(first), *nRecv)
	say("delivery report: every receiver started or failed after %.0f ms; final (%s, %d finished, %d failed %v) after %.0f ms",
		ms(known), end.State, tot.Finished, tot.Failed, reasons, ms(final))
	printJSONLine(stdout, res)
	return nil
}

// waitFleetPlaying waits until every receiver is playing session id.
func waitFleetPlaying(ctx context.Context, fleet *firmwaresim.Fleet, id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, r := range fleet.Receivers() {
		for {
			if st, ok := r.Session(id); ok && st.Played > 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s is not playing session %s after %v", r.ID(), id, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitFleetEnded waits, at most timeout, until no receiver plays session id.
func waitFleetEnded(ctx context.Context, fleet *firmwaresim.Fleet, id string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, r := range fleet.Receivers() {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if st, ok := r.Session(id); !ok || st.Done {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
