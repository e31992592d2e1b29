package station_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
	"github.com/loa-broadcast/loa/station"
)

// cacheFleet is fakeFleet whose receivers announce the cache.
type cacheFleet struct{ *fakeFleet }

func (f cacheFleet) DeviceState(id string) (loa.DeviceState, bool) {
	st, ok := f.fakeFleet.DeviceState(id)
	st.Caps = []string{protocol.CapCache}
	return st, ok
}

// fakeCommander answers cache manifests with a holding of everything
// listed, except for receivers in lacks, and play_stored as told.
type fakeCommander struct {
	mu        sync.Mutex
	manifests map[string]protocol.CacheArgs
	plays     map[string]protocol.PlayStoredArgs
	refuse    map[string]string // device → play_stored failure code
}

func (c *fakeCommander) SendOp(ctx context.Context, id, op string, args any) (protocol.Ack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch op {
	case protocol.OpCache:
		a := args.(protocol.CacheArgs)
		c.manifests[id] = a
		h := protocol.CacheHolding{Version: a.Version}
		for _, it := range a.Items {
			h.Held = append(h.Held, it.Ref())
		}
		raw, _ := json.Marshal(h)
		return protocol.Ack{State: protocol.AckDone, Result: raw}, nil
	case protocol.OpPlayStored:
		c.plays[id] = args.(protocol.PlayStoredArgs)
		if code := c.refuse[id]; code != "" {
			return protocol.Ack{State: protocol.AckFailed, Code: code}, loa.Errorf(loa.EUNAVAILABLE, "device %s: play_stored failed: %s", id, code)
		}
	}
	return protocol.Ack{State: protocol.AckDone}, nil
}

// A stored-message alert: manifests are signed per receiver and say what
// each holds; receivers holding the message get play_stored with the
// alert's repeats, priority, volume and expiry, and finish on their own
// events (channel stored); one that refuses not_cached is streamed the
// message in a late session and finishes by the stream.
func TestAlertStoredMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := newFleet("d1", "d2", "d3", "d4")
		w := newWorld(t, "", fleet, "d1", "d2", "d3", "d4")
		pub, key, _ := ed25519.GenerateKey(nil)
		cmd := &fakeCommander{manifests: map[string]protocol.CacheArgs{}, plays: map[string]protocol.PlayStoredArgs{},
			refuse: map[string]string{"d2": protocol.StoredNotCached}}
		stored := station.NewStored(w.db, cacheFleet{fleet}, cmd, key, "https://ctl.example:8443", discard)
		w.alerts.SetStored(stored)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go stored.Run(ctx)

		if err := stored.PutStoredMessage(ctx, &loa.StoredMessage{Code: 5, Name: "Bão", MediaID: w.media.ID, AreaID: "xa"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for _, id := range []string{"d1", "d2", "d3", "d4"} {
			m := cmd.manifests[id]
			if m.Version != 1 || len(m.Items) != 1 || m.Items[0].Key != "5" || m.Items[0].Location(m.BaseURL) != "https://ctl.example:8443/cache/"+w.media.Hash {
				t.Fatalf("%s's manifest %+v", id, m)
			}
			if err := protocol.VerifyCacheItem(pub, m.Items[0]); err != nil {
				t.Errorf("%s: %v", id, err)
			}
			if !stored.Holds(id, 5, 1) || stored.Holds(id, 6, 1) || stored.Holds(id, 5, 2) {
				t.Errorf("%s: holds wrong", id)
			}
		}

		fleet.notify("d4", false, 0) // offline when the alert goes out
		synctest.Wait()
		a := &loa.Alert{Title: "Bão", Level: loa.AlertEmergency, StoredCode: 5, Targets: loa.Targets{Areas: []string{"xa"}},
			Repeats: 2, ExpiresAt: time.Now().Add(10 * time.Minute), CreatedBy: "tok"}
		if err := w.alerts.SendAlert(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		if a.Content.MediaID != w.media.ID {
			t.Errorf("content %+v: want the stored message's media", a.Content)
		}
		synctest.Wait()
		run := a.SessionID
		for _, id := range []string{"d1", "d3"} {
			p := cmd.plays[id]
			if p.Session != run || p.Code != 5 || p.SHA256 != w.media.Hash || p.Repeats != 2 || p.Priority != 240 || p.Volume != 100 ||
				p.UntilMs != a.ExpiresAt.UnixMilli() {
				t.Errorf("%s's play_stored %+v", id, p)
			}
		}
		if len(w.engine.sessions()) != 0 {
			t.Fatalf("a stream started though every receiver was thought to hold the message: %+v", w.engine.sessions())
		}
		time.Sleep(time.Second) // d2's late stream session
		synctest.Wait()
		late := w.alertSessions("d2")
		if len(late) != 1 || !slices.Equal(late[0].Devices, []string{"d2"}) {
			t.Fatalf("late sessions of d2: %+v", late)
		}

		// d4 comes back (a new boot: its holding is asked again) and
		// plays it from storage too, late.
		fleet.notify("d4", true, 2)
		time.Sleep(time.Second)
		synctest.Wait()
		lateRun := cmd.plays["d4"].Session
		if lateRun == "" || lateRun == run || cmd.plays["d4"].Code != 5 {
			t.Fatalf("d4 back online: play_stored %+v", cmd.plays["d4"])
		}
		if d4 := w.alertSessions("d4"); len(d4) != 0 {
			t.Errorf("d4 was streamed too: %+v", d4)
		}
		frames := uint64(2 * w.media.Frames)
		fleet.send("d4", played(lateRun))
		fleet.send("d4", finished(lateRun, frames))
		fleet.send("d1", played(run))
		fleet.send("d1", finished(run, frames))
		fleet.send("d3", played(run))
		fleet.send("d3", finished(run, frames/2)) // stopped half-way: partial
		fleet.send("d2", played(late[0].ID))
		fleet.send("d2", finished(late[0].ID, uint64(2*w.media.Frames+25)))
		w.engine.end(late[0].ID, loa.SessionEnded, "")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		end, rep := w.report(a.ID)
		wantDelivery(t, rep["d1"], loa.DeliveryFinished, "")
		wantDelivery(t, rep["d2"], loa.DeliveryFinished, "")
		wantDelivery(t, rep["d3"], loa.DeliveryFailed, loa.ReasonPartial)
		wantDelivery(t, rep["d4"], loa.DeliveryFinished, "")
		if !rep["d4"].Late || rep["d4"].Channel != loa.ChannelStored {
			t.Errorf("d4: %+v, want late, channel stored", rep["d4"])
		}
		if rep["d1"].Channel != loa.ChannelStored || rep["d2"].Channel != "" || rep["d1"].Repeats != 2 || rep["d3"].Repeats != 1 {
			t.Errorf("report %+v", rep)
		}
		if end.State != loa.AlertFinished {
			t.Errorf("alert %s, want finished once every receiver settled", end.State)
		}
	})
}

