package daemon

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// waitProgrammes waits until every receiver holds the programme items
// the controller lists for it (its manifest sender sends them), and
// returns them.
func waitProgrammes(t *testing.T, m *Main, fleet *firmwaresim.Fleet, n int) []protocol.CacheItem {
	t.Helper()
	var all []protocol.CacheItem
	for _, r := range fleet.Receivers() {
		items, err := m.Programmes.Items(context.Background(), r.ID(), time.Now(), protocol.MaxCacheItems)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != n {
			t.Fatalf("%d programme items for %s, want %d", len(items), r.ID(), n)
		}
		for _, it := range items {
			loatest.Eventually(t, 30*time.Second, func() bool { return r.CacheHolding().Holds(it.Ref()) }, r.ID()+" holds "+it.Ref())
		}
		all = items
	}
	return all
}

// programmeMeta finds the item of schedule id's occurrence.
func programmeMeta(t *testing.T, items []protocol.CacheItem, id string) protocol.ProgrammeMeta {
	t.Helper()
	for _, it := range items {
		m, err := protocol.DecodeProgrammeMeta(it.Meta)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Occurrence) > len(id) && m.Occurrence[:len(id)+1] == id+"@" {
			return m
		}
	}
	t.Fatalf("no programme item of schedule %s in %d items", id, len(items))
	return protocol.ProgrammeMeta{}
}

