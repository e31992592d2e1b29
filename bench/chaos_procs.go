package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loa-broadcast/loa/daemon"
)

// The processes `loa bench chaos` owns and kills: an external Mosquitto and
// the controller (`loa serve`), each restarted on the same address.

// chaosMosquitto is a Mosquitto broker on a fixed loopback port, with
// nothing persisted: a kill loses its retained statuses and sessions, as a
// crashed broker without persistence does.
type chaosMosquitto struct {
	bin, dir string
	port     int
	log      *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func newChaosMosquitto(dir string) (*chaosMosquitto, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return nil, fmt.Errorf("loa bench chaos needs Mosquitto on PATH (Debian: apt-get install mosquitto): %w", err)
	}
	port, err := freeTCPPort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 10000\n", port)
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		return nil, err
	}
	return &chaosMosquitto{bin: bin, dir: dir, port: port, log: log}, nil
}

func (b *chaosMosquitto) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", b.port) }

// start runs the broker and waits until it listens.
func (b *chaosMosquitto) start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cmd := exec.Command(b.bin, "-c", filepath.Join(b.dir, "mosquitto.conf"))
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	b.cmd, b.exited = cmd, exited
	addr := fmt.Sprintf("127.0.0.1:%d", b.port)
	return waitUntil(ctx, 20*time.Second, exited, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "mosquitto listening on "+addr+" (log: "+b.log.Name()+")")
}

// kill ends the broker with SIGKILL.
func (b *chaosMosquitto) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	<-b.exited
	b.cmd = nil
}

// chaosController is the controller as a child process, `loa serve` on a
// data dir, with fixed addresses so its receivers find it again after a
// restart, and its clock offset carried over restarts.
type chaosController struct {
	exe                string   // the loa binary
	env                []string // its environment; nil: this process's
	data               string
	httpAddr, rtpAddr  string
	mqttURL            string
	log                *os.File
	lead, grace, delay time.Duration

	mu     sync.Mutex // held across a restart or a clock step
	cmd    *exec.Cmd
	exited chan struct{}
	offset time.Duration
	token  string
	// exitsAtStart counts starts that exited at once (and were retried).
	exitsAtStart int
}

// start runs `loa serve` and waits until it answers /healthz.
func (c *chaosController) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startLocked(ctx)
}

// startLocked starts the controller; one that exits at start (the broker
// is unreachable: `loa serve` does not start without it) is started again
// a second later, as a service manager would, for at most two minutes.
func (c *chaosController) startLocked(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := c.startOnce(ctx)
		if !errors.Is(err, errExitedAtStart) || time.Now().After(deadline) {
			return err
		}
		c.exitsAtStart++
		sleepCtx(ctx, time.Second)
	}
}

var errExitedAtStart = errors.New("exited at start")

func (c *chaosController) startOnce(ctx context.Context) error {
	cmd := exec.Command(c.exe, "serve", "-data", c.data, "-http", c.httpAddr, "-mqtt-url", c.mqttURL,
		"-mqtt-listen", "", "-mqtt-pass", "chaos", "-rtp", c.rtpAddr, "-lead", c.lead.String(), "-grace", c.grace.String(),
		"-delay", c.delay.String(), "-log", "warn", "-https", "", "-mqtt-tls-listen", "",
		"-test-hooks", "-clock-offset", c.offset.String())
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = c.log, c.log
	fmt.Fprintf(c.log, "=== %s: loa serve (clock offset %v)\n", time.Now().Format(time.RFC3339Nano), c.offset)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start controller: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c.cmd, c.exited = cmd, exited
	err := waitUntil(ctx, time.Minute, exited, func() bool {
		resp, err := http.Get("http://" + c.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, "the controller answering /healthz (log: "+c.log.Name()+")")
	select {
	case <-exited:
		c.cmd = nil
		return fmt.Errorf("loa serve: %w (log: %s)", errExitedAtStart, c.log.Name())
	default:
	}
	if err != nil {
		return err
	}
	if c.token == "" {
		tok, err := os.ReadFile(filepath.Join(c.data, "admin-token"))
		if err != nil {
			return err
		}
		c.token = strings.TrimSpace(string(tok))
	}
	return nil
}

// kill ends the controller with SIGKILL.
func (c *chaosController) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.killLocked()
}

func (c *chaosController) killLocked() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
	c.cmd = nil
	fmt.Fprintf(c.log, "=== %s: SIGKILL\n", time.Now().Format(time.RFC3339Nano))
}

// killFor kills the controller and starts it again after down.
func (c *chaosController) killFor(ctx context.Context, down time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.killLocked()
	sleepCtx(ctx, down)
	return c.startLocked(context.WithoutCancel(ctx))
}

// setOffset steps the running controller's scheduler clock through its
// -test-hooks clock hook and waits until it took it.
func (c *chaosController) setOffset(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := filepath.Join(c.data, daemon.ClockHookFile)
	if err := os.WriteFile(path, []byte(d.String()), 0o600); err != nil {
		return err
	}
	if c.cmd == nil {
		return errors.New("the controller is not running")
	}
	if err := c.cmd.Process.Signal(daemon.ClockHookSignal); err != nil {
		return err
	}
	err := waitUntil(ctx, 30*time.Second, c.exited, func() bool {
		_, err := os.Stat(path)
		return errors.Is(err, os.ErrNotExist)
	}, "the controller taking the clock offset")
	if err != nil {
		return err
	}
	c.offset = d
	fmt.Fprintf(c.log, "=== %s: clock offset %v\n", time.Now().Format(time.RFC3339Nano), d)
	return nil
}

// stop ends the controller with SIGTERM (SIGKILL after 20 s).
func (c *chaosController) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
}

// waitUntil polls cond every 20 ms until it holds, the process whose end
// exited signals ends, or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, exited <-chan struct{}, cond func() bool, what string) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("the process exited before %s", what)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s after %v", what, timeout)
		}
	}
	return nil
}

// freeTCPPort returns a loopback TCP port free a moment ago.
func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeUDPPort returns a loopback UDP port free a moment ago.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