// fakeSource adds one programme item to every receiver's set.
type fakeSource struct{ item protocol.CacheItem }

func (f fakeSource) CacheItems(ctx context.Context, id string) ([]protocol.CacheItem, error) {
	return []protocol.CacheItem{f.item}, nil
}

func (f fakeSource) CacheFile(ctx context.Context, sha string) (bool, error) {
	return sha == f.item.SHA256, nil
}

// Another source's items (programmes) follow the stored messages in the
// same signed manifest, their files are served, and Changed gives the
// sets a new version.
func TestStoredSources(t *testing.T) {
	w := newWorld(t, "", newFleet("d1"), "d1")
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(nil)
	stored := station.NewStored(w.db, cacheFleet{w.fleet}, &fakeCommander{}, key, "http://ctl", discard)
	if err := stored.PutStoredMessage(ctx, &loa.StoredMessage{Code: 9, Name: "Cháy rừng", MediaID: w.media.ID, AreaID: "xa"}); err != nil {
		t.Fatal(err)
	}
	prog := protocol.CacheItem{Kind: protocol.CacheKindProgramme, Key: "sched-1", SHA256: w.media.Hash, Size: w.media.Size, Meta: "start=2026-12-04T06:00:00+07:00"}
	stored.AddSource(fakeSource{prog})
	m, err := stored.Manifest(ctx, "d1")
	if err != nil || len(m.Items) != 2 || m.Items[0].Ref() != "stored:9" || m.Items[1].Ref() != "programme:sched-1" || m.Version != 1 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	for _, it := range m.Items {
		if err := protocol.VerifyCacheItem(pub, it); err != nil {
			t.Error(err)
		}
	}
	if err := stored.Changed(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := stored.Version(ctx); v != 2 {
		t.Errorf("version %d after Changed, want 2", v)
	}
	f, err := stored.OpenCacheItem(ctx, w.media.Hash)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := stored.OpenCacheItem(ctx, "00"+w.media.Hash[2:]); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("a file of no source: %v", err)
	}
}