// TestOfflineProgrammes: receivers hold their coming programmes. With the
// controller up the stream plays, under the session id and timeline
// announced, and the cached copy does not. With the media path blocked
// the copies play and the delivery report reads them. With the controller stopped
// the next programme plays from the cache on every receiver, on its
// timeline, and a controller started again on the same data records
// "aired from cache" for each one and streams nothing of it (no double play).
func TestOfflineProgrammes(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTTListen = fmt.Sprintf("127.0.0.1:%d", loatest.FreePort(t, "tcp"))
	cfg.ProgrammeCache = true
	m1 := openMain(t, cfg)
	c := api.NewClient(m1.URL(), m1.AdminToken)
	ctx := context.Background()
	c.CreateArea(ctx, loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince})
	c.CreateArea(ctx, loa.Area{ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune})
	var cfgs []firmwaresim.Config
	for i := range 2 {
		id := fmt.Sprintf("rx-%d", i)
		pw, err := c.CreateDevice(ctx, loa.Device{ID: id, AreaID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, firmwaresim.Config{ID: id, Password: pw, Broker: m1.MQTTURL(), Logger: testLogger(t),
			StationKey: m1.StationKey.Public().(ed25519.PublicKey)})
	}
	fleet, err := firmwaresim.StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	if err := c.WaitOnline(ctx, len(cfgs), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	s1 := &system{t: t, m: m1, api: c, byArea: map[string][]*firmwaresim.Receiver{"a": fleet.Receivers()}}
	med := s1.upload(testSignal(3*time.Second), 48000)
	up := time.Now().Add(4 * time.Second).Truncate(time.Second).Add(time.Second)
	blocked := up.Add(med.Duration + 2*time.Second)
	down := blocked.Add(med.Duration + 2*time.Second)
	s1.createSchedule("up", med.ID, up, nil)
	s1.createSchedule("blocked", med.ID, blocked, nil)
	long := s1.upload(testSignal(8*time.Second), 48000) // long enough for a controller back mid-way to take over
	s1.createSchedule("down", long.ID, down, nil)
	items := waitProgrammes(t, m1, fleet, 3)
	mUp, mBlocked, mDown := programmeMeta(t, items, "up"), programmeMeta(t, items, "blocked"), programmeMeta(t, items, "down")
	grace := int(protocol.CacheGrace / protocol.FrameDuration)

	// Controller up: the stream, under the announced id and timeline.
	sess := s1.waitScheduled("up", 20*time.Second)
	if sess.ID != mUp.Session || sess.T0Ms != mUp.StartMs || sess.TS0 != mUp.TS0 {
		t.Errorf("session %s on (%d, %d), want the announced %s on (%d, %d)", sess.ID, sess.T0Ms, sess.TS0, mUp.Session, mUp.StartMs, mUp.TS0)
	}
	s1.finish(sess, med.Duration, "a")
	for _, r := range fleet.Receivers() {
		for _, st := range r.Sessions() {
			if st.Session == sess.ID && st.Local != "" {
				t.Errorf("%s played its cached copy of %s while the stream came: %+v", r.ID(), sess.ID, st)
			}
		}
		if st, ok := r.Session(sess.ID); !ok || st.FromPacket() == 0 {
			t.Errorf("%s did not play the stream of %s: %+v", r.ID(), sess.ID, st)
		}
	}

	// The media path blocked (every RTP packet lost on the way): the
	// receivers play their copies, and the delivery report, followed by
	// the controller all along, says so (evidence cache).
	for _, r := range fleet.Receivers() {
		r.SetLoss(1)
	}
	sess = s1.waitScheduled("blocked", 30*time.Second)
	loatest.Eventually(t, 30*time.Second, func() bool {
		lines := s1.delivery(sess.ID, "").Receivers
		n := 0
		for _, l := range lines {
			if l.Evidence == loa.EvidenceCache {
				n++
			}
		}
		return n == len(cfgs)
	}, "the delivery report reads every receiver's cached copy")
	for _, r := range fleet.Receivers() {
		r.SetLoss(0)
		got := r.AiredFromCache()
		if len(got) != 1 || got[0].Session != mBlocked.Session || got[0].From < grace || got[0].Stats.Played == 0 {
			t.Errorf("%s aired from cache %+v, want the blocked programme from frame %d on", r.ID(), got, grace)
		}
		for _, st := range r.Sessions() {
			if st.Session == sess.ID && st.Local == "" && st.Played > 0 {
				t.Errorf("%s played the blocked stream: %+v", r.ID(), st)
			}
		}
	}

	// Controller stopped before the next one: every receiver plays it
	// from its cache, on time; a controller started again on the same
	// data while the copies play streams the rest of it, which takes
	// over at the frame the copy reached: nothing plays twice.
	if time.Until(down) < time.Second {
		t.Fatalf("the first programmes ended %v before the last starts: too late to stop the controller first", time.Until(down))
	}
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range fleet.Receivers() {
		loatest.Eventually(t, 30*time.Second, func() bool {
			st, ok := r.Session(mDown.Session)
			return ok && st.Local != "" && !st.FirstPlayed.IsZero()
		}, r.ID()+" plays the programme from its cache")
	}
	m2 := openMain(t, cfg)
	defer m2.Close()
	s2 := &system{t: t, m: m2, api: api.NewClient(m2.URL(), c.Token)}
	for _, r := range fleet.Receivers() {
		var got []firmwaresim.AiredFromCache
		loatest.Eventually(t, 30*time.Second, func() bool { got = r.AiredFromCache(); return len(got) > 1 }, r.ID()+"'s copy stops")
		a := got[1]
		if len(got) != 2 || a.Session != mDown.Session || a.Occurrence != mDown.Occurrence {
			t.Fatalf("%s aired from cache %+v, want the one programme %s", r.ID(), got, mDown.Session)
		}
		if a.From < grace || a.From >= long.Frames {
			t.Errorf("%s joined at frame %d, want the frame of start + grace (%d) or after", r.ID(), a.From, grace)
		}
		// On the occurrence's timeline: frame From at start + From·20 ms + D.
		if want := mDown.Start().Add(time.Duration(a.From)*protocol.FrameDuration + protocol.DefaultDelay); !a.At.Equal(want) {
			t.Errorf("%s: frame %d due at %v, want %v", r.ID(), a.From, a.At, want)
		}
		if a.Stats.Played == 0 || a.From+int(a.Stats.Played) > long.Frames || a.Stats.FirstPlayed.Before(a.At.Add(-protocol.FrameDuration)) {
			t.Errorf("%s: copy %+v from frame %d, want frames played, none early, none past the end", r.ID(), a.Stats, a.From)
		}
		// The stream, if it came before the end, played only frames after
		// the copy's last (its first sample's timestamp on the timeline).
		copyEnd := a.From + int(a.Stats.Played)
		loatest.Eventually(t, 30*time.Second, func() bool {
			for _, st := range r.Sessions() {
				if st.Session == mDown.Session && !st.Done {
					return false
				}
			}
			return true
		}, r.ID()+" ends every play of the programme")
		for _, st := range r.Sessions() {
			if st.Session != mDown.Session || st.Local != "" || st.Played == 0 {
				continue // the copy, or a play tuned in the first controller's pre-roll that received nothing
			}
			first := int((st.FirstSampleTS - mDown.TS0) / protocol.FrameSamples)
			t.Logf("%s: copy frames %d–%d, stream from frame %d (%d frames)", r.ID(), a.From, copyEnd-1, first, st.FromPacket())
			if first < copyEnd || copyEnd+int(st.FromPacket()) > long.Frames {
				t.Errorf("%s: the stream played from frame %d (%d frames) after the copy's frames %d–%d of %d: played twice",
					r.ID(), first, st.FromPacket(), a.From, copyEnd-1, long.Frames)
			}
		}
	}
	loatest.Eventually(t, 60*time.Second, func() bool {
		n := 0
		for _, e := range s2.playLog("") {
			if e.Event == loa.PlayAiredFromCache && e.SessionID == mDown.Session && e.ScheduleID == "down" && e.Occurrence.Equal(down) {
				n += len(e.Devices)
			}
		}
		return n == len(cfgs)
	}, "the play log records every receiver's programme aired from cache")
	for _, e := range s2.playLog("") {
		if e.ScheduleID == "down" || e.SessionID == mDown.Session {
			t.Logf("play log: %s %v %s", e.Event, e.Devices, e.Detail)
		}
	}
}
