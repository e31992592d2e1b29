// Package devices is the controller's side of the fleet over MQTT: presence
// from retained status, telemetry, events, and commands correlated with
// their acks. Hot device state lives in memory and is flushed to a
// StateWriter in batches.
//
// Presence follows the retained dev/{id}/status: a status whose (boot,
// conn) is lower than the last one accepted is a late Last Will (or
// status) of an earlier boot or connection and is ignored; at an equal
// pair the latest wins (online, then that connection's Will). Receivers
// without conn send 0 and are ordered by boot alone. LastSeen moves with
// every valid message the device itself sends, so not with the offline
// form, which the broker publishes.
//
// paho calls Fleet only to enqueue: one goroutine handles messages in
// arrival order (O(1) each, under a short lock), another calls the
// OnEvent/OnPresence subscribers outside any lock, a third flushes.
package devices

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// StateWriter persists hot device state in one transaction per call
// (store.DB implements it).
type StateWriter interface {
	PutDeviceStates(ctx context.Context, states []loa.DeviceState) error
}

// Config configures a Fleet. Zero durations take the defaults below.
type Config struct {
	Broker                       string      // tcp://host:port (embedded or external MQTT 3.1.1 broker)
	TLS                          *tls.Config // for a tls:// or ssl:// broker; nil: the system roots
	Username, Password, ClientID string
	CommandTimeout               time.Duration // wait for a final ack; default 5s
	CommandTTL                   time.Duration // command expiry sent in Exp; default 30s
	FlushInterval                time.Duration // default 1s
	// PresenceSettle is how long after the link comes up a device whose
	// status has not arrived yet stays "unknown" before it counts as
	// offline (receivers reconnecting to a restarted broker); default 10s.
	PresenceSettle time.Duration
	States         StateWriter       // optional
	Initial        []loa.DeviceState // optional: state loaded from the store at start
	Now            func() time.Time
	Logger         *slog.Logger
	// NewClient builds the MQTT client from the options Open sets; nil
	// means paho over the network. A controller embedding the broker
	// passes its in-process client (broker.NewInlineClient).
	NewClient func(*mqtt.ClientOptions) mqtt.Client
	// StartDown lets Open return with the link down when the broker is
	// unreachable at start (not when it refuses the credentials): the
	// client keeps trying to connect (paho's ConnectRetry), every
	// device's presence is unknown meanwhile, and commands are refused as
	// unreachable until it is up, as in an outage. For an external broker.
	StartDown bool
}

const (
	defaultCommandTimeout = 5 * time.Second
	defaultCommandTTL     = 30 * time.Second
	defaultFlushInterval  = time.Second
	defaultPresenceSettle = 10 * time.Second

	connectTimeout  = 10 * time.Second
	connectRetry    = time.Second // between first-connect attempts with StartDown
	flushTimeout    = 10 * time.Second
	resubscribeWait = time.Second
	disconnectQuiet = 250 // ms paho may spend sending DISCONNECT

	// inboxLimit bounds the messages waiting for the handler goroutine;
	// beyond it messages are dropped (and counted) rather than block paho.
	inboxLimit = 1 << 17
	// noticeLimit bounds events and presence changes waiting for slow
	// subscribers.
	noticeLimit = 1 << 16
	// resultLimit is how many recent command results are kept.
	resultLimit = 10000
)

// Fleet tracks every device that talks to the broker and sends them
// commands. It is safe for concurrent use.
type Fleet struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	client mqtt.Client

	mu      sync.Mutex // guards devices, dirty and the entries
	devices map[string]*device
	dirty   []*device
	online  atomic.Int64 // written under mu
	// linkUp: connected and subscribed; presence is unknown while false.
	linkUp atomic.Bool
	upAt   atomic.Int64 // f.now() in Unix ns when linkUp last became true
	downAt atomic.Int64 // f.now() in Unix ns when the link was last lost (or the fleet started without it)
	// linkMu guards linkBack, closed (and replaced) each time linkUp
	// becomes true: group commands wait on it through an outage.
	linkMu   sync.Mutex
	linkBack chan struct{}

	malformed   atomic.Uint64
	unknownAcks atomic.Uint64
	stale       atomic.Uint64
	dropped     atomic.Uint64
	commands    atomic.Uint64
	timeouts    atomic.Uint64

	// fence, when set, rides in every command to devices that announce
	// protocol.CapFence (SetFence).
	fence atomic.Pointer[protocol.Fence]

	cmdMu   sync.Mutex // guards pending and results
	pending map[string]*pending
	results results

	subs subscribers

	inbox   *queue[message]
	notices *queue[notice]
	metrics *metrics

	subscribed chan error // the first subscription's outcome, for Open

	closing   chan struct{} // closed first thing in Close
	stopFlush chan struct{}
	workers   sync.WaitGroup // inbox, notifier, flusher

	cbMu     sync.Mutex // guards cbClosed; orders cbWG.Add before Wait
	cbClosed bool
	cbWG     sync.WaitGroup // paho OnConnect goroutines still subscribing

	closeOnce sync.Once
	closeErr  error
}

