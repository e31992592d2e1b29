package devices

import (
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// The late-Will race within one boot: the receiver lost connection k, came
// back on connection k+1 (online) before the broker noticed k was dead;
// then k's Will (offline, boot b, conn k) arrives. The device stays online.
func TestPresenceLateWillOfEarlierConnectionIgnored(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	w := watchPresence(t, f)

	// Different client ids, so the broker keeps connection 1 open (as a
	// half-dead 4G link it has not timed out yet) while 2 is up.
	first := loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", ClientID: "dev-1-conn1", Boot: 5, Conn: 1})
	w.wait(t, "dev-1", true)
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", ClientID: "dev-1-conn2", Boot: 5, Conn: 2})
	loatest.Eventually(t, waitLimit, func() bool { return f.Stats().Stale == 0 && f.deviceConn("dev-1") == 2 }, "connection 2 seen")
	before, _ := f.DeviceState("dev-1")

	first.Drop() // the broker publishes connection 1's Will: offline, boot 5, conn 1
	loatest.Eventually(t, waitLimit, func() bool { return f.Stats().Stale == 1 }, "the late Will counted as stale")
	stillOnline(t, f, w, 5, before.OnlineSince)
}

// The ordinary transitions keep working with conn: online, its own Will
// (offline), online again on a new connection, a reboot (boot+1, conn
// back to 1), and stale statuses of older pairs in between.
func TestPresenceOrdersByBootThenConn(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	now := t0
	f := linkedFleet(Config{Now: func() time.Time { return now }})
	topic := protocol.DeviceTopic("dev-1", protocol.KindStatus)
	step := func(payload string, online bool, boot uint64, stale uint64) {
		t.Helper()
		now = now.Add(time.Minute)
		f.handle(topic, []byte(payload), true)
		st, _ := f.DeviceState("dev-1")
		if st.Online != online || st.Boot != boot || f.Stats().Stale != stale {
			t.Fatalf("after %s: online %v boot %d stale %d; want %v %d %d", payload, st.Online, st.Boot, f.Stats().Stale, online, boot, stale)
		}
	}
	step(`{"online":true,"boot":3,"conn":1,"ts":1}`, true, 3, 0)
	step(`{"online":false,"boot":3,"conn":1,"ts":1}`, false, 3, 0) // its own Will
	step(`{"online":true,"boot":3,"conn":2,"ts":1}`, true, 3, 0)   // back on a new connection
	step(`{"online":false,"boot":3,"conn":1,"ts":1}`, true, 3, 1)  // a duplicate of the old Will: stale
	step(`{"online":true,"boot":3,"conn":3,"ts":1}`, true, 3, 1)   // reconnected before conn 2's Will
	step(`{"online":false,"boot":3,"conn":2,"ts":1}`, true, 3, 2)  // conn 2's late Will: stale
	step(`{"online":false,"boot":3,"conn":3,"ts":1}`, false, 3, 2) // the live connection's Will
	step(`{"online":true,"boot":4,"conn":1,"ts":1}`, true, 4, 2)   // rebooted: conn starts again
	step(`{"online":false,"boot":3,"conn":9,"ts":1}`, true, 4, 3)  // any Will of boot 3 is stale
	// A receiver from before conn (always 0) is ordered by boot alone.
	step(`{"online":false,"boot":4,"ts":1}`, true, 4, 4) // older than conn 1 of boot 4
	step(`{"online":true,"boot":5,"ts":1}`, true, 5, 4)
	step(`{"online":false,"boot":5,"ts":1}`, false, 5, 4)
	step(`{"online":true,"boot":5,"ts":1}`, true, 5, 4)
}

// deviceConn returns the conn of the device's accepted status.
func (f *Fleet) deviceConn(id string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.devices[id]; ok {
		return d.conn
	}
	return 0
}
