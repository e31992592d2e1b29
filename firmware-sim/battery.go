package firmwaresim

import (
	"math"
	"sync"
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// BatterySpec models a receiver's backup battery (contract v2,
// tele.power). The zero value is a typical box: two days idle, 16 hours
// with the amplifier on, 6 hours playing, 8 hours to charge from empty.
type BatterySpec struct {
	None bool // no battery: telemetry carries no power
	// How long a full battery lasts at each load: amplifier off, amplifier
	// on and idle, amplifier on and playing.
	IdleRuntime, AmpRuntime, PlayRuntime time.Duration
	ChargeTime                           time.Duration // empty to full on mains
	StartPct                             float64       // charge at start, 0 (the zero value): full
}

func (s BatterySpec) withDefaults() BatterySpec {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.IdleRuntime, 48*time.Hour)
	def(&s.AmpRuntime, 16*time.Hour)
	def(&s.PlayRuntime, 6*time.Hour)
	def(&s.ChargeTime, 8*time.Hour)
	if s.StartPct <= 0 || s.StartPct > 100 {
		s.StartPct = 100
	}
	return s
}

// Load is what draws on the battery.
type Load int

// Loads, lightest first.
const (
	LoadIdle Load = iota // amplifier off (or faulty): the board and modem
	LoadAmp              // amplifier on, nothing playing
	LoadPlay             // playing through the amplifier
)

// Battery integrates a battery's charge over time: it drains at the load
// held since the last step (faster with the amplifier on, fastest
// playing) while mains is off, and charges while it is on. Time is
// passed in, so a test can drive it without waiting.
type Battery struct {
	spec BatterySpec

	mu    sync.Mutex
	pct   float64
	mains bool
	load  Load
	at    time.Time // of the last step
}

// NewBattery returns a battery of spec on mains at now.
func NewBattery(spec BatterySpec, now time.Time) *Battery {
	spec = spec.withDefaults()
	return &Battery{spec: spec, pct: spec.StartPct, mains: true, at: now}
}

// runtime is how long a full battery lasts at load l.
func (b *Battery) runtime(l Load) time.Duration {
	switch l {
	case LoadPlay:
		return b.spec.PlayRuntime
	case LoadAmp:
		return b.spec.AmpRuntime
	}
	return b.spec.IdleRuntime
}

// step advances the charge to now at the load held since the last step,
// then holds l. b.mu must be held.
func (b *Battery) step(now time.Time, l Load) {
	if d := now.Sub(b.at); d > 0 {
		if b.mains {
			b.pct = min(100, b.pct+100*float64(d)/float64(b.spec.ChargeTime))
		} else {
			b.pct = max(0, b.pct-100*float64(d)/float64(b.runtime(b.load)))
		}
		b.at = now
	}
	b.load = l
}

// SetMains switches mains on or off at now; l is the load from now on.
func (b *Battery) SetMains(now time.Time, on bool, l Load) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.step(now, l)
	b.mains = on
}

// Report steps the battery to now (l is the load from now on) and returns
// its tele.power: the charge, and the minutes it lasts at load l.
func (b *Battery) Report(now time.Time, l Load) protocol.PowerReport {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.step(now, l)
	left := time.Duration(b.pct / 100 * float64(b.runtime(l)))
	return protocol.PowerReport{
		Mains:      b.mains,
		BatteryPct: int(math.Round(b.pct)),
		RuntimeMin: min(int(left/time.Minute), protocol.MaxRuntimeMin),
	}
}

// SetMains cuts (false) or restores (true) the receiver's mains power, as a
// power cut does: it runs on its battery meanwhile, and reports the change
// in a telemetry at once (CONTRACT.md, Power telemetry). It must not be
// called after Close or Kill. A receiver without a battery
// (Config.Battery.None) ignores it. The battery never shuts the simulated
// receiver down: at 0 % it reports 0 and plays on (a test that wants a
// dead box Kills it).
func (r *Receiver) SetMains(on bool) {
	if r.battery == nil {
		return
	}
	r.battery.SetMains(time.Now(), on, r.load())
	if r.ended.Load() {
		return
	}
	if c := r.mqttClient(); c != nil && c.IsConnectionOpen() {
		r.send(protocol.KindTele, r.Telemetry())
	}
}

// Power returns the receiver's power report now; false without a battery.
func (r *Receiver) Power() (protocol.PowerReport, bool) {
	if r.battery == nil {
		return protocol.PowerReport{}, false
	}
	return r.battery.Report(time.Now(), r.load()), true
}

// load is what draws on the battery now.
func (r *Receiver) load() Load {
	r.mu.Lock()
	amp, playing := r.amp, r.current != nil
	r.mu.Unlock()
	switch {
	case !amp || r.ampFaulty():
		return LoadIdle
	case playing:
		return LoadPlay
	}
	return LoadAmp
}
