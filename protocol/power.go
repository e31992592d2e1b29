package protocol

import "fmt"

// PowerReport (contract v2, tele.power) is a receiver's power supply: on
// mains or on its battery, the battery's charge, and how long the battery
// would keep it playing at its present load. A receiver without a battery
// sends none.
type PowerReport struct {
	Mains      bool `json:"mains"`       // mains power present
	BatteryPct int  `json:"battery_pct"` // battery charge, 0–100 %
	// RuntimeMin is the estimated minutes the battery lasts at the
	// receiver's present load (amplifier, playing), whether or not it is on
	// mains now: what it has left if mains fails or has failed.
	RuntimeMin int `json:"runtime_min"`
}

// MaxRuntimeMin bounds a reported runtime (a week): a larger one is a
// broken estimate, not a battery.
const MaxRuntimeMin = 7 * 24 * 60

// check names the first field of p out of its range.
func (p *PowerReport) check() error {
	switch {
	case p.BatteryPct < 0 || p.BatteryPct > 100:
		return fmt.Errorf("tele: power.battery_pct %d outside 0..100", p.BatteryPct)
	case p.RuntimeMin < 0 || p.RuntimeMin > MaxRuntimeMin:
		return fmt.Errorf("tele: power.runtime_min %d outside 0..%d", p.RuntimeMin, MaxRuntimeMin)
	}
	return nil
}
