package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
)

// onceAt is a one-off rule at t, in UTC.
func onceAt(t time.Time) map[string]any {
	t = t.UTC()
	return map[string]any{"kind": "once", "date": t.Format("2006-01-02"), "time": t.Format("15:04:05"), "zone": "UTC"}
}

func (s *system) createSchedule(id, mediaID string, at time.Time, extra map[string]any) {
	s.t.Helper()
	body := map[string]any{"id": id, "name": "Chương trình " + id, "rule": onceAt(at),
		"content": map[string]string{"media_id": mediaID}, "targets": map[string][]string{"areas": {"a"}},
		"priority": 64, "enabled": true}
	for k, v := range extra {
		body[k] = v
	}
	if err := s.api.JSON(context.Background(), "POST", "/api/v1/schedules", body, nil); err != nil {
		s.t.Fatalf("create schedule %s: %v", id, err)
	}
}

// waitScheduled waits for the session a schedule started.
func (s *system) waitScheduled(id string, timeout time.Duration) *loa.Session {
	s.t.Helper()
	var started *loa.Session
	loatest.Eventually(s.t, timeout, func() bool {
		all, err := s.m.Sessions.Sessions(context.Background())
		if err != nil {
			s.t.Fatal(err)
		}
		for _, sess := range all {
			if sess.Origin == (loa.Origin{Kind: loa.OriginSchedule, ID: id}) {
				started = sess
				return true
			}
		}
		return false
	}, fmt.Sprintf("schedule %s starts a session", id))
	return started
}

func (s *system) playLog(query string) []loa.PlayLogEntry {
	s.t.Helper()
	var out []loa.PlayLogEntry
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/playlog"+query, nil, &out); err != nil {
		s.t.Fatalf("play log: %v", err)
	}
	return out
}

func TestSystemScheduleFires(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 4})
	med := s.upload(testSignal(2*time.Second), 48000)
	at := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	s.createSchedule("bantin", med.ID, at, nil)

	var next []loa.Occurrence
	if err := s.api.JSON(context.Background(), "GET", "/api/v1/schedules/bantin/next?n=3", nil, &next); err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || !next[0].At.Equal(at) {
		t.Fatalf("next occurrences %+v, want one at %v", next, at)
	}

	sess := s.waitScheduled("bantin", 30*time.Second)
	if late := sess.StartedAt.Sub(at); late < 0 || late > time.Second {
		t.Errorf("the session started %v after its scheduled time", late)
	}
	s.finish(sess, med.Duration, "a")
	for _, r := range s.byArea["a"] {
		if st, _ := r.Session(sess.ID); float64(st.Decoded+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(med.Frames) {
			t.Errorf("%s decoded %d of %d frames of the scheduled programme", r.ID(), st.Decoded, med.Frames)
		}
	}
	for _, r := range s.byArea["b"] {
		if _, ok := r.Session(sess.ID); ok {
			t.Errorf("%s outside the schedule's targets joined it", r.ID())
		}
	}
	events := map[string]bool{}
	for _, e := range s.playLog("?area=a") {
		if e.SessionID == sess.ID && e.ScheduleID == "bantin" {
			events[e.Event] = true
		}
	}
	if !events[loa.PlayStarted] || !events[loa.PlayEnded] {
		t.Errorf("play log for the scheduled session has %v, want started and ended", events)
	}
	// It fired once: a reload must not start it again.
	s.m.Scheduler.Reload()
	time.Sleep(300 * time.Millisecond)
	n := 0
	all, _ := s.m.Sessions.Sessions(context.Background())
	for _, x := range all {
		if x.Origin == (loa.Origin{Kind: loa.OriginSchedule, ID: "bantin"}) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the schedule started %d sessions, want 1", n)
	}
}

func TestSystemScheduleBadInput(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 1})
	med := s.upload(testSignal(time.Second), 48000)
	ctx := context.Background()
	base := func() map[string]any {
		return map[string]any{"id": "x", "name": "x", "rule": map[string]any{"kind": "daily", "time": "06:00"},
			"content": map[string]string{"media_id": med.ID}, "targets": map[string][]string{"areas": {"a"}}, "enabled": true}
	}
	for name, c := range map[string]struct {
		mutate func(m map[string]any)
		field  string
	}{
		"February 30": {func(m map[string]any) {
			m["rule"] = map[string]any{"kind": "once", "date": "2027-02-30", "time": "06:00"}
		}, "rule.date"},
		"no weekdays": {func(m map[string]any) { m["rule"] = map[string]any{"kind": "weekly", "time": "06:00"} }, "rule.weekdays"},
		"unknown zone": {func(m map[string]any) {
			m["rule"] = map[string]any{"kind": "daily", "time": "06:00", "zone": "Mars/Olympus"}
		}, "rule.zone"},
		"end < start":   {func(m map[string]any) { m["rule"] = map[string]any{"kind": "daily", "time": "06:00", "end": "05:00"} }, "rule.end"},
		"missing media": {func(m map[string]any) { m["content"] = map[string]string{"media_id": "nope"} }, "content.media_id"},
		"unknown area":  {func(m map[string]any) { m["targets"] = map[string][]string{"areas": {"zz"}} }, "targets.areas"},
	} {
		body := base()
		c.mutate(body)
		err := s.api.JSON(ctx, "POST", "/api/v1/schedules", body, nil)
		ae, ok := err.(*api.ClientError)
		if !ok || ae.Status < 400 || ae.Status >= 500 || !strings.Contains(ae.Message, c.field) {
			t.Errorf("%s: got %v, want a 4xx naming %s", name, err, c.field)
		}
	}
	if all, _ := s.m.Schedules.Schedules(ctx); len(all) != 0 {
		t.Errorf("refused schedules were stored: %d", len(all))
	}
}

