package devices

import (
	"context"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

func TestPresenceOnlineThenLastWill(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	w := watchPresence(t, f)

	d := loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 7})
	on := w.wait(t, "dev-1", true)
	if on.Boot != 7 || on.OnlineSince.IsZero() || on.LastSeen.IsZero() {
		t.Fatalf("online state = %+v", on)
	}
	if got := f.Stats().Online; got != 1 {
		t.Fatalf("Stats().Online = %d, want 1", got)
	}

	d.Drop()
	off := w.wait(t, "dev-1", false)
	if off.Boot != 7 || !off.OnlineSince.IsZero() {
		t.Fatalf("offline state = %+v", off)
	}
	st, ok := f.DeviceState("dev-1")
	if !ok || st.Online {
		t.Fatalf("DeviceState = %+v, %v; want offline", st, ok)
	}
	if got := f.Stats().Online; got != 0 {
		t.Fatalf("Stats().Online = %d, want 0", got)
	}
}

func TestPresenceLateWillOfEarlierBootIgnored(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	w := watchPresence(t, f)

	// Boot 1's connection is still open at the broker when the device has
	// rebooted and connected again as boot 2 (a new client id here, so
	// the broker does not take the old session over).
	old := loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", ClientID: "dev-1-boot1", Boot: 1})
	w.wait(t, "dev-1", true)
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", ClientID: "dev-1-boot2", Boot: 2})
	loatest.Eventually(t, waitLimit, func() bool { st, _ := f.DeviceState("dev-1"); return st.Boot == 2 }, "boot 2 seen")
	before, _ := f.DeviceState("dev-1")

	old.Drop() // the broker now publishes boot 1's will: offline, boot 1
	loatest.Eventually(t, waitLimit, func() bool { return f.Stats().Stale == 1 }, "stale will counted")

	stillOnline(t, f, w, 2, before.OnlineSince)
}

// stillOnline checks that a late Will left dev-1 online at boot since
// its old online-since, and told no watcher otherwise.
func stillOnline(t *testing.T, f *Fleet, w presenceWatch, boot uint64, since time.Time) {
	t.Helper()
	st, _ := f.DeviceState("dev-1")
	if !st.Online || st.Boot != boot || !st.OnlineSince.Equal(since) {
		t.Fatalf("after the late will: %+v, want online boot %d since %v", st, boot, since)
	}
	if got := f.Stats().Online; got != 1 {
		t.Fatalf("Stats().Online = %d, want 1", got)
	}
	select {
	case st := <-w:
		if !st.Online {
			t.Fatalf("OnPresence reported %+v", st)
		}
	default:
	}
}

func TestPresenceSameBootOfflineThenOnlineAgain(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	now := t0
	f := linkedFleet(Config{Now: func() time.Time { return now }})
	topic := protocol.DeviceTopic("dev-1", protocol.KindStatus)
	f.handle(topic, []byte(`{"online":true,"boot":3,"ts":1}`), true)
	now = t0.Add(time.Minute)
	f.handle(topic, []byte(`{"online":true,"boot":3,"ts":1}`), false) // a duplicate: seen again, same session
	if st, _ := f.DeviceState("dev-1"); !st.OnlineSince.Equal(t0) || !st.LastSeen.Equal(now) {
		t.Fatalf("after a duplicate online: %+v", st)
	}
	now = t0.Add(2 * time.Minute)
	f.handle(topic, []byte(`{"online":false,"boot":3,"ts":1}`), true) // its own will: accepted
	st, _ := f.DeviceState("dev-1")
	if st.Online || !st.OnlineSince.IsZero() {
		t.Fatalf("offline of the same boot ignored: %+v", st)
	}
	if !st.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("the Last Will (published by the broker) moved LastSeen to %v", st.LastSeen)
	}
	now = t0.Add(3 * time.Minute)
	f.handle(topic, []byte(`{"online":true,"boot":3,"ts":1}`), true) // back after a 4G drop, no reboot
	if st, _ := f.DeviceState("dev-1"); !st.Online || !st.OnlineSince.Equal(now) {
		t.Fatalf("online again of the same boot ignored: %+v", st)
	}
	now = t0.Add(4 * time.Minute)
	f.handle(topic, []byte(`{"online":true,"boot":4,"ts":1}`), true) // rebooted before its will fired
	if st, _ := f.DeviceState("dev-1"); !st.Online || st.Boot != 4 || !st.OnlineSince.Equal(now) {
		t.Fatalf("a new boot did not restart OnlineSince: %+v", st)
	}
	f.handle(topic, []byte(`{"online":false,"boot":2,"ts":1}`), true)
	if st, _ := f.DeviceState("dev-1"); !st.Online || st.Boot != 4 {
		t.Fatalf("offline of an earlier boot applied: %+v", st)
	}
	if f.Stats().Online != 1 || f.Stats().Stale != 1 {
		t.Fatalf("stats = %+v", f.Stats())
	}
}

