package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sort"
	"time"

	"github.com/hraban/opus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
)

// The live bench measures mouth-to-speaker latency: a WHIP client (pion)
// sends marked clicks, one a second, each a short tone burst whose pitch
// names it, over an uplink with 4G-like delay (in order, as LTE's RLC
// delivers); the receivers, in a child process so that this process's CPU
// is the controller's (and the client's), play the session on its
// timeline. A plain-RTP tap of the session (what every receiver is sent)
// is decoded after the run and gives each click's stream timestamp; every
// receiver's own ground truth (the instant its first sample left its
// virtual DAC, and that sample's timestamp) then gives the instant it
// played each click. The same receivers play a recorded item of the same
// length first, tapped alike: the controller's CPU per receiver-hour of
// both, in the same run.

// liveBench configures benchLiveRun; the flags of "loa bench live" set it,
// the smoke test sets it directly with a child that is the test binary.
type liveBench struct {
	Receivers int
	Decode    int           // receivers that decode and find the clicks
	For       time.Duration // of clicks, live; the recorded item is as long
	Seed      int64
	// Uplink: base one-way delay plus log-normal jitter, in order.
	UpBase, JitterMedian, JitterP99 time.Duration
	Loss                            float64 // uplink loss, 0..1
	Online                          time.Duration
	Child                           func(ctx context.Context) (*exec.Cmd, error)
}

// Clicks: click k starts at frame clickFrame(k), a 10 ms burst at
// clickFreq(k); click skipClick is not sent (the negative control: no
// receiver may find it).
const (
	clickEvery = time.Second
	clickLen   = 480 // samples
	clickAmp   = 0.5
	skipClick  = 3
	clickFreqs = 20
)

func clickFreq(k int) float64 { return 600 + 200*float64(k%clickFreqs) }

// clickFrame is the 20 ms frame click k starts: mid-second, after a
// second of silence at the start.
func clickFrame(k int) int {
	return int((time.Duration(k+1)*clickEvery + clickEvery/2) / protocol.FrameDuration)
}

// clickTail is the silence after the last click: it plays out before the
// session ends.
const clickTail = 2 * time.Second

// clickSignal is n frames of silence with the clicks, but skipClick;
// clicks counts the click slots, the control's among them.
func clickSignal(frames int) (pcm []int16, clicks int) {
	pcm = make([]int16, frames*protocol.FrameSamples)
	end := len(pcm) - int(clickTail.Seconds()*protocol.ClockRate)
	for k := 0; ; k++ {
		start := clickFrame(k) * protocol.FrameSamples
		if start+clickLen > end {
			return pcm, k
		}
		if k == skipClick {
			continue
		}
		for i := range clickLen {
			// A raised-cosine edge of 1 ms: a burst, not a step.
			env := min(1, float64(i)/48, float64(clickLen-i)/48)
			pcm[start+i] = int16(clickAmp * 32767 * env * math.Sin(2*math.Pi*clickFreq(k)*float64(i)/protocol.ClockRate))
		}
	}
}

// sentClicks is how many of clicks slots hold a click.
func sentClicks(clicks int) int {
	if skipClick < clicks {
		return clicks - 1
	}
	return clicks
}

// benchLive is "loa bench live".
func benchLive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa bench live", flag.ContinueOnError)
	fs.SetOutput(stderr)
	b := liveBench{}
	fs.IntVar(&b.Receivers, "receivers", 1000, "simulated receivers (in a child process), spread over 20 communes")
	fs.IntVar(&b.Decode, "decode", 10, "receivers that decode with libopus and find the clicks (the rest verify and play out)")
	fs.DurationVar(&b.For, "for", 20*time.Second, "live audio sent, a click a second; the recorded item played before it is as long")
	fs.DurationVar(&b.UpBase, "uplink-base", 30*time.Millisecond, "uplink one-way base delay")
	fs.DurationVar(&b.JitterMedian, "jitter-median", 10*time.Millisecond, "uplink jitter: median of the log-normal delay added to the base")
	fs.DurationVar(&b.JitterP99, "jitter-p99", 80*time.Millisecond, "uplink jitter: its 99th percentile")
	fs.Float64Var(&b.Loss, "loss", 0, "uplink packet loss, 0..1")
	fs.Int64Var(&b.Seed, "seed", 1, "random seed of the uplink")
	fs.DurationVar(&b.Online, "online-timeout", 5*time.Minute, "give up if not all receivers are online by then")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b.Child = func(ctx context.Context) (*exec.Cmd, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return exec.CommandContext(ctx, exe, "bench", "live-receivers"), nil
	}
	_, err := benchLiveRun(ctx, b, stdout, stderr)
	return err
}

