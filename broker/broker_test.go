package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loa-broadcast/loa/protocol"
)

const (
	ctlUser = "controller"
	ctlPass = "ctl-secret"
	wait    = 10 * time.Second // generous: only there to turn a hang into a failure
)

// fakeAuth is the broker's Authenticator: device id → password.
type fakeAuth map[string]string

var errStoreDown = errors.New("store down")

func (f fakeAuth) CheckDeviceCredentials(_ context.Context, id, password string) (bool, error) {
	if id == "broken" {
		return false, errStoreDown
	}
	want, ok := f[id]
	return ok && want == password, nil
}

// startBroker starts a broker on loopback with devices d1–d3 (passwords
// p1–p3); opts change its config first.
func startBroker(t *testing.T, opts ...func(*Config)) *Broker {
	t.Helper()
	cfg := Config{
		Addr:               "127.0.0.1:0",
		ControllerUser:     ctlUser,
		ControllerPassword: ctlPass,
		Auth:               fakeAuth{"d1": "p1", "d2": "p2", "d3": "p3"},
		// Debug so the logging paths run; discarded so no goroutine writes
		// to the test after it ends.
		Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

func clientOptions(b *Broker, clientID, user, pass string) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker("tcp://" + b.Addr()).
		SetClientID(clientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetProtocolVersion(4). // else paho retries a refused connect as MQTT 3.1
		SetConnectTimeout(wait).
		SetWriteTimeout(wait)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	return o
}

func connectWith(o *paho.ClientOptions) (paho.Client, error) {
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, errors.New("connect timed out")
	}
	return c, tok.Error()
}

func mustConnect(t *testing.T, o *paho.ClientOptions) paho.Client {
	t.Helper()
	c, err := connectWith(o)
	if err != nil {
		t.Fatalf("connect %s: %v", o.ClientID, err)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func publish(t *testing.T, c paho.Client, topic string, qos byte, retained bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(wait) {
		t.Fatalf("publish %s timed out", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// subscribe returns the granted QoS, 0x80 when refused.
func subscribe(t *testing.T, c paho.Client, filter string, h paho.MessageHandler) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, h)
	if !tok.WaitTimeout(wait) {
		t.Fatalf("subscribe %s timed out", filter)
	}
	if err := tok.Error(); err != nil {
		return 0x80
	}
	return tok.(*paho.SubscribeToken).Result()[filter]
}

// inbox records messages a client receives, in order.
type inbox struct {
	mu   sync.Mutex
	msgs []msg
	seen chan struct{}
}

type msg struct {
	topic, payload string
	retained       bool
}

func newInbox() *inbox { return &inbox{seen: make(chan struct{}, 1)} }

func (in *inbox) handle(_ paho.Client, m paho.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, msg{m.Topic(), string(m.Payload()), m.Retained()})
	in.mu.Unlock()
	select {
	case in.seen <- struct{}{}:
	default:
	}
}

// waitFor blocks until a message with this payload arrives and returns
// everything received so far.
func (in *inbox) waitFor(t *testing.T, payload string) []msg {
	t.Helper()
	deadline := time.After(wait)
	for {
		in.mu.Lock()
		got := slices.Clone(in.msgs)
		in.mu.Unlock()
		if slices.ContainsFunc(got, func(m msg) bool { return m.payload == payload }) {
			return got
		}
		select {
		case <-in.seen:
		case <-deadline:
			t.Fatalf("no message %q; got %v", payload, got)
		}
	}
}

func TestRefusesBadCredentials(t *testing.T) {
	b := startBroker(t)
	tests := []struct{ name, user, pass string }{
		{"anonymous", "", ""},
		{"wrong device password", "d1", "nope"},
		{"unknown device", "d9", "p9"},
		{"device without password", "d1", ""},
		{"username not a device id", "D1/#", "p1"},
		{"wrong controller password", ctlUser, "nope"},
		{"credential check fails", "broken", "x"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := connectWith(clientOptions(b, "c"+tt.name, tt.user, tt.pass))
			if err == nil {
				c.Disconnect(0)
				t.Fatal("connected, want refused")
			}
			if got := b.Stats().AuthFailures; got != uint64(i+1) {
				t.Errorf("AuthFailures = %d, want %d", got, i+1)
			}
		})
	}
	// The right credentials still work.
	mustConnect(t, clientOptions(b, "d1", "d1", "p1"))
	mustConnect(t, clientOptions(b, ctlUser+"-ok", ctlUser, ctlPass))
	if s := b.Stats(); s.Clients != 2 || s.AuthFailures != uint64(len(tests)) || s.Refused != 0 {
		t.Errorf("Stats = %+v, want 2 clients, %d auth failures, 0 refused", s, len(tests))
	}
}

func TestDevicePublishesOnlyItsOwnTopics(t *testing.T) {
	b := startBroker(t)
	ctl := mustConnect(t, clientOptions(b, ctlUser, ctlUser, ctlPass))
	in := newInbox()
	for _, kind := range []string{protocol.KindStatus, protocol.KindEvent, protocol.KindCmd} {
		if q := subscribe(t, ctl, protocol.DeviceFilter(kind), in.handle); q != 1 {
			t.Fatalf("controller subscribe %s: granted %#x", kind, q)
		}
	}

	d1 := mustConnect(t, clientOptions(b, "d1", "d1", "p1"))
	publish(t, d1, protocol.DeviceTopic("d1", protocol.KindStatus), 1, true, "d1 online")
	got := in.waitFor(t, "d1 online")
	if got[0].topic != protocol.DeviceTopic("d1", protocol.KindStatus) {
		t.Errorf("controller got %v", got)
	}

	// QoS 0 to someone else's topic, or to a topic devices may not write:
	// dropped. The marker that follows on the same connection proves the
	// broker has handled them.
	publish(t, d1, protocol.DeviceTopic("d2", protocol.KindStatus), 0, true, "forged status")
	publish(t, d1, protocol.DeviceTopic("d1", protocol.KindCmd), 0, false, "forged cmd")
	publish(t, d1, protocol.DeviceTopic("d1", protocol.KindEvent), 1, false, "marker")
	got = in.waitFor(t, "marker")
	for _, m := range got {
		if m.payload == "forged status" || m.payload == "forged cmd" {
			t.Errorf("controller received denied publish %v", m)
		}
	}
	if r := b.Stats().Refused; r != 2 {
		t.Errorf("Refused = %d, want 2", r)
	}

	// QoS 1 to someone else's topic: MQTT 3.1.1 has no negative PUBACK, so
	// the broker drops the connection.
	lost := make(chan struct{})
	d3 := mustConnect(t, clientOptions(b, "d3", "d3", "p3").
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))
	d3.Publish(protocol.DeviceTopic("d2", protocol.KindStatus), 1, true, "forged qos1")
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("device not disconnected after a denied QoS 1 publish")
	}
	publish(t, ctl, protocol.DeviceTopic("ctl-marker", protocol.KindStatus), 1, false, "marker 2")
	got = in.waitFor(t, "marker 2")
	if slices.ContainsFunc(got, func(m msg) bool { return m.payload == "forged qos1" }) {
		t.Errorf("controller received denied QoS 1 publish: %v", got)
	}
	if r := b.Stats().Refused; r != 3 {
		t.Errorf("Refused = %d, want 3", r)
	}

	// Nothing forged was retained either: a fresh subscriber sees d1's status only.
	late := newInbox()
	ctl2 := mustConnect(t, clientOptions(b, ctlUser+"-2", ctlUser, ctlPass))
	subscribe(t, ctl2, protocol.DeviceFilter(protocol.KindStatus), late.handle)
	publish(t, ctl2, protocol.DeviceTopic("zz", protocol.KindStatus), 0, false, "marker 3")
	got = late.waitFor(t, "marker 3")
	want := []msg{{protocol.DeviceTopic("d1", protocol.KindStatus), "d1 online", true}}
	if !slices.Equal(got[:len(got)-1], want) {
		t.Errorf("retained statuses = %v, want %v", got[:len(got)-1], want)
	}
}

