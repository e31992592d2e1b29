package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-broadcast/loa/broadcast"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/protocol"
)

// gstShortPackets is the length of the short GStreamer run, whose CPU
// (start-up: plugins, parsing thousands of clients, preroll) is taken off
// the long run's.
const gstShortPackets = 100

// gstClientsPerSink bounds one multiudpsink's clients: the kernel refuses
// an argument over 128 KiB (MAX_ARG_STRLEN), about 8,000 addresses, so
// larger fleets are split over sinks behind a tee.
const gstClientsPerSink = 5000

// benchFanoutCores is `loa bench fanout -cores K`: the engine with one and
// with K sending shards against sinks nobody reads, the sender's CPU only,
// then GStreamer sending the same Ogg Opus file to the same sockets.
func benchFanoutCores(ctx context.Context, n, cores int, d time.Duration, gst string, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "loa-bench-cores-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	prog, err := coresProgramme(ctx, dir, d+gstShortPackets*protocol.FrameDuration)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "programme: %d Opus packets (%v) from the project's encoder, %s\n",
		len(prog.packets), time.Duration(len(prog.packets))*protocol.FrameDuration, prog.long)
	cfg := broadcast.CoresConfig{Receivers: n, Cores: cores, For: d, Payloads: prog.packets, Log: stdout}
	if gst != "" {
		cfg.Peer = func(ctx context.Context, sinks []netip.AddrPort, log io.Writer) (broadcast.PeerRun, error) {
			return gstPeer(ctx, gst, prog, sinks, log)
		}
	}
	r, err := broadcast.BenchCores(ctx, cfg)
	if err != nil {
		return err
	}
	out := map[string]any{
		"receivers": r.Receivers, "cores": r.Cores,
		"pps_1_core": r.One.PPS, "pps_cores": r.Many.PPS,
		"saturated_1_core": r.One.Saturated, "saturated_cores": r.Many.Saturated,
		"scaling_efficiency": r.ScalingEfficiency, "scaling_basis": r.ScalingBasis,
		"cpu_efficiency": r.CPUEfficiency, "scaling_efficiency_throughput": r.ThroughputEfficiency,
		"us_per_datagram":        r.Many.USPerDatagram,
		"us_per_datagram_1_core": r.One.USPerDatagram,
		"pps_one_descriptor":     r.OneDescriptor.PPS, "speedup_one_descriptor": r.OneDescriptorSpeedup,
		"pps_dup_descriptors": r.Dups.PPS, "speedup_dup_descriptors": r.DupsSpeedup,
		"us_per_datagram_dup_descriptors": r.Dups.USPerDatagram,
		"pps_pinned_control":              r.Pinned.PPS, "speedup_pinned_control": r.PinnedSpeedup,
		"cores_busy_1_core": r.One.CoresBusy, "cores_busy_cores": r.Many.CoresBusy, "cores_busy_pinned_control": r.Pinned.CoresBusy,
		"us_per_datagram_one_descriptor": r.OneDescriptor.USPerDatagram, "us_per_datagram_pinned_control": r.Pinned.USPerDatagram,
		"verified": r.Verified, "verify_failed": r.VerifyFailed, "foreign_datagrams": r.Foreign,
		"us_per_datagram_gstreamer": nil, "pps_gstreamer": nil, "loa_over_gstreamer": nil,
		"extrapolated_cores_20000": r.Many.USPerDatagram, // 1,000,000 datagrams/s × µs each
		"load_before":              r.LoadBefore, "load_after": r.LoadAfter,
	}
	if p := r.Peer; p != nil {
		out["us_per_datagram_gstreamer"], out["pps_gstreamer"] = p.USPerDatagram, p.PPS
		if p.USPerDatagram > 0 {
			out["loa_over_gstreamer"] = r.Many.USPerDatagram / p.USPerDatagram
		}
	}
	if r.PeerErr != nil {
		out["gstreamer_error"] = r.PeerErr.Error()
	}
	printJSONLine(stdout, out)
	return nil
}

// coresFile is the bench's programme: the packets Loa sends, and the same
// as Ogg Opus files for GStreamer (all of them, and the first
// gstShortPackets).
type coresFile struct {
	packets     [][]byte
	long, short string
}

// coresProgramme encodes the demo programme (length at least d) with the
// project's encoder into dir.
func coresProgramme(ctx context.Context, dir string, d time.Duration) (coresFile, error) {
	var f coresFile
	wav, _, err := media.DemoProgramme(ctx, d)
	if err != nil {
		return f, err
	}
	var ogg bytes.Buffer
	if _, err := media.Transcode(ctx, bytes.NewReader(wav), &ogg, media.Options{}); err != nil {
		return f, fmt.Errorf("bench: encode the programme: %w", err)
	}
	pr, err := media.NewPacketReader(bytes.NewReader(ogg.Bytes()))
	if err != nil {
		return f, err
	}
	for {
		p, err := pr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, err
		}
		f.packets = append(f.packets, p)
	}
	if len(f.packets) <= 2*gstShortPackets {
		return f, fmt.Errorf("bench: the programme has %d packets, too few", len(f.packets))
	}
	f.long, f.short = filepath.Join(dir, "programme.opus"), filepath.Join(dir, "start.opus")
	if err := os.WriteFile(f.long, ogg.Bytes(), 0o600); err != nil {
		return f, err
	}
	var short bytes.Buffer
	w := media.NewOggWriter(&short, pr.PreSkip())
	for _, p := range f.packets[:gstShortPackets] {
		if err := w.WritePacket(p, protocol.FrameSamples); err != nil {
			return f, err
		}
	}
	if err := w.Close(); err != nil {
		return f, err
	}
	return f, os.WriteFile(f.short, short.Bytes(), 0o600)
}

