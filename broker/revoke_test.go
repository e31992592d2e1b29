package broker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// gatedAuth accepts d1/p1, but holds each check until the test releases it.
type gatedAuth struct {
	checking chan struct{} // a check has started
	release  chan struct{} // let it answer
}

func (g gatedAuth) CheckDeviceCredentials(ctx context.Context, id, password string) (bool, error) {
	g.checking <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return id == "d1" && password == "p1", nil
}

// A connection whose password was checked just before the controller
// rotated it (so Disconnect's sweep cannot see it yet) is dropped as soon
// as it is established; a connection checked afterwards stays.
func TestDisconnectDuringCredentialCheck(t *testing.T) {
	g := gatedAuth{checking: make(chan struct{}), release: make(chan struct{})}
	b, err := New(Config{Addr: "127.0.0.1:0", ControllerUser: ctlUser, ControllerPassword: ctlPass, Auth: g,
		Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctl := mustConnect(t, clientOptions(b, ctlUser, ctlUser, ctlPass))
	in := newInbox()
	subscribe(t, ctl, protocol.DeviceFilter(protocol.KindStatus), in.handle)

	lost := make(chan struct{})
	type result struct {
		c   paho.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := connectWith(clientOptions(b, "d1", "d1", "p1").
			SetWill(protocol.DeviceTopic("d1", protocol.KindStatus), "d1 offline", 1, true).
			SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))
		done <- result{c, err}
	}()
	<-g.checking       // the check has read the old password...
	b.Disconnect("d1") // ...when the credentials change
	close(g.release)   // and it answers yes, as it read them before
	r := <-done
	if r.err == nil {
		defer r.c.Disconnect(0)
		select {
		case <-lost:
		case <-time.After(wait):
			t.Fatal("a connection let in on credentials changed meanwhile was not dropped")
		}
	}
	// Dropped before its read loop started, it still gets its Will
	// published (mochi alone would take the drop for a clean DISCONNECT).
	in.waitFor(t, "d1 offline")
	// mochi counts it until its goroutine ends; wait for that.
	loatest.Eventually(t, wait, func() bool { return b.Stats().Clients == 1 }, "Clients after the drop: the controller only")

	// A connection checked after the change is unaffected.
	go func() {
		c, err := connectWith(clientOptions(b, "d1", "d1", "p1"))
		done <- result{c, err}
	}()
	<-g.checking
	r = <-done
	if r.err != nil {
		t.Fatalf("connect after the change: %v", r.err)
	}
	defer r.c.Disconnect(0)
	publish(t, r.c, "loa/v1/dev/d1/event", 1, false, "still here") // a QoS 1 round trip: connected and allowed
	if !r.c.IsConnectionOpen() {
		t.Error("the later connection was dropped")
	}
}

// A Will mochi did not send is owed unless the client itself said
// DISCONNECT: mochi's reader takes any stop it did not see coming (a
// takeover, a dead link its writer noticed first) for a clean end.
func TestWillOwedUnlessCleanDisconnect(t *testing.T) {
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	connect := packets.Packet{Connect: packets.ConnectParams{
		WillFlag: true, WillTopic: "loa/v1/dev/d1/status", WillPayload: []byte("offline"), WillQos: 1, WillRetain: true}}
	for _, c := range []struct {
		name  string
		cause error
		owed  bool
	}{
		{"clean DISCONNECT", packets.CodeDisconnect, false},
		{"taken over", packets.ErrSessionTakenOver, true},
		{"dead link", io.ErrClosedPipe, true},
		{"stopped without a cause", nil, true},
	} {
		r := newRevocations()
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		cl := srv.NewClient(a, "t", "d1", false)
		r.admitted(cl, connect)
		cl.Stop(c.cause)
		w, owed := r.disconnected(cl)
		if owed != c.owed || owed && (w.topic != "loa/v1/dev/d1/status" || string(w.payload) != "offline" || !w.retain || w.qos != 1) {
			t.Errorf("%s: owed %v (%+v), want %v", c.name, owed, w, c.owed)
		}
		if _, again := r.disconnected(cl); again {
			t.Errorf("%s: a Will owed twice", c.name)
		}
	}
}
