// Command loa is the Loa controller: it schedules programmes and streams
// Opus over RTP to commune loudspeaker receivers, which it controls over
// MQTT.
//
//	loa serve   run the controller
//	loa demo    controller + simulated receivers playing one programme
//	loa bench   measurements (fanout, schedule, fleet, alert, chaos, sync, outage, live, failover)
//	loa firmware keygen|sign   firmware signing keys and image signatures
//	loa backup  fetch a backup archive from a running controller
//	loa restore write a backup archive into a new data dir, checking it
//	loa user    add a user or set a password on a running controller
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/loa-broadcast/loa/bench"
	"github.com/loa-broadcast/loa/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "loa:", err)
		os.Exit(daemon.ExitCode(err))
	}
}

const usage = `usage: loa <command> [flags]

commands:
  serve   run the controller (API, embedded MQTT broker, RTP engine)
  demo    run the controller with simulated receivers and play one programme
  bench   measure: "loa bench fanout|schedule|fleet|alert|chaos|sync|outage|live|failover"
  firmware  "loa firmware keygen" makes a signing key pair, "loa firmware sign" signs an image
  backup  "loa backup -url URL -token-file F -o FILE" fetches a backup from a running controller
  restore "loa restore -data DIR FILE" writes a backup into a new data dir and checks it
  cluster "loa cluster status|add|remove|transfer-leadership -url URL -token-file F" runs a controller cluster
  user    "loa user add|passwd -token-file F -username U -password-file P|-" adds a user or sets a password

"loa <command> -h" lists a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr, getenv)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr, getenv)
	case "bench":
		return bench.Run(ctx, args[1:], stdout, stderr)
	case "firmware":
		return runFirmware(args[1:], stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		return runRestore(ctx, args[1:], stdout, stderr)
	case "user":
		return runUser(ctx, args[1:], stdout, stderr)
	case "cluster":
		return runCluster(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func runServe(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	cfg := daemon.DefaultConfig()
	if err := configFromEnv(&cfg, getenv); err != nil {
		return err
	}
	fs := flag.NewFlagSet("loa serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bindConfig(&cfg, fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	if cfg.Cluster.Enabled() {
		return serveNode(ctx, cfg, logger, stderr)
	}
	m := daemon.NewMain(cfg, logger)
	if err := m.Open(ctx); err != nil {
		return err
	}
	if m.AdminToken != "" {
		fmt.Fprintf(stderr, "\nAdmin API token (shown once, also in %s):\n  %s\n\n", m.AdminTokenFile, m.AdminToken)
	} else {
		fmt.Fprintf(stderr, "The admin API token is in %s\n", m.AdminTokenFile)
	}
	if m.AdminPassword != "" {
		fmt.Fprintf(stderr, "Sign in to the console as admin with the password in %s\n", m.AdminPasswordFile)
	}
	fmt.Fprintf(stderr, "Web UI and API: %s\n", m.URL())
	if u := m.HTTPSURL(); u != "" {
		fmt.Fprintf(stderr, "Over HTTPS: %s\n", u)
	}
	if u := m.MQTTTLSURL(); u != "" {
		fmt.Fprintf(stderr, "Receivers: MQTT over TLS on %s, verified with the station CA %s\n", u, m.PKI.CACertFile())
	}
	<-ctx.Done()
	logger.Info("shutting down")
	return m.Close()
}
