package firmwaresim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// A ramped fleet starts every receiver, each publishing its online status.
func TestStartFleetRamped(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	rec := newRecorder(t, broker, "ctl")
	cfgs := make([]Config, 20)
	for i := range cfgs {
		cfgs[i] = Config{ID: fmt.Sprintf("ramp-%02d", i), Broker: broker, Logger: quiet}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	f, err := StartFleetRamped(ctx, cfgs, 200)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range cfgs {
		rec.wait(t, c.ID+" online", func(m mqttMsg) bool {
			s, err := protocol.DecodeStatus(m.payload)
			return m.topic == protocol.DeviceTopic(c.ID, protocol.KindStatus) && err == nil && s.Online
		})
	}
}

// Cancelling a ramp part-way fails the start and leaves no receiver online.
func TestStartFleetRampedCancelled(t *testing.T) {
	broker := loatest.StartBroker(t, "").URL()
	cfgs := make([]Config, 50)
	for i := range cfgs {
		cfgs[i] = Config{ID: fmt.Sprintf("ramp-%02d", i), Broker: broker, Logger: quiet}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := newRecorder(t, broker, "watch")
	go func() { // cancel once the first receiver is online
		for len(watch.all(isTopic("ramp-00", protocol.KindStatus))) == 0 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	// At 5 a second the last slot is ten seconds away: the cancel comes first.
	if _, err := StartFleetRamped(ctx, cfgs, 5); err == nil {
		t.Fatal("a cancelled ramp reported success")
	}
	rec := newRecorder(t, broker, "ctl")
	marker := protocol.DeviceTopic("marker", protocol.KindEvent)
	if err := waitToken(rec.c.Publish(marker, 1, false, []byte("{}"))); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "marker", func(m mqttMsg) bool { return m.topic == marker })
	for _, c := range cfgs {
		for _, m := range rec.all(isTopic(c.ID, protocol.KindStatus)) {
			if s, err := protocol.DecodeStatus(m.payload); err != nil || s.Online {
				t.Errorf("%s left with status %s", c.ID, m.payload)
			}
		}
	}
}
