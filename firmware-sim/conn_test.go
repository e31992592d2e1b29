package firmwaresim

import (
	"testing"
	"time"

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

// A receiver the broker refuses (CONNACK "not authorised": credentials
// revoked for a while, its client id held) keeps trying with back-off and
// is back once the broker accepts it: after a reboot, whose first connect
// paho never retries, and after a dropped link.
func TestReceiverRetriesRefusedConnects(t *testing.T) {
	b := loatest.StartBroker(t, "")
	broker, srv := b.URL(), b.Server()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx-1", Broker: broker})
	isStatus := isTopic("rx-1", protocol.KindStatus)
	first := statusOf(t, rec.wait(t, "online", isStatus))

	// Reboot while the broker refuses.
	b.RefuseConnects(true)
	rec.send(t, "rx-1", protocol.OpReboot, protocol.RebootArgs{}, time.Now().Add(time.Minute))
	loatest.Eventually(t, waitLimit, func() bool { return b.Refused() >= 2 }, "a refused connect retried")
	b.RefuseConnects(false)
	booted := statusOf(t, rec.wait(t, "online after the reboot", func(m mqttMsg) bool {
		return isStatus(m) && statusOf(t, m).Online && statusOf(t, m).Boot > first.Boot
	}))
	if booted.Conn < 2 || booted.Conn != r.Conn() {
		t.Errorf("online after the reboot %+v: want each attempt counted (conn ≥ 2, the receiver's %d)", booted, r.Conn())
	}

	// The link drops while the broker refuses.
	refused := b.Refused()
	b.RefuseConnects(true)
	cl, ok := srv.Clients.Get("rx-1")
	if !ok {
		t.Fatal("rx-1 not connected")
	}
	cl.Net.Conn.Close()
	loatest.Eventually(t, waitLimit, func() bool { return b.Refused() >= refused+2 }, "a refused reconnect retried")
	b.RefuseConnects(false)
	rec.wait(t, "online after the drop", func(m mqttMsg) bool {
		if !isStatus(m) {
			return false
		}
		s := statusOf(t, m)
		return s.Online && s.Boot == booted.Boot && s.Conn > booted.Conn
	})
}
