package devices

import (
	"context"

	"github.com/loa-broadcast/loa"
)

// Station alarms are about the controller itself, not a receiver: their
// Device is empty. The evaluator's checks never touch them; their owner
// raises and clears them.

// RaiseStation raises the controller's alarm of kind, or replaces the
// active one (a new value and message, raised now).
func (a *Alarms) RaiseStation(kind, severity string, value, threshold float64, msg string) {
	a.RaiseStationIn("", kind, severity, value, threshold, msg)
}

// RaiseStationIn is RaiseStation for a condition of area's (a bulletin's
// communes): those scoped to it see the alarm and their notification
// rules match it; "" is the whole station's.
func (a *Alarms) RaiseStationIn(area, kind, severity string, value, threshold float64, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	var ch []change
	if al, ok := a.active[alarmKey{"", kind}]; ok {
		ch = append(ch, a.clearing(al, now, "superseded"))
	}
	raise := a.raising("", kind, severity, value, threshold, now, msg)
	raise.alarm.Area = area
	ch = append(ch, raise)
	a.apply(context.Background(), ch)
}

// ClearStation clears the controller's active alarm of kind, if any.
func (a *Alarms) ClearStation(kind, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if al, ok := a.active[alarmKey{"", kind}]; ok {
		a.applyOne(a.clearing(al, a.now(), why))
	}
}

// Station raises (active) or clears the controller's alarm of kind, for a
// condition that holds until it does not (disk space): raising an active
// one or clearing an inactive one does nothing, unlike RaiseStation.
func (a *Alarms) Station(kind string, active bool, severity string, value, threshold float64, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al, raised := a.active[alarmKey{"", kind}]
	switch {
	case active && !raised:
		a.applyOne(a.raising("", kind, severity, value, threshold, a.now(), msg))
	case !active && raised:
		a.applyOne(a.clearing(al, a.now(), msg))
	}
}

// AmendStation describes the active station alarm of kind anew (a new
// value and message) keeping its id, raise time and acknowledgement: the
// same condition, smaller or restated after a restart, is no new alarm to
// notify or acknowledge again. Watchers get an "updated" change; the
// webhook and notifications do not. With none active it raises one.
func (a *Alarms) AmendStation(area, kind, severity string, value, threshold float64, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al, ok := a.active[alarmKey{"", kind}]
	if !ok {
		raise := a.raising("", kind, severity, value, threshold, a.now(), msg)
		raise.alarm.Area = area
		a.applyOne(raise)
		return
	}
	if al.Msg == msg && al.Value == value && al.Severity == severity && al.Area == area {
		return
	}
	al.Area, al.Severity, al.Value, al.Threshold, al.Msg = area, severity, value, threshold, msg
	a.applyOne(change{loa.AlarmUpdated, al})
}

// ActiveStation returns the active station alarm of kind, if any.
func (a *Alarms) ActiveStation(kind string) (loa.Alarm, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al, ok := a.active[alarmKey{"", kind}]
	return al, ok
}
