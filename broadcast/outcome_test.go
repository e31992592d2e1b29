package broadcast

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/loa-broadcast/loa"
)

// outcomes collects what one subscriber was told and signals each ended.
type outcomes struct {
	mu    sync.Mutex
	got   []loa.SessionOutcome
	ended chan string
}

func subscribe(e *Engine) (*outcomes, func()) {
	o := &outcomes{ended: make(chan string, 16)}
	cancel := e.Subscribe(func(so loa.SessionOutcome) {
		o.mu.Lock()
		o.got = append(o.got, so)
		o.mu.Unlock()
		if so.Kind == loa.OutcomeEnded {
			o.ended <- so.Session
		}
	})
	return o, cancel
}

// of returns the outcomes of one session, in the order delivered.
func (o *outcomes) of(session string) []loa.SessionOutcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []loa.SessionOutcome
	for _, so := range o.got {
		if so.Session == session {
			out = append(out, so)
		}
	}
	return out
}

func kinds(list []loa.SessionOutcome) []string {
	var k []string
	for _, so := range list {
		k = append(k, so.Kind)
	}
	return k
}

func TestOutcomesOfEachSessionInOrder(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	o, _ := subscribe(h.e)
	h.start(t, "short", loa.PriorityNormal, 1, &sliceSource{pkts: opusPackets(t, 3)}, 3)
	h.start(t, "longer", loa.PriorityNormal, 2, &sliceSource{pkts: opusPackets(t, 8)}, 8)
	done := map[string]bool{<-o.ended: true, <-o.ended: true}
	if !done["short"] || !done["longer"] {
		t.Fatalf("ended: %v", done)
	}
	for _, id := range []string{"short", "longer"} {
		got := o.of(id)
		if k := kinds(got); !slices.Equal(k, []string{loa.OutcomeStreaming, loa.OutcomeEnded}) {
			t.Fatalf("%s: %v, want streaming then ended", id, k)
		}
		if end := got[1]; end.State != loa.SessionEnded || end.Reason != "" || end.At.Before(got[0].At) || got[0].At.IsZero() {
			t.Errorf("%s: %+v", id, got)
		}
	}

	// Stop returns once the subscribers know.
	h.start(t, "live", loa.PriorityNormal, 3, &loopSource{pkts: opusPackets(t, 3)}, 0)
	if err := h.e.Stop(context.Background(), "live", "by hand"); err != nil {
		t.Fatal(err)
	}
	got := o.of("live")
	if n := len(got); n == 0 || got[n-1].Kind != loa.OutcomeEnded || got[n-1].State != loa.SessionStopped || got[n-1].Reason != "by hand" {
		t.Errorf("live after Stop: %+v", got)
	}
}

func TestPreemptedNamesTheDevicesTaken(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	o, _ := subscribe(h.e)
	h.start(t, "music", 40, 1, &loopSource{pkts: opusPackets(t, 5)}, 0, "a", "b", "c")
	h.start(t, "bulletin", loa.PriorityHigh, 2, &loopSource{pkts: opusPackets(t, 5)}, 0, "d", "b", "a")
	h.start(t, "chime", 10, 3, &loopSource{pkts: opusPackets(t, 5)}, 0, "c") // takes nothing
	for _, id := range []string{"music", "bulletin", "chime"} {
		if err := h.e.Stop(context.Background(), id, "done"); err != nil {
			t.Fatal(err)
		}
	}
	// The preempted outcome comes before ended, which is last.
	music := o.of("music")
	var pre []loa.SessionOutcome
	for _, so := range music {
		if so.Kind == loa.OutcomePreempted {
			pre = append(pre, so)
		}
	}
	if len(pre) != 1 || pre[0].By != "bulletin" || !slices.Equal(pre[0].Devices, []string{"b", "a"}) || pre[0].At.IsZero() {
		t.Errorf("music preempted: %+v", pre)
	}
	if n := len(music); music[n-1].Kind != loa.OutcomeEnded {
		t.Errorf("music outcomes %v: ended is not last", kinds(music))
	}
	for _, id := range []string{"bulletin", "chime"} {
		if slices.Contains(kinds(o.of(id)), loa.OutcomePreempted) {
			t.Errorf("%s was preempted: %+v", id, o.of(id))
		}
	}
}

