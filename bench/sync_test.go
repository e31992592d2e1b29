package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// symmetricMaxMs is the bench's goal for the worst spread with symmetric
// paths.
const symmetricMaxMs = 5

// clickFleet is twenty receivers with different offsets, drifts and
// output delays, on paths whose bases differ up and down by up to ±2 ms.
func clickFleet(t *testing.T) []syncRx {
	t.Helper()
	fleet := syncFleet(20, 7, syncCond{sync: true})
	for i := range fleet {
		fleet[i].path.UpBase += time.Duration((i%5)-2) * time.Millisecond
	}
	return fleet
}

var clickRun = syncRun{warm: 2 * time.Minute, session: time.Minute, delay: protocol.DefaultDelay}

// median is the median of the receivers' errors of mark k, leaving out skip.
func medianErr(res []rxResult, k, skip int) float64 {
	var v []float64
	for i, r := range res {
		if i != skip && !math.IsNaN(r.errs[k]) {
			v = append(v, r.errs[k])
		}
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func TestSyncClicksInStep(t *testing.T) {
	fleet := clickFleet(t)
	res, err := runCondition(context.Background(), fleet, clickRun, syncCond{sync: true})
	if err != nil {
		t.Fatal(err)
	}
	st := spreads(res, 0)
	for k, s := range st.perMark {
		if s > symmetricMaxMs {
			t.Errorf("click %d left the DACs %.3f ms apart, goal %d ms", k, s, symmetricMaxMs)
		}
	}
	for i, r := range res {
		for k, e := range r.errs {
			if math.IsNaN(e) {
				t.Fatalf("receiver %d never played click %d", i, k)
			}
		}
	}
	// The negative control: the same receivers on their raw clocks.
	raw, _ := runCondition(context.Background(), fleet, clickRun, syncCond{})
	if st := spreads(raw, 0); st.p50 < 100 {
		t.Errorf("without sync the clicks are only %.3f ms apart: the model's clocks are too good to prove anything", st.p50)
	}
}

func TestSyncJoinerInStep(t *testing.T) {
	fleet := clickFleet(t)
	const joiner = 3
	fleet[joiner].joinAt = 20 * time.Second // cold, 20 s into the session
	res, err := runCondition(context.Background(), fleet, clickRun, syncCond{sync: true})
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < len(res[joiner].errs); k++ {
		e := res[joiner].errs[k]
		switch {
		case k < 20 && !math.IsNaN(e):
			t.Fatalf("the joiner played click %d, before it joined", k)
		case k < 22: // within 2 s of joining: may not be in step yet
		case math.IsNaN(e):
			t.Fatalf("the joiner never played click %d", k)
		default:
			if d := math.Abs(e-medianErr(res, k, joiner)) * 1e3; d > symmetricMaxMs {
				t.Errorf("click %d, %d s after joining: the joiner is %.3f ms off the others", k, k-20, d)
			}
		}
	}
}

func TestSyncClockStepResyncsOnce(t *testing.T) {
	fleet := clickFleet(t)
	const stepped = 5
	fleet[stepped].stepAt, fleet[stepped].step = 30*time.Second, time.Second
	res, err := runCondition(context.Background(), fleet, clickRun, syncCond{sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := res[stepped].resyncs; n != 1 {
		t.Errorf("a 1 s clock step: %d re-syncs, want 1", n)
	}
	for i, r := range res {
		if i != stepped && r.resyncs != 0 {
			t.Errorf("receiver %d re-synced %d times without a step", i, r.resyncs)
		}
	}
	for k := 33; k < len(res[stepped].errs); k++ {
		if d := math.Abs(res[stepped].errs[k]-medianErr(res, k, stepped)) * 1e3; d > symmetricMaxMs {
			t.Errorf("click %d, after the step: %.3f ms off the others", k, d)
		}
	}
}

func TestBenchSyncReport(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"sync", "-receivers", "20", "-for", "1m"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.Contains(out.String(), "log-normal jitter (median 8 ms, p99 60 ms)") {
		t.Errorf("the output does not state the path model:\n%s", out.String())
	}
	var fig map[string]float64
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &fig); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	for _, k := range []string{"receivers", "spread_ms_p95_nosync", "spread_ms_p95_symmetric", "spread_ms_max_symmetric",
		"spread_ms_p95_asymmetric", "asymmetry_injected_ms", "spread_ms_p95_gnss", "drift_growth_ms", "corrections_per_min"} {
		if _, ok := fig[k]; !ok {
			t.Errorf("the figures lack %s: %s", k, lines[len(lines)-1])
		}
	}
	if fig["spread_ms_p95_nosync"] < 100 || fig["spread_ms_p95_gnss"] > 0.3 || fig["asymmetry_injected_ms"] != 30 {
		t.Errorf("figures out of their range: %v", fig)
	}
	for _, bad := range [][]string{{"sync", "-receivers", "1"}, {"sync", "-for", "5s"}} {
		if err := Run(context.Background(), bad, &out, &out); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