// message is one MQTT publish, handed from paho's router to the handler.
type message struct {
	topic    string
	payload  []byte
	retained bool
	linkLost bool // not a publish: the link went down after the messages before it
}

// Stats are counters for health pages and tests.
type Stats struct {
	Online      int    // devices online now
	Malformed   uint64 // payloads or topics that failed to parse, all devices
	Commands    uint64 // commands sent
	Timeouts    uint64 // commands that got no final ack in time
	UnknownAcks uint64 // acks whose id matched no command sent by this Fleet
	Stale       uint64 // statuses ignored because their (boot, conn) was lower than the last accepted
	Dropped     uint64 // messages dropped because the handler fell behind
}

// newFleet builds a Fleet's state without any network or goroutines.
func newFleet(cfg Config) *Fleet {
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = defaultCommandTimeout
	}
	if cfg.CommandTTL <= 0 {
		cfg.CommandTTL = defaultCommandTTL
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = defaultFlushInterval
	}
	if cfg.PresenceSettle <= 0 {
		cfg.PresenceSettle = defaultPresenceSettle
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{
		cfg:        cfg,
		log:        cfg.Logger,
		now:        cfg.Now,
		devices:    make(map[string]*device, len(cfg.Initial)),
		pending:    make(map[string]*pending),
		results:    newResults(resultLimit),
		inbox:      newQueue[message](inboxLimit),
		notices:    newQueue[notice](noticeLimit),
		subscribed: make(chan error, 1),
		closing:    make(chan struct{}),
		stopFlush:  make(chan struct{}),
	}
	f.metrics = newMetrics(f)
	f.load(cfg.Initial)
	return f
}

// Open connects to the broker (clean session, automatic reconnect with a
// resubscription on every connect), subscribes to status, ack, tele and
// event of every device, and returns once the broker has granted those
// subscriptions. An unreachable broker is EUNAVAILABLE (unless
// Config.StartDown), refused credentials EUNAUTHORIZED.
func Open(ctx context.Context, cfg Config) (*Fleet, error) {
	u, err := url.Parse(cfg.Broker)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, loa.Errorf(loa.EINVALID, "mqtt broker %q: want scheme://host:port, e.g. tcp://127.0.0.1:1883", cfg.Broker)
	}
	f := newFleet(cfg)
	if f.cfg.ClientID == "" {
		// The embedded broker lets the controller's account use its name
		// and a suffix of the node's: "loa-controller-3fa2c1".
		f.cfg.ClientID = cmp.Or(cfg.Username, "loa-ctl") + "-" + randomHex(6)
	}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(f.cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetTLSConfig(cfg.TLS).
		SetCleanSession(true).
		SetStore(newCopyingStore()).
		SetAutoReconnect(true).
		SetConnectRetry(false). // a first connect that fails is Open's error
		SetMaxReconnectInterval(10 * time.Second).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(30 * time.Second).
		// Handlers run on paho's router goroutine in arrival order; ours only
		// enqueue, so order is kept without ever blocking the router.
		SetOrderMatters(true).
		SetDefaultPublishHandler(f.receive).
		SetOnConnectHandler(f.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			f.lostLink()
			f.log.Warn("mqtt connection lost; reconnecting; device presence unknown until their statuses return",
				"broker", cfg.Broker, "err", err)
		})
	if cfg.NewClient != nil {
		f.client = cfg.NewClient(opts)
	} else {
		f.client = mqtt.NewClient(opts)
	}
	f.start()

	tok := f.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// Close returns at once; paho abandons the attempt in the background.
		f.Close()
		return nil, fmt.Errorf("%w: %w", loa.Errorf(loa.EUNAVAILABLE, "mqtt broker %s: connecting: %v", cfg.Broker, ctx.Err()), ctx.Err())
	}
	if err := tok.Error(); err != nil {
		cerr := connectError(cfg, err)
		if !cfg.StartDown || loa.ErrorCode(cerr) != loa.EUNAVAILABLE {
			f.Close()
			return nil, cerr
		}
		// Up without the broker: a new client (the options are copied at
		// creation) that keeps trying; onConnect subscribes when it is up.
		opts.SetConnectRetry(true).SetConnectRetryInterval(connectRetry)
		if cfg.NewClient != nil {
			f.client = cfg.NewClient(opts)
		} else {
			f.client = mqtt.NewClient(opts)
		}
		f.downAt.Store(f.now().UnixNano())
		f.client.Connect()
		f.log.Warn("mqtt broker unreachable at start; starting without it and connecting when it is up; device presence unknown until then",
			"broker", cfg.Broker, "err", err)
		return f, nil
	}
	select {
	case err = <-f.subscribed:
	case <-ctx.Done():
		err = fmt.Errorf("%w: %w", loa.Errorf(loa.EUNAVAILABLE, "mqtt broker %s: subscribing: %v", cfg.Broker, ctx.Err()), ctx.Err())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	f.log.Info("fleet connected", "broker", cfg.Broker, "client_id", f.cfg.ClientID, "devices", len(f.devices))
	return f, nil
}

