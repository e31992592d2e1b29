package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
)

// TestSystemRestartResumes restarts the controller in the middle of a
// programme: on every receiver it resumes at the position the wall clock
// says, nothing is played twice, and the session ends normally.
func TestSystemRestartResumes(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTTListen = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	m1 := openMain(t, cfg)
	c := api.NewClient(m1.URL(), m1.AdminToken)
	fleet := provisionFleet(t, c, m1.MQTTURL(), 3, true)
	s1 := &system{t: t, m: m1, api: c}
	src := testSignal(8 * time.Second)
	med := s1.upload(src, 48000)
	// A short session first: its delivery report, settled before the
	// restart, reads the same after it.
	short := s1.upload(testSignal(time.Second), 48000)
	done := s1.play(short.ID, "a")
	s1.byArea = map[string][]*firmwaresim.Receiver{"a": fleet.Receivers()}
	s1.finish(done, short.Duration, "a")
	before := s1.waitDelivered(done.ID)
	sess := s1.play(med.ID, "a")
	waitPlaying(t, fleet, sess.ID, 100)
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	m2 := openMain(t, cfg)
	defer m2.Close()
	s2 := &system{t: t, m: m2, api: api.NewClient(m2.URL(), c.Token)}
	s2.byArea = map[string][]*firmwaresim.Receiver{"a": fleet.Receivers()}
	end := s2.finish(sess, med.Duration, "a")
	if end.State != loa.SessionEnded {
		t.Errorf("resumed session is %s (%s), want ended", end.State, end.Reason)
	}
	for _, r := range fleet.Receivers() {
		var parts []firmwaresim.SessionStats
		for _, st := range r.Sessions() {
			if st.Session == sess.ID {
				parts = append(parts, st)
			}
		}
		if len(parts) != 2 {
			t.Errorf("%s played the session in %d parts, want 2 (before and after the restart)", r.ID(), len(parts))
			continue
		}
		before, after := parts[0], parts[1]
		heard := before.FromPacket() + after.FromPacket()
		if heard > uint64(med.Frames) {
			t.Errorf("%s heard %d frames of a %d-frame programme: something played twice", r.ID(), heard, med.Frames)
		}
		// The second part starts where the wall clock says: its audio
		// matches the source at that offset.
		offset := int(after.FirstPlayed.Sub(before.FirstPlayed).Seconds() * 48000)
		if offset <= 0 || offset >= len(src) {
			t.Errorf("%s resumed at offset %d samples", r.ID(), offset)
			continue
		}
		if corr := bestCorrelation(src[offset:], r.PCM(sess.ID)); corr < 0.9 {
			t.Errorf("%s: resumed audio correlates %.2f with the source at the wall-clock position, want ≥ 0.9", r.ID(), corr)
		}
		t.Logf("%s: %d frames before, %d after, resumed %.2fs into the programme", r.ID(), before.FromPacket(), after.FromPacket(), float64(offset)/48000)
	}
	if after := s2.delivery(done.ID, ""); len(after.Receivers) != len(before) || after.Totals.Finished != len(before) {
		t.Errorf("after the restart the report of a session ended before reads %+v, want %d receivers finished", after, len(before))
	} else {
		for _, l := range after.Receivers {
			if l != before[l.Device] {
				t.Errorf("after the restart %s reads %+v, want %+v", l.Device, l, before[l.Device])
			}
		}
	}
	// The resumed session's report continues the lines from before the
	// restart: every receiver finished, its stats those it reported.
	lines := s2.waitDelivered(sess.ID)
	// A finished event may come after the report settled (a receiver's
	// queue stalled by the reconnect): its stats still count.
	loatest.Eventually(t, 30*time.Second, func() bool {
		for _, l := range s2.delivery(sess.ID, "").Receivers {
			if lines[l.Device] = l; l.Played == 0 {
				return false
			}
		}
		return true
	}, "every receiver's finished stats are in the report")
	for _, r := range fleet.Receivers() {
		l := lines[r.ID()]
		var played uint64
		for _, st := range r.Sessions() {
			if st.Session == sess.ID {
				played += st.Played
			}
		}
		if l.State != loa.DeliveryFinished || l.Evidence != loa.EvidenceEvent || l.Played == 0 || l.Played > played {
			t.Errorf("%s resumed: %+v, want finished on its events, with at most the %d frames it played", r.ID(), l, played)
		}
	}
	var resumed bool
	for _, e := range s2.playLog("") {
		resumed = resumed || (e.SessionID == sess.ID && e.Event == loa.PlayResumed)
	}
	if !resumed {
		t.Error("the play log does not record the resumption")
	}
}

// provisionFleet creates area a (in province p) with n receivers through
// the API and starts them against the broker, online when it returns.
func provisionFleet(t *testing.T, c *api.Client, broker string, n int, keepPCM bool) *firmwaresim.Fleet {
	t.Helper()
	ctx := context.Background()
	c.CreateArea(ctx, loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince})
	c.CreateArea(ctx, loa.Area{ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune})
	var cfgs []firmwaresim.Config
	for i := range n {
		id := fmt.Sprintf("rx-%d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, firmwaresim.Config{ID: id, Password: pw, Broker: broker, Decode: true, KeepPCM: keepPCM, Logger: testLogger(t)})
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	if err := c.WaitOnline(ctx, n, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return fleet
}

// waitPlaying waits until every receiver played at least frames of a session.
func waitPlaying(t *testing.T, fleet *firmwaresim.Fleet, session string, frames uint64) {
	t.Helper()
	for _, r := range fleet.Receivers() {
		loatest.Eventually(t, 20*time.Second, func() bool {
			st, ok := r.Session(session)
			return ok && st.Played >= frames
		}, fmt.Sprintf("%s plays %d frames of %s", r.ID(), frames, session))
	}
}
