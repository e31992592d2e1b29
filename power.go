package loa

// PowerStats is a receiver's power supply as it reports it (contract v2,
// tele.power): receivers with a battery.
type PowerStats struct {
	Mains      bool `json:"mains"`       // on mains; false: on its battery
	BatteryPct int  `json:"battery_pct"` // battery charge, 0–100 %
	RuntimeMin int  `json:"runtime_min"` // estimated minutes the battery lasts at its present load
}

// Power alarms: a receiver running on its battery, and one whose battery
// is nearly empty while it does.
const (
	AlarmMainsLost  = "mains_lost"  // the receiver reports no mains power
	AlarmLowBattery = "low_battery" // on its battery at or below LowBatteryPct
)

// The low_battery alarm is raised on battery at or below LowBatteryPct and
// cleared at LowBatteryClearPct or as soon as mains returns (it charges).
const (
	LowBatteryPct      = 20
	LowBatteryClearPct = 30
)

// PowerPreview is what the alert desk shows before sending: how many of
// the targets are online, how many of those run on their battery, and the
// least runtime among them.
type PowerPreview struct {
	Receivers int `json:"receivers"`  // targeted receivers
	Online    int `json:"online"`     // of them, online now
	OnBattery int `json:"on_battery"` // of the online, reporting no mains
	// MinRuntimeMin is the least estimated runtime of those on battery;
	// absent when none is.
	MinRuntimeMin *int `json:"min_runtime_min,omitempty"`
}

// PreviewPower sums the power of the targeted receivers' states (ok false:
// no state known, counted as offline).
func PreviewPower(ids []string, state func(id string) (DeviceState, bool)) PowerPreview {
	p := PowerPreview{Receivers: len(ids)}
	for _, id := range ids {
		st, ok := state(id)
		if !ok || !st.Online {
			continue
		}
		p.Online++
		if st.Telemetry == nil || st.Telemetry.Power == nil || st.Telemetry.Power.Mains {
			continue
		}
		p.OnBattery++
		if rt := st.Telemetry.Power.RuntimeMin; p.MinRuntimeMin == nil || rt < *p.MinRuntimeMin {
			p.MinRuntimeMin = &rt
		}
	}
	return p
}
