package loatest

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is a real mochi MQTT broker on loopback that allows every topic:
// package broker has the controller's auth and ACL and tests them itself.
type Broker struct {
	tb       testing.TB
	password string
	refuse   refusal

	mu   sync.Mutex
	srv  *mochi.Server
	addr string
	stop func()
}

// StartBroker starts a broker on 127.0.0.1:0 and stops it when the test
// ends. password, when not empty, is required of every client.
func StartBroker(tb testing.TB, password string) *Broker {
	tb.Helper()
	b := &Broker{tb: tb, password: password}
	b.start("127.0.0.1:0")
	tb.Cleanup(b.Stop)
	return b
}

func (b *Broker) start(addr string) {
	b.tb.Helper()
	var srv *mochi.Server
	var tcp *listeners.TCP
	deadline := time.Now().Add(Wait)
	for {
		srv = mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
		if err := srv.AddHook(&passwordHook{password: b.password, refuse: &b.refuse, srv: srv}, nil); err != nil {
			b.tb.Fatal(err)
		}
		tcp = listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
		err := srv.AddListener(tcp)
		if err == nil {
			break
		}
		if time.Now().After(deadline) { // rebinding a port just closed
			b.tb.Fatalf("broker listen %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := srv.Serve(); err != nil {
		b.tb.Fatal(err)
	}
	var once sync.Once
	b.mu.Lock()
	b.srv, b.addr = srv, tcp.Address()
	b.stop = func() { once.Do(func() { stopServer(srv) }) }
	b.mu.Unlock()
}

// URL is the broker's address for paho: tcp://127.0.0.1:port.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Addr is the broker's host:port.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// Server is the running mochi server, for tests that reach into its
// clients (a connection's Will, a link cut from the broker's side).
func (b *Broker) Server() *mochi.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv
}

// RefuseConnects makes the broker refuse every new connection (CONNACK
// "not authorised", as for revoked credentials or a held client id) until
// it is called with false.
func (b *Broker) RefuseConnects(on bool) { b.refuse.on.Store(on) }

// Refused counts the connections refused by RefuseConnects.
func (b *Broker) Refused() int { return int(b.refuse.n.Load()) }

type refusal struct {
	on atomic.Bool
	n  atomic.Int64
}

// Stop stops the broker as a crash does: it stops listening and drops
// every client without a word, so their Wills go out. Stopping twice is
// harmless.
func (b *Broker) Stop() {
	b.mu.Lock()
	stop := b.stop
	b.mu.Unlock()
	stop()
}

// Restart stops the broker (dropping every client and all retained
// messages) and starts a fresh one on the same port.
func (b *Broker) Restart() {
	b.tb.Helper()
	b.Stop()
	b.start(b.Addr())
}

// stopServer stops listening, then drops every client, then closes the
// server. mochi's own Close drops clients first (a client reconnecting at
// once can land in the dying listener's backlog and wait out its connect
// timeout), and it can deadlock when a client disconnects meanwhile
// (Clients.GetByListener takes its read lock recursively).
func stopServer(srv *mochi.Server) {
	if l, ok := srv.Listeners.Get("tcp"); ok {
		l.Close(func(string) {}) // marks the listener closed: Close will not drop clients itself
	}
	for _, cl := range srv.Clients.GetAll() {
		srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
	}
	srv.Close()
}

// passwordHook lets in clients with the password (any client when it is
// empty) and allows every topic. mochi's own allow hook pulls in a yaml
// module this repository does not carry.
type passwordHook struct {
	mochi.HookBase
	password string
	refuse   *refusal
	srv      *mochi.Server
}

func (h *passwordHook) ID() string { return "loatest-password" }

func (h *passwordHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *passwordHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if h.refuse.on.Load() {
		h.refuse.n.Add(1)
		return false
	}
	if h.password != "" && string(pk.Connect.Password) != h.password {
		return false
	}
	h.retireOld(cl)
	return true
}

// retireOld closes a clean session's old connection of cl's client id and
// waits until mochi has cleaned it up, as the station's broker does
// (broker/hook.go retireOld): mochi's clean-up otherwise may delete the
// new client's id, leaving a reconnected receiver deaf.
func (h *passwordHook) retireOld(cl *mochi.Client) {
	old, ok := h.srv.Clients.Get(cl.ID)
	if !ok || old == cl || !old.Properties.Clean {
		return
	}
	old.Stop(packets.ErrSessionTakenOver)
	for deadline := time.Now().Add(Wait); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cur, ok := h.srv.Clients.Get(cl.ID); !ok || cur != old {
			return
		}
	}
}

func (h *passwordHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }
