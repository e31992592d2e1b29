package firmwaresim

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// A set temperature and an amplifier fault show on the wire: telemetry
// reports the temperature (and the receiver's own IP), the fault sends
// amp_fault, silences speaker tests, and its repair sends amp_ok.
func TestFaults(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	r := startReceiver(t, Config{ID: "rx1", Broker: broker, TeleInterval: 20 * time.Millisecond})

	tl := teleWhere(rec, t, "rx1", "telemetry with the receiver's ip", func(tl protocol.Telemetry) bool { return tl.IP != "" })
	if a, err := netip.ParseAddr(tl.IP); err != nil || !a.IsLoopback() {
		t.Errorf("telemetry ip %q, want the loopback address the receiver connected from", tl.IP)
	}
	r.SetTemperature(81.5)
	teleWhere(rec, t, "rx1", "telemetry at 81.5 °C", func(tl protocol.Telemetry) bool { return tl.Temp == 81.5 })
	r.SetTemperature(math.NaN())
	teleWhere(rec, t, "rx1", "telemetry back to normal", func(tl protocol.Telemetry) bool { return tl.Temp >= 38 && tl.Temp <= 42 })

	if err := r.SetAmpFault(true); err != nil {
		t.Fatal(err)
	}
	if ev := rec.event(t, "rx1", protocol.EventAmpFault, ""); ev.Msg == "" {
		t.Error("amp_fault event without detail")
	}
	later := time.Now().Add(time.Minute)
	id := rec.send(t, "rx1", protocol.OpTest, protocol.TestArgs{ToneHz: 1000, DurationMs: 100}, later)
	a := rec.finalAck(t, "rx1", id)
	res, err := protocol.DecodeTestResult(a.Result)
	if a.State != protocol.AckFailed || a.Code != CodeFailed || err != nil || res.Passed {
		t.Errorf("test with a faulty amplifier: %+v %+v %v", a, res, err)
	}
	if err := r.SetAmpFault(false); err != nil {
		t.Fatal(err)
	}
	rec.event(t, "rx1", protocol.EventAmpOK, "")
	id = rec.send(t, "rx1", protocol.OpTest, protocol.TestArgs{ToneHz: 1000, DurationMs: 100}, later)
	if a := rec.finalAck(t, "rx1", id); a.State != protocol.AckDone {
		t.Errorf("test after the repair: %+v", a)
	}
	r.Kill()
	if err := r.SetAmpFault(true); err == nil {
		t.Error("SetAmpFault on a killed receiver succeeded")
	}
}
