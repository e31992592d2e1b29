package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/protocol"
)

// The sync bench runs receivers' real sync filter and play-out
// (firmwaresim.SyncFilter, firmwaresim.Playout) on their modelled clocks
// (firmwaresim.Clock, firmwaresim.Path) in simulated time, one discrete-event
// loop per receiver (they do not interact: the controller answers each time
// exchange at once), and measures from ground truth the instant each marked
// sample leaves every virtual DAC.

// syncCond is one condition of the bench.
type syncCond struct {
	name string
	sync bool          // false: the receivers' raw clocks (the negative control)
	asym time.Duration // uplink base slower than the downlink by this on half the receivers
	gnss bool          // a GNSS-like reference instead of the time exchange
}

// syncRx is one modelled receiver.
type syncRx struct {
	clock    firmwaresim.ClockSpec
	path     firmwaresim.PathSpec
	outDelay time.Duration // its output delay, known exactly
	// joinAt > 0: the receiver boots and joins the session this long after
	// its start, with a cold filter.
	joinAt time.Duration
	// stepAt > 0: its system clock steps by step this long after the
	// session's start.
	stepAt, step time.Duration
}

// syncRun is the timing of one condition.
type syncRun struct {
	warm    time.Duration // time exchanges before the session (an earlier session's)
	session time.Duration // the session, marks once a second of it
	delay   time.Duration // play.delay_ms
}

// rxResult is one receiver's ground truth: errs[k] is how far after its
// ideal instant (t0 + D + k s) mark k left the DAC (NaN: never).
type rxResult struct {
	errs        []float64
	corrPerMin  float64
	resyncs     int
	corrections int
}

// syncEpoch is an arbitrary start of true time for the model.
var syncEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// turnaround is the controller's time between a request and its answer.
const turnaround = 200 * time.Microsecond

// dacFrame is how many samples the DAC asks for at a time.
const dacFrame = protocol.FrameSamples

