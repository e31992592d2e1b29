package daemon

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/protocol"
)

// rawDevice is one MQTT connection of a device, made with paho the way
// firmware does: the offline status of (boot, conn) as its Will, then the
// online status of the same pair.
type rawDevice struct {
	c    mqtt.Client
	mu   sync.Mutex
	conn net.Conn
}

func connectRaw(t *testing.T, broker, id, password, clientID string, boot, conn uint64) *rawDevice {
	t.Helper()
	d := &rawDevice{}
	will, _ := json.Marshal(protocol.Status{Online: false, Boot: boot, Conn: conn})
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetUsername(id).SetPassword(password).SetCleanSession(true).SetAutoReconnect(false).
		SetBinaryWill(protocol.DeviceTopic(id, protocol.KindStatus), will, 1, true).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			if err == nil {
				d.mu.Lock()
				d.conn = c
				d.mu.Unlock()
			}
			return c, err
		})
	d.c = mqtt.NewClient(opts)
	if tok := d.c.Connect(); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", clientID, tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(0) })
	online, _ := json.Marshal(protocol.Status{Online: true, Boot: boot, Conn: conn, TS: time.Now().UnixMilli()})
	if tok := d.c.Publish(protocol.DeviceTopic(id, protocol.KindStatus), 1, true, online); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
		t.Fatalf("%s online: %v", clientID, tok.Error())
	}
	return d
}

// drop ends the TCP connection without DISCONNECT: the broker publishes
// the Will.
func (d *rawDevice) drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conn.Close()
}

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

// waitFor polls the presence log until match holds for an entry after
// from; it returns that entry's index.
func (p *presenceLog) waitFor(t *testing.T, what string, from int, match func(loa.DeviceState) bool) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		p.mu.Lock()
		for i := from; i < len(p.log); i++ {
			if match(p.log[i]) {
				p.mu.Unlock()
				return i
			}
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	stale := connectRaw(t, s.m.MQTTURL(), "rx-race", pw, "rx-race-3", boot, 3)
	waitOnlineAPI(t, s.api, "rx-race", true)
	// Its online status is acknowledged by the broker before connection 3
	// drops, so the controller receives it before 3's Will.
	connectRaw(t, s.m.MQTTURL(), "rx-race", pw, "rx-race-4", boot, 4)
	w := watchDevice(t, s.m, "rx-race")
	staleBefore := s.m.Fleet.Stats().Stale

	stale.drop() // the late Will: offline, boot b, conn 3
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
