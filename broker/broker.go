// Package broker is the embedded MQTT 3.1.1 broker (mochi-mqtt), the default
// for a single machine. It authenticates every client — each device with its
// own credentials, the controller with its own account — and enforces the
// per-device ACL of the wire contract: a device's client id is its own id,
// one live connection per account. It bounds packet sizes, per-client
// queues and connections (gate.go), and slows the failed connects of an
// account (backoff.go). It keeps no state across restarts: devices
// republish their retained status when they reconnect.
package broker

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/loa-broadcast/loa/protocol"
)

// Authenticator checks device credentials; store.DB implements it.
type Authenticator interface {
	CheckDeviceCredentials(ctx context.Context, id, password string) (bool, error)
}

// Config configures a Broker.
type Config struct {
	Addr               string      // TCP listen address, e.g. ":1883" or "127.0.0.1:0"; empty: TLS only
	TLSAddr            string      // MQTT-over-TLS listen address for devices, e.g. ":8883"; empty: none
	TLS                *tls.Config // the TLS listener's server configuration
	ControllerUser     string      // the controller's own account (full access under loa/v1/)
	ControllerPassword string
	Auth               Authenticator
	Logger             *slog.Logger

	// Limits; zero takes the default.
	MaxPacket      int           // bytes of one MQTT packet, header included; DefaultMaxPacket
	MaxConnections int           // open connections; DefaultMaxConnections
	MaxPending     int           // of those, not yet authenticated; DefaultMaxPending
	ConnectTimeout time.Duration // for a new connection to send its CONNECT; DefaultConnectTimeout

	// Standby starts the broker refusing devices (CONNACK 3) until
	// SetAccepting(true): a cluster node that is not the leader (standby.go).
	Standby bool
}

// Limit defaults. A province has up to ~20,000 receivers, each with one
// connection; a payload is at most protocol.MaxPayload.
const (
	DefaultMaxPacket      = 64 << 10
	MinMaxPacket          = protocol.MaxPayload + 1<<10 // room for a largest payload, its topic and header
	DefaultMaxConnections = 30_000
	DefaultMaxPending     = 2_048
	DefaultConnectTimeout = 10 * time.Second
	// maxQueued bounds the packets waiting to be written to one client,
	// and the QoS 1 messages in flight to it. A device gets only its own
	// commands; mochi's defaults (8,192 each) cost every connection, even
	// one never authenticated, a 64 KiB queue.
	maxQueued = 1024
)

// Stats counts what the broker refused, and who is connected now.
type Stats struct {
	Refused      uint64 // ACL denials: publishes, subscriptions, Last Wills, client ids
	AuthFailures uint64 // connections refused for bad, missing or uncheckable credentials
	Dropped      uint64 // connections closed before authenticating to make room, or refused at the cap
	Oversize     uint64 // clients disconnected for a packet over MaxPacket
	Standby      uint64 // device connections refused (CONNACK 3) or dropped while not accepting
	Clients      int    // clients connected now
	Pending      int    // connections not yet authenticated
}

// Broker is an embedded MQTT broker with per-device auth and ACL.
type Broker struct {
	cfg        Config
	log        *slog.Logger
	ctrlPwHash [sha256.Size]byte

	srv *mqtt.Server

	// ctx bounds credential checks; cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	ln      net.Listener // plain; nil without Addr
	tlsLn   net.Listener // nil without TLSAddr
	started bool
	closed  bool

	revoked *revocations
	gate    *gate
	backoff *backoff

	refused      atomic.Uint64
	oversize     atomic.Uint64
	authFailures atomic.Uint64
	connections  atomic.Uint64

	standby         atomic.Bool // not accepting devices (standby.go)
	standbyRefusals atomic.Uint64
	standbyDrops    atomic.Uint64
}