// simulate runs one receiver through run under cond.
func (rx syncRx) simulate(run syncRun, cond syncCond) rxResult {
	var now time.Time // the event loop's true time
	now = syncEpoch
	clock := firmwaresim.NewClock(rx.clock, func() time.Time { return now })
	path := firmwaresim.NewPath(rx.path)
	source := protocol.SyncRTCPXR
	if cond.gnss {
		source = protocol.SyncGNSS
	}
	filter := firmwaresim.NewSyncFilter(source)
	t0 := syncEpoch.Add(run.warm)                 // the session's epoch: UTC of ts0 (the controller's clock is true time)
	origin := t0.Add(run.delay).Add(-rx.outDelay) // sample 0 handed to the DAC
	cfg := firmwaresim.PlayoutConfig{}
	if cond.gnss {
		cfg.Threshold = firmwaresim.GNSSCorrectFrom
	}
	play := firmwaresim.NewPlayout(origin, cfg)
	end := t0.Add(run.session)
	marks := int(run.session / time.Second)
	res := rxResult{errs: make([]float64, marks)}
	for i := range res.errs {
		res.errs[i] = math.NaN()
	}

	boot := syncEpoch.Add(rx.joinAt)
	if rx.joinAt > 0 {
		boot = t0.Add(rx.joinAt)
	}
	rng := rand.New(rand.NewSource(rx.path.Seed ^ 0x51ac))
	nextEx := boot.Add(time.Duration(rng.Int63n(int64(time.Second))))
	// The DAC starts when the play command arrives, a little after t0.
	nextFrame := boot.Add(time.Duration(rng.Int63n(int64(50 * time.Millisecond))))
	if nextFrame.Before(t0) {
		nextFrame = t0.Add(time.Duration(rng.Int63n(int64(50 * time.Millisecond))))
	}
	type answer struct {
		at    time.Time
		t1    time.Time
		srNTP uint64
		dlrr  uint32
	}
	var pending []answer
	// The stream's packets (of the earlier session, then this one), every
	// 20 ms on the controller's clock, each a reading of the down leg.
	media := cond.sync && !cond.gnss
	nextPkt := boot
	var inFlight []time.Time // send instants of packets under way, by arrival
	var arrivals []time.Time
	stepAt := time.Time{}
	if rx.stepAt > 0 {
		stepAt = t0.Add(rx.stepAt)
	}
	for {
		// The earliest event: an answer arriving, an exchange to start, a
		// DAC frame, or the clock step.
		next, kind := nextFrame, 0
		if nextEx.Before(next) {
			next, kind = nextEx, 1
		}
		for i, a := range pending {
			if a.at.Before(next) {
				next, kind = a.at, 2+i
			}
		}
		if !stepAt.IsZero() && stepAt.Before(next) {
			next, kind = stepAt, -1
		}
		if media && nextPkt.Before(next) {
			next, kind = nextPkt, -2
		}
		for i, a := range arrivals {
			if a.Before(next) {
				next, kind = a, -3-i
			}
		}
		if next.After(end) {
			break
		}
		now = next
		switch {
		case kind == -1:
			clock.Step(rx.step)
			stepAt = time.Time{}
		case kind == -2:
			inFlight = append(inFlight, now)
			arrivals = append(arrivals, now.Add(path.Down()))
			nextPkt = now.Add(protocol.FrameDuration)
		case kind <= -3:
			i := -3 - kind
			filter.AddMedia(clock.SystemAt(now), inFlight[i])
			inFlight = slices.Delete(inFlight, i, i+1)
			arrivals = slices.Delete(arrivals, i, i+1)
		case kind == 1:
			nextEx = now.Add(protocol.TimeExchangeInterval + time.Duration(rng.Int63n(int64(time.Millisecond))))
			switch {
			case !cond.sync:
			case cond.gnss:
				if ref, ok := clock.GNSSAt(now); ok {
					filter.AddReference(clock.SystemAt(now), ref, rx.clock.GNSSError)
				}
			default:
				// RRTR out; the controller answers at once with SR + DLRR.
				t1 := clock.SystemAt(now)
				t2 := now.Add(path.Up())
				t3 := t2.Add(turnaround)
				pending = append(pending, answer{at: t3.Add(path.Down()), t1: t1, srNTP: firmwaresim.NTPTimestamp(t3),
					dlrr: uint32(turnaround * 65536 / time.Second)})
			}
		case kind >= 2:
			a := pending[kind-2]
			pending = slices.Delete(pending, kind-2, kind-1)
			filter.AddExchange(firmwaresim.ExchangeFromDLRR(a.t1, a.srNTP, a.dlrr, clock.SystemAt(now)))
		default:
			rate := protocol.ClockRate * clock.DACRate(now)
			nextFrame = now.Add(time.Duration(float64(dacFrame) / rate * 1e9))
			local := clock.SystemAt(now)
			disc, gen := local, uint64(0)
			if cond.sync {
				var ok bool
				if disc, ok = filter.Controller(local); !ok {
					continue // not in step yet: the DAC stays silent
				}
				gen = filter.Gen()
			}
			start := play.Frame(disc, gen, dacFrame)
			// Marks in this frame: samples k·48000.
			for k := max(0, (start+protocol.ClockRate-1)/protocol.ClockRate); k*protocol.ClockRate < start+dacFrame && int(k) < marks; k++ {
				if !math.IsNaN(res.errs[k]) {
					continue
				}
				at := now.Add(rx.outDelay).Add(time.Duration(float64(k*protocol.ClockRate-start) / rate * 1e9))
				ideal := t0.Add(run.delay).Add(time.Duration(k) * time.Second)
				res.errs[k] = at.Sub(ideal).Seconds()
			}
		}
	}
	res.corrPerMin = float64(play.CorrectionsPerMin())
	res.corrections = play.Corrections
	res.resyncs = play.Resyncs + filter.Steps()
	return res
}

// syncFleet draws n receivers: offsets up to ±2 s, drifts ±50 ppm wandering,
// DACs ±50 ppm of their own, downlink bases 15–40 ms, output delays of three
// models; under asym, every other receiver's uplink base is asym slower.
func syncFleet(n int, seed int64, cond syncCond) []syncRx {
	rng := rand.New(rand.NewSource(seed))
	u := func(a float64) float64 { return (2*rng.Float64() - 1) * a }
	models := []time.Duration{5 * time.Millisecond, 12 * time.Millisecond, 25 * time.Millisecond}
	out := make([]syncRx, n)
	for i := range out {
		down := 15*time.Millisecond + time.Duration(rng.Int63n(int64(25*time.Millisecond)))
		up := down
		if i%2 == 1 {
			up += cond.asym
		}
		out[i] = syncRx{
			clock: firmwaresim.ClockSpec{Offset: time.Duration(u(2e9)), DriftPPM: u(50), WanderPPM: 0.02,
				DACPPM: u(50), DACWanderPPM: 0.02, GNSS: cond.gnss, Seed: rng.Int63()},
			path: firmwaresim.PathSpec{UpBase: up, DownBase: down, JitterMedian: 8 * time.Millisecond,
				JitterP99: 60 * time.Millisecond, Seed: rng.Int63()},
			outDelay: models[i%len(models)],
		}
	}
	return out
}

// spreadStats are the spreads between receivers over the marks.
type spreadStats struct {
	p50, p95, max float64 // ms
	growth        float64 // ms: median spread of the last quarter of marks minus the first's
	perMark       []float64
}

