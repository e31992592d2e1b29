package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
)

// benchSchedule fires many one-off schedules within a window across many
// simulated receivers and measures how late each programme's first packet
// left the controller, and how late receivers started playing it.
func benchSchedule(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa bench schedule", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nSched := fs.Int("schedules", 200, "one-off schedules")
	nRecv := fs.Int("receivers", 500, "simulated receivers, spread over 20 communes")
	within := fs.Duration("within", time.Minute, "window the schedules fire in")
	length := fs.Duration("length", 3*time.Second, "programme length")
	decode := fs.Int("decode", 10, "receivers that fully decode")
	if err := fs.Parse(args); err != nil {
		return err
	}
	const communes = 20
	if *nSched < 1 || *nRecv < communes || *within < time.Second || *length < time.Second {
		return fmt.Errorf("need ≥ 1 schedule, ≥ %d receivers, -within and -length ≥ 1s", communes)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := daemon.DefaultConfig()
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
	areaOf := map[string]string{}
	for i := range cfgs {
		id, area := fmt.Sprintf("rx-%04d", i), fmt.Sprintf("c%02d", i%communes)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: area})
		if err != nil {
			return err
		}
		cfgs[i] = firmwaresim.Config{ID: id, Password: pw, Broker: m.MQTTURL(), Decode: i < *decode, Logger: logger}
		areaOf[id] = area
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		return err
	}
	defer fleet.Close()
	if err := c.WaitOnline(ctx, *nRecv, time.Minute); err != nil {
		return err
	}
	var wav bytes.Buffer
	media.EncodeWAV(&wav, media.Tone(880, 48000, *length, 0.4), 48000, 1)
	med, err := c.UploadMedia(ctx, "bench.wav", wav.Bytes())
	if err != nil {
		return err
	}

	// Times are whole seconds (HH:MM:SS), far enough ahead for the lead.
	t0 := time.Now().Add(cfg.Lead + 5*time.Second).Truncate(time.Second).Add(time.Second)
	ats := make([]time.Time, *nSched)
	for i := range ats {
		ats[i] = t0.Add(time.Duration(i) * *within / time.Duration(*nSched)).Truncate(time.Second)
		at := ats[i].UTC()
		body := map[string]any{"id": fmt.Sprintf("s%03d", i), "name": "bench", "enabled": true,
			"rule":    map[string]any{"kind": "once", "date": at.Format("2006-01-02"), "time": at.Format("15:04:05"), "zone": "UTC"},
			"content": map[string]string{"media_id": med.ID}, "targets": map[string][]string{"areas": {fmt.Sprintf("c%02d", i%communes)}}}
		if err := c.JSON(ctx, "POST", "/api/v1/schedules", body, nil); err != nil {
			return fmt.Errorf("schedule %d: %w", i, err)
		}
	}
	say("bench schedule: %d schedules in %v across %d receivers in %d communes, %v programmes; first at %s",
		*nSched, *within, *nRecv, communes, *length, t0.Format("15:04:05"))
	end := ats[len(ats)-1].Add(*length + 5*time.Second)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(end)):
	}

	byOrigin := map[loa.Origin]*loa.Session{}
	all, err := m.Sessions.Sessions(ctx)
	if err != nil {
		return err
	}
	for _, s := range all {
		byOrigin[s.Origin] = s
	}
	var ctl, rx []float64
	missed := 0
	for i := range ats {
		s := byOrigin[loa.Origin{Kind: loa.OriginSchedule, ID: fmt.Sprintf("s%03d", i)}]
		if s == nil {
			missed++
			continue
		}
		if first, ok := m.Sessions.FirstSent(s.ID); ok {
			ctl = append(ctl, ms(first.Sub(ats[i])))
		}
		for _, r := range fleet.Receivers() {
			if st, ok := r.Session(s.ID); ok && !st.FirstPlayed.IsZero() {
				rx = append(rx, ms(st.FirstPlayed.Sub(ats[i].Add(cfg.Delay))))
			}
		}
	}
	res := map[string]any{
		"sessions": len(ctl), "missed": missed, "receivers": *nRecv, "schedules": *nSched,
		"start_late_ms_p50": pct(ctl, 50), "start_late_ms_p99": pct(ctl, 99), "start_late_ms_max": pct(ctl, 100),
		"receiver_late_ms_p50": pct(rx, 50), "receiver_late_ms_p99": pct(rx, 99), "receiver_late_ms_max": pct(rx, 100),
		"receiver_starts": len(rx),
	}
	say("controller: first packet after its scheduled time: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d sessions, %d missed)",
		res["start_late_ms_p50"], res["start_late_ms_p99"], res["start_late_ms_max"], len(ctl), missed)
	say("receivers: first frame played after scheduled time + playout delay %v: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d starts)",
		cfg.Delay, res["receiver_late_ms_p50"], res["receiver_late_ms_p99"], res["receiver_late_ms_max"], len(rx))
	printJSONLine(stdout, res)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pct is the p-th percentile (nearest rank) of xs, 0 for none.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
