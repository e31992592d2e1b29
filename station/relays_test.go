package station_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/station"
)

// TestRelayStartsAgainAfterRestart: a relay playing when the controller
// stopped (its ffmpeg gone with the process) starts again as a new session
// with the same targets, priority and origin, ending when the first would
// have; one with under 10 s left, and a live microphone, do not.
func TestRelayStartsAgainAfterRestart(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg is required in CI")
		}
		t.Skip("ffmpeg not installed")
	}
	ctx := context.Background()
	w := newWorld(t, "", newFleet("d1", "d2", "d3"), "d1", "d2", "d3")
	relays := station.NewRelays(w.db, w.sessions, discard)
	// No source answers: the relay plays silence, which is all this needs.
	if err := relays.CreateRelay(ctx, &loa.Relay{ID: "vov1", Name: "VOV1", URLs: []string{"http://127.0.0.1:9/vov1"}}); err != nil {
		t.Fatal(err)
	}
	sched := loa.Origin{Kind: loa.OriginSchedule, ID: "vov-sang"}
	long := &loa.Session{Targets: loa.Targets{Devices: []string{"d1"}}, Priority: 120, Origin: sched, MaxDuration: 2 * time.Minute}
	short := &loa.Session{Targets: loa.Targets{Devices: []string{"d2"}}, Priority: 120, Origin: sched, MaxDuration: 5 * time.Second}
	for _, s := range []*loa.Session{long, short} {
		if err := relays.PlayRelay(ctx, "vov1", s); err != nil {
			t.Fatal(err)
		}
	}
	mic := &loa.Session{Targets: loa.Targets{Devices: []string{"d3"}}, Priority: 150, Origin: loa.Origin{Kind: loa.OriginLive, ID: "lv-1"}}
	if err := w.sessions.StartWith(ctx, mic, &closeCount{}, 0); err != nil {
		t.Fatal(err)
	}
	var restarted []string
	w.sessions.Restarted = func(ctx context.Context, s *loa.Session) {
		restarted = append(restarted, s.ID)
		relays.Restart(ctx, s)
	}
	// Still "playing" in the store, as a controller killed under them left them.
	w.sessions.ResumeInterrupted(ctx, func(string) bool { return true }, time.Second)
	if want := []string{long.ID, short.ID, mic.ID}; len(restarted) != 3 || !slices.Contains(restarted, long.ID) ||
		!slices.Contains(restarted, short.ID) || !slices.Contains(restarted, mic.ID) {
		t.Errorf("told of %v, want %v", restarted, want)
	}
	all, err := w.db.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var again []*loa.Session
	for _, s := range all {
		if s.State == loa.SessionPlaying {
			again = append(again, s)
		}
	}
	if len(again) != 1 {
		t.Fatalf("%d sessions playing after the restart, want the long relay's alone: %+v", len(again), again)
	}
	s := again[0]
	end, wantEnd := s.StartedAt.Add(s.MaxDuration), long.StartedAt.Add(long.MaxDuration)
	if s.ID == long.ID || s.RelayID != "vov1" || s.Origin != sched || s.Priority != long.Priority ||
		!slices.Equal(s.Devices, []string{"d1"}) || end.Sub(wantEnd).Abs() > 2*time.Second {
		t.Errorf("started again: %+v ending %v, want vov1 to d1 from %v ending %v", s, end, sched, wantEnd)
	}
	if got, err := w.db.Session(ctx, long.ID); err != nil || got.State != loa.SessionStopped || got.Reason != "controller restarted" {
		t.Errorf("the interrupted relay session: %+v, %v", got, err)
	}
	// (The first process's relays still run in this one: a killed
	// controller's would have gone with it.)
	running := func() bool {
		return slices.ContainsFunc(relays.RelayStates(), func(r loa.RelayState) bool { return r.SessionID == s.ID })
	}
	if !running() {
		t.Errorf("no relay runs for the new session %s: %+v", s.ID, relays.RelayStates())
	}
	if err := w.sessions.StopSession(ctx, s.ID, "", "test over"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for running() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if running() {
		t.Error("the relay runs on after its session stopped")
	}
	// The first process's relays end here, their ffmpeg children with them.
	w.engine.end(long.ID, loa.SessionStopped, "test over")
	w.engine.end(short.ID, loa.SessionStopped, "test over")
	deadline = time.Now().Add(10 * time.Second)
	for len(relays.RelayStates()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(relays.RelayStates()); n != 0 {
		t.Errorf("%d relays left running", n)
	}
}
