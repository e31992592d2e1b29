package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// onlineDevice starts a device and waits until the fleet has it online.
func onlineDevice(t *testing.T, b *loatest.Broker, f *Fleet, id string, answer func(protocol.Command) []protocol.Ack) *loatest.Device {
	t.Helper()
	w := watchPresence(t, f)
	d := loatest.ConnectDevice(t, b.URL(), loatest.DeviceConfig{ID: id, Boot: 1, Answer: answer})
	w.wait(t, id, true)
	return d
}

func TestCommandDone(t *testing.T) {
	b := loatest.StartBroker(t, "")
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	f := openFleet(t, b, Config{Now: func() time.Time { return now }, CommandTTL: 45 * time.Second})
	d := onlineDevice(t, b, f, "dev-1", answerDone)

	res, err := f.Command(testCtx(t), "dev-1", protocol.OpVolume, json.RawMessage(`{"level":70}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.State != protocol.AckDone || res.ID == "" {
		t.Fatalf("result = %+v", res)
	}
	cmd := <-d.Commands()
	if cmd.ID != res.ID || cmd.Op != protocol.OpVolume || cmd.Exp != now.Add(45*time.Second).UnixMilli() {
		t.Fatalf("device got %+v", cmd)
	}
	if args, err := protocol.DecodeVolumeArgs(cmd.Args); err != nil || args.Level != 70 {
		t.Fatalf("args %s: %+v %v", cmd.Args, args, err)
	}
	r, ok := f.CommandResult(res.ID)
	if !ok || r != res || r.State != protocol.AckDone || r.Device != "dev-1" || r.Op != protocol.OpVolume || r.Code != "" || !r.SentAt.Equal(now) || !r.DoneAt.Equal(now) {
		t.Fatalf("result = %+v, %v", r, ok)
	}
	if st := f.Stats(); st.Commands != 1 || st.Timeouts != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestCommandFailedAck(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	onlineDevice(t, b, f, "dev-1", func(cmd protocol.Command) []protocol.Ack {
		if cmd.Op == protocol.OpAmp {
			return []protocol.Ack{{ID: cmd.ID, State: protocol.AckFailed, Code: "amp_fault", Msg: "amplifier overheated"}}
		}
		return []protocol.Ack{{ID: cmd.ID, State: protocol.AckFailed, Code: loa.EINVALID, Msg: "unknown config key"}}
	})

	res, err := f.Command(testCtx(t), "dev-1", protocol.OpAmp, json.RawMessage(`{"on":true}`))
	if code(err) != loa.EUNAVAILABLE || !strings.Contains(err.Error(), "amplifier overheated") {
		t.Fatalf("err = %v, want %s with the device's message", err, loa.EUNAVAILABLE)
	}
	if r, _ := f.CommandResult(res.ID); r != res || r.State != protocol.AckFailed || r.Code != loa.EUNAVAILABLE || r.Msg != "amplifier overheated" {
		t.Fatalf("result = %+v, recorded %+v", res, r)
	}

	// Args the controller accepts, that the device refuses.
	_, err = f.Command(testCtx(t), "dev-1", protocol.OpConfig, json.RawMessage(`{"tele_interval_s":60,"delay_ms":200}`))
	if code(err) != loa.EINVALID || !strings.Contains(loa.ErrorMessage(err), "unknown config key") {
		t.Fatalf("err = %v, want %s with the device's message", err, loa.EINVALID)
	}
}

func TestCommandExpiredAck(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	onlineDevice(t, b, f, "dev-1", func(cmd protocol.Command) []protocol.Ack {
		return []protocol.Ack{{ID: cmd.ID, State: protocol.AckExpired, Msg: "exp in the past"}}
	})
	res, err := f.Command(testCtx(t), "dev-1", protocol.OpReboot, nil)
	if code(err) != loa.EUNAVAILABLE || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v", err)
	}
	if r, _ := f.CommandResult(res.ID); r.State != protocol.AckExpired || r.Code != loa.EUNAVAILABLE {
		t.Fatalf("result = %+v", r)
	}
}

func TestCommandNoAckTimesOut(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{CommandTimeout: 100 * time.Millisecond})
	d := onlineDevice(t, b, f, "dev-1", func(cmd protocol.Command) []protocol.Ack {
		return []protocol.Ack{{ID: cmd.ID, State: protocol.AckAccepted}} // never final
	})

	res, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil)
	if code(err) != loa.ETIMEOUT {
		t.Fatalf("err = %v, want %s", err, loa.ETIMEOUT)
	}
	if res.ID == "" || res.State != loa.CommandTimeout {
		t.Fatalf("result = %+v", res)
	}
	if r, _ := f.CommandResult(res.ID); r.State != loa.CommandTimeout || r.Code != loa.ETIMEOUT {
		t.Fatalf("result = %+v", r)
	}
	if st := f.Stats(); st.Timeouts != 1 {
		t.Fatalf("stats = %+v", st)
	}

	// The device answers at last: the result learns the truth, and the ack
	// is not an unknown one.
	d.Publish(protocol.KindAck, protocol.Ack{ID: res.ID, State: protocol.AckDone}, false)
	loatest.Eventually(t, waitLimit, func() bool { r, _ := f.CommandResult(res.ID); return r.State == protocol.AckDone }, "late ack recorded")
	if st := f.Stats(); st.UnknownAcks != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestCommandContextCancelled(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	onlineDevice(t, b, f, "dev-1", nil) // silent
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.Command(ctx, "dev-1", protocol.OpTest, nil)
	if code(err) != loa.ETIMEOUT || !isCtx(err) {
		t.Fatalf("err = %v, want %s wrapping the context's error", err, loa.ETIMEOUT)
	}
}

func TestCommandOfflineDeviceUnavailable(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{Initial: []loa.DeviceState{{ID: "dev-1", Online: false, Boot: 3}}})
	res, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil)
	if code(err) != loa.EUNAVAILABLE {
		t.Fatalf("err = %v, want %s", err, loa.EUNAVAILABLE)
	}
	if st := f.Stats(); st.Commands != 0 {
		t.Fatalf("a command was sent to an offline device: %+v", st)
	}
	if r, ok := f.CommandResult(res.ID); !ok || r.State != loa.CommandUnavailable {
		t.Fatalf("result = %+v, %v", r, ok)
	}
}

func TestCommandRejectsBadInput(t *testing.T) {
	f := linkedFleet(Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"bad device id", func() error { _, err := f.Command(ctx, "dev/+", protocol.OpTest, nil); return err }()},
		{"unknown op", func() error { _, err := f.Command(ctx, "dev-1", "selfdestruct", nil); return err }()},
		{"args not JSON", func() error { _, err := f.Command(ctx, "dev-1", protocol.OpConfig, json.RawMessage(`{`)); return err }()},
		{"args the device would refuse", func() error {
			_, err := f.Command(ctx, "dev-1", protocol.OpVolume, json.RawMessage(`{"level":101}`))
			return err
		}()},
		{"volume", f.SetVolume(ctx, "dev-1", 101)},
		{"untune", f.Untune(ctx, "dev-1", "")},
		{"tune", f.Tune(ctx, "dev-1", protocol.PlayArgs{Session: "s"})},
	} {
		if code(tc.err) != loa.EINVALID {
			t.Errorf("%s: err = %v, want %s", tc.name, tc.err, loa.EINVALID)
		}
	}
}

func TestTuneUntuneSetVolume(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	d := onlineDevice(t, b, f, "dev-1", answerDone)
	ctx := testCtx(t)

	play := protocol.PlayArgs{Session: "s-1", Addr: "203.0.113.5:5004", SSRC: 42, PT: 111, RecvSSRC: 43,
		Token: strings.Repeat("ab", protocol.TokenLen), DelayMs: 1500, Priority: 224}
	if err := f.Tune(ctx, "dev-1", play); err != nil {
		t.Fatal(err)
	}
	cmd := <-d.Commands()
	got, err := protocol.DecodePlayArgs(cmd.Args)
	if cmd.Op != protocol.OpPlay || err != nil || got != play {
		t.Fatalf("play command %+v args %+v %v", cmd, got, err)
	}

	if err := f.Untune(ctx, "dev-1", "s-1"); err != nil {
		t.Fatal(err)
	}
	cmd = <-d.Commands()
	if stop, err := protocol.DecodeStopArgs(cmd.Args); cmd.Op != protocol.OpStop || err != nil || stop.Session != "s-1" {
		t.Fatalf("stop command %+v", cmd)
	}

	if err := f.SetVolume(ctx, "dev-1", 0); err != nil {
		t.Fatal(err)
	}
	cmd = <-d.Commands()
	if v, err := protocol.DecodeVolumeArgs(cmd.Args); cmd.Op != protocol.OpVolume || err != nil || v.Level != 0 {
		t.Fatalf("volume command %+v", cmd)
	}
}

func TestConcurrentCommands(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	const devices, each = 4, 50
	for i := range devices {
		onlineDevice(t, b, f, fmt.Sprintf("dev-%d", i), answerDone)
	}
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, devices*each)
	for i := range devices * each {
		wg.Go(func() {
			_, err := f.Command(ctx, fmt.Sprintf("dev-%d", i%devices), protocol.OpTest, nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := f.Stats(); st.Commands != devices*each || st.UnknownAcks != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestAckForUnknownCommandIgnored(t *testing.T) {
	b := loatest.StartBroker(t, "")
	now := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC) // duplicates of statuses change nothing
	f := openFleet(t, b, Config{Now: func() time.Time { return now }})
	d := onlineDevice(t, b, f, "dev-1", answerDone)
	other := onlineDevice(t, b, f, "dev-2", nil)

	res, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := f.DeviceState("dev-2")
	d.Publish(protocol.KindAck, protocol.Ack{ID: "never-sent", State: protocol.AckDone}, false)
	// Another device acking dev-1's command is not believed either.
	other.Publish(protocol.KindAck, protocol.Ack{ID: res.ID, State: protocol.AckFailed, Msg: "spoof"}, false)
	loatest.Eventually(t, waitLimit, func() bool { return f.Stats().UnknownAcks == 2 }, "unknown acks counted")

	if r, _ := f.CommandResult(res.ID); r.State != protocol.AckDone || r.Msg != "" {
		t.Fatalf("result = %+v", r)
	}
	if after, _ := f.DeviceState("dev-2"); !equalState(before, after) {
		t.Fatalf("unknown ack changed state:\n%+v\n%+v", before, after)
	}
	if _, ok := f.CommandResult("never-sent"); ok {
		t.Fatal("unknown ack created a result")
	}
}

func TestCommandResultsBounded(t *testing.T) {
	r := newResults(3)
	for i := range 5 {
		r.put(loa.CommandResult{ID: fmt.Sprint(i)})
	}
	for i := range 5 {
		if got := r.get(fmt.Sprint(i)) != nil; got != (i >= 2) {
			t.Errorf("result %d kept = %v", i, got)
		}
	}
}

func TestCollectors(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	onlineDevice(t, b, f, "dev-1", answerDone)
	if _, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	for _, c := range f.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				got[key] = m.Gauge.GetValue()
			case m.Counter != nil:
				got[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				got[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"loa_devices_online":                            1,
		"loa_device_malformed_payloads_total":           0,
		"loa_device_commands_total,op=test,result=done": 1,
		"loa_device_command_duration_seconds,op=test":   1,
		"loa_device_unknown_acks_total":                 0,
		"loa_device_dropped_messages_total":             0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func TestCloseFailsWaitingCommands(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{CommandTimeout: time.Hour})
	d := onlineDevice(t, b, f, "dev-1", nil) // silent
	errc := make(chan error, 1)
	go func() { _, err := f.Command(context.Background(), "dev-1", protocol.OpTest, nil); errc <- err }()
	<-d.Commands() // the command is out and waiting
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; code(err) != loa.EUNAVAILABLE {
		t.Fatalf("err = %v, want %s", err, loa.EUNAVAILABLE)
	}
	if _, err := f.Command(context.Background(), "dev-1", protocol.OpTest, nil); code(err) != loa.EUNAVAILABLE {
		t.Fatalf("after Close: %v", err)
	}
}

func TestCommandBrokerDownUnavailable(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{CommandTimeout: 20 * time.Millisecond})
	b.Stop()
	loatest.Eventually(t, waitLimit, func() bool { return !f.client.IsConnectionOpen() }, "fleet notices the broker is gone")
	res, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil)
	if code(err) != loa.EUNAVAILABLE {
		t.Fatalf("err = %v, want %s", err, loa.EUNAVAILABLE)
	}
	if r, _ := f.CommandResult(res.ID); r.State != loa.CommandUnavailable || r.Msg != "broker connection down" {
		t.Fatalf("result = %+v", r)
	}
}