func TestTelemetryVisibleInDeviceState(t *testing.T) {
	b := loatest.StartBroker(t, "")
	now := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	f := openFleet(t, b, Config{Now: func() time.Time { return now }})
	w := watchPresence(t, f)
	d := loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 1})
	w.wait(t, "dev-1", true)

	d.Publish(protocol.KindTele, protocol.Telemetry{
		TS: 1, RSSI: -71, Net: "4g", Volume: 80, Muted: true, Temp: 41.5, Uptime: 3600, FW: "1.2.3", Session: "s-1",
		Stream: &protocol.StreamStats{Received: 1000, Lost: 3, Late: 1, Concealed: 2, FECRecovered: 4, Played: 995, Decoded: 997, JitterMs: 12.5},
	}, false)
	loatest.Eventually(t, waitLimit, func() bool { st, _ := f.DeviceState("dev-1"); return st.Telemetry != nil }, "telemetry")

	st, _ := f.DeviceState("dev-1")
	want := loa.Telemetry{At: now, RSSI: -71, Net: "4g", Volume: 80, Muted: true, TempC: 41.5, UptimeS: 3600, Firmware: "1.2.3", Session: "s-1",
		Stream: &loa.StreamStats{Received: 1000, Lost: 3, Late: 1, Concealed: 2, FECRecovered: 4, Played: 995, JitterMs: 12.5}}
	got := *st.Telemetry
	if got.Stream == nil || *got.Stream != *want.Stream {
		t.Fatalf("stream = %+v, want %+v", got.Stream, want.Stream)
	}
	got.Stream, want.Stream = nil, nil
	if got != want {
		t.Fatalf("telemetry = %+v, want %+v", got, want)
	}
	if !st.LastSeen.Equal(now) {
		t.Fatalf("LastSeen = %v", st.LastSeen)
	}

	// Readers get copies: changing one changes nothing inside the fleet.
	st.Telemetry.Stream.Lost = 999
	again, _ := f.DeviceState("dev-1")
	if again.Telemetry.Stream.Lost != 3 {
		t.Fatal("DeviceState shares memory with the fleet")
	}
}

