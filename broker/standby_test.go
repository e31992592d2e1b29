package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	pahopackets "github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// connackCode sends a device's MQTT 3.1.1 CONNECT and returns the CONNACK's
// return code as the bytes on the wire say it.
func connackCode(t *testing.T, b *Broker, user, pass string) byte {
	t.Helper()
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60,
			ClientIdentifier: user, UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass)}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[1] != 2 {
		t.Fatalf("CONNACK %x, %v", ack, err)
	}
	return ack[3]
}

// A broker on standby (a follower) answers devices CONNACK 3 whatever
// their credentials, lets the controller's account in, and on leaving
// standby lets devices in; going on standby drops them (their Wills go
// out) and refuses them again.
func TestStandbyRefusesDevices(t *testing.T) {
	b := startBroker(t, func(c *Config) { c.Standby = true })
	if b.Accepting() {
		t.Fatal("a broker started on standby says it accepts")
	}
	if got := connackCode(t, b, "d1", "p1"); got != 3 {
		t.Errorf("device on standby: CONNACK %d, want 3 (server unavailable)", got)
	}
	if got := connackCode(t, b, "d1", "wrong"); got != 3 {
		t.Errorf("device with a bad password on standby: CONNACK %d, want 3", got)
	}
	_, err := connectWith(clientOptions(b, "d2", "d2", "p2"))
	if !errors.Is(err, pahopackets.ErrorRefusedServerUnavailable) {
		t.Errorf("paho device on standby: %v, want server unavailable", err)
	}
	// The controller's account still connects; a wrong password does not.
	ctl := mustConnect(t, clientOptions(b, ctlUser+"-n1", ctlUser, ctlPass))
	if _, err := connectWith(clientOptions(b, ctlUser+"-n2", ctlUser, "nope")); err == nil {
		t.Error("controller account with a wrong password let in on standby")
	}
	wills := newInbox()
	subscribe(t, ctl, protocol.DeviceTopic("d1", protocol.KindStatus), wills.handle)

	b.SetAccepting(true)
	if got := connackCode(t, b, "d3", "wrong"); got != 5 {
		t.Errorf("bad password once accepting: CONNACK %d, want 5 (not authorised)", got)
	}
	lost := make(chan error, 1)
	o := clientOptions(b, "d1", "d1", "p1").
		SetBinaryWill(protocol.DeviceTopic("d1", protocol.KindStatus), []byte(`{"online":false}`), 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	mustConnect(t, o)

	b.SetAccepting(false)
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("a device stayed connected after the broker went on standby")
	}
	wills.waitFor(t, `{"online":false}`)
	if got := connackCode(t, b, "d1", "p1"); got != 3 {
		t.Errorf("device after going on standby: CONNACK %d, want 3", got)
	}
	if !ctl.IsConnectionOpen() {
		t.Error("the controller's own connection was dropped on standby")
	}
	if s := b.Stats(); s.Standby != 5 { // four refused connects and one drop
		t.Errorf("Stats().Standby = %d, want 5", s.Standby)
	}
	loatest.Eventually(t, wait, func() bool { return b.Stats().Clients == 1 }, "only the controller connected")
}

// A device whose credentials were being checked when the broker went on
// standby (so the sweep could not see it yet) is dropped as soon as it is
// established.
func TestStandbyDuringCredentialCheck(t *testing.T) {
	g := gatedAuth{checking: make(chan struct{}), release: make(chan struct{})}
	b := startBroker(t, func(c *Config) { c.Auth = g })
	ctl := mustConnect(t, clientOptions(b, ctlUser, ctlUser, ctlPass))
	lost := make(chan struct{})
	type result struct {
		c   paho.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := connectWith(clientOptions(b, "d1", "d1", "p1").
			SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))
		done <- result{c, err}
	}()
	<-g.checking          // past the standby check, its password being checked...
	b.SetAccepting(false) // ...when the node stops leading
	close(g.release)
	if r := <-done; r.err == nil {
		defer r.c.Disconnect(0)
		select {
		case <-lost:
		case <-time.After(wait):
			t.Fatal("a device let in as the broker went on standby stayed connected")
		}
	}
	loatest.Eventually(t, wait, func() bool { return b.Stats().Clients == 1 }, "only the controller connected")
	if !ctl.IsConnectionOpen() {
		t.Error("the controller's connection was dropped")
	}
}
