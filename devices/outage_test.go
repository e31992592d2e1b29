package devices

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// While the controller's own broker link is down nobody is known online:
// presence is unknown, commands are refused as unreachable (to be retried,
// not failed), no presence becomes "offline" for it, and a device is
// online again only once its status arrives over the new link. One whose
// status never comes back is offline once the link has settled.
func TestPresenceUnknownWhileLinkDown(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{PresenceSettle: 300 * time.Millisecond})
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 1, Conn: 1})
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-2", Boot: 1, Conn: 1})
	// The two statuses come over two connections in either order, and
	// a presence watch's wait discards the other device's change: ask the states instead.
	loatest.Eventually(t, waitLimit, func() bool {
		a, _ := f.DeviceState("dev-1")
		b, _ := f.DeviceState("dev-2")
		return a.Online && b.Online
	}, "both devices online")

	b.Stop()
	loatest.Eventually(t, waitLimit, func() bool {
		st, _ := f.DeviceState("dev-1")
		return st.Presence == loa.PresenceUnknown
	}, "presence unknown while the link is down")
	for _, st := range f.States() {
		if st.Online || st.Presence != loa.PresenceUnknown {
			t.Errorf("during the outage %s = %+v, want unknown", st.ID, st)
		}
	}
	if n := f.Stats().Online; n != 0 {
		t.Errorf("Stats.Online = %d during the outage", n)
	}
	_, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil)
	var u interface{ Unreachable() bool }
	if code(err) != loa.EUNAVAILABLE || !errors.As(err, &u) || !u.Unreachable() {
		t.Fatalf("command during the outage: %v, want EUNAVAILABLE marked unreachable", err)
	}

	b.Restart() // a fresh broker: no retained statuses
	loatest.Eventually(t, waitLimit, f.LinkUp, "the fleet reconnects")
	if st, _ := f.DeviceState("dev-1"); st.Online {
		t.Fatalf("dev-1 online before its status returned: %+v", st)
	}
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 1, Conn: 2, Answer: answerDone})
	loatest.Eventually(t, waitLimit, func() bool {
		st, _ := f.DeviceState("dev-1")
		return st.Online && st.Presence == loa.PresenceOnline
	}, "dev-1 online once its status arrives")
	if _, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil); err != nil {
		t.Fatalf("command after the outage: %v", err)
	}
	loatest.Eventually(t, waitLimit, func() bool {
		st, _ := f.DeviceState("dev-2")
		return !st.Online && st.Presence == loa.PresenceOffline
	}, "dev-2, never back, offline once the link settled")
}

// With StartDown a broker unreachable at start is an outage, not Open's
// error: the fleet opens with the link down (presence unknown, commands
// refused as unreachable, BrokerHealth not connected) and connects when
// the broker is up. Refused credentials still fail Open.
func TestOpenStartDown(t *testing.T) {
	b := loatest.StartBroker(t, "")
	b.Stop()
	f, err := Open(testCtx(t), Config{Broker: b.URL(), StartDown: true,
		Initial: []loa.DeviceState{{ID: "dev-1", Online: true}}})
	if err != nil {
		t.Fatalf("Open with the broker down: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	if h := f.BrokerHealth(); h.Connected || h.Since.IsZero() || f.LinkUp() {
		t.Fatalf("broker health %+v with the broker down", h)
	}
	if st, _ := f.DeviceState("dev-1"); st.Presence != loa.PresenceUnknown || st.Online {
		t.Errorf("dev-1 %+v with the link down, want unknown", st)
	}
	_, err = f.Command(testCtx(t), "dev-1", protocol.OpTest, nil)
	var u interface{ Unreachable() bool }
	if code(err) != loa.EUNAVAILABLE || !errors.As(err, &u) || !u.Unreachable() {
		t.Fatalf("command with the link down: %v, want EUNAVAILABLE marked unreachable", err)
	}

	b.Restart()
	loatest.Eventually(t, waitLimit, f.LinkUp, "the fleet connects once the broker is up")
	if h := f.BrokerHealth(); !h.Connected {
		t.Errorf("broker health %+v once connected", h)
	}
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 1, Conn: 1, Answer: answerDone})
	loatest.Eventually(t, waitLimit, func() bool { st, _ := f.DeviceState("dev-1"); return st.Online }, "dev-1 online")
	if _, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil); err != nil {
		t.Fatalf("command once connected: %v", err)
	}

	// Closed before the broker ever came up: Close returns.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + l.Addr().String()
	l.Close()
	g, err := Open(testCtx(t), Config{Broker: dead, StartDown: true})
	if err != nil {
		t.Fatalf("Open with no broker and StartDown: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("close a fleet never connected: %v", err)
	}

	// Refused credentials are not an outage.
	auth := loatest.StartBroker(t, "right")
	if g, err := Open(testCtx(t), Config{Broker: auth.URL(), Username: "loa", Password: "wrong", StartDown: true}); code(err) != loa.EUNAUTHORIZED {
		if err == nil {
			g.Close()
		}
		t.Fatalf("Open with wrong credentials and StartDown: %v, want %s", err, loa.EUNAUTHORIZED)
	}
}
