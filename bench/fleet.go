package bench

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/daemon"
	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/protocol"
)

// fleetBench configures benchFleetRun. The flags of "loa bench fleet" set
// it; the test sets it directly, with a child that is the test binary.
type fleetBench struct {
	Devices    int
	Tele       time.Duration // receivers' telemetry interval
	Ramp       float64       // receiver connects per second
	Settle     time.Duration // wait after all are online before the steady window
	Steady     time.Duration // the window CPU and write transactions are measured over
	Rounds     int           // group command rounds
	Online     time.Duration // give up if not all are online within this
	CPUProfile string        // controller CPU profile of the steady window
	SimProfile string        // receivers' CPU profile, once all are connected
	CmdProfile string        // controller CPU profile of the group commands
	// MQTTURL, MQTTUser, MQTTPass select an external broker instead of
	// the embedded one; BrokerPID, if set, is its process, whose CPU over
	// the steady window is reported too.
	MQTTURL, MQTTUser, MQTTPass string
	BrokerPID                   int
	TLS                         bool // receivers connect over MQTT/TLS, verifying the station CA

	// Child returns the command that runs the receivers ("loa bench
	// fleet-receivers"); it reads a fleetChildConfig on stdin.
	Child func(ctx context.Context) (*exec.Cmd, error)
}

// fleetChildConfig is what the receivers' process reads on stdin.
type fleetChildConfig struct {
	Broker     string      `json:"broker"`
	CA         string      `json:"ca,omitempty"` // PEM: the station CA, with a tls:// broker
	TeleMs     int64       `json:"tele_ms"`
	Ramp       float64     `json:"ramp"`
	CPUProfile string      `json:"cpuprofile,omitempty"`
	Devices    [][2]string `json:"devices"` // id, password
}

// fleetChildReport is the receivers' process's last stdout line.
type fleetChildReport struct {
	Started int     `json:"started"`
	CPUS    float64 `json:"cpu_s"`
	Err     string  `json:"err,omitempty"`
}

// benchFleet is "loa bench fleet": the controller in this process, the
// receivers in a child process, so that this process's CPU and memory are
// the controller's alone.
func benchFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa bench fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	b := fleetBench{}
	fs.IntVar(&b.Devices, "devices", 1000, "simulated receivers (MQTT only, no stream), 100 per commune in one province")
	fs.DurationVar(&b.Tele, "tele", 10*time.Second, "receivers' telemetry interval")
	fs.Float64Var(&b.Ramp, "ramp", 500, "receiver connects per second")
	fs.DurationVar(&b.Settle, "settle", 0, "wait after all are online before measuring (default: telemetry interval + 5s)")
	fs.DurationVar(&b.Steady, "steady", 30*time.Second, "steady-state window for CPU and bbolt writes")
	fs.IntVar(&b.Rounds, "rounds", 3, "group command rounds")
	fs.DurationVar(&b.Online, "online-timeout", 5*time.Minute, "give up if not all receivers are online by then")
	fs.StringVar(&b.CPUProfile, "cpuprofile", "", "write the controller's CPU profile of the steady window to `file`")
	fs.StringVar(&b.CmdProfile, "group-cpuprofile", "", "write the controller's CPU profile of the group commands to `file`")
	fs.StringVar(&b.SimProfile, "sim-cpuprofile", "", "write the receivers' process CPU profile, from when all are connected, to `file`")
	fs.StringVar(&b.MQTTURL, "mqtt-url", "", "external MQTT broker (e.g. a local Mosquitto) instead of the embedded one")
	fs.StringVar(&b.MQTTUser, "mqtt-user", "loa-controller", "controller's username on the external broker")
	fs.StringVar(&b.MQTTPass, "mqtt-pass", "", "controller's password on the external broker")
	fs.IntVar(&b.BrokerPID, "broker-pid", 0, "process id of the external broker, to report its CPU too")
	fs.BoolVar(&b.TLS, "tls", false, "receivers connect over MQTT/TLS (the embedded broker's TLS listener), verifying the station CA")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if b.Devices < 1 || b.Devices > 20000 {
		return fmt.Errorf("-devices: %d is not within 1..20000", b.Devices)
	}
	if b.Tele < time.Second || b.Steady < time.Second || b.Rounds < 1 || b.Ramp <= 0 {
		return errors.New("-tele and -steady must be ≥ 1s, -rounds ≥ 1, -ramp > 0")
	}
	if b.Settle <= 0 {
		b.Settle = b.Tele + 5*time.Second
	}
	if b.TLS && b.MQTTURL != "" {
		return errors.New("-tls measures the embedded broker's TLS listener; with -mqtt-url give a tls:// URL instead")
	}
	b.Child = func(ctx context.Context) (*exec.Cmd, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return exec.CommandContext(ctx, exe, "bench", "fleet-receivers"), nil
	}
	_, err := benchFleetRun(ctx, b, stdout, stderr)
	return err
}

