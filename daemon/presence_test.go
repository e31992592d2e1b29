package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/loatest"
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

// The late-Last-Will race through the embedded broker and the controller:
// a device's connection k is half dead while it is already back on
// connection k+1 (online); then the broker gives up on k and publishes its
// Will. The controller keeps the device online, and the API says so.
func TestSystemLateWillOfEarlierConnection(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 0})
	ctx := context.Background()
	pw, err := s.api.CreateDevice(ctx, loa.Device{ID: "rx-race", AreaID: "a1", Name: "race"})
	if err != nil {
		t.Fatal(err)
	}
	const boot = 1795000000000
	// Two client ids, so the broker keeps connection 3 open (not yet timed
	// out) while connection 4 is up, as it does on a 4G link that died
	// silently.
	stale := loatest.ConnectDevice(t, s.m.MQTTURL(), loatest.DeviceConfig{ID: "rx-race", Password: pw, ClientID: "rx-race-3", Boot: boot, Conn: 3})
	waitOnlineAPI(t, s.api, "rx-race", true)
	// Its online status is acknowledged by the broker before connection 3
	// drops, so the controller receives it before 3's Will.
	loatest.ConnectDevice(t, s.m.MQTTURL(), loatest.DeviceConfig{ID: "rx-race", Password: pw, ClientID: "rx-race-4", Boot: boot, Conn: 4})
	w := watchDevice(t, s.m, "rx-race")
	staleBefore := s.m.Fleet.Stats().Stale

	stale.Drop() // the late Will: offline, boot b, conn 3
	deadline := time.Now().Add(time.Minute)
	for s.m.Fleet.Stats().Stale == staleBefore {
		if st, _ := s.m.Fleet.DeviceState("rx-race"); !st.Online {
			t.Fatalf("the late Will of connection 3 marked the device offline: %+v", st)
		}
		if time.Now().After(deadline) {
			t.Fatal("the late Will never reached the controller")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var v api.DeviceView
	if err := s.api.JSON(ctx, "GET", "/api/v1/devices/rx-race", nil, &v); err != nil {
		t.Fatal(err)
	}
	if v.State == nil || !v.State.Online || v.State.Boot != boot {
		t.Fatalf("after the late Will the API shows %+v, want online", v.State)
	}
	w.mu.Lock()
	for _, st := range w.log {
		if !st.Online {
			t.Errorf("the late Will produced an offline presence change: %+v", st)
		}
	}
	w.mu.Unlock()
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