// TestSystemScheduleMissedWhileDown: the controller is down when a
// programme should start; on restart it plays late (within grace), once.
func TestSystemScheduleMissedWhileDown(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.MQTTListen = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	m := openMain(t, cfg)
	c := api.NewClient(m.URL(), m.AdminToken)
	c.CreateArea(ctx, loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince})
	c.CreateArea(ctx, loa.Area{ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune})
	s := &system{t: t, m: m, api: c}
	med := s.upload(testSignal(time.Second), 48000)
	// Far enough ahead that the first controller is closed before it
	// comes, even on a loaded machine (a close still running at the
	// start time would play it itself).
	at := time.Now().Add(4 * time.Second).Truncate(time.Second).Add(time.Second)
	s.createSchedule("sang", med.ID, at, nil)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if left := time.Until(at); left < 500*time.Millisecond {
		t.Fatalf("closing the controller took until %v before the start time: the test cannot tell a late start", left)
	}
	time.Sleep(time.Until(at) + 500*time.Millisecond) // down across the start time

	m2 := openMain(t, cfg)
	defer m2.Close()
	s2 := &system{t: t, m: m2, api: api.NewClient(m2.URL(), c.Token)}
	sess := s2.waitScheduled("sang", 10*time.Second)
	if late := sess.StartedAt.Sub(at); late <= 0 {
		t.Errorf("started %v relative to its time, want late", late)
	}
	s2.m.Scheduler.Reload()
	time.Sleep(300 * time.Millisecond)
	all, _ := m2.Sessions.Sessions(ctx)
	n := 0
	for _, x := range all {
		if x.Origin == (loa.Origin{Kind: loa.OriginSchedule, ID: "sang"}) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the missed programme started %d times, want once", n)
	}
}

// TestSystemScheduleOverrun: at its start time the receivers still play an
// earlier programme; "wait" starts after it ends, "interrupt" at a higher
// priority preempts it on the overlapping receivers and it resumes after.
func TestSystemScheduleOverrun(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 4})
	long := s.upload(testSignal(4*time.Second), 48000)
	short := s.upload(testSignal(time.Second), 48000)

	first := s.play(long.ID, "a")
	at := time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second)
	s.createSchedule("doi", short.ID, at, map[string]any{"overrun": "wait", "max_wait": "30s"})
	waited := s.waitScheduled("doi", 30*time.Second)
	end := s.finish(first, long.Duration, "a")
	if waited.StartedAt.Before(end.EndedAt) {
		t.Errorf("the waiting programme started at %v, before the playing one ended at %v", waited.StartedAt, end.EndedAt)
	}
	s.finish(waited, short.Duration, "a")

	// Interrupt: a priority programme preempts, the normal one resumes.
	normal := s.play(long.ID, "p")
	at = time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second)
	s.createSchedule("uutien", short.ID, at, map[string]any{"priority": 150})
	urgent := s.waitScheduled("uutien", 30*time.Second)
	if urgent.StartedAt.Sub(at) > time.Second {
		t.Errorf("the priority programme started %v late", urgent.StartedAt.Sub(at))
	}
	s.finish(urgent, short.Duration, "a")
	s.finish(normal, long.Duration, "a", "b")
	for _, r := range s.byArea["a"] {
		if st, _ := r.Session(urgent.ID); float64(st.Decoded) < 0.9*float64(short.Frames) {
			t.Errorf("%s decoded %d of %d frames of the priority programme", r.ID(), st.Decoded, short.Frames)
		}
		var resumed bool
		for _, st := range r.Sessions() {
			if st.Session == normal.ID && st.FirstPlayed.After(urgent.StartedAt) {
				resumed = true
			}
		}
		if !resumed {
			t.Errorf("%s did not rejoin the normal programme after the priority one", r.ID())
		}
	}
	preempted := map[string]bool{}
	for _, e := range s.playLog("?area=p") {
		if e.SessionID == normal.ID && e.Event == loa.PlayPreempted {
			for _, d := range e.Devices {
				preempted[d] = true
			}
		}
	}
	for _, r := range s.byArea["a"] {
		if !preempted[r.ID()] {
			t.Errorf("the play log does not say %s was preempted", r.ID())
		}
	}
	for _, r := range s.byArea["b"] {
		if preempted[r.ID()] {
			t.Errorf("the play log says %s (not targeted) was preempted", r.ID())
		}
		if _, ok := r.Session(urgent.ID); ok {
			t.Errorf("%s outside the priority programme's targets was preempted", r.ID())
		}
		if st, _ := r.Session(normal.ID); float64(st.Decoded+st.Stalled+min(st.Skipped-st.Stalled, maxSkipped)) < 0.99*float64(long.Frames) {
			t.Errorf("%s (not preempted) decoded %d of %d frames", r.ID(), st.Decoded, long.Frames)
		}
	}
}
