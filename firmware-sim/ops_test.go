package firmwaresim

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

func teleWhere(rec *recorder, t *testing.T, dev, what string, match func(protocol.Telemetry) bool) protocol.Telemetry {
	t.Helper()
	m := rec.wait(t, what, func(m mqttMsg) bool {
		tl, err := protocol.DecodeTelemetry(m.payload)
		return m.topic == protocol.DeviceTopic(dev, protocol.KindTele) && err == nil && match(tl)
	})
	tl, _ := protocol.DecodeTelemetry(m.payload)
	return tl
}

// A muted receiver keeps receiving and counting its stream, plays it as
// silence, and says so in its telemetry; amp switches the relay.
func TestMuteAndAmp(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, TeleInterval: 20 * time.Millisecond})
	later := time.Now().Add(time.Minute)

	teleWhere(rec, t, "rx1", "telemetry unmuted, amp on", func(tl protocol.Telemetry) bool {
		return !tl.Muted && tl.Amp != nil && *tl.Amp
	})
	id := rec.send(t, "rx1", protocol.OpMute, protocol.MuteArgs{Muted: true}, later)
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone || !r.Muted() {
		t.Fatalf("mute acked %+v, muted %v", a, r.Muted())
	}
	teleWhere(rec, t, "rx1", "telemetry muted", func(tl protocol.Telemetry) bool { return tl.Muted })

	const frames = 20
	st := newStreamer(t, "s1", frames)
	playSession(t, rec, st, "rx1", 1)
	st.senderReport()
	st.stream(context.Background(), seq(frames))
	st.bye()
	stats := waitDone(t, r, "s1")
	if stats.Played != frames || stats.Received != frames || stats.Muted != frames {
		t.Errorf("muted session stats %+v: want %d received, played and muted", stats, frames)
	}

	// Emergency sessions play through mute.
	em := newStreamer(t, "e1", frames)
	id = rec.send(t, "rx1", protocol.OpPlay, func() protocol.PlayArgs {
		a := em.playArgs("rx1", 2)
		a.Priority = EmergencyPriority
		return a
	}(), later)
	rec.ack(t, "rx1", id, protocol.AckDone)
	em.waitReceivers(t, 1)
	em.senderReport()
	em.stream(context.Background(), seq(frames))
	em.bye()
	if stats := waitDone(t, r, "e1"); stats.Played != frames || stats.Muted != 0 {
		t.Errorf("emergency session on a muted receiver: %+v", stats)
	}

	for _, bad := range []string{`{}`, `{"muted":"yes"}`} {
		id := rec.send(t, "rx1", protocol.OpMute, rawJSON(bad), later)
		if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != CodeInvalid {
			t.Errorf("mute %s acked %+v", bad, a)
		}
	}
	id = rec.send(t, "rx1", protocol.OpMute, protocol.MuteArgs{Muted: false}, later)
	rec.ack(t, "rx1", id, protocol.AckDone)
	id = rec.send(t, "rx1", protocol.OpAmp, protocol.AmpArgs{On: false}, later)
	rec.ack(t, "rx1", id, protocol.AckDone)
	if r.Amp() || r.Muted() {
		t.Errorf("amp %v muted %v, want off and unmuted", r.Amp(), r.Muted())
	}
	teleWhere(rec, t, "rx1", "telemetry amp off", func(tl protocol.Telemetry) bool {
		return !tl.Muted && tl.Amp != nil && !*tl.Amp
	})
}

type rawJSON string

func (j rawJSON) MarshalJSON() ([]byte, error) { return []byte(j), nil }

func TestConfig(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, TeleInterval: time.Hour})
	id := rec.send(t, "rx1", protocol.OpConfig, protocol.ConfigArgs{TeleIntervalS: 5, DelayMs: 350}, time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone {
		t.Fatalf("config acked %+v", a)
	}
	if d := r.playDelay(0); d != 350*time.Millisecond {
		t.Errorf("default delay %v, want 350ms", d)
	}
	if d := r.playDelay(120); d != 120*time.Millisecond {
		t.Errorf("explicit delay %v, want 120ms", d)
	}
	// With the hour-long interval no telemetry would come; with 5 s it does.
	start := time.Now()
	teleWhere(rec, t, "rx1", "telemetry at the configured interval", func(protocol.Telemetry) bool { return true })
	if el := time.Since(start); el < 4*time.Second || el > 7*time.Second {
		t.Errorf("first telemetry after %v, want about 5s", el)
	}
	id = rec.send(t, "rx1", protocol.OpConfig, rawJSON(`{"tele_interval_s":1,"delay_ms":0}`), time.Now().Add(time.Minute))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != CodeInvalid {
		t.Errorf("config out of range acked %+v", a)
	}
}

