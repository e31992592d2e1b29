package firmwaresim

import (
	"math"
	"math/rand"
	"sync"
	"time"
)

// TrueTime is the source of true time the clock model runs on: time.Now in
// the simulator, the event clock of a discrete-event run in the sync bench.
type TrueTime func() time.Time

// ClockSpec describes a receiver's imperfect clocks. The zero value is a
// perfect clock.
type ClockSpec struct {
	// Offset is the system clock's error at start (a real board boots with
	// its RTC's guess: up to ±2 s).
	Offset time.Duration
	// DriftPPM is the system clock's rate error; WanderPPM the standard
	// deviation of its random walk per √s (crystals age and warm up).
	DriftPPM, WanderPPM float64
	// DACPPM is the audio output clock's own rate error, independent of the
	// system clock's; DACWanderPPM its random walk per √s.
	DACPPM, DACWanderPPM float64
	// GNSS gives the board a GNSS-disciplined reference whose error stays
	// within GNSSError (10 µs when 0): the receiver syncs to it instead of
	// the controller.
	GNSS      bool
	GNSSError time.Duration
	Seed      int64
}

// maxClockPPM bounds the wandering rates: a crystal stays within spec.
const maxClockPPM = 60

// Clock is a receiver's system clock and DAC rate, driven by true time.
// Readings must be asked for in non-decreasing true time to advance the
// random walks; an earlier instant is extrapolated without advancing them.
type Clock struct {
	mu    sync.Mutex
	spec  ClockSpec
	now   TrueTime
	rng   *rand.Rand
	last  time.Time // true time of the state below
	off   float64   // system − true at last, seconds
	drift float64   // system clock rate error, s/s
	dac   float64   // DAC rate error, s/s
	gnss  float64   // GNSS reference error at last, seconds
	walk  float64   // true seconds since the walks last stepped
}

// NewClock returns the clock of spec, starting now on the true-time source.
func NewClock(spec ClockSpec, now TrueTime) *Clock {
	if now == nil {
		now = time.Now
	}
	if spec.GNSS && spec.GNSSError <= 0 {
		spec.GNSSError = 10 * time.Microsecond
	}
	return &Clock{spec: spec, now: now, rng: rand.New(rand.NewSource(spec.Seed)), last: now(),
		off: spec.Offset.Seconds(), drift: spec.DriftPPM * 1e-6, dac: spec.DACPPM * 1e-6}
}

// advance moves the model to true instant t. c.mu is held.
func (c *Clock) advance(t time.Time) {
	dt := t.Sub(c.last).Seconds()
	if dt <= 0 {
		return
	}
	c.off += c.drift * dt
	c.last = t
	c.walk += dt
	if c.walk < 1 { // the walks step once a second
		return
	}
	s := math.Sqrt(c.walk)
	c.walk = 0
	clamp := func(v float64) float64 { return math.Max(-maxClockPPM*1e-6, math.Min(maxClockPPM*1e-6, v)) }
	c.drift = clamp(c.drift + c.rng.NormFloat64()*c.spec.WanderPPM*1e-6*s)
	c.dac = clamp(c.dac + c.rng.NormFloat64()*c.spec.DACWanderPPM*1e-6*s)
	if c.spec.GNSS {
		// A slowly wandering error within the bound.
		lim := c.spec.GNSSError.Seconds()
		c.gnss = math.Max(-lim, math.Min(lim, c.gnss+c.rng.NormFloat64()*lim/4))
	}
}

// SystemAt is the system clock's reading at true instant t.
func (c *Clock) SystemAt(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(t)
	off := c.off + c.drift*t.Sub(c.last).Seconds()
	return t.Add(seconds(off))
}

// Now is the system clock's reading now.
func (c *Clock) Now() time.Time { return c.SystemAt(c.now()) }

// True is the true time now.
func (c *Clock) True() time.Time { return c.now() }

// GNSSAt is the GNSS reference's reading at true instant t (the true time
// within GNSSError); ok is false without GNSS.
func (c *Clock) GNSSAt(t time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.spec.GNSS {
		return time.Time{}, false
	}
	c.advance(t)
	return t.Add(seconds(c.gnss)), true
}

// DACRate is the DAC's sample rate relative to nominal at true instant t
// (1 + its rate error).
func (c *Clock) DACRate(t time.Time) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(t)
	return 1 + c.dac
}

// Step steps the system clock by d at once (an RTC resync, an operator).
func (c *Clock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(c.now())
	c.off += d.Seconds()
}

// Error is the system clock's error (system − true) at true instant t.
func (c *Clock) Error(t time.Time) time.Duration { return c.SystemAt(t).Sub(t) }

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

// PathSpec is the network path model of one receiver: each leg's delay is
// its base plus log-normal jitter (median JitterMedian, 99th percentile
// JitterP99), drawn independently up and down.
type PathSpec struct {
	UpBase, DownBase        time.Duration
	JitterMedian, JitterP99 time.Duration
	Seed                    int64
}

// Path draws the delays of a PathSpec.
type Path struct {
	spec      PathSpec
	mu, sigma float64
	rng       *rand.Rand
}

// NewPath returns the path of spec.
func NewPath(spec PathSpec) *Path {
	p := &Path{spec: spec, rng: rand.New(rand.NewSource(spec.Seed))}
	if spec.JitterMedian > 0 {
		p.mu = math.Log(spec.JitterMedian.Seconds())
		if spec.JitterP99 > spec.JitterMedian {
			p.sigma = math.Log(float64(spec.JitterP99)/float64(spec.JitterMedian)) / 2.3263478740408408 // z of 0.99
		}
	}
	return p
}

func (p *Path) jitter() time.Duration {
	if p.spec.JitterMedian <= 0 {
		return 0
	}
	return seconds(math.Exp(p.mu + p.sigma*p.rng.NormFloat64()))
}

// Up is the delay of a packet from the receiver to the controller.
func (p *Path) Up() time.Duration { return p.spec.UpBase + p.jitter() }

// Down is the delay of a packet from the controller to the receiver.
func (p *Path) Down() time.Duration { return p.spec.DownBase + p.jitter() }