func TestDeviceReadsOnlyItsOwnCommands(t *testing.T) {
	b := startBroker(t)
	ctl := mustConnect(t, clientOptions(b, ctlUser, ctlUser, ctlPass))

	// Subscriptions without handlers, so paho hands each message to the
	// default handler exactly once, whichever filters match it.
	in1 := newInbox()
	d1 := mustConnect(t, clientOptions(b, "d1", "d1", "p1").SetDefaultPublishHandler(in1.handle))
	for _, f := range []string{
		protocol.DeviceTopic("d2", protocol.KindCmd),
		protocol.DeviceFilter(protocol.KindCmd),
		protocol.Prefix + "dev/d1/#",
		"#",
	} {
		if q := subscribe(t, d1, f, nil); q != 0x80 {
			t.Errorf("d1 subscribe %s: granted %#x, want refused", f, q)
		}
	}
	if r := b.Stats().Refused; r != 4 {
		t.Errorf("Refused = %d, want 4", r)
	}
	if q := subscribe(t, d1, protocol.DeviceTopic("d1", protocol.KindCmd), nil); q != 1 {
		t.Fatalf("d1 subscribe own cmd: granted %#x", q)
	}

	d2 := mustConnect(t, clientOptions(b, "d2", "d2", "p2"))
	in2 := newInbox()
	if q := subscribe(t, d2, protocol.DeviceTopic("d2", protocol.KindCmd), in2.handle); q != 1 {
		t.Fatalf("d2 subscribe own cmd: granted %#x", q)
	}

	// The controller's publishes are handled in order, so when d1 has its own
	// command it would already have d2's, had any subscription leaked.
	publish(t, ctl, protocol.DeviceTopic("d2", protocol.KindCmd), 1, false, "cmd for d2")
	publish(t, ctl, protocol.DeviceTopic("d1", protocol.KindCmd), 1, false, "cmd for d1")
	got1 := in1.waitFor(t, "cmd for d1")
	want1 := []msg{{protocol.DeviceTopic("d1", protocol.KindCmd), "cmd for d1", false}}
	if !slices.Equal(got1, want1) {
		t.Errorf("d1 got %v, want %v", got1, want1)
	}
	got2 := in2.waitFor(t, "cmd for d2")
	want2 := []msg{{protocol.DeviceTopic("d2", protocol.KindCmd), "cmd for d2", false}}
	if !slices.Equal(got2, want2) {
		t.Errorf("d2 got %v, want %v", got2, want2)
	}
}