func TestSubscribersInOrderAndCancel(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	var mu sync.Mutex
	var calls []string
	record := func(name string) func(loa.SessionOutcome) {
		return func(so loa.SessionOutcome) {
			mu.Lock()
			calls = append(calls, name+" "+so.Kind+" "+so.Session)
			mu.Unlock()
		}
	}
	cancelFirst := h.e.Subscribe(record("first"))
	h.e.Subscribe(record("second"))
	last, _ := subscribe(h.e)

	h.start(t, "one", loa.PriorityNormal, 1, &sliceSource{pkts: opusPackets(t, 2)}, 2)
	<-last.ended
	mu.Lock()
	want := []string{"first streaming one", "second streaming one", "first ended one", "second ended one"}
	if !slices.Equal(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
	calls = nil
	mu.Unlock()

	cancelFirst()
	cancelFirst() // harmless twice
	h.start(t, "two", loa.PriorityNormal, 2, &sliceSource{pkts: opusPackets(t, 2)}, 2)
	<-last.ended
	mu.Lock()
	if want := []string{"second streaming two", "second ended two"}; !slices.Equal(calls, want) {
		t.Errorf("after cancel: %v, want %v", calls, want)
	}
	mu.Unlock()
}

// Close waits for every goroutine that tells subscribers, the preempted
// one included: once it returns, everything was delivered and nothing
// more will be. The preempted call is held until Close has begun (the
// shutdown of the session that preempted), so an untracked delivery would
// still be under way when Close returned: its write to preempted is then
// missing, or a data race (which -race reports whatever the timing).
func TestNothingDeliveredAfterClose(t *testing.T) {
	e, err := Open(context.Background(), Config{Bind: "127.0.0.1:0", Tuner: newFakeTuner(t)})
	if err != nil {
		t.Fatal(err)
	}
	closing := make(chan struct{})
	var preempted []loa.SessionOutcome // written by the subscriber without a lock on purpose
	var ended sync.Map
	e.Subscribe(func(so loa.SessionOutcome) {
		switch so.Kind {
		case loa.OutcomePreempted:
			<-closing
			preempted = append(preempted, so)
		case loa.OutcomeEnded:
			ended.Store(so.Session, so)
			if so.Session == "bulletin" {
				close(closing)
			}
		}
	})
	for _, s := range []*loa.Session{
		{ID: "music", SSRC: 1, Priority: 40, Devices: []string{"a"}},
		{ID: "bulletin", SSRC: 2, Priority: loa.PriorityHigh, Devices: []string{"a"}},
	} {
		if err := e.Start(context.Background(), s, &loopSource{pkts: opusPackets(t, 5)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if len(preempted) != 1 || preempted[0].Session != "music" || preempted[0].By != "bulletin" {
		t.Errorf("Close returned with preempted delivered %+v", preempted)
	}
	for _, id := range []string{"music", "bulletin"} {
		so, ok := ended.Load(id)
		if !ok || so.(loa.SessionOutcome).Reason != ReasonShutdown {
			t.Errorf("%s: ended %+v, %v", id, so, ok)
		}
	}
	late := make(chan loa.SessionOutcome, 1)
	e.Subscribe(func(so loa.SessionOutcome) { late <- so })
	if err := e.Start(context.Background(), &loa.Session{ID: "after", SSRC: 3}, &loopSource{pkts: opusPackets(t, 5)}, 0); err == nil {
		t.Error("Start after Close succeeded")
	}
	select {
	case so := <-late:
		t.Errorf("delivered after Close: %+v", so)
	default:
	}
}
