package firmwaresim

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

func TestCommands(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	later := time.Now().Add(time.Minute)

	id := rec.send(t, "rx1", protocol.OpVolume, protocol.VolumeArgs{Level: 35}, time.Now().Add(-time.Second))
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckExpired {
		t.Errorf("stale volume acked %+v", a)
	}
	if r.Volume() != DefaultVolume {
		t.Errorf("stale command obeyed: volume %d", r.Volume())
	}

	// Malformed commands get no answer; the next good one shows they were
	// passed over, since commands run in order.
	for _, b := range []string{`{`, `{"id":"m1","op":"volume","args":{"level":5}}`, `[]`, `{"id":"","op":"stop","exp":9999999999999}`} {
		rec.sendRaw(t, "rx1", []byte(b))
	}
	id = rec.send(t, "rx1", protocol.OpVolume, protocol.VolumeArgs{Level: 35}, later)
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone {
		t.Errorf("volume acked %+v", a)
	}
	if r.Volume() != 35 || r.Malformed() != 4 {
		t.Errorf("volume %d, malformed %d; want 35 and 4", r.Volume(), r.Malformed())
	}
	if acks := rec.all(isTopic("rx1", protocol.KindAck)); len(acks) != 2 {
		t.Errorf("%d acks, want 2 (no answer to malformed commands)", len(acks))
	}

	for _, c := range []struct {
		op   string
		args any
		code string
	}{
		{"dance", nil, CodeUnsupported}, // unknown to the contract
		{protocol.OpFirmware, nil, protocol.FWBadArgs},
		{protocol.OpVolume, protocol.VolumeArgs{Level: 101}, CodeInvalid},
		{protocol.OpPlay, protocol.PlayArgs{Session: "s"}, CodeInvalid},
		{protocol.OpPlay, protocol.PlayArgs{Session: "s", Addr: "127.0.0.1:9", Token: "zz000000000000000000000000000000"}, CodeInvalid},
	} {
		id := rec.send(t, "rx1", c.op, c.args, later)
		if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckFailed || a.Code != c.code {
			t.Errorf("%s %+v acked %+v, want failed %s", c.op, c.args, a, c.code)
		}
	}
	if len(r.Sessions()) != 0 {
		t.Errorf("failed plays left sessions: %+v", r.Sessions())
	}
}

func TestStatusAndLastWill(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	status := func(online bool) func(mqttMsg) bool {
		return func(m mqttMsg) bool {
			s, err := protocol.DecodeStatus(m.payload)
			return m.topic == protocol.DeviceTopic("rx1", protocol.KindStatus) && err == nil && s.Online == online
		}
	}
	on, _ := protocol.DecodeStatus(rec.wait(t, "online", status(true)).payload)
	if on.Boot == 0 || on.TS == 0 {
		t.Errorf("online status %+v", on)
	}

	r.Kill()
	off, _ := protocol.DecodeStatus(rec.wait(t, "last will", status(false)).payload)
	if off.Boot != on.Boot {
		t.Errorf("will of boot %d, online was boot %d", off.Boot, on.Boot)
	}
	// The will is retained: a controller starting now sees it.
	late := newRecorder(t, broker, "ctl2")
	m := late.wait(t, "retained status", isTopic("rx1", protocol.KindStatus))
	if s, _ := protocol.DecodeStatus(m.payload); !m.retained || s.Online {
		t.Errorf("retained status %s (retained %v)", m.payload, m.retained)
	}
	r.Close() // no-op after Kill

	// A graceful close publishes offline itself, retained.
	r2 := startReceiver(t, Config{ID: "rx2", Broker: broker})
	late.wait(t, "rx2 online", func(m mqttMsg) bool {
		s, err := protocol.DecodeStatus(m.payload)
		return m.topic == protocol.DeviceTopic("rx2", protocol.KindStatus) && err == nil && s.Online
	})
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	late.wait(t, "rx2 offline", func(m mqttMsg) bool {
		s, err := protocol.DecodeStatus(m.payload)
		return m.topic == protocol.DeviceTopic("rx2", protocol.KindStatus) && err == nil && !s.Online
	})
}

// When the broker drops a receiver, the receiver reconnects, says it is
// online again (the broker may have published its Will meanwhile) and
// still obeys commands, since it resubscribed.
func TestReconnectResubscribes(t *testing.T) {
	b := loatest.StartBroker(t, "")
	broker, srv := b.URL(), b.Server()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	statuses := func() []protocol.Status {
		var out []protocol.Status
		for _, m := range rec.all(isTopic("rx1", protocol.KindStatus)) {
			s, _ := protocol.DecodeStatus(m.payload)
			out = append(out, s)
		}
		return out
	}
	first := statusOf(t, rec.wait(t, "online", isTopic("rx1", protocol.KindStatus)))

	cl, ok := srv.Clients.Get("rx1")
	if !ok {
		t.Fatal("rx1 not connected to the broker")
	}
	// Reconnects wait until the broker has forgotten the dropped
	// connection: one racing mochi's clean-up of it can lose its own
	// registration, and commands to it then vanish (a broker bug, not the
	// receiver's: see awaitRefusedAndGone).
	refused := b.Refused()
	b.RefuseConnects(true)
	cl.Stop(errors.New("test drops the client"))
	awaitRefusedAndGone(t, b, "rx1", refused)
	b.RefuseConnects(false)
	// Online again on a later connection: counting online statuses was
	// fooled when the first one reached the recorder twice.
	rec.wait(t, "online again", func(m mqttMsg) bool {
		st, err := protocol.DecodeStatus(m.payload)
		return m.topic == protocol.DeviceTopic("rx1", protocol.KindStatus) && err == nil && st.Online && st.Conn > first.Conn
	})
	ss := statuses()
	for _, st := range ss {
		if st.Boot != ss[0].Boot {
			t.Errorf("statuses %+v: one boot expected", ss)
		}
	}
	id := rec.send(t, "rx1", protocol.OpVolume, protocol.VolumeArgs{Level: 20}, time.Now().Add(time.Minute))
	rec.ack(t, "rx1", id, protocol.AckDone)
	if r.Volume() != 20 {
		t.Errorf("volume %d after reconnect", r.Volume())
	}
}

