package devices

import (
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

type gotEvent struct {
	device string
	ev     protocol.Event
}

func collectEvents(t *testing.T, f *Fleet) (chan gotEvent, func()) {
	ch := make(chan gotEvent, 1000)
	cancel := f.OnEvent(func(id string, ev protocol.Event) { ch <- gotEvent{id, ev} })
	t.Cleanup(cancel)
	return ch, cancel
}

func next(t *testing.T, ch chan gotEvent) gotEvent {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(waitLimit):
		t.Fatal("no event")
		return gotEvent{}
	}
}

func TestOnEventDeliversPlayedFinishedInOrder(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	d := onlineDevice(t, b, f, "dev-1", nil)
	ch, _ := collectEvents(t, f)

	const n = 50 // several sessions back to back: order must hold
	for i := range n {
		d.Publish(protocol.KindEvent, protocol.Event{Type: protocol.EventPlayed, TS: int64(2 * i), Session: "s"}, false)
		d.Publish(protocol.KindEvent, protocol.Event{Type: protocol.EventFinished, TS: int64(2*i + 1), Session: "s",
			Stream: &protocol.StreamStats{Played: uint64(i)}}, false)
	}
	for i := range 2 * n {
		e := next(t, ch)
		wantType := protocol.EventPlayed
		if i%2 == 1 {
			wantType = protocol.EventFinished
		}
		if e.device != "dev-1" || e.ev.Type != wantType || e.ev.TS != int64(i) || e.ev.Session != "s" {
			t.Fatalf("event %d = %+v", i, e)
		}
		if wantType == protocol.EventFinished && (e.ev.Stream == nil || e.ev.Stream.Played != uint64(i/2)) {
			t.Fatalf("finished %d stream = %+v", i, e.ev.Stream)
		}
	}
	if st, _ := f.DeviceState("dev-1"); st.LastSeen.IsZero() {
		t.Fatal("events did not update LastSeen")
	}
}

func TestOnEventCancel(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	d := onlineDevice(t, b, f, "dev-1", nil)
	first, cancel := collectEvents(t, f)
	second, _ := collectEvents(t, f)

	d.Publish(protocol.KindEvent, protocol.Event{Type: protocol.EventAmpFault, Msg: "1"}, false)
	next(t, first)
	next(t, second)
	cancel()
	d.Publish(protocol.KindEvent, protocol.Event{Type: protocol.EventAmpFault, Msg: "2"}, false)
	if e := next(t, second); e.ev.Msg != "2" {
		t.Fatalf("second got %+v", e)
	}
	// second saw event 2, so the notifier is past it: first must not.
	select {
	case e := <-first:
		t.Fatalf("cancelled subscriber got %+v", e)
	default:
	}
}

func TestSubscriberPanicDoesNotStopFleet(t *testing.T) {
	f := linkedFleet(Config{})
	f.start()
	defer f.Close()
	f.OnEvent(func(string, protocol.Event) { panic("boom") })
	ch, _ := collectEvents(t, f)
	f.inbox.push(message{topic: protocol.DeviceTopic("dev-1", protocol.KindEvent), payload: []byte(`{"type":"power","ts":1}`)})
	f.inbox.push(message{topic: protocol.DeviceTopic("dev-1", protocol.KindEvent), payload: []byte(`{"type":"tamper","ts":1}`)})
	if e := next(t, ch); e.ev.Type != protocol.EventPower {
		t.Fatalf("got %+v", e)
	}
	if e := next(t, ch); e.ev.Type != protocol.EventTamper {
		t.Fatalf("got %+v", e)
	}
}

// A subscriber that blocks holds up neither the fleet's locks nor acks:
// commands complete and state reads work from inside the callback.
func TestBlockedSubscriberBlocksNothingElse(t *testing.T) {
	b := loatest.StartBroker(t, "")
	f := openFleet(t, b, Config{})
	d := onlineDevice(t, b, f, "dev-1", answerDone)

	inside := make(chan struct{})
	release := make(chan struct{})
	f.OnEvent(func(id string, _ protocol.Event) {
		if _, ok := f.DeviceState(id); !ok { // would deadlock under the fleet's lock
			t.Error("DeviceState inside the callback")
		}
		f.States()
		f.Stats()
		close(inside)
		<-release
	})
	defer close(release)
	d.Publish(protocol.KindEvent, protocol.Event{Type: protocol.EventPower}, false)
	<-inside

	if _, err := f.Command(testCtx(t), "dev-1", protocol.OpTest, nil); err != nil {
		t.Fatalf("command while a subscriber blocks: %v", err)
	}
	d.Publish(protocol.KindTele, protocol.Telemetry{Volume: 12}, false)
	loatest.Eventually(t, waitLimit, func() bool {
		st, _ := f.DeviceState("dev-1")
		return st.Telemetry != nil && st.Telemetry.Volume == 12
	}, "telemetry while a subscriber blocks")
}