func TestMalformedPayloadsCountedStateUnchanged(t *testing.T) {
	b := loatest.StartBroker(t, "")
	// A fixed clock: a duplicate of the retained status (the broker may
	// send one live and one retained around the subscription) then
	// changes nothing either.
	now := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	f := openFleet(t, b, Config{Now: func() time.Time { return now }})
	w := watchPresence(t, f)
	d := loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 4, Answer: answerDone})
	w.wait(t, "dev-1", true)
	d.Publish(protocol.KindTele, protocol.Telemetry{Volume: 50}, false)
	loatest.Eventually(t, waitLimit, func() bool { st, _ := f.DeviceState("dev-1"); return st.Telemetry != nil }, "telemetry")
	before, _ := f.DeviceState("dev-1")

	bad := []struct{ kind, payload string }{
		{protocol.KindStatus, `{"online":"yes"}`},
		{protocol.KindStatus, `{"online":false,"boot":9}{}`},
		{protocol.KindTele, `{"volume":101}`},
		{protocol.KindTele, `not json`},
		{protocol.KindAck, `{"id":"x","state":"maybe"}`},
		{protocol.KindAck, `{"state":"done"}`},
		{protocol.KindEvent, `{"type":""}`},
		{protocol.KindEvent, `[1,2]`},
		{protocol.KindTele, `{"net":"` + string(make([]byte, protocol.MaxPayload)) + `"}`}, // oversize
	}
	for _, m := range bad {
		d.PublishRaw(m.kind, []byte(m.payload), false)
	}
	n := uint64(len(bad))
	loatest.Eventually(t, waitLimit, func() bool { return f.Stats().Malformed == n }, "malformed counted")

	after, _ := f.DeviceState("dev-1")
	if after.Malformed != n {
		t.Fatalf("device Malformed = %d, want %d", after.Malformed, n)
	}
	after.Malformed = before.Malformed
	if !equalState(before, after) {
		t.Fatalf("state changed by malformed input:\n%+v\n%+v", before, after)
	}
	if st := f.Stats(); st.Online != 1 || st.UnknownAcks != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// Payloads that parse but lack required fields are refused like garbage:
// `tele {}` once read as a receiver at volume 0, −0 dBm and 0 °C, and
// zeroed its telemetry and that hour's health.
func TestPayloadsWithoutRequiredFieldsChangeNothing(t *testing.T) {
	b := loatest.StartBroker(t, "")
	now := time.Date(2026, 11, 25, 6, 30, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := openFleet(t, b, Config{Now: clock})
	h := NewHealth(HealthConfig{Store: newMemHealth(), Now: clock})
	detach := h.Attach(f)
	defer detach()
	w := watchPresence(t, f)
	d := loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 4, Conn: 1})
	w.wait(t, "dev-1", true)
	d.Publish(protocol.KindTele, protocol.Telemetry{TS: 1, RSSI: -71, Volume: 65, Temp: 41, Uptime: 600}, false)
	loatest.Eventually(t, waitLimit, func() bool { st, _ := f.DeviceState("dev-1"); return st.Telemetry != nil }, "telemetry")
	before, _ := f.DeviceState("dev-1")
	hour := now.Truncate(time.Hour)
	healthBefore, err := h.HealthHistory(context.Background(), "dev-1", hour, hour.Add(time.Hour))
	if err != nil || len(healthBefore) != 1 || healthBefore[0].Samples != 1 {
		t.Fatalf("health before = %+v, %v; want one sample", healthBefore, err)
	}

	bad := []struct{ kind, payload string }{
		{protocol.KindTele, `{}`},
		{protocol.KindTele, `{"ts":2,"rssi":-60,"muted":false,"temp":40,"uptime":601}`}, // no volume
		{protocol.KindTele, `{"ts":2,"rssi":-60,"volume":0,"muted":false,"temp":null,"uptime":601}`},
		{protocol.KindTele, `{"ts":2,"rssi":-60,"volume":0,"muted":false,"temp":40,"uptime":601,"stream":{"received":1}}`},
		{protocol.KindStatus, `{}`},
		{protocol.KindStatus, `{"online":false,"boot":4,"conn":1}`}, // no ts
		{protocol.KindEvent, `{}`},
		{protocol.KindEvent, `{"type":"amp_fault"}`},
		{protocol.KindAck, `{}`},
	}
	for _, m := range bad {
		d.PublishRaw(m.kind, []byte(m.payload), false)
	}
	n := uint64(len(bad))
	loatest.Eventually(t, waitLimit, func() bool { return f.Stats().Malformed == n }, "every payload refused")

	after, _ := f.DeviceState("dev-1")
	after.Malformed = before.Malformed
	if !equalState(before, after) {
		t.Errorf("state changed:\n%+v\n%+v", before, after)
	}
	healthAfter, err := h.HealthHistory(context.Background(), "dev-1", hour, hour.Add(time.Hour))
	if err != nil || len(healthAfter) != 1 || healthAfter[0] != healthBefore[0] {
		t.Errorf("health changed:\n%+v\n%+v (%v)", healthBefore, healthAfter, err)
	}
}

