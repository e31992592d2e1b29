package devices

import "context"

// Station alarms are about the controller itself, not a receiver: their
// Device is empty. The evaluator's checks never touch them; their owner
// raises and clears them.

// RaiseStation raises the controller's alarm of kind, or replaces the
// active one (a new value and message, raised now).
func (a *Alarms) RaiseStation(kind, severity string, value, threshold float64, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	var ch []change
	if al, ok := a.active[alarmKey{"", kind}]; ok {
		ch = append(ch, a.clearing(al, now, "superseded"))
	}
	ch = append(ch, a.raising("", kind, severity, value, threshold, now, msg))
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
