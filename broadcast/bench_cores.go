package broadcast

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// CoresConfig configures BenchCores.
type CoresConfig struct {
	Receivers int
	Cores     int           // sending cores (shards) compared with one; ≥ 2
	For       time.Duration // measured streaming per run
	// Payloads are the programme's Opus packets, sent in a loop; nil:
	// Opus-shaped noise.
	Payloads [][]byte
	// Peer, if set, is run after the engine's runs and sends to the same
	// sink sockets: another sender (GStreamer, for loa bench), whose CPU
	// per datagram is set beside the engine's.
	Peer func(ctx context.Context, sinks []netip.AddrPort, log io.Writer) (PeerRun, error)
	Log  io.Writer
}

// CoresRun is one run of the engine streaming an SRTP session to every
// sink; CPU is the sending process's alone (the sinks are sockets nobody
// reads, so no receiver runs).
type CoresRun struct {
	Name          string
	Shards        int
	Datagrams     uint64 // RTP datagrams sent in the window
	Elapsed       time.Duration
	CPU           time.Duration // user + system of the process over the window
	PPS           float64       // datagrams per second
	USPerDatagram float64       // CPU µs per datagram
	CoresBusy     float64       // CPU seconds per second
	// Saturated: the stream was still behind its 20 ms pace when the
	// window closed, so PPS is what the run can send, not the pace.
	Saturated bool
}

// PeerRun is another sender's figures on the same sinks.
type PeerRun struct {
	Name          string
	Datagrams     uint64
	Elapsed       time.Duration
	CPU           time.Duration
	PPS           float64
	USPerDatagram float64
	Note          string
}

// CoresResult is what BenchCores measured.
type CoresResult struct {
	Receivers, Cores int
	One              CoresRun // one shard
	Many             CoresRun // Cores shards, each its own send socket: the engine's default
	Dups             CoresRun // Cores shards, each a dup of the media socket
	OneDescriptor    CoresRun // Cores shards sharing the media socket's one descriptor and write lock
	Pinned           CoresRun // Cores shards, GOMAXPROCS=1 and every thread on one CPU: the negative control
	// ScalingEfficiency is Many.PPS / (Cores × One.PPS) when one shard
	// could not keep the pace and each run had the cores it asked for
	// (ScalingBasis "throughput"; a lower bound if Many kept the pace),
	// else One.USPerDatagram / Many.USPerDatagram ("cpu"): on a shared
	// machine a saturated run sends what the scheduler lets it, and
	// throughput then measures the neighbours.
	ScalingEfficiency    float64
	ScalingBasis         string
	ThroughputEfficiency float64 // Many.PPS / (Cores × One.PPS), whatever the cores obtained
	CPUEfficiency        float64 // One.USPerDatagram / Many.USPerDatagram
	// PinnedSpeedup is Pinned.PPS / One.PPS: ≈ 1 when the shards cannot
	// run in parallel (no scaling where there is no second core).
	PinnedSpeedup        float64
	OneDescriptorSpeedup float64 // OneDescriptor.PPS / One.PPS
	DupsSpeedup          float64 // Dups.PPS / One.PPS
	// Verified and VerifyFailed count the engine's datagrams left in the
	// sinks' queues after each run that authenticated under their
	// receiver's key, and those that did not; Foreign those from another
	// address (another process's traffic to a port a sink reuses: the
	// bench's 10,000 sockets take a third of the ephemeral ports).
	Verified, VerifyFailed, Foreign int
	Peer                            *PeerRun
	PeerErr                         error
	LoadBefore, LoadAfter           string // /proc/loadavg
}

