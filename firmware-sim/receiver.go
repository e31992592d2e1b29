// Package firmwaresim is a faithful simulated Loa receiver: it speaks the
// wire contract in package protocol (MQTT commands and acks, status with a
// Last Will, telemetry and events; SRTP/SRTCP under the play's keys, or v1
// RTP/RTCP with token authentication), runs a jitter buffer and a play-out
// clock, and decodes Opus with libopus. Many receivers run in one process
// (see Fleet). It imports nothing else from the module, as a real receiver
// cannot see the controller's internals.
package firmwaresim

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa/protocol"
)

// Impairment degrades the incoming RTP on its way into the jitter buffer,
// as a lossy 4G link would.
type Impairment struct {
	Loss    float64       // 0..1: probability of dropping an incoming RTP packet
	Jitter  time.Duration // extra delay, uniform in 0..Jitter, per incoming RTP packet
	Reorder float64       // 0..1: probability of holding a packet back behind the next one
	// ByeLoss is the probability of dropping an incoming RTCP compound
	// that carries the stream's BYE (1: every one), to test how a
	// receiver ends a stream whose goodbye never arrives.
	ByeLoss float64
	Seed    int64 // random seed; 0 picks one
	// CutDownloadAt drops the connection of each download (a firmware
	// image, a cache item) once, after this many bytes, so the receiver
	// must resume.
	CutDownloadAt int64
	// FailInstall makes writing a verified image to the spare slot fail
	// (a worn-out flash): the firmware command fails with code install.
	FailInstall bool
}

// Config configures one receiver.
type Config struct {
	ID, Password string // device id and MQTT password; the username and client id are the ID
	Broker       string // e.g. tls://ctl.example:8883 (or ssl://), or tcp://127.0.0.1:1883
	// KeepAlive is the MQTT keep-alive (default 30 s): a broker that goes
	// silent without closing the connection (a frozen controller, a cut
	// link) is noticed after it and a ping timeout as long (10 s at most).
	KeepAlive time.Duration
	// Brokers are further addresses, one per controller of a cluster
	// (enrolment's mqtt_urls): the receiver rotates through Broker and
	// these, staying on the one that accepts it (brokers.go).
	Brokers      []string
	Decode       bool   // decode with libopus; false verifies packets and plays out without decoding
	KeepPCM      bool   // keep the decoded 48 kHz mono PCM of each session in memory
	WAVDir       string // if set, write <ID>-<session>.wav of what was played (needs Decode)
	Impair       Impairment
	TeleInterval time.Duration // telemetry period, default 10s
	Firmware     string        // version in slot a, running at start: dotted numeric, default "1.0.0"
	// FirmwareKey is the operator's ed25519 public key the receiver was
	// built with; without it every firmware command fails bad_signature.
	FirmwareKey ed25519.PublicKey
	// StationKey is the station's ed25519 public key (from enrolment or
	// the provisioning profile): it verifies stored alert messages and
	// SMS triggers. Without it they are refused.
	StationKey ed25519.PublicKey
	// SMS is the mobile network of the receiver's modem, MSISDN its
	// number there; without both it has no modem. AreaCodes are the
	// administrative codes of its area and of those above it (from its
	// provisioning profile): SMS triggers for other areas are refused.
	// NoSMS makes firmware without the SMS trigger: it does not announce
	// `sms` and ignores SMS.
	SMS       *SMSNetwork
	MSISDN    string
	AreaCodes []string
	NoSMS     bool
	// V1 makes a contract version 1 receiver, for migration tests: it
	// announces no caps, plays plain RTP with the token and refuses a play
	// with keys. Otherwise it announces receiverCaps.
	V1     bool
	Logger *slog.Logger
	// CA is the station CA: it verifies the broker (tls://, for the URL's
	// host) and firmware downloads. Nil: the system roots.
	CA *x509.CertPool
	// Clock models the board's system and DAC clocks (zero: perfect), on
	// the true time of the host's clock. With a timeline (play.t0_ms) the
	// receiver syncs its clock to the controller's (or to GNSS) and places
	// its output by it.
	Clock ClockSpec
	// OutputDelay is this receiver model's delay from handing a sample to
	// its DAC to the sample leaving it.
	OutputDelay time.Duration
	// Battery models its backup battery (tele.power); a V1 receiver has
	// none. SetMains cuts and restores mains.
	Battery BatterySpec
	// NoCache makes a v2 receiver without local storage: it does not
	// announce protocol.CapCache and refuses cache and play_stored.
	NoCache bool
	// CacheBudget is the storage its cache may use, in bytes, announced
	// in status.cache_budget; 0: DefaultCacheBudget.
	CacheBudget int64
	// CacheDir, if set, keeps the cache in files there, so it survives a
	// restart of the process (a real receiver's flash); otherwise memory.
	CacheDir string
}

