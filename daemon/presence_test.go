package daemon

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// presenceLog records the fleet's presence changes of one device.
type presenceLog struct {
	mu  sync.Mutex
	log []loa.DeviceState
}

func watchDevice(t *testing.T, m *Main, id string) *presenceLog {
	p := &presenceLog{}
	cancel := m.Fleet.OnPresence(func(st loa.DeviceState) {
		if st.ID == id {
			p.mu.Lock()
			p.log = append(p.log, st)
			p.mu.Unlock()
		}
	})
	t.Cleanup(cancel)
	return p
}

// waitFor waits until match holds for an entry of the presence log after
// from; it returns that entry's index.
func (p *presenceLog) waitFor(t *testing.T, what string, from int, match func(loa.DeviceState) bool) int {
	t.Helper()
	found := -1
	loatest.Eventually(t, loatest.Wait, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i := from; i < len(p.log); i++ {
			if match(p.log[i]) {
				found = i
				return true
			}
		}
		return false
	}, what)
	return found
}

// A device's connection k is half dead (a 4G link that died silently)
// when it comes back on connection k+1 with the same client id, its own
// id: the embedded broker lets k+1 take over and drops k, publishing k's
// Will (offline, conn k). That Will can reach the controller before or
// after k+1's online status; either way the device ends online, and the
// API says so.
func TestSystemConnectionTakeover(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 0})
	ctx := context.Background()
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-race", AreaID: "a1", Name: "race"})
	if err != nil {
		t.Fatal(err)
	}
	const boot = 1795000000000
	stale := loatest.ConnectDevice(t, s.m.MQTTURL(), loatest.DeviceConfig{ID: "rx-race", Password: pw, Boot: boot, Conn: 3})
	waitOnlineAPI(t, s.api, "rx-race", true)
	w := watchDevice(t, s.m, "rx-race")
	staleBefore := s.m.Fleet.Stats().Stale

	live := loatest.ConnectDevice(t, s.m.MQTTURL(), loatest.DeviceConfig{ID: "rx-race", Password: pw, Boot: boot, Conn: 4})
	loatest.Eventually(t, loatest.Wait, func() bool { return !stale.Client().IsConnectionOpen() }, "connection 3 taken over")
	// Connection 3's Will arrives: ignored as stale, or (before 4's
	// online) taken as offline, then undone by 4's online.
	loatest.Eventually(t, loatest.Wait, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return s.m.Fleet.Stats().Stale > staleBefore || slices.ContainsFunc(w.log, func(st loa.DeviceState) bool { return !st.Online })
	}, "connection 3's Will handled")
	// A telemetry sample on connection 4 after all that: once the fleet
	// has it, everything before is handled.
	live.Publish(protocol.KindTele, protocol.Telemetry{TS: 1, RSSI: -60, Volume: 44, Temp: 40, Uptime: 9}, false)
	loatest.Eventually(t, loatest.Wait, func() bool {
		st, _ := s.m.Fleet.DeviceState("rx-race")
		return st.Telemetry != nil && st.Telemetry.Volume == 44
	}, "connection 4's telemetry")
	if st, _ := s.m.Fleet.DeviceState("rx-race"); !st.Online || st.Boot != boot {
		t.Fatalf("after the takeover the device is %+v, want online", st)
	}
	var v api.DeviceView
	if err := s.api.JSON(ctx, "GET", "/api/v1/devices/rx-race", nil, &v); err != nil {
		t.Fatal(err)
	}
	if v.State == nil || !v.State.Online || v.State.Boot != boot {
		t.Fatalf("after the takeover the API shows %+v, want online", v.State)
	}
}

// The ordinary transitions with a simulated receiver: online, its Will
// (offline) when its connection drops on a reboot, online again with
// boot+1; and its Will when it dies.
func TestSystemPresenceTransitions(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 1})
	ctx := context.Background()
	r := s.fleet.Receivers()[0]
	w := watchDevice(t, s.m, r.ID())
	boot := r.Boot()
	var before api.DeviceView
	if err := s.api.JSON(ctx, "GET", "/api/v1/devices/"+r.ID(), nil, &before); err != nil || before.State == nil || !before.State.Online || before.State.Boot != boot {
		t.Fatalf("before: %+v, %v", before.State, err)
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/devices/"+r.ID()+"/commands", map[string]any{"op": "reboot"}, nil); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	off := w.waitFor(t, "offline from the reboot's Will", 0, func(st loa.DeviceState) bool { return !st.Online && st.Boot == boot })
	w.waitFor(t, "online with boot+1", off, func(st loa.DeviceState) bool { return st.Online && st.Boot == boot+1 })
	waitOnlineAPI(t, s.api, r.ID(), true)

	r.Kill()
	w.waitFor(t, "offline from the Will after a kill", off+1, func(st loa.DeviceState) bool { return !st.Online && st.Boot == boot+1 })
	waitOnlineAPI(t, s.api, r.ID(), false)
}

// waitOnlineAPI polls the API until the device shows online (or offline).
func waitOnlineAPI(t *testing.T, c *api.Client, id string, online bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var v api.DeviceView
		if err := c.JSON(context.Background(), "GET", "/api/v1/devices/"+id, nil, &v); err != nil {
			t.Fatal(err)
		}
		if v.State != nil && v.State.Online == online {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed online=%v: %+v", id, online, v.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
