package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBenchFailoverSmoke runs "loa bench failover" once with a few
// receivers (seed 2: the leader is killed, the quicker kind): the cluster
// comes up, the leader is taken down and comes back as a follower, and the
// JSON line has every figure. It asserts no goal: the figures are the
// benchmark's finding (daemon's TestClusterFailover checks correctness).
func TestBenchFailoverSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs three controller processes")
	}
	t.Setenv(asLoa, "1") // for the nodes; this process is past TestMain
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	err := run(ctx, []string{"bench", "failover", "-failovers", "1", "-receivers", "5", "-programme", "20s", "-seed", "2"}, &out, &errs, os.Getenv)
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
	for _, k := range []string{"failovers", "gap_ms_p99", "gap_ms_p99_frozen", "receivers", "receivers_continued",
		"schedules_due_during_failover", "double_plays", "missed", "leader_ms_p99", "leader_ms_p99_frozen", "keepalive_ms"} {
		if _, ok := res[k].(float64); !ok {
			t.Errorf("the JSON line lacks the number %q: %s", k, last)
		}
	}
	if n, _ := res["failovers_killed"].(float64); n != 1 {
		t.Errorf("failovers_killed = %v, want the one failover a kill (seed 2)", res["failovers_killed"])
	}
	if n, _ := res["leader_ms_p99"].(float64); n <= 0 {
		t.Errorf("leader_ms_p99 = %v: no new leader measured", res["leader_ms_p99"])
	}
}
