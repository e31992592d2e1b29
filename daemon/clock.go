package daemon

import (
	"fmt"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/scheduler"
)

// ClockStepClear is how long after the last wall-clock step its alarm
// clears by itself: alarms have no acknowledgement, and by then the
// schedules have fired on the new clock.
const ClockStepClear = time.Hour

// SetClockOffset steps the scheduler's wall clock to the host's plus d
// (the -clock-offset hook, for tests and `loa bench chaos`).
func (m *Main) SetClockOffset(d time.Duration) {
	if m.Clock != nil {
		m.Clock.SetOffset(d)
	}
	if m.Scheduler != nil {
		m.Scheduler.Reload() // wakes the loop, so it sees the step at once
	}
}

// clockStepAlarm raises the clock_step station alarm for each step the
// scheduler sees, and clears it ClockStepClear after the last one.
func (m *Main) clockStepAlarm() func(scheduler.Step) {
	alarms := m.Alarms // Close nils the field while the scheduler may still run
	var mu sync.Mutex
	var clear *time.Timer
	return func(st scheduler.Step) {
		if alarms == nil {
			return
		}
		dir := "forward"
		if st.Delta < 0 {
			dir = "back"
		}
		alarms.RaiseStation(loa.AlarmClockStep, loa.SeverityWarning, st.Delta.Seconds(), scheduler.DefaultStepThreshold.Seconds(),
			fmt.Sprintf("the wall clock stepped %s by %v at %v; schedules were re-anchored (back) or played late or logged missed (forward)",
				dir, st.Delta.Round(time.Millisecond), st.Now.Format(time.RFC3339)))
		mu.Lock()
		defer mu.Unlock()
		if clear != nil {
			clear.Stop()
		}
		clear = time.AfterFunc(ClockStepClear, func() {
			alarms.ClearStation(loa.AlarmClockStep, fmt.Sprintf("no step for %v", ClockStepClear))
		})
	}
}
