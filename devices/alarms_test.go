package devices

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// memAlarms is an in-memory AlarmStore (store.DB is the real one).
type memAlarms struct {
	mu   sync.Mutex
	byID map[string]loa.Alarm
	fail error
}

func newMemAlarms() *memAlarms { return &memAlarms{byID: map[string]loa.Alarm{}} }

func (m *memAlarms) PutAlarms(_ context.Context, list []loa.Alarm) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, a := range list {
		m.byID[a.ID] = a
	}
	return nil
}

func (m *memAlarms) Alarms(_ context.Context, f loa.AlarmFilter) ([]loa.Alarm, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []loa.Alarm
	for _, a := range m.byID {
		if (f.Active && !a.Active()) || (f.Kind != "" && a.Kind != f.Kind) || (f.Device != "" && a.Device != f.Device) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y loa.Alarm) int { return strings.Compare(y.ID, x.ID) })
	return out, nil
}

func (m *memAlarms) PruneAlarms(context.Context, time.Time) (int, error) { return 0, nil }

func (m *memAlarms) setFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

type staticDirectory []*loa.Device

func (d staticDirectory) Devices(context.Context) ([]*loa.Device, error) { return d, nil }

type alarmRig struct {
	t       *testing.T
	a       *Alarms
	store   *memAlarms
	clock   *testClock
	changes chan loa.AlarmChange // from OnChange
}

func newAlarmRig(t *testing.T, th loa.AlarmThresholds) *alarmRig {
	t.Helper()
	r := &alarmRig{t: t, store: newMemAlarms(), clock: &testClock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)},
		changes: make(chan loa.AlarmChange, 100)}
	a, err := NewAlarms(context.Background(), AlarmConfig{Thresholds: th, Store: r.store, Now: r.clock.Now,
		Directory: staticDirectory{{ID: "rx-1", AreaID: "a1"}, {ID: "rx-2", AreaID: "b1"}},
		OnChange:  func(c loa.AlarmChange) { r.changes <- c }})
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	t.Cleanup(a.Close)
	return r
}

func (r *alarmRig) advance(d time.Duration) { r.clock.set(r.clock.Now().Add(d)) }

// expect takes the next change and checks it.
func (r *alarmRig) expect(event, device, kind string) loa.Alarm {
	r.t.Helper()
	select {
	case c := <-r.changes:
		if c.Event != event || c.Alarm.Device != device || c.Alarm.Kind != kind {
			r.t.Fatalf("change = %s %s %s (%s), want %s %s %s", c.Event, c.Alarm.Device, c.Alarm.Kind, c.Alarm.Msg, event, device, kind)
		}
		return c.Alarm
	default:
		r.t.Fatalf("no change, want %s %s %s", event, device, kind)
	}
	return loa.Alarm{}
}

func (r *alarmRig) expectNone() {
	r.t.Helper()
	select {
	case c := <-r.changes:
		r.t.Fatalf("unexpected change %s %s %s: %s", c.Event, c.Alarm.Device, c.Alarm.Kind, c.Alarm.Msg)
	default:
	}
}

func TestAlarmTemperatureHysteresis(t *testing.T) {
	r := newAlarmRig(t, loa.DefaultAlarmThresholds())
	tele := func(temp float64) { r.a.ObserveTelemetry("rx-1", loa.Telemetry{TempC: temp}) }
	tele(74.9)
	r.expectNone()
	tele(76)
	al := r.expect(loa.AlarmRaised, "rx-1", loa.AlarmTemperature)
	if al.Area != "a1" || al.Value != 76 || al.Threshold != 75 || !al.RaisedAt.Equal(r.clock.Now()) || al.ID == "" {
		t.Errorf("raised = %+v", al)
	}
	tele(80) // still hot: no second alarm
	tele(72) // between the clear and raise levels: stays raised
	tele(76)
	r.expectNone()
	r.advance(time.Minute)
	tele(69.5)
	cl := r.expect(loa.AlarmCleared, "rx-1", loa.AlarmTemperature)
	if cl.ID != al.ID || !cl.ClearedAt.Equal(r.clock.Now()) || !cl.RaisedAt.Equal(al.RaisedAt) {
		t.Errorf("cleared = %+v, want the raised alarm with ClearedAt now", cl)
	}
	stored, _ := r.store.Alarms(context.Background(), loa.AlarmFilter{})
	if len(stored) != 1 || stored[0].ClearedAt.IsZero() {
		t.Errorf("store holds %+v, want the one alarm, cleared", stored)
	}
}