// receiverCaps is what a version 2 receiver announces in its online status.
var receiverCaps = []string{protocol.CapSRTPGCM, protocol.CapFence, protocol.CapTimeline}

// DefaultVolume is a receiver's volume after boot.
const DefaultVolume = 70

// EmergencyPriority is the lowest priority of the emergency band, whose
// sessions play even on a muted receiver.
const EmergencyPriority = 224

// Receiver is one simulated receiver. Start it once; end it with Close
// (graceful) or Kill (abrupt, so the broker publishes its Last Will).
type Receiver struct {
	cfg  Config
	log  *slog.Logger
	boot atomic.Uint64
	// connN counts broker connection attempts within the boot (Status.Conn):
	// each connection's Will and online status carry its own, so the
	// controller can tell a late Will of a dropped connection from the
	// online status of the connection that replaced it.
	connN atomic.Uint64

	clientMu  sync.Mutex
	client    mqtt.Client // replaced on reboot
	held      *heldStore  // client's store: its unacknowledged publishes
	rebooting atomic.Bool // between a reboot's abrupt disconnect and its reconnect
	ready     chan error  // first subscription result
	cmds      chan mqtt.Message
	quit      chan struct{} // stops the command loop and telemetry
	wg        sync.WaitGroup
	outbox    chan outMsg // acks, events and telemetry, published in order
	outEnd    chan struct{}

	connMu sync.Mutex
	conn   net.Conn // the live broker connection, closed by Kill
	killed atomic.Bool
	ended  atomic.Bool

	lastProbe atomic.Int64  // unix ns of the last broker link probe; see linkprobe.go
	probes    atomic.Uint64 // link probes over a stalled stream
	linkDrops atomic.Uint64 // of them, unanswered: the connection was dropped

	burstLoss atomic.Uint64 // float64 bits: SetLoss's drop probability

	mu        sync.Mutex
	started   time.Time
	volume    int
	muted     bool
	overrider *session      // the emergency session whose volume plays now; nil when none
	ownVolume int           // the volume to restore once overrider ends
	bootVol   int           // volume after a reboot, set by config
	amp       bool          // amplifier relay
	delay     time.Duration // default playout delay, set by config
	teleEvery chan time.Duration
	current   *session
	sessions  []*session
	malformed uint64 // commands ignored as unparseable
	faults    faults // simulated temperature and amplifier fault; see faults.go
	fences    fenceBook
	rng       *rand.Rand

	fw *firmware // A/B slots and the update in progress; see ota.go

	cache   *cacheState // local storage of items; see cache.go
	localMu sync.Mutex  // one local play starts at a time; see localplay.go
	modem   modem       // the SMS trigger; see sms.go
	progs   programmes  // cached programmes aired; see offline.go

	clock   *Clock
	sync    *SyncFilter
	resyncs atomic.Int64 // hard re-syncs of the play-outs of ended sessions

	battery *Battery // nil without one; see battery.go

	brokers      *brokerList // Broker and Brokers; see brokers.go
	brokersErr   error
	rngMu        sync.Mutex
	reconnectRng *rand.Rand
}

// NewReceiver returns a receiver for cfg, filling in defaults.
func NewReceiver(cfg Config) *Receiver {
	if cfg.TeleInterval <= 0 {
		cfg.TeleInterval = 10 * time.Second
	}
	if cfg.Firmware == "" {
		cfg.Firmware = "1.0.0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Impair.Seed == 0 {
		cfg.Impair.Seed = rand.Int63()
	}
	var bat *Battery
	if !cfg.Battery.None && !cfg.V1 {
		bat = NewBattery(cfg.Battery, time.Now())
	}
	brokers, brokersErr := newBrokerList(append([]string{cfg.Broker}, cfg.Brokers...))
	return &Receiver{
		brokers:      brokers,
		brokersErr:   brokersErr,
		reconnectRng: newReconnectRng(cfg.Impair.Seed),
		battery:      bat,
		cfg:          cfg,
		log:          cfg.Logger.With("device", cfg.ID),
		volume:       DefaultVolume,
		amp:          true,
		delay:        protocol.DefaultDelay,
		teleEvery:    make(chan time.Duration, 1),
		ready:        make(chan error, 1),
		cmds:         make(chan mqtt.Message, 64),
		quit:         make(chan struct{}),
		outbox:       make(chan outMsg, 256),
		outEnd:       make(chan struct{}),
		rng:          rand.New(rand.NewSource(cfg.Impair.Seed ^ 0x5eed)),
		fw:           newFirmware(cfg.Firmware),
		cache:        newCacheState(cfg.CacheDir, cfg.CacheBudget),
		clock:        NewClock(cfg.Clock, time.Now),
		sync:         NewSyncFilter(syncSource(cfg.Clock)),
	}
}