// abruptConn dials TCP and hands the connection out, so a test can cut it
// the way a 4G link dies: no DISCONNECT packet.
func abruptConn(conns chan<- net.Conn) paho.OpenConnectionFunc {
	return func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		c, err := net.Dial("tcp", u.Host)
		if err == nil {
			conns <- c
		}
		return c, err
	}
}

func TestLastWillOnAbruptDrop(t *testing.T) {
	b := startBroker(t)
	ctl := mustConnect(t, clientOptions(b, ctlUser, ctlUser, ctlPass))
	in := newInbox()
	subscribe(t, ctl, protocol.DeviceFilter(protocol.KindStatus), in.handle)

	status := protocol.DeviceTopic("d1", protocol.KindStatus)
	conns := make(chan net.Conn, 1)
	d1 := mustConnect(t, clientOptions(b, "d1", "d1", "p1").
		SetWill(status, "d1 offline", 1, true).
		SetCustomOpenConnectionFn(abruptConn(conns)))
	publish(t, d1, status, 1, true, "d1 online")
	in.waitFor(t, "d1 online")

	(<-conns).Close()
	got := in.waitFor(t, "d1 offline")
	if last := got[len(got)-1]; last.topic != status {
		t.Errorf("will on %q, want %q", last.topic, status)
	}

	// The will replaced the retained status.
	late := newInbox()
	ctl2 := mustConnect(t, clientOptions(b, ctlUser+"-2", ctlUser, ctlPass))
	subscribe(t, ctl2, status, late.handle)
	got = late.waitFor(t, "d1 offline")
	if !got[0].retained || len(got) != 1 {
		t.Errorf("late subscriber got %v, want one retained offline status", got)
	}
}