// New validates cfg and builds a broker; Start makes it listen.
func New(cfg Config) (*Broker, error) {
	if cfg.Addr == "" && cfg.TLSAddr == "" {
		return nil, errors.New("broker: Addr or TLSAddr is required")
	}
	if cfg.TLSAddr != "" && cfg.TLS == nil {
		return nil, errors.New("broker: TLSAddr needs TLS")
	}
	if cfg.ControllerUser == "" || cfg.ControllerPassword == "" {
		return nil, errors.New("broker: ControllerUser and ControllerPassword are required")
	}
	if cfg.Auth == nil {
		return nil, errors.New("broker: Auth is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "broker")
	cfg.MaxPacket = cmp.Or(cfg.MaxPacket, DefaultMaxPacket)
	cfg.MaxConnections = cmp.Or(cfg.MaxConnections, DefaultMaxConnections)
	cfg.MaxPending = min(cmp.Or(cfg.MaxPending, DefaultMaxPending), cfg.MaxConnections)
	cfg.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, DefaultConnectTimeout)
	switch {
	case cfg.MaxPacket < MinMaxPacket || cfg.MaxPacket > 256<<20:
		return nil, fmt.Errorf("broker: MaxPacket %d outside %d..%d bytes", cfg.MaxPacket, MinMaxPacket, 256<<20)
	case cfg.MaxConnections < 1 || cfg.MaxPending < 1 || cfg.ConnectTimeout < 0:
		return nil, errors.New("broker: MaxConnections, MaxPending and ConnectTimeout must be positive")
	}

	caps := mqtt.NewDefaultServerCapabilities()
	// mochi refuses a packet whose header announces more before reading
	// it: a 32 MB publish no longer allocates 32 MB (twice).
	caps.MaximumPacketSize = uint32(cfg.MaxPacket)
	caps.MaximumClientWritesPending = maxQueued
	caps.MaximumInflight = maxQueued
	caps.ReceiveMaximum = maxQueued
	// The gate alone caps connections: mochi's own count drops only when
	// a leaving client's goroutine has finished, so a device reconnecting
	// just as another left was refused "server unavailable" by it.
	caps.MaximumClients = math.MaxInt64
	// Sessions of devices that connected with clean=false would otherwise be
	// kept forever; a day covers any outage a queued command could survive.
	caps.MaximumSessionExpiryInterval = 24 * 60 * 60
	// mochi's default (a day) also deletes every retained message older
	// than a day: a device online for 25 hours would lose its retained
	// online status. MQTT 3.1.1 messages carry no expiry; keep them.
	caps.MaximumMessageExpiryInterval = 0

	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg:        cfg,
		log:        log,
		ctrlPwHash: sha256.Sum256([]byte(cfg.ControllerPassword)),
		ctx:        ctx,
		cancel:     cancel,
		revoked:    newRevocations(),
		gate:       newGate(cfg.MaxConnections, cfg.MaxPending, cfg.ConnectTimeout, log),
		backoff:    newBackoff(time.Now),
	}
	b.standby.Store(cfg.Standby)
	b.srv = mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 quietLogger(log),
		SysTopicResendInterval: 30,   // nobody may read $SYS; refresh it rarely
		InlineClient:           true, // for NewInlineClient
	})
	if err := b.srv.AddHook(&hook{b: b}, nil); err != nil {
		cancel()
		return nil, fmt.Errorf("broker: add hook: %w", err)
	}
	return b, nil
}

// Start binds the listen address and serves clients in the background. The
// broker is accepting connections when Start returns; ctx bounds only the bind.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("broker: closed")
	}
	if b.started {
		return errors.New("broker: already started")
	}
	var lc net.ListenConfig
	var ln, tlsLn net.Listener
	if b.cfg.Addr != "" {
		l, err := lc.Listen(ctx, "tcp", b.cfg.Addr)
		if err != nil {
			return fmt.Errorf("broker: listen %s: %w", b.cfg.Addr, err)
		}
		ln = l
	}
	if b.cfg.TLSAddr != "" {
		l, err := lc.Listen(ctx, "tcp", b.cfg.TLSAddr)
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			return fmt.Errorf("broker: listen %s: %w", b.cfg.TLSAddr, err)
		}
		tlsLn = l
	}
	return b.serve(ln, tlsLn)
}