// gstPeer plays the short file, then the whole one, through gst-launch to
// every sink and takes the difference: the CPU (the child's rusage) per
// datagram once it runs, without its start-up.
func gstPeer(ctx context.Context, gst string, prog coresFile, sinks []netip.AddrPort, log io.Writer) (broadcast.PeerRun, error) {
	p := broadcast.PeerRun{Name: "gstreamer multiudpsink"}
	if _, err := exec.LookPath(gst); err != nil {
		return p, fmt.Errorf("%s not found (make deps-bench installs GStreamer): %w", gst, err)
	}
	short, err := gstRun(ctx, gst, prog.short, sinks)
	if err != nil {
		return p, err
	}
	long, err := gstRun(ctx, gst, prog.long, sinks)
	if err != nil {
		return p, err
	}
	// rtpopuspay also sends OpusHead and OpusTags: the same two in each run.
	p.Datagrams = uint64(len(prog.packets)-gstShortPackets) * uint64(len(sinks))
	p.CPU, p.Elapsed = long.cpu-short.cpu, long.elapsed-short.elapsed
	if p.Elapsed <= 0 || p.CPU <= 0 {
		return p, fmt.Errorf("gstreamer: the whole file took %v and %v CPU, the start %v and %v", long.elapsed, long.cpu, short.elapsed, short.cpu)
	}
	p.PPS = float64(p.Datagrams) / p.Elapsed.Seconds()
	p.USPerDatagram = float64(p.CPU.Microseconds()) / float64(p.Datagrams)
	sinksUsed := (len(sinks) + gstClientsPerSink - 1) / gstClientsPerSink
	p.Note = fmt.Sprintf("%d multiudpsink behind a tee (an argument takes ≤ ~8000 clients); start-up %v CPU taken off (%d-packet run)",
		sinksUsed, short.cpu.Round(time.Millisecond), gstShortPackets)
	if sinksUsed == 1 {
		p.Note = fmt.Sprintf("one multiudpsink; start-up %v CPU taken off (%d-packet run)", short.cpu.Round(time.Millisecond), gstShortPackets)
	}
	fmt.Fprintf(log, "gstreamer: whole file %v wall, %v CPU; first %d packets %v wall, %v CPU\n",
		long.elapsed.Round(time.Millisecond), long.cpu.Round(time.Millisecond), gstShortPackets,
		short.elapsed.Round(time.Millisecond), short.cpu.Round(time.Millisecond))
	return p, nil
}

type gstFigures struct {
	elapsed, cpu time.Duration
}

// gstRun sends file to every sink with gst-launch-1.0 (filesrc ! oggdemux
// ! rtpopuspay ! multiudpsink, paced by its clock as Loa paces) and
// returns its wall time and CPU.
func gstRun(ctx context.Context, gst, file string, sinks []netip.AddrPort) (gstFigures, error) {
	args := gstArgs(file, sinks)
	cmd := exec.CommandContext(ctx, gst, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	t0 := time.Now()
	err := cmd.Run()
	el := time.Since(t0)
	if err != nil {
		return gstFigures{}, fmt.Errorf("gstreamer %s: %w: %s", filepath.Base(file), err, strings.TrimSpace(stderr.String()))
	}
	st := cmd.ProcessState
	return gstFigures{elapsed: el, cpu: st.UserTime() + st.SystemTime()}, nil
}

// gstArgs is the pipeline: one multiudpsink, or one per
// gstClientsPerSink sinks behind a tee (each with its queue: its thread).
func gstArgs(file string, sinks []netip.AddrPort) []string {
	args := []string{"-q", "filesrc", "location=" + file, "!", "oggdemux", "!", "rtpopuspay", "!"}
	var chunks [][]netip.AddrPort
	for len(sinks) > 0 {
		k := min(len(sinks), gstClientsPerSink)
		chunks, sinks = append(chunks, sinks[:k]), sinks[k:]
	}
	clients := func(c []netip.AddrPort) string {
		s := make([]string, len(c))
		for i, a := range c {
			s[i] = a.String()
		}
		return "clients=" + strings.Join(s, ",")
	}
	if len(chunks) == 1 {
		return append(args, "multiudpsink", clients(chunks[0]))
	}
	args = append(args, "tee", "name=t")
	for _, c := range chunks {
		args = append(args, "t.", "!", "queue", "!", "multiudpsink", clients(c))
	}
	return args
}