func TestAlarmStreamLossWindows(t *testing.T) {
	r := newAlarmRig(t, loa.DefaultAlarmThresholds())
	tele := func(session string, rcv, lost uint64) {
		r.a.ObserveTelemetry("rx-2", loa.Telemetry{Session: session, Stream: &loa.StreamStats{Received: rcv, Lost: lost}})
	}
	tele("s1", 20, 5) // 25 packets: too few to judge
	r.expectNone()
	tele("s1", 40, 12) // window of 52 (cumulative from 0): 12/52 = 23 %
	if al := r.expect(loa.AlarmRaised, "rx-2", loa.AlarmStreamLoss); al.Value < 23 || al.Value > 23.1 || al.Area != "b1" {
		t.Errorf("raised %+v", al)
	}
	tele("s1", 140, 16) // next window 100 received, 4 lost: 3.8 % — above half the threshold, stays
	r.expectNone()
	tele("s1", 240, 17) // 1 %: clears
	r.expect(loa.AlarmCleared, "rx-2", loa.AlarmStreamLoss)
	tele("s1", 300, 60) // raise again, then the stream ends: cleared
	r.expect(loa.AlarmRaised, "rx-2", loa.AlarmStreamLoss)
	r.a.ObserveTelemetry("rx-2", loa.Telemetry{})
	r.expect(loa.AlarmCleared, "rx-2", loa.AlarmStreamLoss)
	tele("s2", 100, 0) // a new session counts from its own zero
	r.expectNone()
}

func TestAlarmAmpFaultAndSpeakerTest(t *testing.T) {
	r := newAlarmRig(t, loa.DefaultAlarmThresholds())
	r.a.ObserveEvent("rx-1", protocol.Event{Type: protocol.EventAmpFault, Msg: "no output current"})
	if al := r.expect(loa.AlarmRaised, "rx-1", loa.AlarmAmpFault); !strings.Contains(al.Msg, "no output current") {
		t.Errorf("amp fault msg %q", al.Msg)
	}
	r.a.ObserveEvent("rx-1", protocol.Event{Type: protocol.EventAmpFault})
	r.a.ObserveEvent("rx-1", protocol.Event{Type: protocol.EventPlayed})
	r.expectNone()
	r.a.ObserveEvent("rx-1", protocol.Event{Type: protocol.EventAmpOK})
	r.expect(loa.AlarmCleared, "rx-1", loa.AlarmAmpFault)

	res := func(level float64, passed bool) json.RawMessage {
		b, _ := json.Marshal(protocol.TestResult{LevelDB: level, Passed: passed})
		return b
	}
	test := loa.CommandResult{ID: "c1", Device: "rx-1", Op: protocol.OpTest}
	r.a.ObserveCommand(test, protocol.Ack{ID: "c1", State: protocol.AckFailed, Code: "failed", Result: res(-120, false)})
	if al := r.expect(loa.AlarmRaised, "rx-1", loa.AlarmTestFailed); al.Value != -120 || al.Threshold != protocol.TestPassLevelDBFS {
		t.Errorf("test_failed = %+v", al)
	}
	// Not measurements: an invalid test, an expired one, another op.
	r.a.ObserveCommand(test, protocol.Ack{ID: "c2", State: protocol.AckFailed, Code: "invalid", Msg: "tone_hz"})
	r.a.ObserveCommand(test, protocol.Ack{ID: "c3", State: protocol.AckExpired})
	r.a.ObserveCommand(loa.CommandResult{Device: "rx-1", Op: protocol.OpVolume}, protocol.Ack{State: protocol.AckDone})
	r.expectNone()
	r.a.ObserveEvent("rx-1", protocol.Event{Type: protocol.EventAmpFault})
	r.expect(loa.AlarmRaised, "rx-1", loa.AlarmAmpFault)
	// A passing test clears both: the amplifier demonstrably plays.
	r.a.ObserveCommand(test, protocol.Ack{ID: "c4", State: protocol.AckDone, Result: res(-12, true)})
	got := []string{r.expect(loa.AlarmCleared, "rx-1", loa.AlarmTestFailed).Kind, r.expect(loa.AlarmCleared, "rx-1", loa.AlarmAmpFault).Kind}
	if len(got) != 2 {
		t.Fatal(got)
	}
}