// spreads computes, for each mark, max − min over receivers of the instant
// it left their DACs; a receiver that never played a mark is left out of it.
func spreads(results []rxResult, from int) spreadStats {
	var per []float64
	for k := from; k < len(results[0].errs); k++ {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, r := range results {
			if e := r.errs[k]; !math.IsNaN(e) {
				lo, hi = min(lo, e), max(hi, e)
			}
		}
		if hi >= lo {
			per = append(per, (hi-lo)*1e3)
		}
	}
	st := spreadStats{perMark: per}
	if len(per) == 0 {
		return st
	}
	sorted := slices.Clone(per)
	slices.Sort(sorted)
	q := func(p float64) float64 { return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))] }
	st.p50, st.p95, st.max = q(0.5), q(0.95), sorted[len(sorted)-1]
	if n := len(per) / 4; n > 0 {
		first, last := slices.Clone(per[:n]), slices.Clone(per[len(per)-n:])
		slices.Sort(first)
		slices.Sort(last)
		st.growth = last[n/2] - first[n/2]
	}
	return st
}

// runCondition simulates every receiver of fleet, on all cores.
func runCondition(ctx context.Context, fleet []syncRx, run syncRun, cond syncCond) ([]rxResult, error) {
	out := make([]rxResult, len(fleet))
	work := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out[i] = fleet[i].simulate(run, cond)
			}
		}()
	}
	var err error
feed:
	for i := range fleet {
		select {
		case work <- i:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	return out, err
}

// benchSync is `loa bench sync`.
func benchSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loa bench sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("receivers", 500, "simulated receivers")
	dur := fs.Duration("for", 10*time.Minute, "simulated time of the whole run, which the four conditions share side by side")
	seed := fs.Int64("seed", 1, "random seed of the fleet and paths")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 2 || *n > 100000 {
		return fmt.Errorf("-receivers: %d is not within 2..100000", *n)
	}
	if *dur < 20*time.Second {
		return fmt.Errorf("-for: %v is under 20 s", *dur)
	}
	// The conditions are independent fleets in one simulated run: the
	// first fifth of it is time exchanges alone (an earlier session), then
	// the session plays, a mark every second.
	run := syncRun{warm: *dur / 5, session: *dur - *dur/5, delay: protocol.DefaultDelay}
	fmt.Fprintf(stdout, "sync: %d receivers per condition, %v of simulated time: %v of time exchanges, then a %v session with a mark every second\n",
		*n, *dur, run.warm, run.session)
	fmt.Fprintf(stdout, "path model: each leg's delay = base + log-normal jitter (median 8 ms, p99 60 ms), drawn independently up and down; downlink base 15–40 ms; one time exchange per receiver per second\n")
	fmt.Fprintf(stdout, "clocks: offset ±2 s, drift ±50 ppm (random walk 0.02 ppm/√s), DAC ±50 ppm of its own; output delays 5/12/25 ms; GNSS-like reference within 10 µs\n")
	const asym = 30 * time.Millisecond
	conds := []syncCond{
		{name: "no sync (raw clocks)"},
		{name: "symmetric", sync: true},
		{name: fmt.Sprintf("asymmetric (uplink +%v on half)", asym), sync: true, asym: asym},
		{name: "asymmetric with GNSS-like clocks", sync: true, asym: asym, gnss: true},
	}
	var st [4]spreadStats
	var corr float64
	begun := time.Now()
	for i, c := range conds {
		fleet := syncFleet(*n, *seed+int64(i), c)
		res, err := runCondition(ctx, fleet, run, c)
		if err != nil {
			return err
		}
		st[i] = spreads(res, 0)
		resyncs := 0
		var cpm float64
		for _, r := range res {
			resyncs += r.resyncs
			cpm += r.corrPerMin
		}
		cpm /= float64(len(res))
		if i == 1 {
			corr = cpm
		}
		fmt.Fprintf(stdout, "(%d) %-36s spread p50 %8.3f ms  p95 %8.3f ms  max %8.3f ms  growth %+.3f ms  corrections %.0f/min  re-syncs %d\n",
			i, c.name, st[i].p50, st[i].p95, st[i].max, st[i].growth, cpm, resyncs)
	}
	fmt.Fprintf(stdout, "goals: symmetric p95 ≤ 2 ms, max ≤ 5 ms; asymmetric p95 ≤ %v/2 + 2 ms; GNSS-like p95 ≤ 0.3 ms; growth ≤ 0.5 ms (ran in %v)\n",
		asym, time.Since(begun).Round(time.Millisecond))
	round := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	printJSONLine(stdout, map[string]any{
		"receivers":                *n,
		"spread_ms_p95_nosync":     round(st[0].p95),
		"spread_ms_p95_symmetric":  round(st[1].p95),
		"spread_ms_max_symmetric":  round(st[1].max),
		"spread_ms_p95_asymmetric": round(st[2].p95),
		"asymmetry_injected_ms":    asym.Milliseconds(),
		"spread_ms_p95_gnss":       round(st[3].p95),
		"drift_growth_ms":          round(st[1].growth),
		"corrections_per_min":      round(corr),
	})
	return nil
}
