package devices

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// waitLimit bounds every wait in these tests so a bug fails the test
// instead of hanging it. Nothing asserts on elapsed time.
const waitLimit = 20 * time.Second

// testBroker is a real mochi broker on loopback.
type testBroker struct {
	t    *testing.T
	srv  *mochi.Server
	addr string
	stop func()
}

// passwordHook lets in clients with the password (any password when
// empty) and allows every topic. The broker package has the real ACL.
type passwordHook struct {
	mochi.HookBase
	password string
}

func (h *passwordHook) ID() string { return "test-password" }

func (h *passwordHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *passwordHook) OnConnectAuthenticate(_ *mochi.Client, pk packets.Packet) bool {
	return h.password == "" || string(pk.Connect.Password) == h.password
}

func (h *passwordHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }

// startBroker starts a broker on addr; password, when set, is required of
// every client.
func startBroker(t *testing.T, addr, password string) *testBroker {
	t.Helper()
	var srv *mochi.Server
	var tcp *listeners.TCP
	deadline := time.Now().Add(waitLimit)
	for {
		srv = mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
		if err := srv.AddHook(&passwordHook{password: password}, nil); err != nil {
			t.Fatal(err)
		}
		tcp = listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
		err := srv.AddListener(tcp)
		if err == nil {
			break
		}
		if time.Now().After(deadline) { // rebinding a port just closed
			t.Fatalf("broker listen %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &testBroker{t: t, srv: srv, addr: tcp.Address()}
	var once sync.Once
	b.stop = func() { once.Do(func() { stopBroker(srv) }) }
	t.Cleanup(func() { b.stop() })
	return b
}

// stopBroker stops listening, then drops every client, as a crashed broker
// does, then closes the server. mochi's own Close drops clients first (a
// client reconnecting at once can land in the dying listener's backlog and
// wait out its connect timeout), and it can deadlock when a client
// disconnects meanwhile (Clients.GetByListener takes its read lock
// recursively). A second Close panics; callers go through a sync.Once.
func stopBroker(srv *mochi.Server) {
	if l, ok := srv.Listeners.Get("tcp"); ok {
		l.Close(func(string) {}) // marks the listener closed: Close will not drop clients itself
	}
	for _, cl := range srv.Clients.GetAll() {
		srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
	}
	srv.Close()
}

func (b *testBroker) url() string { return "tcp://" + b.addr }

// restart stops the broker (dropping every client and all retained
// messages) and starts a fresh one on the same port.
func (b *testBroker) restart() {
	b.stop()
	nb := startBroker(b.t, b.addr, "")
	b.srv, b.stop = nb.srv, nb.stop
}

// openFleet opens a Fleet against b and closes it at the end of the test.
func openFleet(t *testing.T, b *testBroker, cfg Config) *Fleet {
	t.Helper()
	cfg.Broker = b.url()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	f, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// answerFunc decides a test device's acks to one command; nil acks means
// silence.
type answerFunc func(cmd protocol.Command) []protocol.Ack

func answerDone(cmd protocol.Command) []protocol.Ack {
	return []protocol.Ack{{ID: cmd.ID, State: protocol.AckAccepted}, {ID: cmd.ID, State: protocol.AckDone}}
}

// testDevice is a receiver played by a paho client, the way firmware does
// it: a retained offline Last Will, a retained online status on connect,
// commands on its own cmd topic answered with acks.
type testDevice struct {
	t      *testing.T
	id     string
	boot   uint64
	c      mqtt.Client
	answer answerFunc
	cmds   chan protocol.Command // every command received, for assertions

	mu   sync.Mutex
	conn net.Conn // the current TCP connection, for abrupt drops
	work chan protocol.Command
	done chan struct{}
	wg   sync.WaitGroup
}

type deviceOpt struct {
	clientID  string
	reconnect bool
}

func startDevice(t *testing.T, b *testBroker, id string, boot uint64, answer answerFunc, opt deviceOpt) *testDevice {
	t.Helper()
	d := &testDevice{t: t, id: id, boot: boot, answer: answer,
		cmds: make(chan protocol.Command, 1000), work: make(chan protocol.Command, 1000), done: make(chan struct{})}
	if opt.clientID == "" {
		opt.clientID = id
	}
	will, _ := json.Marshal(protocol.Status{Online: false, Boot: boot})
	opts := mqtt.NewClientOptions().AddBroker(b.url()).SetClientID(opt.clientID).
		SetCleanSession(true).SetAutoReconnect(opt.reconnect).SetConnectRetry(false).
		SetMaxReconnectInterval(time.Second).
		SetBinaryWill(protocol.DeviceTopic(id, protocol.KindStatus), will, 1, true).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			if err == nil {
				d.mu.Lock()
				d.conn = c
				d.mu.Unlock()
			}
			return c, err
		}).
		SetOnConnectHandler(func(c mqtt.Client) {
			// Like firmware: subscribe to commands, then announce.
			c.Subscribe(protocol.DeviceTopic(id, protocol.KindCmd), 1, func(_ mqtt.Client, m mqtt.Message) {
				cmd, err := protocol.DecodeCommand(m.Payload())
				if err != nil {
					t.Errorf("device %s: bad command %q: %v", id, m.Payload(), err)
					return
				}
				d.cmds <- cmd
				d.work <- cmd // never blocks the router in these tests
			}).Wait()
			// No assertion here: this runs on paho's goroutine and may
			// outlive the test (or race a deliberate drop).
			b, _ := json.Marshal(protocol.Status{Online: true, Boot: boot, TS: time.Now().UnixMilli()})
			c.Publish(protocol.DeviceTopic(id, protocol.KindStatus), 1, true, b)
		})
	d.c = mqtt.NewClient(opts)
	if tok := d.c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("device %s connect: %v", id, tok.Error())
	}
	d.wg.Add(1)
	go d.respond()
	t.Cleanup(d.stop)
	return d
}

func (d *testDevice) respond() {
	defer d.wg.Done()
	for {
		select {
		case <-d.done:
			return
		case cmd := <-d.work:
			if d.answer == nil {
				continue
			}
			for _, a := range d.answer(cmd) {
				d.publish(protocol.KindAck, a, false)
			}
		}
	}
}

func (d *testDevice) publish(kind string, v any, retained bool) {
	b, err := json.Marshal(v)
	if err != nil {
		d.t.Fatal(err)
	}
	d.publishRaw(kind, b, retained)
}

func (d *testDevice) publishRaw(kind string, b []byte, retained bool) {
	tok := d.c.Publish(protocol.DeviceTopic(d.id, kind), protocol.QoS[kind], retained, b)
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		d.t.Errorf("device %s publish %s: %v", d.id, kind, tok.Error())
	}
}

// drop kills the TCP connection without a DISCONNECT, as a 4G box losing
// power does; the broker then publishes the Last Will.
func (d *testDevice) drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conn.Close()
}

func (d *testDevice) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	close(d.done)
	d.wg.Wait()
	d.c.Disconnect(0)
}

// presenceWatch collects OnPresence calls.
type presenceWatch chan loa.DeviceState

func watchPresence(t *testing.T, f *Fleet) presenceWatch {
	w := make(presenceWatch, 1000)
	cancel := f.OnPresence(func(st loa.DeviceState) { w <- st })
	t.Cleanup(cancel)
	return w
}

// wait returns the next presence change of device id matching online.
func (w presenceWatch) wait(t *testing.T, id string, online bool) loa.DeviceState {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case st := <-w:
			if st.ID == id && st.Online == online {
				return st
			}
		case <-timeout:
			t.Fatalf("device %s never became online=%v", id, online)
		}
	}
}

// eventually polls cond until it holds; it fails the test only if it never
// does within waitLimit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func code(err error) string { return loa.ErrorCode(err) }

func isCtx(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
