package daemon

import (
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
)

// The -clock-offset hook steps the scheduler's wall clock at run time: the
// scheduler sees the step and the clock_step station alarm is raised,
// through the API (its kind in the spec's enum).
func TestSystemClockStepAlarm(t *testing.T) {
	s := startSystem(t, systemOpts{configure: func(c *Config) { c.ClockOffset = time.Hour }})
	if got := s.m.Clock.Now().Sub(time.Now()); got < 59*time.Minute {
		t.Fatalf("-clock-offset 1h: the scheduler's clock is %v from the host's", got)
	}
	if a := s.alarms("?kind=clock_step"); len(a) != 0 {
		t.Fatalf("a configured offset is no step, but alarms %+v", a)
	}
	s.m.SetClockOffset(-3 * time.Hour) // back 4 h
	var got []loa.Alarm
	loatest.Eventually(t, 10*time.Second, func() bool {
		got = s.alarms("?kind=clock_step&active=true")
		return len(got) == 1
	}, "no clock_step alarm after a 4 h step back")
	if a := got[0]; a.Device != "" || a.Value > -4*3600+5 || a.Value < -4*3600-5 || a.Severity != loa.SeverityWarning {
		t.Errorf("alarm %+v, want a station warning of about -14400 s", a)
	}
}

// The controller ran with its clock 2 h ahead, then restarts with it put
// right (stepped back while down): it opens, reports the step, and its
// saved scheduler position follows the wall clock instead of staying 2 h
// ahead (silent schedules until then).
func TestSystemClockStepBackAcrossRestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.ClockOffset = 2 * time.Hour
	m := openMain(t, cfg)
	loatest.Eventually(t, 10*time.Second, func() bool {
		h, err := m.DB.SchedulerHandled(t.Context())
		return err == nil && h.After(time.Now().Add(time.Hour))
	}, "the scheduler position was not saved")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.ClockOffset = 0
	m = openMain(t, cfg)
	defer m.Close()
	loatest.Eventually(t, 10*time.Second, func() bool {
		h, err := m.DB.SchedulerHandled(t.Context())
		return err == nil && h.Before(time.Now().Add(time.Minute))
	}, "the saved scheduler position stayed ahead of the wall clock")
	act := m.Alarms.Active()
	if len(act) != 1 || act[0].Kind != loa.AlarmClockStep || act[0].Value > -7000 {
		t.Errorf("active alarms %+v, want clock_step of about -7200 s", act)
	}
}
