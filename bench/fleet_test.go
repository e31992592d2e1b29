package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBenchFleet runs "loa bench fleet" end to end at a tiny scale — the
// controller here, 20 receivers in a child process over real MQTT — so the
// benchmark cannot rot. It checks the figures are there and consistent,
// never how fast anything was.
func TestBenchFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process of receivers")
	}
	t.Run("plain", func(t *testing.T) { testBenchFleet(t, false) })
	t.Run("tls", func(t *testing.T) { testBenchFleet(t, true) })
}

func testBenchFleet(t *testing.T, tls bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 20
	b := fleetBench{
		Devices: n, Tele: time.Second, Ramp: 200, Settle: time.Second, Steady: 2 * time.Second,
		Rounds: 2, Online: time.Minute, TLS: tls,
		Child: func(ctx context.Context) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchFleetReceiversChild$")
			cmd.Env = append(os.Environ(), "LOA_BENCH_FLEET_CHILD=1")
			return cmd, nil
		},
	}
	// The controller's logger and the child's stderr both write errs.
	var out bytes.Buffer
	var errs lockedBuffer
	res, err := benchFleetRun(ctx, b, &out, &errs)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"devices", "online_s", "cpu_pct_steady", "rss_bytes_per_device", "group_cmd_ms_p50",
		"group_cmd_ms_p99", "group_cmd_ms_max", "acked", "write_tx_per_s", "sim_cpu_pct_steady"} {
		if _, ok := last[k]; !ok {
			t.Errorf("JSON line lacks %q: %s", k, lines[len(lines)-1])
		}
	}
	num := func(k string) float64 { f, _ := last[k].(float64); return f }
	if num("devices") != n || num("acked") != n {
		t.Errorf("devices %v, acked %v: want every one of %d to ack every round", last["devices"], last["acked"], n)
	}
	if num("online_s") <= 0 || num("cpu_pct_steady") <= 0 {
		t.Errorf("online_s %v, cpu_pct_steady %v: want both > 0", last["online_s"], last["cpu_pct_steady"])
	}
	// Telemetry every second from every receiver dirties state that the
	// flusher writes about once a second: some, but not one per message.
	if tx := num("write_tx_per_s"); tx <= 0 || tx > n {
		t.Errorf("write_tx_per_s %v: want > 0 and fewer than one per receiver", tx)
	}
	if p50, p99, max := num("group_cmd_ms_p50"), num("group_cmd_ms_p99"), num("group_cmd_ms_max"); p50 <= 0 || p50 > p99 || p99 > max {
		t.Errorf("group command p50 %v, p99 %v, max %v: want 0 < p50 ≤ p99 ≤ max", p50, p99, max)
	}
	if last["tls"] != tls {
		t.Errorf("tls %v in the JSON line, want %v", last["tls"], tls)
	}
	if res["devices"] != n {
		t.Errorf("returned figures %v differ from the printed line", res)
	}
	if got := strings.Count(out.String(), "group command round"); got != b.Rounds {
		t.Errorf("%d group command rounds printed, want %d:\n%s", got, b.Rounds, out.String())
	}
}

// TestBenchFleetReceiversChild is the receivers' process of TestBenchFleet
// (the test binary re-executed), not a test of its own.
func TestBenchFleetReceiversChild(t *testing.T) {
	if os.Getenv("LOA_BENCH_FLEET_CHILD") != "1" {
		t.Skip("runs only as TestBenchFleet's child process")
	}
	if err := benchFleetReceivers(context.Background(), os.Stdin, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a bytes.Buffer several goroutines may write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