// ID returns the device id.
func (r *Receiver) ID() string { return r.cfg.ID }

// Start connects to the broker with the offline status as Last Will,
// subscribes to the receiver's command topic, publishes the retained online
// status, and returns once subscribed. On reconnects it resubscribes and
// republishes online, since the broker may have published the Will meanwhile.
func (r *Receiver) Start(ctx context.Context) error {
	if err := r.cfg.checkFirmwareConfig(); err != nil {
		return fmt.Errorf("start %s: %w", r.cfg.ID, err)
	}
	if r.brokersErr != nil {
		return fmt.Errorf("start %s: %w", r.cfg.ID, r.brokersErr)
	}
	r.mu.Lock()
	if !r.started.IsZero() || r.ended.Load() {
		r.mu.Unlock()
		return fmt.Errorf("start %s: a receiver starts once", r.cfg.ID)
	}
	r.started = time.Now()
	// Boot increases on every boot of a device, so a late Will of an
	// earlier boot can be told from a newer online status.
	r.boot.Store(uint64(r.started.UnixMilli()))
	r.mu.Unlock()

	client, err := r.newClient(r.boot.Load(), 1)
	if err != nil {
		return fmt.Errorf("start %s: %w", r.cfg.ID, err)
	}

	r.wg.Add(2)
	go r.commandLoop()
	go r.telemetryLoop()
	if r.hasCap(protocol.CapCache) {
		r.wg.Add(1)
		go r.programmeLoop() // offline.go
	}
	go r.outboxLoop()

	tok := client.Connect()
	connected := false
	select {
	case <-tok.Done():
		err = tok.Error()
		connected = err == nil
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		select {
		case err = <-r.ready:
			if err != nil {
				r.ready <- err // for the clean-up below
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		r.ended.Store(true)
		close(r.quit)
		r.wg.Wait()
		close(r.outbox)
		<-r.outEnd
		if !connected {
			// A cancelled start may still connect (and publish online):
			// the attempt ends within the connect timeout; then clean up.
			<-tok.Done()
			connected = tok.Error() == nil
		}
		if connected {
			// onConnect may be publishing online: let it finish, then
			// leave the retained status offline.
			<-r.ready
			waitToken(r.publish(protocol.KindStatus, r.status(false)))
		}
		client.Disconnect(250)
		return fmt.Errorf("start %s: connect %s: %w", r.cfg.ID, r.cfg.Broker, err)
	}
	r.startModem()
	r.log.Debug("receiver started", "boot", r.boot.Load())
	return nil
}

// newClient returns a broker client whose Last Will is the offline status
// of boot and connection attempt conn, and makes it the receiver's.
func (r *Receiver) newClient(boot, conn uint64) (mqtt.Client, error) {
	r.connN.Store(conn)
	will, err := json.Marshal(protocol.Status{Online: false, Boot: boot, Conn: conn})
	if err != nil {
		return nil, err
	}
	held := newHeldStore()
	var self mqtt.Client // this client, for its dial and reconnect handler
	opts := mqtt.NewClientOptions().
		SetClientID(r.cfg.ID).
		SetUsername(r.cfg.ID).
		SetPassword(r.cfg.Password).
		SetTLSConfig(r.cfg.tlsConfig()).
		SetCleanSession(true).
		SetAutoReconnect(true).
		// The receiver paces reconnects itself (beforeReconnect); paho's
		// own sleeps between attempts are capped to nothing.
		SetMaxReconnectInterval(time.Millisecond).
		// A refused CONNACK moves on to the next address, instead of being
		// tried again as MQTT 3.1 (which no Loa broker speaks).
		SetProtocolVersion(4).
		SetKeepAlive(r.keepAlive()).
		SetPingTimeout(min(10*time.Second, r.keepAlive())).
		// A frozen broker accepts TCP (the kernel's backlog) but never
		// answers CONNECT: give up on it as soon as on a silent one.
		SetConnectTimeout(min(10*time.Second, r.keepAlive())).
		SetWriteTimeout(5*time.Second).
		SetOrderMatters(true). // commands run in the order sent
		SetBinaryWill(protocol.DeviceTopic(r.cfg.ID, protocol.KindStatus), will, protocol.QoS[protocol.KindStatus], true).
		SetCustomOpenConnectionFn(func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			return r.dial(self, u, o)
		}).
		SetStore(held). // what the broker has not acknowledged goes again on the next connection
		SetOnConnectHandler(r.onConnect).
		SetReconnectingHandler(func(_ mqtt.Client, o *mqtt.ClientOptions) {
			// Runs before every reconnect attempt: the next broker first,
			// after a back-off; a new connection, a new conn and a Will
			// that carries it.
			r.beforeReconnect(self, o)
			will, _ := json.Marshal(protocol.Status{Online: false, Boot: boot, Conn: r.connN.Add(1)})
			o.SetBinaryWill(protocol.DeviceTopic(r.cfg.ID, protocol.KindStatus), will, protocol.QoS[protocol.KindStatus], true)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			if !r.killed.Load() && !r.rebooting.Load() {
				r.log.Warn("broker connection lost", "err", err)
			}
		})
	for _, u := range r.brokers.fromHeld() {
		opts.Servers = append(opts.Servers, u)
	}
	c := mqtt.NewClient(opts)
	self = c
	r.clientMu.Lock()
	r.client, r.held = c, held
	r.clientMu.Unlock()
	return c, nil
}

// tlsConfig verifies servers with the configured CA; the dialer fills
// in the server name from the URL.
func (c Config) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: c.CA, MinVersion: tls.VersionTLS12}
}

