package firmwaresim

import (
	"testing"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

func statusOf(t *testing.T, m mqttMsg) protocol.Status {
	t.Helper()
	s, err := protocol.DecodeStatus(m.payload)
	if err != nil {
		t.Fatalf("status %q: %v", m.payload, err)
	}
	return s
}

// A dropped connection (no reboot) comes back as the next conn of the same
// boot: its Will carried the old conn, the new online status the new one;
// a graceful close reports the conn it closes.
func TestReceiverConnCountsConnections(t *testing.T) {
	b := loatest.StartBroker(t, "")
	broker, srv := b.URL(), b.Server()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx-1", Broker: broker})
	isStatus := isTopic("rx-1", protocol.KindStatus)
	first := statusOf(t, rec.wait(t, "online on conn 1", isStatus))
	if !first.Online || first.Conn != 1 || first.Boot != r.Boot() {
		t.Fatalf("first status %+v, want online, conn 1, boot %d", first, r.Boot())
	}

	// The link drops: the broker side of the connection goes away (paho
	// takes a close of its own socket for a deliberate one).
	cl, ok := srv.Clients.Get("rx-1")
	if !ok {
		t.Fatal("rx-1 not connected")
	}
	// The Will as the broker holds it for this connection. Whether mochi
	// then publishes it races the receiver's reconnect taking the session
	// over (package broker publishes it either way); what the receiver
	// owns is its content.
	will, err := protocol.DecodeStatus(cl.Properties.Will.Payload)
	if err != nil || will.Online {
		t.Fatalf("Will of conn 1: %+v, %v; want an offline status", will, err)
	}
	cl.Net.Conn.Close()

	if will.Conn != 1 || will.Boot != first.Boot {
		t.Errorf("Will %+v, want boot %d conn 1", will, first.Boot)
	}
	again := statusOf(t, rec.wait(t, "online on a later conn", func(m mqttMsg) bool {
		s := statusOf(t, m)
		return isStatus(m) && s.Online && s.Conn > 1
	}))
	if again.Boot != first.Boot || again.Conn != r.Conn() {
		t.Errorf("online again %+v, want boot %d conn %d", again, first.Boot, r.Conn())
	}
	if !will.Older(again.Boot, again.Conn) {
		t.Errorf("the old Will %+v does not order before the new online %+v", will, again)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	last := statusOf(t, rec.wait(t, "offline on close", func(m mqttMsg) bool {
		s := statusOf(t, m)
		return isStatus(m) && !s.Online && s.Conn == again.Conn
	}))
	if last.Boot != first.Boot {
		t.Errorf("close status %+v", last)
	}
}
