package daemon

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
)

// airedDevices lists the devices of session id's aired play log lines,
// failing on a device aired twice.
func (s *system) airedDevices(id string) []string {
	s.t.Helper()
	var out []string
	for _, e := range s.playLog("") {
		if e.SessionID != id || e.Event != loa.PlayAired {
			continue
		}
		if len(e.Devices) != 1 || slices.Contains(out, e.Devices[0]) {
			s.t.Fatalf("aired line %+v: want one device, once", e)
		}
		out = append(out, e.Devices[0])
	}
	slices.Sort(out)
	return out
}

func (s *system) activeAlarm(kind string) *loa.Alarm {
	s.t.Helper()
	for _, a := range s.alarms("") {
		if a.Kind == kind && a.Active() {
			return &a
		}
	}
	return nil
}

// A session's play log says "aired" for exactly the receivers whose own
// record says they played it.
func TestSystemSessionAiredOnEvidence(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 4})
	med := s.upload(testSignal(2*time.Second), 48000)
	sess := s.play(med.ID, "a")
	s.finish(sess, med.Duration, "a")

	var want []string
	for _, r := range s.byArea["a"] {
		if st, _ := r.Session(sess.ID); st.Played > 0 {
			want = append(want, r.ID())
		}
	}
	slices.Sort(want)
	if len(want) != 2 {
		t.Fatalf("receivers that played: %v, want both of area a", want)
	}
	loatest.Eventually(t, 30*time.Second, func() bool { return slices.Equal(s.airedDevices(sess.ID), want) },
		"one aired line per receiver that played")
	// Settled: no alarm for a session that was heard.
	loatest.Eventually(t, 30*time.Second, func() bool { return s.m.Sessions.Following() == 0 },
		"the session's evidence settles")
	if a := s.activeAlarm(loa.AlarmNoAudience); a != nil {
		t.Errorf("no_audience raised for a session heard by %v: %+v", want, a)
	}
	if got := s.airedDevices(sess.ID); !slices.Equal(got, want) {
		t.Errorf("aired %v after settling, want %v", got, want)
	}
}

// A session whose public RTP address is dead reaches nobody: no aired
// line, and a no_audience station alarm naming it.
func TestSystemDeadRelayNoAudience(t *testing.T) {
	dead, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.LocalAddr().String()
	dead.Close() // nothing listens there now: the receivers' RTCP goes nowhere
	s := startSystem(t, systemOpts{receivers: 2, configure: func(c *Config) { c.RTPPublic = addr }})
	med := s.upload(testSignal(2*time.Second), 48000)
	sess := s.play(med.ID, "p")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.api.WaitSession(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	var alarm *loa.Alarm
	loatest.Eventually(t, 30*time.Second, func() bool { alarm = s.activeAlarm(loa.AlarmNoAudience); return alarm != nil },
		"no_audience alarm for a session heard by nobody")
	if alarm.Device != "" || !strings.Contains(alarm.Msg, sess.ID) || !strings.Contains(alarm.Msg, loa.OriginManual) {
		t.Errorf("alarm %+v: want a station alarm naming session %s and its origin", alarm, sess.ID)
	}
	if got := s.airedDevices(sess.ID); len(got) != 0 {
		t.Errorf("aired %v for a session no receiver heard", got)
	}
	for _, r := range s.fleet.Receivers() {
		if st, ok := r.Session(sess.ID); ok && st.Played > 0 {
			t.Errorf("%s played %d frames through a dead relay", r.ID(), st.Played)
		}
	}
}