// serve serves clients accepted from ln (plain) and tlsLn (TLS), either
// may be nil, both through the one gate so the TLS port shares the caps;
// b.mu is held.
func (b *Broker) serve(ln, tlsLn net.Listener) error {
	add := func(id string, l net.Listener, cfg *tls.Config) error {
		if l == nil {
			return nil
		}
		gl := b.gate.listener(l)
		if cfg != nil {
			gl = tls.NewListener(gl, cfg)
		}
		if err := b.srv.AddListener(listeners.NewNet(id, gl)); err != nil {
			return fmt.Errorf("broker: add listener: %w", err)
		}
		return nil
	}
	err := add("tcp", ln, nil)
	if err == nil {
		err = add("tls", tlsLn, b.cfg.TLS)
	}
	if err == nil {
		if err = b.srv.Serve(); err != nil {
			err = fmt.Errorf("broker: serve: %w", err)
		}
	}
	if err != nil {
		for _, l := range []net.Listener{ln, tlsLn} {
			if l != nil {
				l.Close()
			}
		}
		return err
	}
	b.ln, b.tlsLn = ln, tlsLn
	b.started = true
	for _, l := range []net.Listener{ln, tlsLn} {
		if l != nil {
			b.log.Info("mqtt broker listening", "addr", l.Addr().String(), "tls", l == tlsLn,
				"max_packet", b.cfg.MaxPacket, "max_connections", b.cfg.MaxConnections, "max_pending", b.cfg.MaxPending)
		}
	}
	return nil
}

// Addr returns the host:port the broker is bound to, or the configured
// address before Start.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return b.cfg.Addr
	}
	return b.ln.Addr().String()
}

// TLSAddr returns the host:port the TLS listener is bound to, or the
// configured address before Start ("" without one).
func (b *Broker) TLSAddr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tlsLn == nil {
		return b.cfg.TLSAddr
	}
	return b.tlsLn.Addr().String()
}

// Close disconnects every client and stops listening. It waits for client
// goroutines to finish and is safe to call more than once.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.cancel()
	// mochi's Close drops clients before it stops listening, and can
	// deadlock when a client leaves during it: stop new connections first,
	// then drop the clients, then close the server.
	for _, l := range []net.Listener{b.ln, b.tlsLn} {
		if l != nil {
			l.Close()
		}
	}
	for _, cl := range b.srv.Clients.GetAll() {
		if !cl.Net.Inline && !cl.Closed() {
			cl.Stop(nil)
		}
	}
	// mochi's Close takes the clients' read lock recursively
	// (GetByListener → Len); a client removing itself in between (a write
	// lock waiting) deadlocks it. Let the stopped clients go first.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b.networkClients() == 0 {
			break
		}
	}
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("broker: close: %w", err)
	}
	return nil
}

// Disconnect drops every live connection authenticated as deviceID, as when
// its credentials are rotated or revoked, including one whose password was
// checked just before the change and is still being let in. Its Last Will
// is published, so the fleet sees it offline; whether it may come back is
// up to the Authenticator. Call it after the credentials changed.
func (b *Broker) Disconnect(deviceID string) {
	if deviceID == b.cfg.ControllerUser {
		return // the controller's account is not a device
	}
	b.revoked.revoke(deviceID)
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || cl.Closed() || string(cl.Properties.Username) != deviceID {
			continue
		}
		b.kick(cl)
		b.log.Info("device disconnected", "device", deviceID, "client", cl.ID)
	}
}

// Stats returns the broker's counters and the number of connected clients.
func (b *Broker) Stats() Stats {
	_, pending := b.gate.counts()
	return Stats{
		Refused:      b.refused.Load(),
		AuthFailures: b.authFailures.Load(),
		Dropped:      b.gate.dropped.Load(),
		Oversize:     b.oversize.Load(),
		Standby:      b.standbyRefusals.Load() + b.standbyDrops.Load(),
		Clients:      int(atomic.LoadInt64(&b.srv.Info.ClientsConnected)),
		Pending:      pending,
	}
}

// networkClients counts the clients still in mochi's table, but for the
// inline one.
func (b *Broker) networkClients() int {
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if !cl.Net.Inline {
			n++
		}
	}
	return n
}