func connectError(cfg Config, err error) error {
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword), errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return fmt.Errorf("%w: %w", loa.Errorf(loa.EUNAUTHORIZED, "mqtt broker %s refused the credentials of user %q", cfg.Broker, cfg.Username), err)
	default:
		return fmt.Errorf("%w: %w", loa.Errorf(loa.EUNAVAILABLE, "mqtt broker %s unreachable: %v", cfg.Broker, err), err)
	}
}

// start runs the handler, the notifier and the flusher.
func (f *Fleet) start() {
	f.workers.Add(3)
	go func() { defer f.workers.Done(); f.inbox.run(f.handleBatch) }()
	go func() { defer f.workers.Done(); f.notices.run(f.notify) }()
	go func() { defer f.workers.Done(); f.flushLoop() }()
}

// receive is paho's publish handler. It must never block.
func (f *Fleet) receive(_ mqtt.Client, m mqtt.Message) {
	if f.inbox.push(message{topic: m.Topic(), payload: m.Payload(), retained: m.Retained()}) {
		return
	}
	select {
	case <-f.closing:
		return // a message paho delivers while Close disconnects
	default:
	}
	if n := f.dropped.Add(1); n == 1 || n%1000 == 0 {
		f.log.Warn("fleet handler behind; dropping messages", "dropped", n, "topic", m.Topic())
	}
}

func (f *Fleet) handleBatch(batch []message) {
	for i := range batch {
		if batch[i].linkLost {
			f.linkLost()
			continue
		}
		f.handle(batch[i].topic, batch[i].payload, batch[i].retained)
	}
}

// lostLink is told by paho that the connection dropped: presence is
// unknown from now on, and every device's stays so until its status
// arrives over a new connection. The marker goes through the inbox so
// that statuses received before the loss are applied first.
func (f *Fleet) lostLink() {
	f.downAt.Store(f.now().UnixNano())
	f.linkUp.Store(false)
	if !f.inbox.push(message{linkLost: true}) {
		f.log.Warn("fleet: inbox full; presence marked unknown late")
	}
}

// LinkUp reports whether the controller is connected to the broker and
// subscribed: while it is not, no device's presence is known and no
// command can reach one.
func (f *Fleet) LinkUp() bool {
	return f.linkUp.Load() && f.client != nil && f.client.IsConnectionOpen()
}

// BrokerHealth reports the link to the broker (the API's /healthz).
func (f *Fleet) BrokerHealth() loa.BrokerHealth {
	if f.LinkUp() {
		return loa.BrokerHealth{Connected: true, Since: time.Unix(0, f.upAt.Load()).UTC()}
	}
	h := loa.BrokerHealth{}
	if at := f.downAt.Load(); at != 0 {
		h.Since = time.Unix(0, at).UTC()
	}
	return h
}