// liveChildConfig is the receivers' process's first stdin line.
type liveChildConfig struct {
	Broker  string      `json:"broker"`
	Decode  int         `json:"decode"`
	Devices [][2]string `json:"devices"` // id, password
}

// liveChildRequest asks the receivers' process for a session's figures.
type liveChildRequest struct {
	Session string `json:"session"`
}

// liveRx is one receiver's figures of a session.
type liveRx struct {
	ID        string      `json:"id"`
	FirstAtNs int64       `json:"first_at_ns"` // ground truth: its first sample left the DAC (0: never)
	FirstTS   uint32      `json:"first_ts"`    // that sample's RTP timestamp
	Played    uint64      `json:"played"`
	Skipped   uint64      `json:"skipped"`
	Received  uint64      `json:"received"`
	Lost      uint64      `json:"lost"` // of the stream's packets, never received or too late
	Late      uint64      `json:"late"`
	Onsets    []liveOnset `json:"onsets,omitempty"` // decoding receivers: the clicks they played
}

// liveOnset is a click a decoding receiver played: its first sample's
// index in what the receiver played, and its pitch.
type liveOnset struct {
	Idx  int     `json:"idx"`
	Freq float64 `json:"freq"`
}

// liveChildReply is the reply to a request, and (with CPUS) the last line.
type liveChildReply struct {
	Started   int      `json:"started,omitempty"`
	Receivers []liveRx `json:"receivers,omitempty"`
	CPUS      float64  `json:"cpu_s,omitempty"`
	Err       string   `json:"err,omitempty"`
}

