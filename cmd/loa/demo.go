package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
)

// demoResult is the demo's last output line.
type demoResult struct {
	Receivers       int     `json:"receivers"`
	Played          int     `json:"played"`
	Decoding        int     `json:"decoding"`
	FramesExpected  int     `json:"frames_expected"`
	FramesPlayed    uint64  `json:"frames_played"`
	FramesDecoded   uint64  `json:"frames_decoded"`
	FramesConcealed uint64  `json:"frames_concealed"`
	FECRecovered    uint64  `json:"fec_recovered"`
	Lost            uint64  `json:"lost"`
	SRTP            int     `json:"srtp"` // receivers whose stream was SRTP (contract v2)
	Session         string  `json:"session"`
	Programme       string  `json:"programme"`
	DurationS       float64 `json:"duration_s"`
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("loa demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("receivers", 20, "simulated receivers")
	dur := fs.Duration("for", 10*time.Second, "programme length (the spoken part, about 7 s, is never cut)")
	keep := fs.Bool("keep", false, "keep serving after the programme, until Ctrl-C")
	httpAddr := fs.String("http", "", "HTTP address (default 127.0.0.1:8080 with -keep, else any free port)")
	decode := fs.Int("decode", -1, "receivers that fully decode (default: all up to 200, else 20)")
	wavDir := fs.String("wav-dir", "", "write what each decoding receiver played to WAV files here")
	loss := fs.Float64("loss", 0, "simulated packet loss on each receiver's link (0..1)")
	jitter := fs.Duration("jitter", 0, "simulated jitter on each receiver's link")
	logLevel := fs.String("log", "warn", "controller log level")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole demo here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 20000 {
		return fmt.Errorf("-receivers %d: must be within 1..20000", *n)
	}
	if *dur < time.Second || *dur > time.Hour {
		return fmt.Errorf("-for %v: must be within 1s..1h", *dur)
	}
	if *decode < 0 {
		*decode = *n
		if *n > 200 {
			*decode = 20
		}
	}
	if *httpAddr == "" {
		*httpAddr = "127.0.0.1:0"
		if *keep {
			*httpAddr = "127.0.0.1:8080"
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *wavDir != "" {
		if err := os.MkdirAll(*wavDir, 0o755); err != nil {
			return fmt.Errorf("-wav-dir: %w", err)
		}
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "loa-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	cfg := daemon.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.MQTTListen, cfg.RTPBind = dir, *httpAddr, "127.0.0.1:0", "127.0.0.1:0"
	// The receivers connect over TLS with the station CA, as in the field.
	cfg.TLS.MQTTListen, cfg.TLS.HTTPSAddr = "127.0.0.1:0", ""
	// Live microphones from the console (a browser on this machine: a
	// page on localhost may use the microphone without HTTPS).
	cfg.LiveBind = "127.0.0.1:0"
	m := daemon.NewMain(cfg, logger)
	if err := m.Open(ctx); err != nil {
		return err
	}
	defer m.Close()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	say("controller: API %s, MQTT %s (station CA %s), RTP %s", m.URL(), m.MQTTTLSURL(), m.PKI.CACertFile(), m.Engine.LocalAddr())
	ca := x509.NewCertPool()
	ca.AppendCertsFromPEM(m.CACertPEM())

	c := api.NewClient(m.URL(), m.AdminToken)
	areas := []loa.Area{
		{ID: "demo-province", Name: "Tỉnh Demo", Kind: loa.AreaProvince, Code: "99"},
		{ID: "an-binh", ParentID: "demo-province", Name: "Xã An Bình", Kind: loa.AreaCommune, Code: "99001"},
		{ID: "an-binh-thon-1", ParentID: "an-binh", Name: "Thôn 1", Kind: loa.AreaCluster},
		{ID: "an-binh-thon-2", ParentID: "an-binh", Name: "Thôn 2", Kind: loa.AreaCluster},
	}
	for _, a := range areas {
		if err := c.CreateArea(ctx, a); err != nil {
			return fmt.Errorf("create area %s: %w", a.ID, err)
		}
	}
	cfgs := make([]firmwaresim.Config, *n)
	for i := range cfgs {
		id := fmt.Sprintf("loa-%04d", i+1)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: areas[2+i%2].ID, Name: "Cụm loa " + id})
		if err != nil {
			return fmt.Errorf("provision %s: %w", id, err)
		}
		cfgs[i] = firmwaresim.Config{
			ID: id, Password: pw, Broker: m.MQTTTLSURL(), CA: ca, Decode: i < *decode,
			Impair: firmwaresim.Impairment{Loss: *loss, Jitter: *jitter, Seed: int64(i + 1)},
			Logger: logger.With("receiver", id),
		}
		if i < *decode {
			cfgs[i].WAVDir = *wavDir
		}
	}
	say("provisioned %d receivers in %d village clusters; connecting them", *n, 2)
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		return fmt.Errorf("simulated receivers: %w", err)
	}
	defer fleet.Close()
	if err := c.WaitOnline(ctx, *n, 30*time.Second); err != nil {
		return err
	}
	say("all %d receivers online", *n)

	wav, desc, err := media.DemoProgramme(ctx, *dur)
	if err != nil {
		return err
	}
	med, err := c.UploadMedia(ctx, "demo-programme.wav", wav)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	say("programme: %s, %v, %d frames (media %s)", desc, med.Duration.Round(time.Millisecond), med.Frames, med.ID)

	start := time.Now()
	sess, err := c.StartSession(ctx, api.SessionRequest{MediaID: med.ID, Targets: loa.Targets{Areas: []string{"demo-province"}}, Priority: 64})
	if err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	say("session %s playing to %d receivers", sess.ID, len(sess.Devices))
	wctx, cancel := context.WithTimeout(ctx, med.Duration+time.Minute)
	sess, err = c.WaitSession(wctx, sess.ID)
	cancel()
	if err != nil {
		return err
	}
	waitFinished(ctx, fleet, sess.ID, 5*time.Second)
	decoding := make(map[string]bool)
	for _, c := range cfgs {
		decoding[c.ID] = c.Decode
	}
	res := report(stdout, fleet, sess.ID, med.Frames, decoding)
	res.Session, res.Programme, res.DurationS = sess.ID, desc, time.Since(start).Seconds()
	say("session %s %s after %.1fs; %d of %d receivers played the programme", sess.ID, sess.State, res.DurationS, res.Played, res.Receivers)

	if *keep {
		say("\nStill serving. Web UI and API: %s\nAdmin token: %s\nPress Ctrl-C to stop.", m.URL(), m.AdminToken)
		<-ctx.Done()
	}
	line, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(line))
	if res.Played < res.Receivers {
		return fmt.Errorf("%d of %d receivers did not play the programme", res.Receivers-res.Played, res.Receivers)
	}
	return nil
}

