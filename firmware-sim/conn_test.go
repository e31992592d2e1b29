package firmwaresim

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	mochipk "github.com/mochi-mqtt/server/v2/packets"

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

// warnings counts the receiver's log records at Warn or above whose
// message contains one of the given words.
type warnings struct {
	words []string
	n     atomic.Int64
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, rec slog.Record) error {
	for _, word := range w.words {
		if strings.Contains(rec.Message, word) {
			w.n.Add(1)
		}
	}
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// afterOutage checks what a receiver says around a lost link: the event
// held while the link was down reaches the controller, then the next
// command is acked, in that order, and no publish ever waited out a
// timeout (the outbox used to stall 10 s on a token paho never completes,
// so the ack came late and the event never).
func afterOutage(t *testing.T, rec *recorder, dev string, w *warnings, wantEvent bool, online func(mqttMsg) bool) {
	t.Helper()
	rec.wait(t, "online again", online)
	id := rec.send(t, dev, protocol.OpVolume, protocol.VolumeArgs{Level: 40}, time.Now().Add(time.Minute))
	rec.finalAck(t, dev, id)
	isEvent := isTopic(dev, protocol.KindEvent)
	evAt := rec.index(func(m mqttMsg) bool {
		ev, err := protocol.DecodeEvent(m.payload)
		return isEvent(m) && err == nil && ev.Type == protocol.EventAmpFault
	})
	ackAt := rec.index(func(m mqttMsg) bool {
		a, err := protocol.DecodeAck(m.payload)
		return isTopic(dev, protocol.KindAck)(m) && err == nil && a.ID == id
	})
	if wantEvent && (evAt < 0 || evAt > ackAt) {
		t.Errorf("amp_fault event at %d, ack of %s at %d: want the held event first", evAt, id, ackAt)
	}
	if n := w.n.Load(); n != 0 {
		t.Errorf("%d publishes failed or timed out around the outage", n)
	}
}

// awaitRefusedAndGone waits until the broker refused a reconnect of dev
// and has forgotten its lost connection. A reconnect racing mochi's clean-up
// of the old connection can lose the new one's registration (the old one's
// clean-up deletes the client by id after the new one took it over), and
// commands to it then vanish: the tests hold reconnects until it is done.
func awaitRefusedAndGone(t *testing.T, b *loatest.Broker, dev string, refused int) {
	t.Helper()
	loatest.Eventually(t, waitLimit, func() bool {
		_, there := b.Server().Clients.Get(dev)
		return b.Refused() > refused && !there
	}, "a refused reconnect, the old connection gone")
}

// An event raised while paho reconnects (the broker refusing it for a
// while) goes out on the next connection, and the queue behind it does not
// stall.
func TestReceiverAcksPromptlyAfterReconnect(t *testing.T) {
	b := loatest.StartBroker(t, "")
	broker, srv := b.URL(), b.Server()
	rec := newRecorder(t, broker, "ctl")
	w := &warnings{words: []string{"publish", "acknowledged"}}
	r := startReceiver(t, Config{ID: "rx-1", Broker: broker, Logger: slog.New(w)})
	isStatus := isTopic("rx-1", protocol.KindStatus)
	first := statusOf(t, rec.wait(t, "online", isStatus))

	refused := b.Refused()
	b.RefuseConnects(true)
	cl, ok := srv.Clients.Get("rx-1")
	if !ok {
		t.Fatal("rx-1 not connected")
	}
	cl.Net.Conn.Close()
	awaitRefusedAndGone(t, b, "rx-1", refused)
	if err := r.SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	b.RefuseConnects(false)
	afterOutage(t, rec, "rx-1", w, true, func(m mqttMsg) bool {
		return isStatus(m) && statusOf(t, m).Online && statusOf(t, m).Conn > first.Conn
	})
}

// dropUnacked cuts a client's link on its next publish to topic before
// the broker acknowledges it, and discards the publish: a PUBACK lost
// with the link.
type dropUnacked struct {
	mochi.HookBase
	topic string
	armed atomic.Bool
}

func (h *dropUnacked) ID() string           { return "drop-unacked" }
func (h *dropUnacked) Provides(b byte) bool { return b == mochi.OnPublish }
func (h *dropUnacked) OnPublish(cl *mochi.Client, pk mochipk.Packet) (mochipk.Packet, error) {
	if pk.TopicName == h.topic && h.armed.CompareAndSwap(true, false) {
		cl.Net.Conn.Close()
		return pk, mochipk.ErrRejectPacket
	}
	return pk, nil
}

// An event in flight when the link drops (its PUBACK never comes) goes
// again on the next connection, and the queue behind it does not stall.
func TestReceiverResendsUnackedAfterReconnect(t *testing.T) {
	b := loatest.StartBroker(t, "")
	broker, srv := b.URL(), b.Server()
	drop := &dropUnacked{topic: protocol.DeviceTopic("rx-1", protocol.KindEvent)}
	if err := srv.AddHook(drop, nil); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(t, broker, "ctl")
	w := &warnings{words: []string{"publish", "acknowledged"}}
	r := startReceiver(t, Config{ID: "rx-1", Broker: broker, Logger: slog.New(w)})
	isStatus := isTopic("rx-1", protocol.KindStatus)
	first := statusOf(t, rec.wait(t, "online", isStatus))

	refused := b.Refused()
	b.RefuseConnects(true)
	drop.armed.Store(true)
	if err := r.SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	awaitRefusedAndGone(t, b, "rx-1", refused)
	b.RefuseConnects(false)
	afterOutage(t, rec, "rx-1", w, true, func(m mqttMsg) bool {
		return isStatus(m) && statusOf(t, m).Online && statusOf(t, m).Conn > first.Conn
	})
	if drop.armed.Load() {
		t.Error("the link was never cut on the event")
	}
}

// A broker restart (the controller's embedded broker restarting with it)
// while the receiver has something to say.
func TestReceiverAcksPromptlyAfterBrokerRestart(t *testing.T) {
	b := loatest.StartBroker(t, "")
	broker := b.URL()
	w := &warnings{words: []string{"publish", "acknowledged"}}
	r := startReceiver(t, Config{ID: "rx-1", Broker: broker, Logger: slog.New(w)})
	conn := r.Conn()

	b.Stop()
	if err := r.SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	// Whether the held event reaches this recorder depends on it
	// subscribing before the receiver is back (the tests above check it).
	rec := newRecorder(t, broker, "ctl")
	isStatus := isTopic("rx-1", protocol.KindStatus)
	afterOutage(t, rec, "rx-1", w, false, func(m mqttMsg) bool {
		return isStatus(m) && statusOf(t, m).Online && statusOf(t, m).Conn > conn
	})
}

// Close while the link is down returns without waiting for the link.
func TestReceiverClosesWhileOffline(t *testing.T) {
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
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close waits for a link that is down")
	}
}