// BenchCores streams one SRTP session to cfg.Receivers sockets on
// 127.0.0.1 that nobody reads, with one shard, with cfg.Cores shards (each
// its send socket, then each a dup of the media socket, then all on its one
// descriptor), and with cfg.Cores shards forced onto one CPU, measuring the process's CPU (the sender's alone) and the
// datagrams sent in each window; then runs cfg.Peer on the same sockets.
func BenchCores(ctx context.Context, cfg CoresConfig) (CoresResult, error) {
	res := CoresResult{Receivers: cfg.Receivers, Cores: cfg.Cores}
	if cfg.Receivers <= 0 || cfg.For <= 0 || cfg.Cores < 2 || cfg.Cores > maxShards {
		return res, loa.Errorf(loa.EINVALID, "bench: need receivers > 0, a duration and 2..%d cores", maxShards)
	}
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	payloads := cfg.Payloads
	if len(payloads) == 0 {
		payloads = benchPayloads(protocol.ClockRate / protocol.FrameSamples)
	}
	rx, err := openBenchReceivers(cfg.Receivers, false)
	if err != nil {
		return res, err
	}
	defer rx.close()
	for _, c := range rx.conns {
		// A few datagrams each: what overflows is dropped by the kernel
		// (its cost is the sender's, as a real network's would be).
		_ = c.SetReadBuffer(sinkBuffer)
	}
	rx.srtp.Store(true)
	res.LoadBefore = loadAvg()
	fmt.Fprintf(log, "cores: %d SRTP receivers (sockets on 127.0.0.1 nobody reads), %d packets of %d–%d bytes looped, %v per run; GOMAXPROCS %d, %d CPUs; load %s\n",
		cfg.Receivers, len(payloads), minLen(payloads), maxLen(payloads), cfg.For, runtime.GOMAXPROCS(0), runtime.NumCPU(), res.LoadBefore)
	runs := []struct {
		r      *CoresRun
		name   string
		shards int
		mode   sendMode
		pin    bool
	}{
		{&res.One, "1 shard", 1, sendSockets, false},
		{&res.Many, fmt.Sprintf("%d shards", cfg.Cores), cfg.Cores, sendSockets, false},
		{&res.Dups, fmt.Sprintf("%d shards, dup'ed descriptors", cfg.Cores), cfg.Cores, sendDups, false},
		{&res.OneDescriptor, fmt.Sprintf("%d shards, one descriptor", cfg.Cores), cfg.Cores, sendOne, false},
		{&res.Pinned, fmt.Sprintf("%d shards on one CPU (negative control)", cfg.Cores), cfg.Cores, sendSockets, true},
	}
	for _, x := range runs {
		run, err := rx.coresRun(ctx, x.name, x.shards, x.mode, x.pin, payloads, cfg.For)
		if err != nil {
			return res, fmt.Errorf("bench: %s: %w", x.name, err)
		}
		*x.r = run
		ok, bad, foreign := rx.verifyQueued()
		res.Verified += ok
		res.VerifyFailed += bad
		res.Foreign += foreign
		sat := "kept the 20 ms pace"
		if run.Saturated {
			sat = "behind the pace: all it can send"
		}
		fmt.Fprintf(log, "loa %-40s %9.0f datagrams/s, %.3f µs CPU per datagram, %.2f cores busy (%s); %d queued datagrams authenticated, %d not, %d not from the engine\n",
			run.Name+":", run.PPS, run.USPerDatagram, run.CoresBusy, sat, ok, bad, foreign)
	}
	res.CPUEfficiency = ratio(res.One.USPerDatagram, res.Many.USPerDatagram)
	res.ThroughputEfficiency = ratio(res.Many.PPS, float64(cfg.Cores)*res.One.PPS)
	switch {
	case res.One.Saturated && res.One.CoresBusy >= fullCore && res.Many.CoresBusy >= fullCore*float64(cfg.Cores):
		res.ScalingEfficiency = res.ThroughputEfficiency
		res.ScalingBasis = "throughput"
		if !res.Many.Saturated {
			res.ScalingBasis = "throughput, lower bound (the shards kept the pace)"
		}
	case res.One.Saturated:
		res.ScalingEfficiency = res.CPUEfficiency
		res.ScalingBasis = fmt.Sprintf("cpu: the runs were behind the pace but got %.2f and %.2f cores of %d (a shared machine), so their throughputs measure the neighbours",
			res.One.CoresBusy, res.Many.CoresBusy, cfg.Cores)
	default:
		res.ScalingEfficiency = res.CPUEfficiency
		res.ScalingBasis = "cpu: one shard kept the pace"
	}
	res.PinnedSpeedup = ratio(res.Pinned.PPS, res.One.PPS)
	res.OneDescriptorSpeedup = ratio(res.OneDescriptor.PPS, res.One.PPS)
	res.DupsSpeedup = ratio(res.Dups.PPS, res.One.PPS)
	fmt.Fprintf(log, "scaling efficiency %.3f (%s); pps per CPU-second, %d shards against 1: %.3f; pps against %d × 1 shard's: %.3f\n",
		res.ScalingEfficiency, res.ScalingBasis, cfg.Cores, res.CPUEfficiency, cfg.Cores, res.ThroughputEfficiency)
	fmt.Fprintf(log, "throughput against 1 shard: %d shards %.2f×, on dup'ed descriptors %.2f×, on one descriptor %.2f×, on one CPU %.2f×\n",
		cfg.Cores, ratio(res.Many.PPS, res.One.PPS), res.DupsSpeedup, res.OneDescriptorSpeedup, res.PinnedSpeedup)
	fmt.Fprintf(log, "cores busy: 1 shard %.2f, %d shards %.2f, on one CPU %.2f (negative control: at most 1, whatever the shards; no scaling without a second core)\n",
		res.One.CoresBusy, cfg.Cores, res.Many.CoresBusy, res.Pinned.CoresBusy)
	if cfg.Peer != nil {
		sinks := make([]netip.AddrPort, len(rx.conns))
		for i, c := range rx.conns {
			sinks[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
		}
		p, err := cfg.Peer(ctx, sinks, log)
		_, _, _ = rx.verifyQueued() // empties the queues
		if err != nil {
			res.PeerErr = err
			fmt.Fprintf(log, "peer: %v\n", err)
		} else {
			res.Peer = &p
			fmt.Fprintf(log, "%-44s %9.0f datagrams/s, %.3f µs CPU per datagram (plain RTP, one datagram for all)%s\n",
				p.Name+":", p.PPS, p.USPerDatagram, note(p.Note))
			fmt.Fprintf(log, "loa (%d shards, SRTP sealed per receiver) against %s: %.3f of its CPU per datagram (goal ≤ 1.10)\n",
				cfg.Cores, p.Name, ratio(res.Many.USPerDatagram, p.USPerDatagram))
		}
	}
	res.LoadAfter = loadAvg()
	per := res.Many.USPerDatagram
	fmt.Fprintf(log, "extrapolation, not measured: 20000 receivers are 1000000 datagrams/s, %.2f cores at this run's %.3f µs per datagram; %d shards here sent %.0f datagrams/s, %.0f receivers' worth\n",
		per, per, cfg.Cores, res.Many.PPS, res.Many.PPS/50)
	fmt.Fprintf(log, "load after: %s\n", res.LoadAfter)
	return res, nil
}

// fullCore is the share of a core a saturated run must get for its
// throughput to say what the code can do.
const fullCore = 0.9

// sinkBuffer is the receive buffer asked for each sink socket.
const sinkBuffer = 2048

// coresRun streams one session to every sink with shards shards and
// measures a window of d once every receiver has authenticated.
func (rx *benchReceivers) coresRun(ctx context.Context, name string, shards int, mode sendMode, pin bool, payloads [][]byte, d time.Duration) (CoresRun, error) {
	run := CoresRun{Name: name, Shards: shards}
	e, err := Open(ctx, Config{Bind: "127.0.0.1:0", Tuner: rx, Caps: rx, Fence: protocol.Fence{Gen: 1},
		Shards: shards, sendMode: mode})
	if err != nil {
		return run, err
	}
	defer e.Close()
	s := &loa.Session{ID: "cores", SSRC: rand.Uint32() | 1, Priority: loa.PriorityNormal}
	for i := range rx.conns {
		s.Devices = append(s.Devices, rx.id(i))
	}
	if err := e.Start(ctx, s, &benchSource{pkts: payloads}, 0); err != nil {
		return run, err
	}
	if err := rx.waitAuthenticated(ctx, e, s.ID); err != nil {
		return run, err
	}
	if err := sleep(ctx, min(time.Second, d)); err != nil { // the sinks' queues fill, the first burst settles
		return run, err
	}
	restore := func() {}
	if pin {
		procs := runtime.GOMAXPROCS(1)
		unpin, err := pinThreads()
		if err != nil {
			runtime.GOMAXPROCS(procs)
			return run, err
		}
		restore = func() { unpin(); runtime.GOMAXPROCS(procs) }
	}
	d0, cpu0, t0 := e.rtpSent.Load(), processCPU(), time.Now()
	err = sleep(ctx, d)
	d1, cpu1, elapsed := e.rtpSent.Load(), processCPU(), time.Since(t0)
	run.Saturated = e.behind(s.ID)
	restore()
	if err != nil {
		return run, err
	}
	if err := e.Stop(ctx, s.ID, "bench done"); err != nil {
		return run, err
	}
	run.Datagrams, run.Elapsed, run.CPU = d1-d0, elapsed, cpu1-cpu0
	if run.Datagrams == 0 {
		return run, errors.New("nothing sent")
	}
	run.PPS = float64(run.Datagrams) / elapsed.Seconds()
	run.USPerDatagram = float64(run.CPU.Microseconds()) / float64(run.Datagrams)
	run.CoresBusy = run.CPU.Seconds() / elapsed.Seconds()
	return run, nil
}

// behind reports whether a running session has sent fewer packets than
// are due by now (more than two frames late).
func (e *Engine) behind(id string) bool {
	e.mu.Lock()
	s := e.sessions[id]
	e.mu.Unlock()
	if s == nil || s.wall0.Load() == 0 {
		return false
	}
	due := time.Since(time.Unix(0, s.wall0.Load())) / protocol.FrameDuration
	return int64(s.sent.Load()+s.gaps.Load())+2 < int64(due)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func note(s string) string {
	if s == "" {
		return ""
	}
	return "; " + s
}

func minLen(p [][]byte) int {
	m := 0
	for i, b := range p {
		if i == 0 || len(b) < m {
			m = len(b)
		}
	}
	return m
}

func maxLen(p [][]byte) int {
	m := 0
	for _, b := range p {
		m = max(m, len(b))
	}
	return m
}