func TestAlarmOfflineThresholdAndRecovery(t *testing.T) {
	r := newAlarmRig(t, loa.AlarmThresholds{Offline: 5 * time.Minute, StreamLossPct: 5, TempC: 75, TempClearC: 70})
	ctx := context.Background()
	// Neither registered device has been heard of: both count from start.
	r.advance(4 * time.Minute)
	r.a.Check(ctx)
	r.expectNone()
	r.a.ObservePresence(loa.DeviceState{ID: "rx-2", Online: true, Caps: srtpCaps}) // rx-2 comes online...
	r.advance(time.Minute)
	r.a.Check(ctx)
	al := r.expect(loa.AlarmRaised, "rx-1", loa.AlarmOffline)
	if al.Value != 300 || al.Threshold != 300 || al.Severity != loa.SeverityCritical {
		t.Errorf("offline alarm %+v", al)
	}
	// ... without a fleet to ask, Check trusts the presence notices: rx-2
	// is not offline. Once it drops, its own clock starts.
	r.a.ObservePresence(loa.DeviceState{ID: "rx-2", Online: false})
	r.advance(4 * time.Minute)
	r.a.Check(ctx)
	r.a.Check(ctx)
	r.expectNone()
	r.advance(time.Minute)
	r.a.Check(ctx)
	r.expect(loa.AlarmRaised, "rx-2", loa.AlarmOffline)
	r.a.ObservePresence(loa.DeviceState{ID: "rx-1", Online: true, Caps: srtpCaps})
	cl := r.expect(loa.AlarmCleared, "rx-1", loa.AlarmOffline)
	if !cl.ClearedAt.Equal(r.clock.Now()) {
		t.Errorf("cleared at %v, want now %v", cl.ClearedAt, r.clock.Now())
	}
}

var srtpCaps = []string{protocol.CapSRTPGCM, protocol.CapFence}

// An online receiver that announces no srtp-gcm raises plain_receivers
// once; it stays while the receiver is offline (its firmware is the same)
// and clears when it announces srtp-gcm. Check finds what notices missed.
func TestAlarmPlainReceivers(t *testing.T) {
	r := newAlarmRig(t, loa.DefaultAlarmThresholds())
	ctx := context.Background()
	r.a.ObservePresence(loa.DeviceState{ID: "rx-1", Online: true, Caps: []string{protocol.CapFence}})
	r.a.ObservePresence(loa.DeviceState{ID: "rx-2", Online: true, Caps: srtpCaps})
	r.expectNone() // raised by the next check, in one batch
	r.a.Check(ctx)
	al := r.expect(loa.AlarmRaised, "rx-1", loa.AlarmPlainReceiver)
	if al.Area != "a1" || al.Severity != loa.SeverityWarning || !strings.Contains(al.Msg, "-require-srtp") {
		t.Errorf("raised %+v", al)
	}
	r.a.ObservePresence(loa.DeviceState{ID: "rx-1", Online: true})
	r.a.ObservePresence(loa.DeviceState{ID: "rx-1", Online: false})
	r.a.Check(ctx)
	r.expectNone()
	r.a.ObservePresence(loa.DeviceState{ID: "rx-1", Online: true, Caps: srtpCaps})
	r.a.Check(ctx)
	if cl := r.expect(loa.AlarmCleared, "rx-1", loa.AlarmPlainReceiver); cl.ID != al.ID {
		t.Errorf("cleared %+v, want %s", cl, al.ID)
	}
	r.a.Check(ctx)
	r.expectNone()
}

