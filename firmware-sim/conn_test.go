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

// What a receiver publishes while its link is down waits for the link
// (QoS 1) instead of vanishing into paho's store with a token that never
// completes, which stalled every later ack for 10 s: after the reconnect
// the held event goes out, a new command is acked at once, and Close
// does not wait out a stale token either.
func TestReceiverAcksPromptlyAfterReconnect(t *testing.T) {
	b := loatest.StartBroker(t, "")
	broker, srv := b.URL(), b.Server()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx-1", Broker: broker})
	isStatus := isTopic("rx-1", protocol.KindStatus)
	first := statusOf(t, rec.wait(t, "online", isStatus))

	// The link drops and the broker refuses the reconnects for a while:
	// the receiver is reconnecting when its amplifier fails.
	refused := b.Refused()
	b.RefuseConnects(true)
	cl, ok := srv.Clients.Get("rx-1")
	if !ok {
		t.Fatal("rx-1 not connected")
	}
	cl.Net.Conn.Close()
	loatest.Eventually(t, waitLimit, func() bool { return b.Refused() > refused }, "a refused reconnect")
	if err := r.SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	b.RefuseConnects(false)
	rec.wait(t, "online again", func(m mqttMsg) bool {
		if !isStatus(m) {
			return false
		}
		s := statusOf(t, m)
		return s.Online && s.Conn > first.Conn
	})

	// A command right after the reconnect: the outbox must not be stuck
	// behind a message of the lost connection (the stall was 10 s).
	sent := time.Now()
	id := rec.send(t, "rx-1", protocol.OpVolume, protocol.VolumeArgs{Level: 40}, time.Now().Add(time.Minute))
	rec.finalAck(t, "rx-1", id)
	if took := time.Since(sent); took > 3*time.Second {
		t.Errorf("ack %s after the reconnect took %v, want well under the 10 s stall", id, took)
	}
	rec.wait(t, "the amp_fault event held while offline", func(m mqttMsg) bool {
		ev, err := protocol.DecodeEvent(m.payload)
		return isTopic("rx-1", protocol.KindEvent)(m) && err == nil && ev.Type == protocol.EventAmpFault
	})

	closing := time.Now()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(closing); took > 3*time.Second {
		t.Errorf("Close after a reconnect took %v, want no wait on a stale token", took)
	}
}

// A broker restart (the controller's embedded broker restarting with it)
// while the receiver has something to say: once back, the next command is
// acked at once. (Whether the held event reaches a controller depends on
// it subscribing before the receiver is back: the test above checks it.)
func TestReceiverAcksPromptlyAfterBrokerRestart(t *testing.T) {
	b := loatest.StartBroker(t, "")
	broker := b.URL()
	r := startReceiver(t, Config{ID: "rx-1", Broker: broker})
	conn := r.Conn()

	b.Stop()
	if err := r.SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	rec := newRecorder(t, broker, "ctl")
	isStatus := isTopic("rx-1", protocol.KindStatus)
	rec.wait(t, "online after the restart", func(m mqttMsg) bool {
		if !isStatus(m) {
			return false
		}
		s := statusOf(t, m)
		return s.Online && s.Conn > conn
	})
	sent := time.Now()
	id := rec.send(t, "rx-1", protocol.OpVolume, protocol.VolumeArgs{Level: 40}, time.Now().Add(time.Minute))
	rec.finalAck(t, "rx-1", id)
	if took := time.Since(sent); took > 3*time.Second {
		t.Errorf("ack %s after the broker restart took %v, want well under the 10 s stall", id, took)
	}
}

// Close while the link is down drops what waits for it and returns at
// once, instead of waiting on tokens paho will never complete.
func TestReceiverClosesPromptlyWhileOffline(t *testing.T) {
	b := loatest.StartBroker(t, "")
	broker, srv := b.URL(), b.Server()
	r := startReceiver(t, Config{ID: "rx-1", Broker: broker})
	refused := b.Refused()
	b.RefuseConnects(true)
	cl, ok := srv.Clients.Get("rx-1")
	if !ok {
		t.Fatal("rx-1 not connected")
	}
	cl.Net.Conn.Close()
	loatest.Eventually(t, waitLimit, func() bool { return b.Refused() > refused }, "a refused reconnect")
	if err := r.SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	closing := time.Now()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(closing); took > 3*time.Second {
		t.Errorf("Close while offline took %v, want no wait on the lost link", took)
	}
}
