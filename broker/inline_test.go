package broker

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The inline client gets retained messages on subscribing, live publishes
// with their topic and payload, and publishes commands that a device on
// the network receives; after Disconnect nothing more reaches it.
func TestInlineClient(t *testing.T) {
	b := startBroker(t)
	d1 := mustConnect(t, clientOptions(b, "d1", "d1", "p1"))
	publish(t, d1, "loa/v1/dev/d1/status", 1, true, `{"online":true,"boot":1}`)

	in := newInbox()
	connected := make(chan struct{})
	opts := paho.NewClientOptions().SetDefaultPublishHandler(in.handle).
		SetOnConnectHandler(func(paho.Client) { close(connected) })
	c := b.NewInlineClient(opts)
	if c.IsConnectionOpen() {
		t.Fatal("open before Connect")
	}
	if err := c.Publish("loa/v1/dev/d1/cmd", 1, false, "x").Error(); err == nil {
		t.Fatal("publish before Connect succeeded")
	}
	if err := c.Connect().Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(wait):
		t.Fatal("OnConnect not called")
	}
	if err := c.SubscribeMultiple(map[string]byte{"loa/v1/dev/+/status": 1, "loa/v1/dev/+/tele": 0}, nil).Error(); err != nil {
		t.Fatal(err)
	}
	got := in.waitFor(t, `{"online":true,"boot":1}`)
	if got[0].topic != "loa/v1/dev/d1/status" || !got[0].retained {
		t.Errorf("retained status delivered as %+v", got[0])
	}
	publish(t, d1, "loa/v1/dev/d1/tele", 0, false, `{"ts":1}`)
	if got := in.waitFor(t, `{"ts":1}`); got[len(got)-1].topic != "loa/v1/dev/d1/tele" {
		t.Errorf("telemetry delivered as %+v", got[len(got)-1])
	}

	cmds := newInbox()
	subscribe(t, d1, "loa/v1/dev/d1/cmd", cmds.handle)
	if err := c.Publish("loa/v1/dev/d1/cmd", 1, false, []byte(`{"id":"c1"}`)).Error(); err != nil {
		t.Fatal(err)
	}
	cmds.waitFor(t, `{"id":"c1"}`)

	// mochi calls inline handlers before it writes to network subscribers,
	// so once a network subscriber has a message, a subscribed inline
	// client would have it too.
	c.Disconnect(0)
	if c.IsConnectionOpen() {
		t.Fatal("open after Disconnect")
	}
	watcher := newInbox()
	d2 := mustConnect(t, clientOptions(b, ctlUser+"-watch", ctlUser, ctlPass))
	subscribe(t, d2, "loa/v1/dev/+/tele", watcher.handle)
	publish(t, d1, "loa/v1/dev/d1/tele", 0, false, `{"ts":2}`)
	watcher.waitFor(t, `{"ts":2}`)
	in.mu.Lock()
	defer in.mu.Unlock()
	if slices.ContainsFunc(in.msgs, func(m msg) bool { return m.payload == `{"ts":2}` }) {
		t.Error("message delivered after Disconnect")
	}
	if err := c.Publish("loa/v1/dev/d1/cmd", 1, false, "x").Error(); err == nil {
		t.Error("publish after Disconnect succeeded")
	}
}

func TestInlineClientNeedsRunningBroker(t *testing.T) {
	b, err := New(Config{Addr: "127.0.0.1:0", ControllerUser: ctlUser, ControllerPassword: ctlPass, Auth: fakeAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.NewInlineClient(paho.NewClientOptions()).Connect().Error(); err == nil {
		t.Fatal("inline client connected to a broker that is not started")
	}
}

// BenchmarkDeliverToController measures what one device message costs the
// controller's process to deliver to the controller's handler: over
// loopback TCP through paho (how the controller connected before) and
// through the inline client. The publishing device is another process in
// reality, here a paho client in this one, so cpu-µs/msg includes its
// share; the difference between the two is the controller's saving.
//
//	go test -run '^$' -bench DeliverToController -benchtime 20000x ./broker
func BenchmarkDeliverToController(b *testing.B) {
	for _, mode := range []string{"tcp", "inline"} {
		b.Run(mode, func(b *testing.B) {
			br, err := New(Config{Addr: "127.0.0.1:0", ControllerUser: ctlUser, ControllerPassword: ctlPass,
				Auth: fakeAuth{"d1": "p1"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			if err := br.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			var received atomic.Int64
			opts := clientOptions(br, "ctl", ctlUser, ctlPass).SetOrderMatters(true).
				SetDefaultPublishHandler(func(paho.Client, paho.Message) { received.Add(1) })
			var ctl paho.Client
			if mode == "inline" {
				ctl = br.NewInlineClient(opts)
			} else {
				ctl = paho.NewClient(opts)
			}
			if tok := ctl.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
				b.Fatalf("controller connect: %v", tok.Error())
			}
			defer ctl.Disconnect(0)
			if tok := ctl.SubscribeMultiple(map[string]byte{"loa/v1/dev/+/tele": 0}, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
				b.Fatalf("subscribe: %v", tok.Error())
			}
			dev, err := connectWith(clientOptions(br, "d1", "d1", "p1"))
			if err != nil {
				b.Fatal(err)
			}
			defer dev.Disconnect(0)
			payload := []byte(`{"ts":1767225600000,"rssi":-75,"net":"4g","volume":70,"temp":40.2,"uptime_s":3600,"fw":"1.0.0","muted":false,"amp":true}`)

			b.ResetTimer()
			cpu0 := cpuTime()
			// At most a window of messages in flight, so mochi never drops
			// QoS 0 messages for a slow subscriber.
			for i := range b.N {
				for int64(i)-received.Load() > 256 {
					time.Sleep(50 * time.Microsecond)
				}
				dev.Publish("loa/v1/dev/d1/tele", 0, false, payload)
			}
			deadline := time.Now().Add(wait)
			for received.Load() < int64(b.N) {
				if time.Now().After(deadline) {
					b.Fatalf("received %d of %d", received.Load(), b.N)
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(fmt.Sprint("getrusage: ", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