func TestLastWillMustObeyACL(t *testing.T) {
	b := startBroker(t)
	for i, topic := range []string{
		protocol.DeviceTopic("d2", protocol.KindStatus),
		protocol.DeviceTopic("d1", protocol.KindCmd),
		"loa/v1/dev/+/status",
	} {
		c, err := connectWith(clientOptions(b, "d1", "d1", "p1").SetWill(topic, "offline", 1, true))
		if err == nil {
			c.Disconnect(0)
			t.Errorf("connected with a Last Will on %s", topic)
		}
		if r := b.Stats().Refused; r != uint64(i+1) {
			t.Errorf("Refused = %d, want %d", r, i+1)
		}
	}
}

func TestDisconnect(t *testing.T) {
	b := startBroker(t)
	ctl := mustConnect(t, clientOptions(b, ctlUser, ctlUser, ctlPass))
	in := newInbox()
	subscribe(t, ctl, protocol.DeviceFilter(protocol.KindStatus), in.handle)

	status := protocol.DeviceTopic("d1", protocol.KindStatus)
	lost := make(chan struct{})
	mustConnect(t, clientOptions(b, "d1", "d1", "p1").
		SetWill(status, "d1 offline", 1, true).
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))
	d2lost := make(chan struct{}, 1)
	mustConnect(t, clientOptions(b, "d2", "d2", "p2").
		SetConnectionLostHandler(func(paho.Client, error) { d2lost <- struct{}{} }))
	if n := b.Stats().Clients; n != 3 {
		t.Fatalf("Clients = %d, want 3", n)
	}

	b.Disconnect("d1")
	b.Disconnect(ctlUser) // not a device: ignored
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("d1 not disconnected")
	}
	// The fleet learns d1 went offline.
	in.waitFor(t, "d1 offline")

	// The controller is still connected and d2 was left alone.
	publish(t, ctl, protocol.DeviceTopic("zz", protocol.KindStatus), 1, false, "still here")
	in.waitFor(t, "still here")
	select {
	case <-d2lost:
		t.Error("d2 disconnected too")
	default:
	}
}

func TestCollectors(t *testing.T) {
	b := startBroker(t)
	mustConnect(t, clientOptions(b, "d1", "d1", "p1"))
	if c, err := connectWith(clientOptions(b, "d2", "d2", "wrong")); err == nil {
		c.Disconnect(0)
		t.Fatal("wrong password accepted")
	}

	reg := prometheus.NewPedanticRegistry()
	for _, c := range b.Collectors() {
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
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			got[mf.GetName()] = c.GetValue()
		} else {
			got[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"loa_broker_connections_total":   1,
		"loa_broker_auth_failures_total": 1,
		"loa_broker_acl_denials_total":   0,
		"loa_broker_clients":             1,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], v, got)
		}
	}
}

func TestNewRequiresConfig(t *testing.T) {
	good := Config{Addr: ":0", ControllerUser: "c", ControllerPassword: "p", Auth: fakeAuth{}}
	for name, mutate := range map[string]func(*Config){
		"no addr":                func(c *Config) { c.Addr = "" },
		"no controller user":     func(c *Config) { c.ControllerUser = "" },
		"no controller password": func(c *Config) { c.ControllerPassword = "" },
		"no auth":                func(c *Config) { c.Auth = nil },
	} {
		cfg := good
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestLifecycle(t *testing.T) {
	b, err := New(Config{Addr: "127.0.0.1:0", ControllerUser: ctlUser, ControllerPassword: ctlPass, Auth: fakeAuth{"d1": "p1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(b.Addr()); port == "0" || port == "" {
		t.Fatalf("Addr = %q, want the bound port", b.Addr())
	}
	if err := b.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	lost := make(chan struct{})
	mustConnect(t, clientOptions(b, "d1", "d1", "p1").
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) }))

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("client still connected after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c, err := connectWith(clientOptions(b, "d1", "d1", "p1")); err == nil {
		c.Disconnect(0)
		t.Error("connected after Close")
	}
}