func TestKillStopsPlayingSilently(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker})
	st := newStreamer(t, "s1", 10)
	playSession(t, rec, st, "rx1", 1)
	r.Kill()
	if s, _ := r.Session("s1"); !s.Done {
		t.Errorf("session after kill: %+v", s)
	}
	rec.wait(t, "last will", func(m mqttMsg) bool {
		s, err := protocol.DecodeStatus(m.payload)
		return m.topic == protocol.DeviceTopic("rx1", protocol.KindStatus) && err == nil && !s.Online
	})
	if ev := rec.all(isTopic("rx1", protocol.KindEvent)); len(ev) != 0 {
		t.Errorf("a killed receiver sent events: %d", len(ev))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, rep := range st.reports {
		if rep.bye {
			t.Error("a killed receiver sent an RTCP BYE")
		}
	}
}

func TestTelemetry(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	startReceiver(t, Config{ID: "rx1", Broker: broker, TeleInterval: 20 * time.Millisecond, Firmware: "1.0.7"})
	st := newStreamer(t, "s1", 10)
	playSession(t, rec, st, "rx1", 1)
	m := rec.wait(t, "telemetry while playing", func(m mqttMsg) bool {
		tl, err := protocol.DecodeTelemetry(m.payload)
		return m.topic == protocol.DeviceTopic("rx1", protocol.KindTele) && err == nil && tl.Session == "s1"
	})
	tl, _ := protocol.DecodeTelemetry(m.payload)
	if tl.FW != "1.0.7" || tl.Net != "4g" || tl.Volume != DefaultVolume || tl.RSSI > -70 || tl.RSSI < -90 || tl.Stream == nil || tl.TS == 0 {
		t.Errorf("telemetry %+v", tl)
	}
}

func TestFleet(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	const n, decoding, frames = 50, 10, 50
	cfgs := make([]Config, n)
	for i := range cfgs {
		cfgs[i] = Config{ID: "fx" + string(rune('A'+i/26)) + string(rune('a'+i%26)), Broker: broker, Decode: i < decoding, Logger: quiet}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	f, err := StartFleet(ctx, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Receivers()) != n {
		t.Fatalf("%d receivers", len(f.Receivers()))
	}

	st := newStreamer(t, "all", frames)
	for i, c := range cfgs {
		rec.send(t, c.ID, protocol.OpPlay, st.playArgs(c.ID, uint32(1000+i)), time.Now().Add(time.Minute))
	}
	st.waitReceivers(t, n)
	st.senderReport()
	st.stream(ctx, seq(frames))
	st.bye()
	for _, c := range cfgs {
		rec.event(t, c.ID, protocol.EventFinished, "all")
	}
	for _, r := range f.Receivers() {
		waitDone(t, r, "all")
	}
	sum := f.Summary("all")
	want := Summary{Receivers: n, Played: n, Decoding: decoding, FramesExpected: n * frames, FramesPlayed: n * frames,
		FramesDecoded: decoding * frames}
	if sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if none := f.Summary("other"); none != (Summary{}) {
		t.Errorf("summary of an unknown session %+v", none)
	}
	b, _ := json.Marshal(sum)
	t.Logf("%s", b)
}

func TestStartFleetFailsAndCleansUp(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	cfgs := []Config{{ID: "ok1", Broker: broker, Logger: quiet}, {ID: "bad", Broker: "tcp://127.0.0.1:1", Logger: quiet}}
	if _, err := StartFleet(context.Background(), cfgs); err == nil {
		t.Fatal("fleet started with an unreachable broker")
	}
	// Whether ok1 got to start or not, it is not left online: retained
	// statuses reach a new subscriber before a marker it publishes after.
	rec := newRecorder(t, broker, "ctl")
	marker := protocol.DeviceTopic("marker", protocol.KindEvent)
	if err := waitToken(rec.c.Publish(marker, 1, false, []byte("{}"))); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "marker", func(m mqttMsg) bool { return m.topic == marker })
	for _, m := range rec.all(isTopic("ok1", protocol.KindStatus)) {
		if s, err := protocol.DecodeStatus(m.payload); err != nil || s.Online {
			t.Errorf("ok1 left with status %s", m.payload)
		}
	}
}