func TestSpeakerTest(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	startReceiver(t, Config{ID: "rx1", Broker: broker})
	later := time.Now().Add(time.Minute)
	run := func(args any) (protocol.Ack, protocol.TestResult) {
		t.Helper()
		id := rec.send(t, "rx1", protocol.OpTest, args, later)
		rec.ack(t, "rx1", id, protocol.AckAccepted)
		a := rec.finalAck(t, "rx1", id)
		res, err := protocol.DecodeTestResult(a.Result)
		if err != nil {
			t.Fatalf("test ack %+v: %v", a, err)
		}
		return a, res
	}
	// Half-scale sine at volume 70: -9.03 dBFS + 20·log10(0.7) = -12.13.
	a, res := run(protocol.TestArgs{ToneHz: 1000, DurationMs: 100})
	if a.State != protocol.AckDone || !res.Passed || math.Abs(res.LevelDB-(-12.13)) > 0.05 {
		t.Errorf("test at volume 70: %+v %+v", a, res)
	}
	for _, c := range []struct {
		op   string
		args any
	}{
		{protocol.OpVolume, protocol.VolumeArgs{Level: 0}},
		{protocol.OpVolume, protocol.VolumeArgs{Level: 70}},
		{protocol.OpMute, protocol.MuteArgs{Muted: true}},
		{protocol.OpMute, protocol.MuteArgs{Muted: false}},
		{protocol.OpAmp, protocol.AmpArgs{On: false}},
	} {
		id := rec.send(t, "rx1", c.op, c.args, later)
		rec.ack(t, "rx1", id, protocol.AckDone)
		a, res := run(protocol.TestArgs{ToneHz: 440, DurationMs: 100})
		wantPass := c.op != protocol.OpAmp && c.args != (protocol.VolumeArgs{Level: 0}) && c.args != (protocol.MuteArgs{Muted: true})
		if res.Passed != wantPass || (wantPass && a.State != protocol.AckDone) || (!wantPass && (a.State != protocol.AckFailed || a.Code != CodeFailed || res.LevelDB > -40)) {
			t.Errorf("after %s %+v: test acked %+v, result %+v", c.op, c.args, a, res)
		}
	}
	id := rec.send(t, "rx1", protocol.OpTest, protocol.TestArgs{ToneHz: 20000}, later)
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != CodeInvalid {
		t.Errorf("test at 20 kHz acked %+v", a)
	}
}

func TestToneLevel(t *testing.T) {
	for _, c := range []struct {
		gain, want float64
	}{{1, -9.03}, {0.5, -15.05}, {0.1, -29.03}, {0, -120}} {
		if got := ToneLevel(1000, 100, c.gain); math.Abs(got-c.want) > 0.02 {
			t.Errorf("ToneLevel(gain %v) = %v, want %v", c.gain, got, c.want)
		}
	}
}

// A reboot acks done, drops the connection so the broker publishes the
// Will of the old boot, and comes back online with boot+1 after about a
// second, obeying commands again.
func TestReboot(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	status := func(online bool, boot uint64) func(mqttMsg) bool {
		return func(m mqttMsg) bool {
			s, err := protocol.DecodeStatus(m.payload)
			return m.topic == protocol.DeviceTopic("rx1", protocol.KindStatus) && err == nil && s.Online == online && s.Boot == boot
		}
	}
	boot := r.Boot()
	rec.wait(t, "online", status(true, boot))
	later := time.Now().Add(time.Minute)
	id := rec.send(t, "rx1", protocol.OpConfig, protocol.ConfigArgs{TeleIntervalS: 60, DelayMs: 300, BootVolume: ptr(55)}, later)
	rec.ack(t, "rx1", id, protocol.AckDone)
	id = rec.send(t, "rx1", protocol.OpMute, protocol.MuteArgs{Muted: true}, later)
	rec.ack(t, "rx1", id, protocol.AckDone)

	id = rec.send(t, "rx1", protocol.OpReboot, rawJSON(`{"now":true}`), later)
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != CodeInvalid {
		t.Errorf("reboot with unknown args acked %+v", a)
	}
	id = rec.send(t, "rx1", protocol.OpReboot, nil, later)
	start := time.Now()
	rec.ack(t, "rx1", id, protocol.AckDone)
	rec.wait(t, "last will of the old boot", status(false, boot))
	rec.wait(t, "online with boot+1", status(true, boot+1))
	if el := time.Since(start); el < RebootDowntime {
		t.Errorf("back online after %v, want at least %v", el, RebootDowntime)
	}
	if r.Volume() != 55 || r.Muted() || !r.Amp() || r.playDelay(0) != 300*time.Millisecond {
		t.Errorf("after reboot: volume %d muted %v amp %v delay %v", r.Volume(), r.Muted(), r.Amp(), r.playDelay(0))
	}
	id = rec.send(t, "rx1", protocol.OpVolume, protocol.VolumeArgs{Level: 20}, time.Now().Add(time.Minute))
	rec.ack(t, "rx1", id, protocol.AckDone)

	// The retained status is the new boot's online, and a graceful close
	// leaves the new boot's offline.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "offline of the new boot", status(false, boot+1))
}

func ptr[T any](v T) *T { return &v }
