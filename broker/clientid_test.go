package broker

import (
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

func TestACLClientID(t *testing.T) {
	a := acl{controller: "ctl"}
	for _, tt := range []struct {
		user, id string
		want     bool
	}{
		{"d1", "d1", true},
		{"d1", "d2", false},
		{"d1", "d1-x", false},
		{"d1", "", false},
		{"d1", "ctl", false},
		{"ctl", "ctl", true},
		{"ctl", "ctl-node2", true},
		{"ctl", "ctl-", false},
		{"ctl", "ctlx", false},
		{"ctl", "d1", false},
		{"ctl-node2", "ctl-node2", false}, // a device account in the controller's namespace
		{"inline", "inline", false},       // mochi's in-process client
	} {
		if got := a.clientID(tt.user, tt.id); got != tt.want {
			t.Errorf("clientID(%q, %q) = %v, want %v", tt.user, tt.id, got, tt.want)
		}
	}
}

// alive checks, with a QoS 1 round trip, that c is still connected.
func alive(t *testing.T, c paho.Client, device string) {
	t.Helper()
	publish(t, c, protocol.DeviceTopic(device, protocol.KindEvent), 1, false, "alive")
	if !c.IsConnectionOpen() {
		t.Fatalf("%s was disconnected", device)
	}
}

// A device's client id is its own id: a device (with valid credentials of
// its own) connecting with another's id is refused, whether the owner is
// online or not, and the owner stays connected or gets in.
func TestDeviceClientIDIsItsOwnID(t *testing.T) {
	b := startBroker(t, func(c *Config) {
		// Device accounts whose ids are reserved: they exist in the store
		// and know their passwords, and still may not connect.
		c.Auth = fakeAuth{"d1": "p1", "d2": "p2", ctlUser + "-n1": "pc", "inline": "pi"}
	})
	lost := make(chan struct{})
	d1 := mustConnect(t, clientOptions(b, "d1", "d1", "p1").
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))

	refused := []struct{ id, user, pass string }{
		{"d1", "d2", "p2"},                       // the owner's id while it is online
		{"d2-spare", "d2", "p2"},                 // any id but its own
		{ctlUser, "d2", "p2"},                    // the controller's
		{ctlUser + "-n1", "d2", "p2"},            // a controller node's
		{ctlUser + "-n1", ctlUser + "-n1", "pc"}, // a device account in the controller's namespace
		{"inline", "inline", "pi"},               // mochi's in-process client
		{"d1", ctlUser, ctlPass},                 // the controller may not take a device's id either
	}
	for i, r := range refused {
		if c, err := connectWith(clientOptions(b, r.id, r.user, r.pass)); err == nil {
			c.Disconnect(0)
			t.Errorf("%s connected with client id %q", r.user, r.id)
		}
		if s := b.Stats(); s.Refused != uint64(i+1) {
			t.Errorf("after %+v: Refused = %d, want %d", r, s.Refused, i+1)
		}
	}
	select {
	case <-lost:
		t.Fatal("the owner was disconnected")
	default:
	}
	alive(t, d1, "d1")

	// Offline, its id is no more free: the squatter is refused, and the
	// owner gets in when it comes back (it was refused CONNACK 5 until the
	// squatter left).
	d1.Disconnect(250)
	loatest.Eventually(t, wait, func() bool { return b.Stats().Clients == 0 }, "d1 gone")
	if c, err := connectWith(clientOptions(b, "d1", "d2", "p2")); err == nil {
		c.Disconnect(0)
		t.Fatal("d2 took d1's client id while d1 was offline")
	}
	alive(t, mustConnect(t, clientOptions(b, "d1", "d1", "p1")), "d1")
}

// Every node of a station connects with the controller's account under a
// client id of its own; both stay connected.
func TestControllerNodes(t *testing.T) {
	b := startBroker(t)
	lost := make(chan struct{})
	n1 := mustConnect(t, clientOptions(b, ctlUser+"-n1", ctlUser, ctlPass).
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))
	n2 := mustConnect(t, clientOptions(b, ctlUser+"-n2", ctlUser, ctlPass))
	alive(t, n2, "x")
	alive(t, n1, "x")
	select {
	case <-lost:
		t.Fatal("a second controller node disconnected the first")
	default:
	}
}

// One live connection per device: a new connection of the account takes
// over the old one, which the broker disconnects, as MQTT specifies for a
// repeated client id. A device whose 4G link died silently is back at
// once, and one credential never holds more than one connection.
func TestDeviceConnectionTakesOver(t *testing.T) {
	b := startBroker(t)
	ctl := mustConnect(t, clientOptions(b, ctlUser, ctlUser, ctlPass))
	var conns []chan struct{}
	var clients []paho.Client
	for i := range 5 {
		lost := make(chan struct{})
		conns = append(conns, lost)
		cc := make(chan net.Conn, 1)
		c := mustConnect(t, clientOptions(b, "d1", "d1", "p1").
			SetCustomOpenConnectionFn(abruptConn(cc)).
			SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))
		clients = append(clients, c)
		<-cc // the old link lingers: nothing closes it from the device's side
		if i > 0 {
			select {
			case <-conns[i-1]:
			case <-time.After(wait):
				t.Fatalf("connection %d not taken over by connection %d", i-1, i)
			}
		}
	}
	loatest.Eventually(t, wait, func() bool { return deviceConnections(b, "d1") == 1 }, "one connection of d1")

	// The last connection is the device: it gets its commands.
	in := newInbox()
	last := clients[len(clients)-1]
	if q := subscribe(t, last, protocol.DeviceTopic("d1", protocol.KindCmd), in.handle); q != 1 {
		t.Fatalf("subscribe: granted %#x", q)
	}
	publish(t, ctl, protocol.DeviceTopic("d1", protocol.KindCmd), 1, false, "cmd")
	in.waitFor(t, "cmd")
	alive(t, last, "d1")
}

// deviceConnections counts the live network connections of account user.
func deviceConnections(b *Broker, user string) int {
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if !cl.Net.Inline && !cl.Closed() && string(cl.Properties.Username) == user {
			n++
		}
	}
	return n
}