// benchFleetRun runs the benchmark, prints human lines and then the
// figures as one JSON line, and returns the figures.
func benchFleetRun(ctx context.Context, b fleetBench, stdout, stderr io.Writer) (map[string]any, error) {
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := daemon.DefaultConfig()
	if b.MQTTURL != "" {
		cfg.MQTTURL, cfg.MQTTUser, cfg.MQTTPass = b.MQTTURL, b.MQTTUser, b.MQTTPass
	}
	if !b.TLS {
		cfg.TLS.MQTTListen = ""
	}
	m, closeController, err := openBenchController(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	defer closeController()
	c := api.NewClient(m.URL(), m.AdminToken)
	brokerName := "embedded broker (in the controller's figures)"
	if b.MQTTURL != "" {
		brokerName = "external broker " + b.MQTTURL
	}
	if b.TLS {
		brokerName += ", receivers over TLS"
	}

	// One province, 100 receivers per commune, provisioned through the API.
	setup := time.Now()
	const perCommune = 100
	communes := (b.Devices + perCommune - 1) / perCommune
	if err := c.CreateArea(ctx, loa.Area{ID: "bench", Name: "Bench", Kind: loa.AreaProvince}); err != nil {
		return nil, err
	}
	for i := range communes {
		if err := c.CreateArea(ctx, loa.Area{ID: fmt.Sprintf("c%03d", i), ParentID: "bench", Name: fmt.Sprintf("Xã %d", i), Kind: loa.AreaCommune}); err != nil {
			return nil, err
		}
	}
	ids := make([]string, b.Devices)
	devs := make([][2]string, b.Devices)
	if err := parallel(ctx, b.Devices, 8, func(i int) error {
		ids[i] = fmt.Sprintf("rx-%05d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: ids[i], AreaID: fmt.Sprintf("c%03d", i/perCommune)})
		devs[i] = [2]string{ids[i], pw}
		return err
	}); err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	say("bench fleet: %d receivers in %d communes provisioned in %.1f s; telemetry every %v, %.0f connects/s; %s",
		b.Devices, communes, time.Since(setup).Seconds(), b.Tele, b.Ramp, brokerName)

	rss0 := settledRSS()
	child, err := b.Child(ctx)
	if err != nil {
		return nil, err
	}
	childCfg := fleetChildConfig{Broker: m.MQTTURL()}
	if b.TLS {
		childCfg.Broker, childCfg.CA = m.MQTTTLSURL(), string(m.CACertPEM())
	}
	childCfg.TeleMs, childCfg.Ramp, childCfg.CPUProfile, childCfg.Devices = b.Tele.Milliseconds(), b.Ramp, b.SimProfile, devs
	in, err := json.Marshal(childCfg)
	if err != nil {
		return nil, err
	}
	stdin, err := child.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := child.StdoutPipe()
	if err != nil {
		return nil, err
	}
	child.Stderr = stderr
	t0 := time.Now()
	if err := child.Start(); err != nil {
		return nil, fmt.Errorf("receivers' process: %w", err)
	}
	reports := make(chan fleetChildReport, 1)
	go func() { // the child's last JSON line, once it exits
		var last fleetChildReport
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			json.Unmarshal(sc.Bytes(), &last)
		}
		reports <- last
	}()
	childDone := false
	stopChild := func() fleetChildReport {
		if childDone {
			return fleetChildReport{}
		}
		childDone = true
		stdin.Close() // the child closes its receivers and exits
		var r fleetChildReport
		select {
		case r = <-reports:
		case <-time.After(time.Minute):
			child.Process.Kill()
			r = <-reports
		}
		child.Wait()
		return r
	}
	defer stopChild()
	if _, err := stdin.Write(append(in, '\n')); err != nil {
		return nil, fmt.Errorf("receivers' process: %w", err)
	}

	// online_s: from starting the receivers until the controller sees all.
	deadline := t0.Add(b.Online)
	for m.Fleet.Stats().Online < b.Devices {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d receivers online after %v", m.Fleet.Stats().Online, b.Devices, b.Online)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	onlineS := time.Since(t0).Seconds()
	say("online: all %d in %.2f s (%.0f/s)", b.Devices, onlineS, float64(b.Devices)/onlineS)

	if err := sleepCtx(ctx, b.Settle); err != nil {
		return nil, err
	}
	stopProfile, err := startCPUProfile(b.CPUProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	cpu0, sim0, br0, tx0, w0 := selfCPU(), procCPU(child.Process.Pid), procCPU(b.BrokerPID), m.DB.WriteTxs(), time.Now()
	if err := sleepCtx(ctx, b.Steady); err != nil {
		return nil, err
	}
	cpu1, sim1, br1, tx1, wall := selfCPU(), procCPU(child.Process.Pid), procCPU(b.BrokerPID), m.DB.WriteTxs(), time.Since(w0)
	stopProfile()
	cpuPct := 100 * (cpu1 - cpu0).Seconds() / wall.Seconds()
	simPct := 100 * (sim1 - sim0).Seconds() / wall.Seconds()
	txPerS := float64(tx1-tx0) / wall.Seconds()
	rss1 := settledRSS()
	rssPer := float64(int64(rss1)-int64(rss0)) / float64(b.Devices)
	simRSS := procRSS(child.Process.Pid)
	say("steady %.0f s: controller %.2f %% of one core (%.2f ms CPU per device-minute), receivers' process %.1f %%; %.2f bbolt write tx/s",
		wall.Seconds(), cpuPct, 1000*(cpu1-cpu0).Seconds()/float64(b.Devices)/wall.Minutes(), simPct, txPerS)
	if b.BrokerPID > 0 {
		say("external broker (pid %d): %.2f %% of one core", b.BrokerPID, 100*(br1-br0).Seconds()/wall.Seconds())
	}
	say("memory: controller RSS %.1f MiB before receivers, %.1f MiB at steady: %.0f bytes per device; receivers' process %.1f MiB (%.0f bytes per receiver)",
		mib(rss0), mib(rss1), rssPer, mib(simRSS), float64(simRSS)/float64(b.Devices))

	// The group command: a volume to every receiver of the province.
	stopCmdProfile, err := startCPUProfile(b.CmdProfile)
	if err != nil {
		return nil, err
	}
	defer stopCmdProfile()
	var lat []float64
	acked := b.Devices
	for round := range b.Rounds {
		cpu0, sim0 := selfCPU(), procCPU(child.Process.Pid)
		l, ok, err := groupVolume(ctx, c, "bench", 40+round)
		if err != nil {
			return nil, err
		}
		say("group command round %d: volume to %d: %d acked, p50 %.1f ms, p99 %.1f ms, max %.1f ms; CPU: controller %.0f ms, receivers %.0f ms",
			round+1, len(ids), ok, pct(l, 50), pct(l, 99), pct(l, 100),
			ms(selfCPU()-cpu0), ms(procCPU(child.Process.Pid)-sim0))
		lat = append(lat, l...)
		acked = min(acked, ok)
		if err := sleepCtx(ctx, time.Second); err != nil { // let the acks' tail drain
			return nil, err
		}
	}
	stopCmdProfile()
	sim := stopChild()
	if sim.Err != "" {
		return nil, fmt.Errorf("receivers' process: %s", sim.Err)
	}

	res := map[string]any{
		"devices": b.Devices, "online_s": round3(onlineS), "cpu_pct_steady": round3(cpuPct),
		"rss_bytes_per_device": int64(rssPer), "write_tx_per_s": round3(txPerS),
		"group_cmd_ms_p50": pct(lat, 50), "group_cmd_ms_p99": pct(lat, 99), "group_cmd_ms_max": pct(lat, 100),
		"group_cmd_rounds": b.Rounds, "acked": acked,
		"tele_s": b.Tele.Seconds(), "steady_s": round3(wall.Seconds()),
		"sim_cpu_pct_steady": round3(simPct), "sim_rss_bytes_per_device": simRSS / uint64(b.Devices),
		"embedded_broker": b.MQTTURL == "", "tls": b.TLS,
	}
	if b.BrokerPID > 0 {
		res["broker_cpu_pct_steady"] = round3(100 * (br1 - br0).Seconds() / wall.Seconds())
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	say("goals: controller < 10 %% of one core: %s; group command p99 < 2 s: %s; all acked: %s",
		verdict(cpuPct < 10), verdict(pct(lat, 99) < 2000), verdict(acked == b.Devices))
	printJSONLine(stdout, res)
	return res, nil
}

// groupVolume sends a volume group command to the province through the
// API, as an operator would, waits for it to settle, and returns each
// device's time from the API call to its ack as the controller recorded
// it, in ms, for the devices that acked done, and how many did.
func groupVolume(ctx context.Context, c *api.Client, area string, level int) ([]float64, int, error) {
	var g loa.GroupCommand
	body := map[string]any{"op": protocol.OpVolume, "args": protocol.VolumeArgs{Level: level}, "timeout": "30s"}
	start := time.Now()
	if err := c.JSON(ctx, "POST", "/api/v1/areas/"+area+"/commands?wait=1m", body, &g); err != nil {
		return nil, 0, fmt.Errorf("group command: %w", err)
	}
	for g.State != loa.GroupDone {
		if err := c.JSON(ctx, "GET", "/api/v1/group-commands/"+g.ID+"?wait=1m", nil, &g); err != nil {
			return nil, 0, fmt.Errorf("group command %s: %w", g.ID, err)
		}
	}
	var lat []float64
	for _, r := range g.Results {
		if r.State == loa.GroupDoneAck && !r.AckedAt.IsZero() {
			lat = append(lat, ms(r.AckedAt.Sub(start)))
		}
	}
	return lat, len(lat), nil
}

// benchFleetReceivers is "loa bench fleet-receivers", the receivers'
// process of "loa bench fleet": it reads a fleetChildConfig line on stdin,
// starts the receivers, and when stdin closes closes them and prints a
// fleetChildReport.
func benchFleetReceivers(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	rep := runFleetReceivers(ctx, stdin, stderr)
	printJSONLine(stdout, rep)
	if rep.Err != "" {
		return errors.New(rep.Err)
	}
	return nil
}

func runFleetReceivers(ctx context.Context, stdin io.Reader, stderr io.Writer) fleetChildReport {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	br := bufio.NewReaderSize(stdin, 1<<20)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fleetChildReport{Err: fmt.Sprintf("reading the config: %v", err)}
	}
	var cfg fleetChildConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fleetChildReport{Err: fmt.Sprintf("config: %v", err)}
	}
	var ca *x509.CertPool
	if cfg.CA != "" {
		ca = x509.NewCertPool()
		if !ca.AppendCertsFromPEM([]byte(cfg.CA)) {
			return fleetChildReport{Err: "config: the CA holds no PEM certificate"}
		}
	}
	cfgs := make([]firmwaresim.Config, len(cfg.Devices))
	for i, d := range cfg.Devices {
		cfgs[i] = firmwaresim.Config{ID: d[0], Password: d[1], Broker: cfg.Broker, CA: ca,
			TeleInterval: time.Duration(cfg.TeleMs) * time.Millisecond, Logger: logger}
	}
	// Stdin closing (or ctx) ends the run, even while starting.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, br)
		cancel()
	}()
	fleet, err := firmwaresim.StartFleetRamped(ctx, cfgs, cfg.Ramp)
	if err != nil {
		if ctx.Err() != nil {
			return fleetChildReport{CPUS: selfCPU().Seconds()}
		}
		return fleetChildReport{Err: err.Error()}
	}
	// Profile the receivers once all are connected: the steady state and
	// the group commands, not the connects.
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		fleet.Close()
		return fleetChildReport{Err: err.Error()}
	}
	<-ctx.Done()
	stopProfile()
	fleet.Close()
	return fleetChildReport{Started: len(cfgs), CPUS: selfCPU().Seconds()}
}

// parallel runs fn(0..n-1) on workers goroutines; the first error wins.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var (
		next    int
		mu      sync.Mutex
		firstEr error
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := firstEr != nil || i >= n || ctx.Err() != nil
				mu.Unlock()
				if stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstEr == nil {
		firstEr = ctx.Err()
	}
	return firstEr
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// startCPUProfile profiles to path ("" for none); the returned stop may be
// called more than once.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	var once sync.Once
	return func() { once.Do(func() { pprof.StopCPUProfile(); f.Close() }) }, nil
}

// selfCPU is this process's user + system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is process pid's user + system CPU time from /proc (Linux; 0
// elsewhere).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const userHZ = 100 // USER_HZ is 100 on every Linux ABI Go supports
	return time.Duration(ut+st) * time.Second / userHZ
}

// procRSS is process pid's resident set in bytes from /proc (Linux; 0
// elsewhere).
func procRSS(pid int) uint64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// settledRSS is this process's RSS after a GC that returns freed memory to
// the OS, so that two readings compare live memory rather than GC timing.
func settledRSS() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	return procRSS(os.Getpid())
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