// waitFinished waits until every receiver has ended the session, or timeout.
func waitFinished(ctx context.Context, fleet *firmwaresim.Fleet, session string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for _, r := range fleet.Receivers() {
			if st, ok := r.Session(session); !ok || !st.Done {
				done = false
				break
			}
		}
		if done {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// played is the demo's verdict on one receiver: it ended the session
// having heard at least 95 % of the frames from their own packets or
// their FEC (concealment does not count), and decoded them if asked to.
func played(st firmwaresim.SessionStats, expected int, decoding bool) bool {
	heard := st.FromPacket() + st.FECRecovered
	if !st.Done || float64(heard) < 0.95*float64(expected) {
		return false
	}
	return !decoding || st.Decoded > 0
}

// report prints one line per receiver and returns the totals.
func report(w io.Writer, fleet *firmwaresim.Fleet, session string, expected int, decoding map[string]bool) demoResult {
	res := demoResult{FramesExpected: expected}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "receiver\tstream\tplayed\tdecoded\tconcealed\tfec\tlost\tlate\tjitter ms\tend\tresult\t")
	for _, r := range fleet.Receivers() {
		res.Receivers++
		st, _ := r.Session(session)
		dec := decoding[r.ID()]
		if dec {
			res.Decoding++
		}
		ok := played(st, expected, dec)
		verdict := "MISSED"
		if ok {
			res.Played++
			verdict = "ok"
		}
		res.FramesPlayed += st.Played
		res.FramesDecoded += st.Decoded
		res.FramesConcealed += st.Concealed
		res.FECRecovered += st.FECRecovered
		res.Lost += st.Lost
		stream := "rtp"
		if st.SRTP {
			stream = "srtp"
			res.SRTP++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\t%s\t\n", r.ID(), stream, st.Played, st.Decoded,
			st.Concealed, st.FECRecovered, st.Lost, st.Late, st.JitterMs, orDash(st.EndReason), verdict)
	}
	tw.Flush()
	return res
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
