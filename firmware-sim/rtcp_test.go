package firmwaresim

import (
	"testing"
	"time"
)

func TestSenderReportSetsPlayout(t *testing.T) {
	now := time.Now()
	s := &session{log: quiet, delay: 200 * time.Millisecond, ts0: 1000}
	s.arrivalBase = now.Add(s.delay)
	s.base = s.arrivalBase
	// The sender stamped ts0+960 (frame 1) 30 ms before now: frame 0 left
	// 50 ms ago, so it plays 150 ms from now, not 200.
	sent := time.Unix(0, now.Add(-30*time.Millisecond).UnixNano()) // wall clock only, as from NTP
	s.sr = &senderReport{wall: sent, rtp: 1000 + 960}
	if !s.applySR() {
		t.Fatal("sender report ignored")
	}
	if d := s.base.Sub(now) - 150*time.Millisecond; d > time.Millisecond || d < -time.Millisecond {
		t.Errorf("slot 0 plays %v from now, want 150ms", s.base.Sub(now))
	}
	// A sender clock seconds off is not trusted.
	s.base = s.arrivalBase
	s.sr = &senderReport{wall: sent.Add(-5 * time.Second), rtp: 1000}
	if s.applySR() || s.base != s.arrivalBase {
		t.Error("sender report 5 s off moved play-out")
	}
}

func TestNTPTime(t *testing.T) {
	want := time.Date(2026, 11, 25, 6, 0, 0, 500_000_000, time.UTC)
	ntp := uint64(want.Unix()+2208988800)<<32 | 1<<31
	if got := ntpTime(ntp); !got.Equal(want) {
		t.Errorf("ntpTime = %v, want %v", got, want)
	}
}