func equalState(a, b loa.DeviceState) bool {
	ta, tb := a.Telemetry, b.Telemetry
	a.Telemetry, b.Telemetry = nil, nil
	if !reflect.DeepEqual(a, b) || (ta == nil) != (tb == nil) {
		return false
	}
	if ta == nil {
		return true
	}
	sa, sb := ta.Stream, tb.Stream
	x, y := *ta, *tb
	x.Stream, y.Stream = nil, nil
	if x != y || (sa == nil) != (sb == nil) {
		return false
	}
	return sa == nil || *sa == *sb
}

func TestMalformedFromUnknownDeviceCreatesNoEntry(t *testing.T) {
	f := linkedFleet(Config{})
	f.handle(protocol.DeviceTopic("ghost", protocol.KindTele), []byte(`{`), false)
	f.handle("loa/v1/dev/UPPER/tele", []byte(`{}`), false) // id outside loa.ValidateID
	f.handle("loa/v1/dev/a/b/tele", []byte(`{}`), false)
	f.handle("elsewhere", []byte(`{}`), false)
	if got := f.Stats().Malformed; got != 4 {
		t.Fatalf("Malformed = %d, want 4", got)
	}
	if got := f.States(); len(got) != 0 {
		t.Fatalf("States = %+v, want none", got)
	}
}

// recordingWriter is a StateWriter that remembers every call.
type recordingWriter struct {
	mu    sync.Mutex
	calls [][]loa.DeviceState
	fail  bool
	got   chan []loa.DeviceState
}

func (w *recordingWriter) PutDeviceStates(_ context.Context, states []loa.DeviceState) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return loa.Errorf(loa.EINTERNAL, "disk full")
	}
	w.calls = append(w.calls, states)
	if w.got != nil {
		w.got <- states
	}
	return nil
}

func TestFlusherWritesDirtyStatesOnly(t *testing.T) {
	b := loatest.StartBroker(t, "")
	wr := &recordingWriter{got: make(chan []loa.DeviceState, 100)}
	openFleet(t, b, Config{
		States:        wr,
		FlushInterval: 10 * time.Millisecond,
		Initial:       []loa.DeviceState{{ID: "quiet", Boot: 1}, {ID: "dev-1", Boot: 1}},
	})
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 2})

	timeout := time.After(waitLimit)
	for {
		select {
		case states := <-wr.got:
			for _, st := range states {
				if st.ID == "quiet" {
					t.Fatalf("flushed an unchanged state: %+v", states)
				}
			}
			if len(states) == 1 && states[0].ID == "dev-1" && states[0].Online && states[0].Boot == 2 {
				return
			}
		case <-timeout:
			t.Fatal("dev-1 online never flushed")
		}
	}
}

func TestFlushRetriesAndCloseFlushes(t *testing.T) {
	wr := &recordingWriter{fail: true}
	f := linkedFleet(Config{States: wr})
	f.handle(protocol.DeviceTopic("dev-1", protocol.KindStatus), []byte(`{"online":true,"boot":1,"ts":1}`), true)
	if err := f.flush(context.Background()); err == nil {
		t.Fatal("flush hid the writer's error")
	}
	wr.mu.Lock()
	wr.fail = false
	wr.mu.Unlock()
	f.handle(protocol.DeviceTopic("dev-2", protocol.KindStatus), []byte(`{"online":true,"boot":1,"ts":1}`), true)
	f.start()
	if err := f.Close(); err != nil { // the final flush
		t.Fatal(err)
	}
	if len(wr.calls) != 1 || len(wr.calls[0]) != 2 {
		t.Fatalf("calls = %+v, want one call with dev-1 (retried) and dev-2", wr.calls)
	}
	if err := f.flush(context.Background()); err != nil || len(wr.calls) != 1 {
		t.Fatalf("a clean state was written again: %v %d", err, len(wr.calls))
	}
}