func TestAlarmStoreFailureChangesNothingAndRetries(t *testing.T) {
	r := newAlarmRig(t, loa.DefaultAlarmThresholds())
	active, watch, err := r.a.WatchAlarms(t.Context())
	if err != nil || len(active) != 0 {
		t.Fatal(active, err)
	}
	r.store.setFail(errors.New("disk full"))
	r.a.ObserveTelemetry("rx-1", loa.Telemetry{TempC: 90})
	r.expectNone()
	if len(r.a.Active()) != 0 || len(watch) != 0 {
		t.Fatal("an alarm that could not be stored was published")
	}
	r.store.setFail(nil)
	r.a.ObserveTelemetry("rx-1", loa.Telemetry{TempC: 90})
	r.expect(loa.AlarmRaised, "rx-1", loa.AlarmTemperature)
	if c := <-watch; c.Event != loa.AlarmRaised || c.Alarm.Kind != loa.AlarmTemperature {
		t.Errorf("watcher got %+v", c)
	}

	// A restarted evaluator loads the active alarm and does not raise it twice.
	a2, err := NewAlarms(context.Background(), AlarmConfig{Store: r.store, Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if act := a2.Active(); len(act) != 1 || act[0].Kind != loa.AlarmTemperature {
		t.Fatalf("reloaded active = %+v", act)
	}
	a2.ObserveTelemetry("rx-1", loa.Telemetry{TempC: 91})
	if all, _ := r.store.Alarms(context.Background(), loa.AlarmFilter{}); len(all) != 1 {
		t.Errorf("restart raised a duplicate: %+v", all)
	}
}

func TestAlarmWatcherEndsWithContext(t *testing.T) {
	r := newAlarmRig(t, loa.DefaultAlarmThresholds())
	r.a.ObserveTelemetry("rx-1", loa.Telemetry{TempC: 90})
	r.expect(loa.AlarmRaised, "rx-1", loa.AlarmTemperature)
	ctx, cancel := context.WithCancel(context.Background())
	active, ch, err := r.a.WatchAlarms(ctx)
	if err != nil || len(active) != 1 {
		t.Fatal(active, err)
	}
	cancel()
	for range ch { // closed once ctx ends; a leak would hang here
	}
	if err := (loa.AlarmThresholds{Offline: time.Minute, StreamLossPct: 5, TempC: 70, TempClearC: 75}).Validate(); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("clear level above raise level accepted: %v", err)
	}
}

// Telemetry and events sent over MQTT reach the evaluator through the
// fleet's subscriptions.
func TestAlarmsAttachedToFleet(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	store := newMemAlarms()
	a, err := NewAlarms(context.Background(), AlarmConfig{Store: store, Directory: staticDirectory{{ID: "dev-1", AreaID: "a1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	detach := a.Attach(f)
	defer detach()
	a.Start() // plain receivers are raised by its checks
	d := loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: "dev-1", Boot: 1})
	// Malformed or out-of-range telemetry is refused and raises nothing.
	d.PublishRaw(protocol.KindTele, []byte(`{"ts":1,"rssi":-80,"volume":70,"muted":false,"uptime":1,"temp":999}`), false)
	d.PublishRaw(protocol.KindTele, []byte(`{"ts":1,"rssi":-80,"volume":70,"muted":false,"uptime":1,"temp":90,"ip":"not an ip"}`), false)
	d.PublishRaw(protocol.KindTele, append([]byte(`{"ts":1,"temp":95,"fw":"`), make([]byte, protocol.MaxPayload)...), false)
	d.Publish(protocol.KindTele, protocol.Telemetry{TS: 1, RSSI: -80, Volume: 70, Temp: 88}, false)
	d.Publish(protocol.KindEvent, protocol.Event{Type: protocol.EventAmpFault, TS: 2, Msg: "overload"}, false)
	// Its status announced no caps: a plain receiver.
	loatest.Eventually(t, waitLimit, func() bool { return len(a.Active()) == 3 }, "temperature, amp_fault and plain_receivers alarms")
	for _, al := range a.Active() {
		if al.Area != "a1" || al.Device != "dev-1" || (al.Kind == loa.AlarmTemperature && al.Value != 88) {
			t.Errorf("alarm %+v", al)
		}
	}
	// The same connection announces srtp-gcm (new firmware would, from
	// its next boot): the plain alarm clears, and the fleet knows the cap.
	d.Publish(protocol.KindStatus, protocol.Status{Online: true, Boot: 1, TS: 3, Caps: []string{protocol.CapSRTPGCM}}, true)
	loatest.Eventually(t, waitLimit, func() bool { return len(a.Active()) == 2 }, "the plain_receivers alarm cleared")
	if !f.HasCap("dev-1", protocol.CapSRTPGCM) || f.HasCap("dev-1", protocol.CapFence) || f.HasCap("nobody", protocol.CapSRTPGCM) {
		t.Error("HasCap does not follow the status")
	}
	for _, al := range a.Active() {
		if al.Kind == loa.AlarmPlainReceiver {
			t.Errorf("still active: %+v", al)
		}
	}
	if n := f.Stats().Malformed; n != 3 {
		t.Errorf("malformed = %d, want the 3 refused telemetry payloads", n)
	}
}

// A device registered after the controller started gets the whole offline
// threshold from its registration to connect.
func TestAlarmOfflineCountsFromRegistration(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	changes := make(chan loa.AlarmChange, 10)
	dir := staticDirectory{{ID: "new", AreaID: "a1", CreatedAt: clock.Now().Add(3 * time.Minute)}}
	a, err := NewAlarms(context.Background(), AlarmConfig{Store: newMemAlarms(), Now: clock.Now, Directory: dir,
		OnChange: func(c loa.AlarmChange) { changes <- c }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	clock.set(clock.Now().Add(7 * time.Minute)) // 7 min after start, 4 after registration
	a.Check(context.Background())
	if len(changes) != 0 {
		t.Fatalf("raised %+v before the device had the threshold to connect", <-changes)
	}
	clock.set(clock.Now().Add(time.Minute))
	a.Check(context.Background())
	if c := <-changes; c.Event != loa.AlarmRaised || c.Alarm.Device != "new" || c.Alarm.Value != 300 {
		t.Errorf("change %+v, want offline raised after 5 min", c)
	}
}

// While the controller's own broker link is down presence is unknown: no
// receiver's offline clock starts for it, and none raises offline.
func TestAlarmOfflineNotRaisedForUnknownPresence(t *testing.T) {
	r := newAlarmRig(t, loa.AlarmThresholds{Offline: 5 * time.Minute, StreamLossPct: 5, TempC: 75, TempClearC: 70})
	ctx := context.Background()
	for _, id := range []string{"rx-1", "rx-2"} {
		r.a.ObservePresence(loa.DeviceState{ID: id, Online: true, Presence: loa.PresenceOnline, Caps: srtpCaps})
	}
	r.a.Check(ctx)
	r.expectNone()
	for _, id := range []string{"rx-1", "rx-2"} {
		r.a.ObservePresence(loa.DeviceState{ID: id, Presence: loa.PresenceUnknown})
	}
	r.advance(10 * time.Minute)
	r.a.Check(ctx)
	r.expectNone()
}