// dial opens the broker connection of client self itself so that Kill can
// drop it without an MQTT DISCONNECT.
func (r *Receiver) dial(self mqtt.Client, u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	if r.killed.Load() || r.rebooting.Load() || r.ended.Load() || r.mqttClient() != self {
		// Also once closed or replaced by a reboot's client: paho's
		// reconnect attempt in progress outlives Disconnect, and would
		// bring a closed receiver back online.
		return nil, errors.New("receiver ended or rebooting")
	}
	r.brokers.dialing(u)
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var c net.Conn
	var err error
	switch u.Scheme {
	case "tcp", "mqtt":
		c, err = d.Dial("tcp", u.Host)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		c, err = tls.DialWithDialer(d, "tcp", u.Host, o.TLSConfig)
	default:
		return nil, fmt.Errorf("broker scheme %q not supported", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.killed.Load() {
		c.Close()
		return nil, errors.New("receiver killed")
	}
	r.conn = c
	return c, nil
}

// onConnect runs (in its own goroutine) on every connection: subscribe
// first, so no command sent on seeing "online" is missed.
func (r *Receiver) onConnect(c mqtt.Client) {
	r.brokers.accepted()
	err := waitToken(c.Subscribe(protocol.DeviceTopic(r.cfg.ID, protocol.KindCmd), protocol.QoS[protocol.KindCmd], r.onCommand))
	if err == nil {
		err = waitToken(r.publish(protocol.KindStatus, r.status(true)))
	}
	if err != nil {
		r.log.Warn("subscribe or online status failed", "err", err)
	} else {
		r.onlineSent()
	}
	select {
	case r.ready <- err:
	default: // only Start listens, once
	}
}

// onCommand must not block paho's delivery goroutine.
func (r *Receiver) onCommand(_ mqtt.Client, m mqtt.Message) {
	select {
	case r.cmds <- m:
	case <-r.quit:
	default:
		r.log.Warn("command queue full, command dropped")
	}
}

func waitToken(t mqtt.Token) error {
	if t == nil {
		return nil
	}
	if !t.WaitTimeout(10 * time.Second) {
		return errors.New("mqtt: timed out")
	}
	return t.Error()
}

type outMsg struct {
	kind string
	v    any
}

// send queues v for publishing on the receiver's topic of kind. The queue
// keeps play-out and command handling from waiting on the broker, and
// keeps messages in order (a session's finished event before the ack of
// the stop that ended it).
func (r *Receiver) send(kind string, v any) {
	if r.eventMuted(v) {
		return
	}
	r.outbox <- outMsg{kind, v}
}

// outboxLoop publishes the queue until Close or Kill closes it.
func (r *Receiver) outboxLoop() {
	defer close(r.outEnd)
	for m := range r.outbox {
		if done, ok := m.v.(chan struct{}); ok && m.kind == "" {
			close(done) // a flush marker: everything before it is out
			continue
		}
		r.deliver(m)
	}
}

// publishWait bounds how long Close waits for the broker to acknowledge
// what is left in the queue.
const publishWait = 10 * time.Second

// deliver publishes m. A QoS 1 message waits for the broker's PUBACK,
// across reconnects: paho's resume sends it again from heldStore on each
// new connection, so one in flight when the link dropped, or published
// while paho reconnects, goes out as soon as the link is back, before
// anything queued after it. Waiting on paho's token instead stalled the
// queue 10 s after a reconnect (paho never completes such a token).
func (r *Receiver) deliver(m outMsg) {
	for {
		r.clientMu.Lock()
		c, held := r.client, r.held
		r.clientMu.Unlock()
		tok := r.publishOn(c, m.kind, m.v) // c's store is held
		if tok == nil {
			return
		}
		pt, ok := tok.(*mqtt.PublishToken)
		if protocol.QoS[m.kind] == 0 || !ok || pt.MessageID() == 0 {
			// QoS 0, or refused before paho took it (not connected at all).
			if err := waitToken(tok); err != nil && !r.killed.Load() {
				r.log.Warn("publish failed", "kind", m.kind, "err", err)
			}
			return
		}
		h := held.held(pt.MessageID())
		if h == nil {
			return // acknowledged already
		}
		acked, giveUp := r.awaitAck(c, held, h)
		if acked || giveUp {
			if giveUp && !r.killed.Load() {
				r.log.Warn("publish not acknowledged before the end", "kind", m.kind)
			}
			return
		}
		// The client dropped it (a reboot's disconnect): publish() sends
		// it on the next client, or not at all while rebooting.
	}
}

// awaitAck waits for the broker to acknowledge h, through outages: it
// gives up only when the receiver is killed, or closed while the link is
// down or for longer than publishWait.
func (r *Receiver) awaitAck(c mqtt.Client, s *heldStore, h *heldPub) (acked, giveUp bool) {
	quit := r.quit
	var limit <-chan time.Time
	for {
		select {
		case <-h.done:
			return s.isAcked(h), false
		case <-quit:
			if r.killed.Load() || !c.IsConnectionOpen() {
				return false, true
			}
			quit = nil // Close: what is queued still goes out while the link is up
			t := time.NewTimer(publishWait)
			defer t.Stop()
			limit = t.C
		case <-limit:
			return false, true
		}
	}
}

// publish sends v as JSON on the receiver's topic of kind with the QoS and
// retain flag the contract fixes. Nothing leaves a killed receiver.
func (r *Receiver) publish(kind string, v any) mqtt.Token {
	return r.publishOn(r.mqttClient(), kind, v)
}

// publishOn is publish through client c.
func (r *Receiver) publishOn(c mqtt.Client, kind string, v any) mqtt.Token {
	if r.killed.Load() || r.rebooting.Load() || c == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		r.log.Error("encode payload", "kind", kind, "err", err)
		return nil
	}
	return c.Publish(protocol.DeviceTopic(r.cfg.ID, kind), protocol.QoS[kind], kind == protocol.KindStatus, b)
}

// Close stops playing (the session ends with reason "stop" and its finished
// event is published), publishes the retained offline status and
// disconnects.
func (r *Receiver) Close() error {
	if !r.ended.CompareAndSwap(false, true) || r.mqttClient() == nil {
		return nil
	}
	close(r.quit)
	r.wg.Wait()
	r.stopModem()
	r.endCurrent(EndStop)
	r.modem.plays.Wait() // a local play it started ended with the session
	close(r.outbox)
	<-r.outEnd
	var err error
	if r.mqttClient().IsConnectionOpen() {
		// While paho reconnects a retained status is not kept (heldStore)
		// and its token would never complete; the broker has published
		// the Will of the lost link.
		err = waitToken(r.publish(protocol.KindStatus, r.status(false)))
	}
	r.mqttClient().Disconnect(250)
	if err != nil {
		return fmt.Errorf("close %s: offline status: %w", r.cfg.ID, err)
	}
	return nil
}

// Kill ends the receiver abruptly, like a power cut: the broker connection
// is closed without DISCONNECT, so the broker publishes the Last Will, and
// nothing more is sent on MQTT or RTCP.
func (r *Receiver) Kill() {
	if !r.ended.CompareAndSwap(false, true) || r.mqttClient() == nil {
		return
	}
	r.connMu.Lock()
	r.killed.Store(true)
	if r.conn != nil {
		r.conn.Close()
	}
	r.connMu.Unlock()
	close(r.quit)
	r.wg.Wait()
	r.stopModem()
	r.endCurrent(EndStop)
	r.modem.plays.Wait() // a local play it started ended with the session
	close(r.outbox)
	<-r.outEnd
	// Stops paho's reconnect attempts; its DISCONNECT cannot reach the
	// broker through the closed connection.
	r.mqttClient().Disconnect(0)
}

func (r *Receiver) mqttClient() mqtt.Client {
	r.clientMu.Lock()
	defer r.clientMu.Unlock()
	return r.client
}

// Boot returns the boot counter of the running boot.
func (r *Receiver) Boot() uint64 { return r.boot.Load() }

// Conn returns the connection counter of the current (or last) broker
// connection of this boot.
func (r *Receiver) Conn() uint64 { return r.connN.Load() }

// status is the receiver's status now, on its current connection.
func (r *Receiver) status(online bool) protocol.Status {
	st := protocol.Status{Online: online, Boot: r.boot.Load(), Conn: r.connN.Load(), TS: time.Now().UnixMilli()}
	if online && !r.cfg.V1 {
		st.Caps = r.caps()
		if r.hasCap(protocol.CapCache) {
			st.CacheBudget = r.cache.budget
		}
	}
	return st
}

// caps is what this receiver announces: receiverCaps and the optional
// features its Config leaves on.
func (r *Receiver) caps() []string {
	caps := slices.Clone(receiverCaps)
	if !r.cfg.NoCache {
		caps = append(caps, protocol.CapCache)
	}
	if !r.cfg.NoSMS {
		caps = append(caps, protocol.CapSMS)
	}
	return caps
}

// hasCap reports whether the receiver announces c.
func (r *Receiver) hasCap(c string) bool {
	return !r.cfg.V1 && slices.Contains(r.caps(), c)
}

// endCurrent ends the playing session, if any, and waits for it.
func (r *Receiver) endCurrent(reason string) {
	r.mu.Lock()
	s := r.current
	r.current = nil
	r.mu.Unlock()
	if s != nil {
		s.stop(reason)
	}
}

// sessionEnded is called by a session that ended on its own (BYE, timeout).
func (r *Receiver) sessionEnded(s *session) {
	r.mu.Lock()
	if r.current == s {
		r.current = nil
	}
	r.mu.Unlock()
}

// Sessions returns the stats of every session played, in order.
func (r *Receiver) Sessions() []SessionStats {
	r.mu.Lock()
	ss := append([]*session(nil), r.sessions...)
	r.mu.Unlock()
	out := make([]SessionStats, len(ss))
	for i, s := range ss {
		out[i] = s.snapshot()
	}
	return out
}

// Session returns the stats of the latest session with id.
func (r *Receiver) Session(id string) (SessionStats, bool) {
	if s := r.find(id); s != nil {
		return s.snapshot(), true
	}
	return SessionStats{}, false
}

// PCM returns a copy of the 48 kHz mono PCM played in the latest session
// with id (before volume), when Config.KeepPCM is set.
func (r *Receiver) PCM(sessionID string) []int16 {
	if s := r.find(sessionID); s != nil {
		return s.pcmCopy()
	}
	return nil
}

func (r *Receiver) find(id string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.sessions) - 1; i >= 0; i-- {
		if r.sessions[i].args.Session == id {
			return r.sessions[i]
		}
	}
	return nil
}

// Volume returns the current volume, 0..100.
func (r *Receiver) Volume() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.volume
}

// Muted reports whether a mute command muted the receiver.
func (r *Receiver) Muted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.muted
}

// Amp reports whether the amplifier relay is on.
func (r *Receiver) Amp() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.amp
}

// silenced reports whether a session of priority plays silence now: the
// receiver is muted (emergency sessions override mute) or its amplifier
// is off.
func (r *Receiver) silenced(priority uint8) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.amp || r.ampFaulty() || (r.muted && priority < EmergencyPriority)
}

// playDelay is a play command's delay_ms, or the configured default
// delay when the command gives 0.
func (r *Receiver) playDelay(ms int) time.Duration {
	if ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.delay
}

// Malformed returns how many commands were ignored as unparseable.
func (r *Receiver) Malformed() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.malformed
}

func (r *Receiver) keepAlive() time.Duration {
	if r.cfg.KeepAlive > 0 {
		return r.cfg.KeepAlive
	}
	return 30 * time.Second
}