// benchLiveReceivers is the receivers' process: "loa bench live-receivers".
func benchLiveReceivers(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	enc := json.NewEncoder(stdout)
	fail := func(err error) error {
		enc.Encode(liveChildReply{Err: err.Error()})
		return err
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	if !sc.Scan() {
		return fail(fmt.Errorf("reading the config: %v", sc.Err()))
	}
	var cfg liveChildConfig
	if err := json.Unmarshal(sc.Bytes(), &cfg); err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	cfgs := make([]firmwaresim.Config, len(cfg.Devices))
	for i, d := range cfg.Devices {
		dec := i < cfg.Decode
		cfgs[i] = firmwaresim.Config{ID: d[0], Password: d[1], Broker: cfg.Broker, Decode: dec, KeepPCM: dec, Logger: logger}
	}
	fleet, err := firmwaresim.StartFleetRamped(ctx, cfgs, 500)
	if err != nil {
		return fail(err)
	}
	defer fleet.Close()
	enc.Encode(liveChildReply{Started: len(cfgs)})
	for sc.Scan() {
		var req liveChildRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return fail(fmt.Errorf("request: %w", err))
		}
		var rep liveChildReply
		for _, r := range fleet.Receivers() {
			st, _ := r.Session(req.Session)
			rx := liveRx{ID: r.ID(), FirstTS: st.FirstSampleTS, Played: st.Played, Skipped: st.Skipped,
				Received: st.Received, Lost: st.Lost, Late: st.Late}
			if !st.FirstSampleAt.IsZero() {
				rx.FirstAtNs = st.FirstSampleAt.UnixNano()
			}
			if pcm := r.PCM(req.Session); len(pcm) > 0 {
				rx.Onsets = findClicks(pcm)
			}
			rep.Receivers = append(rep.Receivers, rx)
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	fleet.Close()
	return enc.Encode(liveChildReply{CPUS: selfCPU().Seconds()})
}

// findClicks finds the bursts in pcm: where the signal leaves quiet (a
// fiftieth of the click's amplitude) after at least 100 ms of it and goes
// over a fifth of it within 10 ms (the codec may ring a little ahead of
// the burst), and the pitch of the burst there.
func findClicks(pcm []int16) []liveOnset {
	const (
		on    = clickAmp * 32767 / 5
		quiet = clickAmp * 32767 / 50
		rest  = protocol.ClockRate / 10
		rise  = protocol.ClockRate / 100
	)
	abs := func(i int) float64 { return math.Abs(float64(pcm[i])) }
	var out []liveOnset
	calm := 0
	for i := 0; i < len(pcm); i++ {
		if abs(i) < quiet {
			calm++
			continue
		}
		if calm >= rest && i+rise+clickLen <= len(pcm) {
			for j := i; j < i+rise; j++ {
				if abs(j) > on {
					out = append(out, liveOnset{Idx: i, Freq: burstFreq(pcm[i : i+clickLen])})
					i += clickLen
					break
				}
			}
		}
		calm = 0
	}
	return out
}

// burstFreq is the candidate click pitch holding the most power (Goertzel).
func burstFreq(x []int16) float64 {
	best, bestP := 0.0, -1.0
	for k := range clickFreqs {
		f := clickFreq(k)
		c := 2 * math.Cos(2*math.Pi*f/protocol.ClockRate)
		var s1, s2 float64
		for _, v := range x {
			s1, s2 = float64(v)+c*s1-s2, s1
		}
		if p := s1*s1 + s2*s2 - c*s1*s2; p > bestP {
			best, bestP = f, p
		}
	}
	return best
}

// liveChild is the receivers' process, spoken to a line at a time.
type liveChild struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	enc   *json.Encoder
	ended bool
}

func (c *liveChild) read() (liveChildReply, error) {
	if !c.out.Scan() {
		return liveChildReply{}, fmt.Errorf("receivers' process: no reply (%v)", c.out.Err())
	}
	var rep liveChildReply
	if err := json.Unmarshal(c.out.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("receivers' process: %w: %s", err, c.out.Bytes())
	}
	if rep.Err != "" {
		return rep, fmt.Errorf("receivers' process: %s", rep.Err)
	}
	return rep, nil
}

func (c *liveChild) session(id string) ([]liveRx, error) {
	if err := c.enc.Encode(liveChildRequest{Session: id}); err != nil {
		return nil, err
	}
	rep, err := c.read()
	return rep.Receivers, err
}

// close ends the process and returns its CPU.
func (c *liveChild) close() float64 {
	if c.ended {
		return 0
	}
	c.ended = true
	c.in.Close()
	rep, _ := c.read()
	c.cmd.Wait()
	return rep.CPUS
}

// benchLiveRun runs the bench and returns the JSON line's figures.
func benchLiveRun(ctx context.Context, b liveBench, stdout, stderr io.Writer) (map[string]any, error) {
	const communes = 20
	if b.Receivers < 1 || b.Receivers > 20000 || b.Decode < 1 || b.For < 5*time.Second || b.Loss < 0 || b.Loss >= 1 {
		return nil, errors.New("need 1..20000 receivers, -decode ≥ 1, -for ≥ 5s, -loss within 0..1")
	}
	b.Decode = min(b.Decode, b.Receivers)
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := daemon.DefaultConfig()
	configureLive(&cfg)
	m, closeController, err := openBenchController(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	defer closeController()
	c := api.NewClient(m.URL(), m.AdminToken)
	if err := c.CreateArea(ctx, loa.Area{ID: "bench", Name: "Bench", Kind: loa.AreaProvince}); err != nil {
		return nil, err
	}
	for i := range communes {
		if err := c.CreateArea(ctx, loa.Area{ID: fmt.Sprintf("c%02d", i), ParentID: "bench", Name: fmt.Sprintf("Xã %d", i), Kind: loa.AreaCommune}); err != nil {
			return nil, err
		}
	}
	ccfg := liveChildConfig{Broker: m.MQTTURL(), Decode: b.Decode}
	for i := range b.Receivers {
		id := fmt.Sprintf("rx-%04d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: fmt.Sprintf("c%02d", i%communes)})
		if err != nil {
			return nil, err
		}
		ccfg.Devices = append(ccfg.Devices, [2]string{id, pw})
	}
	child, err := startLiveChild(ctx, b, ccfg, stderr)
	if err != nil {
		return nil, err
	}
	defer child.close()
	if err := c.WaitOnline(ctx, b.Receivers, b.Online); err != nil {
		return nil, err
	}
	frames := int(b.For / protocol.FrameDuration)
	pcm, clicks := clickSignal(frames)
	say("bench live: %d receivers in %d communes (%d decode), in a child process; %v of live audio with a click a second (click %d not sent: the control); uplink %v + log-normal jitter (median %v, p99 %v), in order, loss %.1f %%",
		b.Receivers, communes, b.Decode, b.For, skipClick, b.UpBase, b.JitterMedian, b.JitterP99, 100*b.Loss)

	// The recorded fan-out first: the same receivers, as long.
	var wav bytes.Buffer
	if err := media.EncodeWAV(&wav, pcm, protocol.ClockRate, 1); err != nil {
		return nil, err
	}
	rec, err := c.UploadMedia(ctx, "clicks.wav", wav.Bytes())
	if err != nil {
		return nil, err
	}
	recSess, err := c.StartSession(ctx, api.SessionRequest{MediaID: rec.ID, Targets: loa.Targets{Areas: []string{"bench"}}})
	if err != nil {
		return nil, err
	}
	// Tapped too, as the live session is: the same streams in both.
	recTap, err := startTap(ctx, c, recSess.ID)
	if err != nil {
		return nil, fmt.Errorf("tap: %w", err)
	}
	defer recTap.stop()
	recCPU, err := measureStreaming(ctx, m, recSess.ID, b.For-time.Second, b.Receivers)
	if err != nil {
		return nil, fmt.Errorf("recorded: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := c.WaitSession(wctx, recSess.ID); err != nil {
		return nil, fmt.Errorf("recorded: %w", err)
	}
	recRx, err := child.session(recSess.ID)
	if err != nil {
		return nil, err
	}
	say("recorded session: receivers' stream loss (lost and late) p50 %.1f %%, p99 %.1f %%", pct(streamLoss(recRx), 50), pct(streamLoss(recRx), 99))
	say("recorded media fan-out: %.3f controller CPU-s per receiver-hour", recCPU)

	// Live: the packets are encoded before, so that encoding is not
	// counted as the controller's.
	packets, err := encodeClicks(pcm)
	if err != nil {
		return nil, err
	}
	lr, err := runLive(ctx, m, c, b, packets)
	if err != nil {
		return nil, err
	}
	if lr.clickTS, lr.tapControl, err = tapClicks(lr.tap, clicks); err != nil {
		return nil, err
	}
	rxs, err := child.session(lr.session)
	if err != nil {
		return nil, err
	}
	res := liveLatency(rxs, lr, clicks)
	playing, decoded := 0, 0
	for _, rx := range rxs {
		if rx.Played > 0 {
			playing++
		}
		if len(rx.Onsets) > 0 {
			decoded++
		}
	}
	say("live session played by %d of %d receivers (%d decoders found clicks); receivers' stream loss (lost and late) p50 %.1f %%, p99 %.1f %%",
		playing, len(rxs), decoded, pct(streamLoss(rxs), 50), pct(streamLoss(rxs), 99))
	delay := ms(cfg.Delay)
	say("live session %s (%s): transcoded %v; uplink delay of the clicks p50 %.1f ms, p99 %.1f ms", lr.session, lr.ended, lr.transcoded, pct(lr.uplink, 50), pct(lr.uplink, 99))
	say("%d of %d clicks found in the stream (a plain-RTP tap of the session, what every receiver is sent); %d decoding receivers found %d, %d of them at the tap's timestamp within a frame (a cross-check only: what a receiver played is not indexed by timestamp once it skips slots or re-syncs)",
		res.found, sentClicks(clicks), res.decoders, res.pairs, res.agreed)
	say("decoders' clicks less the tap's timestamps: min %.1f ms, p50 %.1f ms, max %.1f ms", pct(res.offsets, 0), pct(res.offsets, 50), pct(res.offsets, 100))
	say("latency, played − the client's send time, %d clicks played on receivers: p50 %.1f ms, p99 %.1f ms, max %.1f ms; of which the playout delay %.0f ms (goal: p99 ≤ playout delay + 150 ms)",
		len(res.lat), pct(res.lat, 50), pct(res.lat, 99), pct(res.lat, 100), delay)
	say("reported (their play-out went past every click found): %d of %d receivers; control (click %d, never sent) found by %d receivers (want 0)", len(res.reported), b.Receivers, skipClick, res.control)
	say("controller CPU per receiver-hour: live %.3f s, recorded %.3f s, ratio %.2f (goal ≤ 1.10)", lr.cpu, recCPU, lr.cpu/recCPU)
	simCPU := child.close()
	out := map[string]any{
		"receivers": b.Receivers, "reported": len(res.reported), "latency_ms_p50": round3(pct(res.lat, 50)),
		"latency_ms_p99": round3(pct(res.lat, 99)), "latency_ms_max": round3(pct(res.lat, 100)), "playout_delay_ms": delay,
		"transcoded": lr.transcoded, "cpu_s_per_receiver_hour": round3(lr.cpu), "cpu_s_per_receiver_hour_recorded": round3(recCPU),
		"clicks": sentClicks(clicks), "clicks_found": res.found, "control_found": res.control,
		"decoder_clicks": res.pairs, "decoder_clicks_at_tap": res.agreed,
		"uplink_ms_p50": round3(pct(lr.uplink, 50)), "uplink_ms_p99": round3(pct(lr.uplink, 99)), "receivers_cpu_s": round3(simCPU),
	}
	printJSONLine(stdout, out)
	return out, nil
}

func startLiveChild(ctx context.Context, b liveBench, cfg liveChildConfig, stderr io.Writer) (*liveChild, error) {
	cmd, err := b.Child(ctx)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	c := &liveChild{cmd: cmd, in: in, out: sc, enc: json.NewEncoder(in)}
	if err := c.enc.Encode(cfg); err != nil {
		return nil, err
	}
	if _, err := c.read(); err != nil {
		c.in.Close()
		cmd.Wait()
		return nil, err
	}
	return c, nil
}

// streamLoss is each receiver's share of the stream's packets lost or
// late, in %: a loaded host's receivers (or controller) falling behind.
func streamLoss(rxs []liveRx) []float64 {
	var out []float64
	for _, rx := range rxs {
		if n := rx.Received + rx.Lost; n > 0 {
			out = append(out, 100*float64(rx.Lost+rx.Late)/float64(n))
		}
	}
	return out
}

// measureStreaming returns the controller's CPU seconds per
// receiver-hour while session id streams: from its first packet, for
// window.
func measureStreaming(ctx context.Context, m *daemon.Main, id string, window time.Duration, receivers int) (float64, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		if _, ok := m.Sessions.FirstSent(id); ok {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("session %s sent nothing in a minute", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cpu0, t0 := selfCPU(), time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	cpu, wall := selfCPU()-cpu0, time.Since(t0)
	return cpu.Seconds() / (float64(receivers) * wall.Hours()), nil
}

// encodeClicks encodes pcm as the browser would: 20 ms mono frames at the
// receivers' profile.
func encodeClicks(pcm []int16) ([][]byte, error) {
	enc, err := opus.NewEncoder(protocol.ClockRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, err
	}
	if err := enc.SetBitrate(32000); err != nil {
		return nil, err
	}
	if err := enc.SetInBandFEC(true); err != nil {
		return nil, err
	}
	var out [][]byte
	buf := make([]byte, 1500)
	for i := 0; i+protocol.FrameSamples <= len(pcm); i += protocol.FrameSamples {
		n, err := enc.Encode(pcm[i:i+protocol.FrameSamples], buf)
		if err != nil {
			return nil, err
		}
		out = append(out, bytes.Clone(buf[:n]))
	}
	return out, nil
}

// liveRun is what the live part measured on the sending side.
type liveRun struct {
	session    string
	transcoded bool
	ended      string         // the session's state and reason at its end
	clickTS    map[int]uint32 // click → the stream's timestamp of its first sample, from the tap
	tapControl bool           // the tap found the unsent click
	tap        []tapPacket    // the stream as the tap received it
	sent       []time.Time    // per frame: when the client sent it (before the uplink's delay)
	uplink     []float64      // ms: the uplink delay of each click
	cpu        float64        // controller CPU-s per receiver-hour
}

// sendUplink sends packets in real time over a modelled 4G uplink: each
// leaves the client every 20 ms and arrives after the base delay plus
// jitter, in order (a packet waits for the one before it), or is lost.
func sendUplink(ctx context.Context, send func(payload []byte, lose bool) error, packets [][]byte, b liveBench) (sent []time.Time, delays []time.Duration, err error) {
	path := firmwaresim.NewPath(firmwaresim.PathSpec{UpBase: b.UpBase, JitterMedian: b.JitterMedian, JitterP99: b.JitterP99, Seed: b.Seed})
	lossRng := rand.New(rand.NewPCG(uint64(b.Seed), 0x1055))
	start := time.Now().Add(20 * time.Millisecond)
	sent = make([]time.Time, len(packets))
	delays = make([]time.Duration, len(packets))
	arrive := make([]time.Time, len(packets))
	var last time.Time
	for i := range packets {
		sent[i] = start.Add(time.Duration(i+1) * protocol.FrameDuration) // the frame is complete
		at := sent[i].Add(path.Up())
		if at.Before(last) {
			at = last // in order
		}
		arrive[i], last = at, at
		delays[i] = at.Sub(sent[i])
	}
	for i, p := range packets {
		if d := time.Until(arrive[i]); d > 0 {
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(d):
			}
		}
		lose := b.Loss > 0 && lossRng.Float64() < b.Loss
		if err := send(p, lose); err != nil {
			return nil, nil, err
		}
	}
	return sent, delays, nil
}

// liveResult is the latency over receivers and clicks.
type liveResult struct {
	lat      []float64 // ms
	reported []string  // receivers that played through every click found
	found    int       // clicks found in the stream
	control  int       // receivers on which the unsent click was found (the stream's tap counts as one)
	decoders int       // decoding receivers that found clicks
	pairs    int       // clicks they found
	agreed   int       // of those, found within a frame of the stream's timestamp
	offsets  []float64 // ms: where they found them less the tap's timestamps
}

// nameClicks names the onsets found in order: click index → onset.
func nameClicks(onsets []liveOnset, clicks int) (named map[int]liveOnset, control bool) {
	named = map[int]liveOnset{}
	prev, prevIdx := -1, 0
	for _, o := range onsets {
		k := clickIndex(o, prev, prevIdx)
		if k < 0 || k >= clicks {
			continue
		}
		if k == skipClick {
			control = true
			continue
		}
		named[k] = o
		prev, prevIdx = k, o.Idx
	}
	return named, control
}

// liveLatency places each click on the stream's timestamps (lr.clickTS,
// from the tap) and then on each receiver's own play-out. The decoding
// receivers' clicks are checked against the tap: one that passed over
// slots to keep to the timeline (Skipped) did not play them, so past
// such a slot its sample indices fall short of the timestamps.
func liveLatency(rxs []liveRx, lr liveRun, clicks int) liveResult {
	res := liveResult{found: len(lr.clickTS)}
	if lr.tapControl {
		res.control++
	}
	for _, rx := range rxs {
		if len(rx.Onsets) == 0 {
			continue
		}
		res.decoders++
		named, control := nameClicks(rx.Onsets, clicks)
		if control {
			res.control++
		}
		for k, o := range named {
			res.pairs++
			if want, ok := lr.clickTS[k]; ok {
				d := int32(rx.FirstTS + uint32(o.Idx) - want)
				res.offsets = append(res.offsets, float64(d)*1000/protocol.ClockRate)
				if d >= -protocol.FrameSamples && d <= protocol.FrameSamples {
					res.agreed++
				}
			}
		}
	}
	keys := make([]int, 0, len(lr.clickTS))
	for k := range lr.clickTS {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, rx := range rxs {
		if rx.FirstAtNs == 0 {
			continue
		}
		first := time.Unix(0, rx.FirstAtNs)
		all := len(keys) > 0
		for _, k := range keys {
			// Slots played or passed over to keep to the timeline: its
			// play-out went past the click's.
			off := int64(int32(lr.clickTS[k] - rx.FirstTS))
			if off < 0 || off >= int64(rx.Played+rx.Skipped)*protocol.FrameSamples {
				all = false
				continue
			}
			played := first.Add(time.Duration(off) * time.Second / protocol.ClockRate)
			res.lat = append(res.lat, ms(played.Sub(lr.sent[clickFrame(k)])))
		}
		if all {
			res.reported = append(res.reported, rx.ID)
		}
	}
	return res
}

// tapPacket is a packet of the stream as the tap received it.
type tapPacket struct {
	seq     uint16
	ts      uint32
	payload []byte
}

// tapClicks decodes the tapped stream, each packet at its timestamp
// (silence where none came: gaps the controller carried), and finds the
// clicks on the stream's timestamps; control says whether the unsent
// click was found.
func tapClicks(pkts []tapPacket, clicks int) (clickTS map[int]uint32, control bool, err error) {
	if len(pkts) == 0 {
		return nil, false, errors.New("the tap received no packet")
	}
	slices.SortFunc(pkts, func(a, b tapPacket) int { return int(int16(a.seq - b.seq)) })
	dec, err := opus.NewDecoder(protocol.ClockRate, 1)
	if err != nil {
		return nil, false, err
	}
	ts0 := pkts[0].ts
	last := pkts[len(pkts)-1]
	n := int(last.ts-ts0) + protocol.FrameSamples
	if n > 4*3600*protocol.ClockRate {
		return nil, false, fmt.Errorf("the tapped stream spans %d samples", n)
	}
	pcm := make([]int16, n)
	for _, p := range pkts {
		off := int(p.ts - ts0)
		if _, err := dec.Decode(p.payload, pcm[off:off+protocol.FrameSamples]); err != nil {
			return nil, false, fmt.Errorf("decode the tapped stream: %w", err)
		}
	}
	named, control := nameClicks(findClicks(pcm), clicks)
	clickTS = map[int]uint32{}
	for k, o := range named {
		clickTS[k] = ts0 + uint32(o.Idx)
	}
	return clickTS, control, nil
}

// clickIndex names the click an onset is: its pitch gives k modulo
// clickFreqs, the distance from the previous click the rest.
func clickIndex(o liveOnset, prev, prevIdx int) int {
	r := int(math.Round((o.Freq - 600) / 200))
	if r < 0 || r >= clickFreqs {
		return -1
	}
	if prev < 0 {
		return r // the first click found: runs of clickFreqs seconds or less are unambiguous
	}
	est := prev + int(math.Round(float64(o.Idx-prevIdx)/(clickEvery.Seconds()*protocol.ClockRate)))
	// The k ≡ r (mod clickFreqs) nearest est; a pitch that does not fit
	// the spacing is a burst mangled by loss, not a click.
	k := est - ((est-r)%clickFreqs+clickFreqs)%clickFreqs
	if est-k > clickFreqs/2 {
		k += clickFreqs
	}
	if k-est > 1 || est-k > 1 {
		return -1
	}
	return k
}
