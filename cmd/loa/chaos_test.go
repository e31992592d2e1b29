package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// asLoa makes this test binary act as the loa command (main), so "loa bench
// chaos" can run it as its controller child, "loa serve", as it runs itself.
const asLoa = "LOA_TEST_BINARY_AS_LOA"

func TestMain(m *testing.M) {
	if os.Getenv(asLoa) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBenchChaosSmoke runs "loa bench chaos" briefly with a few receivers:
// every kind of fault is injected and the JSON line has every figure. It
// asserts nothing about harm: that is the benchmark's finding, not a
// property a short run can promise.
func TestBenchChaosSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs Mosquitto and the controller as processes")
	}
	if _, err := exec.LookPath("mosquitto"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mosquitto is not installed (make test installs it)")
		}
		t.Skip("mosquitto is not installed (make test installs it)")
	}
	t.Setenv(asLoa, "1") // for the controller child; this process is past TestMain
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	err := run(ctx, []string{"bench", "chaos", "-for", "20s", "-receivers", "6", "-seed", "7"}, &out, &errs, os.Getenv)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errs.String())
	}
	t.Logf("stdout:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	var res map[string]any
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		t.Fatalf("the last line is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"faults", "controller_kills", "broker_kills", "clock_steps", "receiver_reboots", "loss_bursts",
		"alerts", "alerts_fully_delivered", "double_plays", "early_starts", "log_mismatches", "records_lost", "duration_s"} {
		if _, ok := res[k].(float64); !ok {
			t.Errorf("the JSON line lacks the number %q: %s", k, last)
		}
	}
	for _, k := range []string{"controller_kills", "broker_kills", "receiver_reboots", "loss_bursts"} {
		if n, _ := res[k].(float64); n < 1 {
			t.Errorf("%s = %v: want every kind of fault injected at least once", k, res[k])
		}
	}
	if n, _ := res["clock_steps"].(float64); n < 2 {
		t.Errorf("clock_steps = %v, want a step back and one forward", res["clock_steps"])
	}
	if n, _ := res["faults_failed"].(float64); n != 0 {
		t.Errorf("%v faults could not be injected:\n%s", n, out.String())
	}
	if n, _ := res["alerts"].(float64); n < 1 {
		t.Errorf("alerts = %v, want the workload's alert sent", res["alerts"])
	}
}