func TestInitialStateLoaded(t *testing.T) {
	seen := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := linkedFleet(Config{Initial: []loa.DeviceState{
		{ID: "dev-1", Online: true, Boot: 5, LastSeen: seen, Telemetry: &loa.Telemetry{Volume: 30, Stream: &loa.StreamStats{Lost: 2}}},
		{ID: "dev-2", Boot: 1},
		{ID: "Bad ID"},
	}})
	// What the store says was true before the start is not presence now:
	// a device is online only once its status says so again.
	if got := f.Stats().Online; got != 0 {
		t.Fatalf("Online = %d, want 0 before any status", got)
	}
	st, ok := f.DeviceState("dev-1")
	if !ok || st.Online || st.Boot != 5 || !st.LastSeen.Equal(seen) || st.Telemetry.Volume != 30 || st.Telemetry.Stream.Lost != 2 {
		t.Fatalf("dev-1 = %+v", st)
	}
	if got := len(f.States()); got != 2 {
		t.Fatalf("States has %d devices, want 2", got)
	}
	// A late will of boot 4 must not override the stored boot 5.
	f.handle(protocol.DeviceTopic("dev-1", protocol.KindStatus), []byte(`{"online":false,"boot":4,"ts":1}`), true)
	if st, _ := f.DeviceState("dev-1"); st.Boot != 5 || !f.devices["dev-1"].st.Online {
		t.Fatalf("stale will applied over stored state: %+v", st)
	}
	f.handle(protocol.DeviceTopic("dev-1", protocol.KindStatus), []byte(`{"online":true,"boot":5,"ts":2}`), true)
	if st, _ := f.DeviceState("dev-1"); !st.Online || st.Presence != loa.PresenceOnline || f.Stats().Online != 1 {
		t.Fatalf("dev-1 after its status = %+v", st)
	}
}

func TestReconnectResubscribes(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	w := watchPresence(t, f)
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 1})
	w.wait(t, "dev-1", true)

	b.Restart() // drops the fleet's session and every subscription

	// A device that exists only on the new broker: the fleet sees it only
	// if it subscribed again after reconnecting.
	loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-2", Boot: 1, Answer: answerDone})
	w.wait(t, "dev-2", true)

	// And commands work over the new connection.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := f.Command(ctx, "dev-2", protocol.OpTest, nil); err != nil {
		t.Fatal(err)
	}
}

func TestOpenUnreachableBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	f, err := Open(ctx, Config{Broker: "tcp://" + addr})
	if err == nil {
		f.Close()
		t.Fatal("Open succeeded with no broker")
	}
	if code(err) != loa.EUNAVAILABLE {
		t.Fatalf("err = %v, want %s", err, loa.EUNAVAILABLE)
	}
}

func TestOpenRefusedCredentials(t *testing.T) {
	b := loatest.StartBroker(t, "right")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	f, err := Open(ctx, Config{Broker: b.URL(), Username: "loa", Password: "wrong"})
	if err == nil {
		f.Close()
		t.Fatal("Open succeeded with a wrong password")
	}
	if code(err) != loa.EUNAUTHORIZED {
		t.Fatalf("err = %v, want %s", err, loa.EUNAUTHORIZED)
	}
	f, err = Open(ctx, Config{Broker: b.URL(), Username: "loa", Password: "right"})
	if err != nil {
		t.Fatalf("Open with the right password: %v", err)
	}
	f.Close()
}

func TestOpenBadBrokerURL(t *testing.T) {
	_, err := Open(context.Background(), Config{Broker: "localhost"})
	if code(err) != loa.EINVALID {
		t.Fatalf("err = %v, want %s", err, loa.EINVALID)
	}
}

// linkedFleet is a fleet without a network whose link counts as up, for
// tests that feed handle directly.
func linkedFleet(cfg Config) *Fleet {
	f := newFleet(cfg)
	f.linkUp.Store(true) // upAt 1970: settled
	return f
}
