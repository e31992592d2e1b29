package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa/broadcast"
	"github.com/loa-broadcast/loa/daemon"
)

// Run runs the benchmark args[0] with the flags in args[1:].
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: loa bench fanout|schedule|fleet|alert|chaos|sync|outage|live|failover [flags]")
	}
	switch args[0] {
	case "fanout":
		return benchFanout(ctx, args[1:], stdout, stderr)
	case "schedule":
		return benchSchedule(ctx, args[1:], stdout, stderr)
	case "fleet":
		return benchFleet(ctx, args[1:], stdout, stderr)
	case "alert":
		return benchAlert(ctx, args[1:], stdout, stderr)
	case "chaos":
		return benchChaos(ctx, args[1:], stdout, stderr)
	case "sync":
		return benchSync(ctx, args[1:], stdout, stderr)
	case "outage":
		return benchOutage(ctx, args[1:], stdout, stderr)
	case "fleet-receivers": // the receivers' process of "fleet", not for users
		return benchFleetReceivers(ctx, os.Stdin, stdout, stderr)
	case "live":
		return benchLive(ctx, args[1:], stdout, stderr)
	case "failover":
		return benchFailover(ctx, args[1:], stdout, stderr)
	case "live-receivers": // the receivers' process of "live", not for users
		return benchLiveReceivers(ctx, os.Stdin, stdout, stderr)
	}
	return fmt.Errorf("unknown benchmark %q (have: fanout, schedule, fleet, alert, chaos, sync, outage, live, failover)", args[0])
}

// benchFanout streams one session to N loopback receivers as plain RTP and
// as SRTP and, in the same run, a raw sendmmsg loop of the same packets, and
// prints the rates.
func benchFanout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa bench fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizes := fs.String("receivers", "1000,5000", "comma-separated receiver counts")
	dur := fs.Duration("for", 10*time.Second, "streaming time per size (with -cores: per run)")
	cores := fs.Int("cores", 0, "compare 1 sending core with this many (≥ 2), the sender's CPU only, and GStreamer's multiudpsink on the same sockets")
	gst := fs.String("gstreamer", "gst-launch-1.0", "with -cores: the gst-launch to compare with; empty: none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 20000 {
			return fmt.Errorf("-receivers: %q is not a count within 1..20000", s)
		}
		ns = append(ns, n)
	}
	if *cores != 0 {
		if *cores < 2 || *cores > 64 {
			return fmt.Errorf("-cores: %d; compare one sending core with 2..64", *cores)
		}
		if len(ns) != 1 {
			return fmt.Errorf("-cores takes one receiver count, not %q", *sizes)
		}
		return benchFanoutCores(ctx, ns[0], *cores, *dur, *gst, stdout)
	}
	var last broadcast.FanoutResult
	for _, n := range ns {
		r, err := broadcast.BenchFanout(ctx, n, *dur, stdout)
		if err != nil {
			return fmt.Errorf("fanout %d: %w", n, err)
		}
		fmt.Fprintf(stdout, "fanout %5d receivers: controller %.0f pkt/s, raw sendmmsg %.0f pkt/s, ratio %.3f, %.3f CPU-s per receiver-hour, %d behind\n",
			r.Receivers, r.ControllerPPS, r.RawPPS, r.Ratio, r.CPUSecondsPerReceiverHour, r.Behind)
		fmt.Fprintf(stdout, "fanout %5d receivers, SRTP: controller %.0f pkt/s, ratio %.3f, %.3f CPU-s per receiver-hour, %d auth failures\n",
			r.Receivers, r.ControllerPPSSRTP, r.RatioSRTP, r.CPUSecondsPerReceiverHourSRTP, r.AuthFailures)
		last = r
	}
	printJSONLine(stdout, map[string]any{
		"receivers": last.Receivers, "controller_pps": last.ControllerPPS, "raw_pps": last.RawPPS,
		"ratio": last.Ratio, "cpu_s_per_receiver_hour": last.CPUSecondsPerReceiverHour, "behind": last.Behind,
		"srtp": true, "controller_pps_srtp": last.ControllerPPSSRTP, "ratio_srtp": last.RatioSRTP,
		"cpu_s_per_receiver_hour_srtp": last.CPUSecondsPerReceiverHourSRTP, "auth_failures": last.AuthFailures,
	})
	return nil
}

// openBenchController opens a controller with cfg on loopback ports, its
// data in a temporary folder; closeController stops it and removes the
// folder.
func openBenchController(ctx context.Context, cfg daemon.Config, logger *slog.Logger) (m *daemon.Main, closeController func(), err error) {
	dir, err := os.MkdirTemp("", "loa-bench-")
	if err != nil {
		return nil, nil, err
	}
	cfg.DataDir, cfg.HTTPAddr, cfg.MQTTListen, cfg.RTPBind = dir, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	for _, addr := range []*string{&cfg.TLS.MQTTListen, &cfg.TLS.HTTPSAddr} {
		if *addr != "" {
			*addr = "127.0.0.1:0"
		}
	}
	m = daemon.NewMain(cfg, logger)
	if err := m.Open(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return m, func() { m.Close(); os.RemoveAll(dir) }, nil
}

// printJSONLine prints v as one line of JSON: a benchmark's figures for
// scripts, after its lines for people.
func printJSONLine(w io.Writer, v any) {
	line, _ := json.Marshal(v)
	fmt.Fprintln(w, string(line))
}