// linkUpAgain returns a channel closed the next time the link is up
// (connected and subscribed), or already closed when it is up now.
func (f *Fleet) linkUpAgain() <-chan struct{} {
	f.linkMu.Lock()
	defer f.linkMu.Unlock()
	if f.LinkUp() {
		c := make(chan struct{})
		close(c)
		return c
	}
	if f.linkBack == nil {
		f.linkBack = make(chan struct{})
	}
	return f.linkBack
}

// filters are the subscriptions, with the QoS the contract fixes.
var filters = map[string]byte{
	protocol.DeviceFilter(protocol.KindStatus): protocol.QoS[protocol.KindStatus],
	protocol.DeviceFilter(protocol.KindAck):    protocol.QoS[protocol.KindAck],
	protocol.DeviceFilter(protocol.KindTele):   protocol.QoS[protocol.KindTele],
	protocol.DeviceFilter(protocol.KindEvent):  protocol.QoS[protocol.KindEvent],
}

// onConnect runs (in its own goroutine, started by paho) after every
// connect. A clean session forgets subscriptions, so each connect
// subscribes again; the broker then resends every retained status.
func (f *Fleet) onConnect(c mqtt.Client) {
	f.cbMu.Lock()
	if f.cbClosed {
		f.cbMu.Unlock()
		return
	}
	f.cbWG.Add(1)
	f.cbMu.Unlock()
	defer f.cbWG.Done()

	for attempt := 0; ; attempt++ {
		err := f.subscribe(c)
		if attempt == 0 {
			select {
			case f.subscribed <- err: // Open waits for the first outcome
			default:
			}
		}
		if err == nil {
			f.upAt.Store(f.now().UnixNano())
			f.linkUp.Store(true)
			f.linkMu.Lock()
			if f.linkBack != nil {
				close(f.linkBack)
				f.linkBack = nil
			}
			f.linkMu.Unlock()
			f.log.Info("fleet subscribed", "broker", f.cfg.Broker)
			return
		}
		f.log.Error("fleet subscription failed; retrying", "broker", f.cfg.Broker, "err", err)
		select {
		case <-f.closing:
			return
		case <-time.After(resubscribeWait):
		}
		if !c.IsConnectionOpen() {
			return // the next connect subscribes again
		}
	}
}

func (f *Fleet) subscribe(c mqtt.Client) error {
	tok := c.SubscribeMultiple(filters, nil) // nil: messages go to the default handler
	select {
	case <-tok.Done():
	case <-f.closing:
		return loa.Errorf(loa.EUNAVAILABLE, "fleet closed")
	case <-time.After(connectTimeout):
		return loa.Errorf(loa.EUNAVAILABLE, "mqtt broker %s: no SUBACK within %v", f.cfg.Broker, connectTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("%w: %w", loa.Errorf(loa.EUNAVAILABLE, "mqtt broker %s: subscribe: %v", f.cfg.Broker, err), err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for filter, code := range st.Result() {
			if code == 0x80 {
				return loa.Errorf(loa.EFORBIDDEN, "mqtt broker %s refused the subscription to %s", f.cfg.Broker, filter)
			}
		}
	}
	return nil
}

// Close flushes the state one last time, disconnects and stops every
// goroutine. Commands still waiting fail with EUNAVAILABLE. It returns the
// final flush's error.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		close(f.closing)
		f.cbMu.Lock()
		f.cbClosed = true
		f.cbMu.Unlock()
		if f.client != nil {
			f.client.Disconnect(disconnectQuiet)
		}
		f.cbWG.Wait()
		f.closeErr = f.shutdown()
		f.log.Info("fleet closed")
	})
	return f.closeErr
}

// shutdown drains and stops the workers, then flushes.
func (f *Fleet) shutdown() error {
	f.inbox.close()
	f.notices.close()
	close(f.stopFlush)
	f.workers.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	return f.flush(ctx)
}

// Stats returns the fleet's counters.
func (f *Fleet) Stats() Stats {
	return Stats{
		Online:      int(f.online.Load()),
		Malformed:   f.malformed.Load(),
		Commands:    f.commands.Load(),
		Timeouts:    f.timeouts.Load(),
		UnknownAcks: f.unknownAcks.Load(),
		Stale:       f.stale.Load(),
		Dropped:     f.dropped.Load(),
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return hex.EncodeToString(b)
}
