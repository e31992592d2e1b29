package loatest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Tool returns the path of an external program a test needs. Outside CI
// a missing program skips the test, saying so; under CI (CI set, as
// `make test` runs there after installing every program) it fails it.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	missing(tb, name)
	return ""
}

// Chromium returns the path of a Chromium-family browser for chromedp,
// with Tool's rule when there is none.
func Chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	missing(tb, "Chromium")
	return ""
}

func missing(tb testing.TB, name string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s is not installed; `make test` installs it", name)
	}
	tb.Skipf("%s is not installed (make test installs it); skipping", name)
}

// StartMosquitto runs Mosquitto (found with Tool's rule) with conf, which
// must listen on 127.0.0.1:port, from dir/mosquitto.conf, logging to
// dir/mosquitto.log, until the test ends. It returns the broker's URL
// once it accepts connections, and fails with the log if it never does.
func StartMosquitto(tb testing.TB, dir string, port int, conf string) string {
	tb.Helper()
	return RunMosquitto(tb, dir, port, conf).URL
}

// Mosquitto is a running Mosquitto process.
type Mosquitto struct {
	URL  string
	kill func()
}

// Kill ends the broker with SIGKILL, as a crash does (no Will is sent, no
// state saved), and returns once the process has exited. Killing twice
// is harmless; RunMosquitto on the same port starts a new one.
func (m *Mosquitto) Kill() { m.kill() }

// RunMosquitto is StartMosquitto, returning the process so a test can
// kill it.
func RunMosquitto(tb testing.TB, dir string, port int, conf string) *Mosquitto {
	tb.Helper()
	bin := Tool(tb, "mosquitto")
	confFile, logFile := filepath.Join(dir, "mosquitto.conf"), filepath.Join(dir, "mosquitto.log")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	logf, err := os.Create(logFile)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-c", confFile) // cancel sends SIGKILL
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		tb.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	kill := func() { once.Do(func() { cancel(); <-exited; logf.Close() }) }
	tb.Cleanup(kill)

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	fail := func(why string) {
		tb.Helper()
		log, _ := os.ReadFile(logFile)
		tb.Fatalf("mosquitto %s: %s\nconfig:\n%s", why, log, conf)
	}
	deadline := time.Now().Add(Wait)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return &Mosquitto{URL: "tcp://" + addr, kill: kill}
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			fail(fmt.Sprintf("exited (%v) before listening on %s", err, addr))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			fail("did not listen on " + addr)
		}
	}
}
