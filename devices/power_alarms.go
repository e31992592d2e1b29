package devices

import (
	"fmt"
	"time"

	"github.com/loa-broadcast/loa"
)

// powerChanges raises mains_lost while a receiver reports no mains, and
// low_battery while it runs on a battery at or below loa.LowBatteryPct;
// low_battery clears at loa.LowBatteryClearPct or when mains returns (it
// charges), both when the receiver stops reporting power. a.mu must be held.
func (a *Alarms) powerChanges(id string, p *loa.PowerStats, now time.Time) []change {
	var ch []change
	mk, lk := alarmKey{id, loa.AlarmMainsLost}, alarmKey{id, loa.AlarmLowBattery}
	mains, mainsOn := a.active[mk]
	low, lowOn := a.active[lk]
	if p == nil {
		if mainsOn {
			ch = append(ch, a.clearing(mains, now, "no power report"))
		}
		if lowOn {
			ch = append(ch, a.clearing(low, now, "no power report"))
		}
		return ch
	}
	switch {
	case !p.Mains && !mainsOn:
		ch = append(ch, a.raising(id, loa.AlarmMainsLost, loa.SeverityWarning, float64(p.RuntimeMin), 0, now,
			fmt.Sprintf("on battery: %d %%, about %d min left", p.BatteryPct, p.RuntimeMin)))
	case p.Mains && mainsOn:
		ch = append(ch, a.clearing(mains, now, fmt.Sprintf("mains back, battery %d %%", p.BatteryPct)))
	}
	switch {
	case !p.Mains && !lowOn && p.BatteryPct <= loa.LowBatteryPct:
		ch = append(ch, a.raising(id, loa.AlarmLowBattery, loa.SeverityWarning, float64(p.BatteryPct), loa.LowBatteryPct, now,
			fmt.Sprintf("battery %d %% ≤ %d %% on battery, about %d min left", p.BatteryPct, loa.LowBatteryPct, p.RuntimeMin)))
	case lowOn && p.Mains:
		ch = append(ch, a.clearing(low, now, fmt.Sprintf("mains back, battery %d %%", p.BatteryPct)))
	case lowOn && p.BatteryPct >= loa.LowBatteryClearPct:
		ch = append(ch, a.clearing(low, now, fmt.Sprintf("battery %d %%", p.BatteryPct)))
	}
	return ch
}
