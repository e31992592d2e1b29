// Package broadcast is Loa's audio engine: it streams pre-encoded Opus
// packets as RTP (RFC 3550, RFC 7587) from one UDP socket to every receiver
// of a session with batched sends, authenticates receivers by the RTCP they
// send to the same socket (RFC 5761), and arbitrates each receiver between
// competing sessions by priority.
package broadcast

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/srtp/v3"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// Tuner tells a receiver to join or leave a session's stream.
type Tuner interface {
	// Tune returns when the device acked done, or with an error.
	Tune(ctx context.Context, deviceID string, args protocol.PlayArgs) error
	Untune(ctx context.Context, deviceID, sessionID string) error
}

// Source is the content of a session (loa.PacketSource). Next is not
// interrupted by Stop: a source that blocks (a live input) delays Stop
// until it returns.
type Source = loa.PacketSource

// Config configures an Engine.
type Config struct {
	Bind   string        // UDP listen address, e.g. ":5004" or "127.0.0.1:0"
	Public string        // host:port receivers are told; default: the bound address (127.0.0.1 if unspecified)
	Delay  time.Duration // playout delay D told to receivers; default protocol.DefaultDelay
	// Lead is the longest packet 0 is held back after Start while the
	// session's devices tune and open their NAT: streaming begins as soon
	// as every device it holds has authenticated (or failed), at the
	// latest after Lead. Without it a bulletin's first words reach nobody.
	// Default 0 (stream at once).
	Lead  time.Duration
	Tuner Tuner
	// Caps tells which devices announced protocol.CapSRTPGCM: they get
	// SRTP keys in their play command and the stream as SRTP. Nil: every
	// device is a v1 (plain RTP) receiver.
	Caps Caps
	// Offsets gives each receiver's delay offset (play.offset_ms), sent
	// with the timeline to receivers that announce protocol.CapTimeline.
	// Nil: none.
	Offsets Offsets
	// RefClock is the reference clock the SDP names (RFC 7273 ts-refclk):
	// "ntp=host[:port]" when the controller's SNTP responder runs; empty:
	// "local".
	RefClock string
	// Fence is the controller's fence the SRTP keys are derived with
	// (contract v2): Gen increases on every start.
	Fence protocol.Fence
	// Gate, if set, is asked before each packet: false holds it back (the
	// frame goes by as a gap). A cluster leader that cannot show it still
	// leads (frozen and thawed, cut off) must not send: receivers that
	// have not heard from its successor would play it. Nil: always send.
	Gate func() bool
	// RequireSRTP refuses plain receivers: they are not tuned, and
	// Refused is told why.
	RequireSRTP bool
	// Refused, if set, is told of every device a session does not tune
	// because of RequireSRTP, with the reason.
	Refused func(sessionID, deviceID string, err error)
	// Reception, if set, is told, outside the engine's lock, each time a
	// receiver's authenticated RTCP reports say more of a session's
	// packets arrived: delivery evidence for receivers that send no
	// events. It must not block.
	Reception func(sessionID, deviceID string, received uint64)
	// Shards is the number of goroutines a session's fan-out is split
	// across, each sending through its own descriptor of the media socket
	// (shard.go). 0: one per core (GOMAXPROCS); 1: one goroutine, the
	// session's own.
	Shards int
	Logger *slog.Logger

	// sendMode is how shards reach the media port; only the bench
	// changes it, to compare.
	sendMode sendMode
}

// Offsets tells a receiver's delay offset in ms (devices.Fleet implements
// it from the device's config): protocol.MinOffsetMs..MaxOffsetMs.
type Offsets interface {
	OffsetMs(deviceID string) int
}

// ErrPlainRefused is why a plain receiver is not tuned under RequireSRTP.
var ErrPlainRefused = loa.Errorf(loa.EFORBIDDEN,
	"plain receiver refused: it announces no %s and the controller runs with -require-srtp", protocol.CapSRTPGCM)

// Reasons the engine itself gives when it stops a session.
const (
	ReasonMaxDuration = "max duration"
	ReasonShutdown    = loa.SessionShutdown
)

// tuneConcurrency bounds the Tune and Untune calls in flight, so starting a
// province-wide session does not open thousands of MQTT exchanges at once.
const tuneConcurrency = 128

// emergencyTuneConcurrency is the same bound for the commands that tune
// receivers to an emergency-band session: an alert must reach a whole
// province at once, and its first word waits for the slowest tune.
const emergencyTuneConcurrency = 2048

// socketBuffer is the send and receive buffer asked for the media socket.
const socketBuffer = 4 << 20

// Engine owns the media socket and every running session.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	conn  *net.UDPConn
	bw    batchWriter
	local netip.AddrPort
	// senders are the shards' descriptors of the media socket, [0] being
	// conn itself; fixed at Open.
	senders []sender
	// shardMin is the fan-out from which a send runs on every shard's
	// goroutine (minShardDests; tests lower it).
	shardMin int
	// shardSent counts the datagrams each shard sent in parallel sends.
	shardSent []atomic.Uint64
	// rtpSent counts RTP datagrams sent, every session together (the
	// bench reads it; the metrics are for Prometheus).
	rtpSent atomic.Uint64
	public  string
	is4     bool

	ctx    context.Context // cancelled by Close; bounds device commands
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
	emSem  chan struct{} // for tunes to emergency-band sessions

	metrics *metrics

	subMu sync.Mutex                    // serialises Subscribe and cancel
	subs  atomic.Pointer[[]*subscriber] // copied on write; read by deliver

	closeDone chan struct{} // closed when the first Close has returned

	mu       sync.Mutex
	closed   bool
	seq      uint64 // start order of sessions, for "newest wins"
	sessions map[string]*session
	devices  map[string]*device
	byRecv   map[uint32]*target // RTCP sender SSRC → the target it authenticates
}

// Open binds the media socket and starts reading RTCP from it.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Delay == 0 {
		cfg.Delay = protocol.DefaultDelay
	}
	if cfg.Delay < 0 || cfg.Lead < 0 {
		return nil, loa.Errorf(loa.EINVALID, "broadcast: negative delay or lead")
	}
	if cfg.Shards < 0 || cfg.Shards > maxShards {
		return nil, loa.Errorf(loa.EINVALID, "broadcast: shards must be within 0..%d", maxShards)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lc := net.ListenConfig{Control: reusePort}
	if reusePort != nil && cfg.sendMode == sendSockets {
		// The shards' send sockets join the port's SO_REUSEPORT group. A
		// port some other socket holds is still refused, as without it.
		if err := probePort(ctx, cfg.Bind); err != nil {
			return nil, err
		}
	} else {
		lc.Control = nil
	}
	pc, err := lc.ListenPacket(ctx, "udp", cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("broadcast: listen %q: %w", cfg.Bind, err)
	}
	conn := pc.(*net.UDPConn)
	// Thousands of receivers report within the same second when a session
	// starts; the default buffers (~200 KB) drop a burst of that size. The
	// kernel caps these at net.core.[rw]mem_max, so failure is harmless.
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	public := cfg.Public
	if public == "" {
		a := local.Addr().Unmap()
		if a.IsUnspecified() {
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		public = netip.AddrPortFrom(a, local.Port()).String()
	}
	bw := newBatchWriter(conn)
	senders, mode, err := openSenders(conn, bw, shardCount(cfg.Shards), cfg.sendMode)
	if err != nil {
		conn.Close()
		return nil, err
	}
	ectx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		cfg:       cfg,
		log:       log,
		conn:      conn,
		bw:        bw,
		senders:   senders,
		shardMin:  minShardDests,
		shardSent: make([]atomic.Uint64, len(senders)),
		local:     local,
		public:    public,
		is4:       conn.LocalAddr().(*net.UDPAddr).IP.To4() != nil,
		ctx:       ectx,
		cancel:    cancel,
		sem:       make(chan struct{}, tuneConcurrency),
		emSem:     make(chan struct{}, emergencyTuneConcurrency),
		metrics:   newMetrics(),
		sessions:  make(map[string]*session),
		devices:   make(map[string]*device),
		byRecv:    make(map[uint32]*target),

		closeDone: make(chan struct{}),
	}
	e.subs.Store(&[]*subscriber{})
	e.wg.Add(1)
	go e.readLoop()
	e.log.Info("media socket open", "addr", local.String(), "public", public, "shards", len(senders), "send", mode.String())
	return e, nil
}

// probePort fails when bind's port is taken, binding it without
// SO_REUSEPORT for a moment; port 0 is never taken.
func probePort(ctx context.Context, bind string) error {
	if _, port, err := net.SplitHostPort(bind); err == nil && (port == "0" || port == "") {
		return nil
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", bind)
	if err != nil {
		return fmt.Errorf("broadcast: listen %q: %w", bind, err)
	}
	return pc.Close()
}

// Close stops every session (BYE, ended stopped "shutdown", no device
// commands), closes the socket and waits for the engine's goroutines, so
// no subscriber is called once it has returned.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.closeDone
		return nil
	}
	defer close(e.closeDone)
	e.closed = true
	running := make([]*session, 0, len(e.sessions))
	for _, s := range e.sessions {
		if s.stopState == "" {
			s.stopState, s.stopReason = loa.SessionStopped, ReasonShutdown
		}
		running = append(running, s)
	}
	e.mu.Unlock()
	for _, s := range running {
		s.cancel()
	}
	for _, s := range running {
		<-s.done
	}
	e.cancel()
	closeSenders(e.senders)
	err := e.conn.Close()
	e.wg.Wait()
	if err != nil {
		return fmt.Errorf("broadcast: close socket: %w", err)
	}
	return nil
}

// LocalAddr is the address the media socket is bound to.
func (e *Engine) LocalAddr() netip.AddrPort { return e.local }

// PublicAddr is the host:port receivers are told to send RTCP to.
func (e *Engine) PublicAddr() string { return e.public }

// Start begins streaming s from src to the devices it wins and returns
// once the stream runs; tunes proceed in the background. The caller sets
// s.ID, s.SSRC (random, non-zero), s.Devices, s.Priority and s.MaxDuration
// (0: frames·20 ms + 30 s, or 4 h when frames is 0, i.e. unknown).
func (e *Engine) Start(ctx context.Context, s *loa.Session, src Source, frames int) error {
	switch {
	case s.ID == "":
		return loa.Errorf(loa.EINVALID, "session: id required")
	case s.SSRC == 0:
		return loa.Errorf(loa.EINVALID, "session %s: ssrc must be non-zero", s.ID)
	case src == nil:
		return loa.Errorf(loa.EINVALID, "session %s: no source", s.ID)
	case s.MaxDuration < 0:
		return loa.Errorf(loa.EINVALID, "session %s: negative max duration", s.ID)
	case len(s.Devices) > 0 && e.cfg.Tuner == nil:
		return loa.Errorf(loa.EINVALID, "session %s: devices given but the engine has no tuner", s.ID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broadcast: start %s: %w", s.ID, err)
	}
	maxDur := s.MaxDuration
	if maxDur == 0 {
		maxDur = 4 * time.Hour
		if frames > 0 {
			maxDur = time.Duration(frames)*protocol.FrameDuration + 30*time.Second
		}
	}
	ss := &session{
		e:         e,
		id:        s.ID,
		ssrc:      s.SSRC,
		prio:      s.Priority,
		volume:    s.Volume,
		frames:    frames,
		maxDur:    maxDur,
		src:       src,
		seq0:      uint16(mrand.Uint32()),
		tl:        newTimeline(time.Now(), mrand.Uint32()),
		fixed:     s.T0Ms > 0 && !s.ScheduledAt.IsZero(),
		done:      make(chan struct{}),
		ready:     make(chan struct{}),
		notBefore: s.ScheduledAt,
		targets:   make(map[string]*target, len(s.Devices)),
	}
	if ss.fixed { // announced in advance (receivers' cached programmes): kept
		ss.tl = timeline{t0Ms: s.T0Ms, ts0: s.TS0}
	}
	ss.dests.Store(&destSet{})
	// One secret per session; each SRTP receiver's keys are derived from
	// it with its id and the fence (contract v2, Keys).
	rand.Read(ss.secret[:])
	var refused []string
	for _, id := range s.Devices {
		if _, dup := ss.targets[id]; dup || id == "" {
			continue
		}
		// Shards take runs of receivers, not every K-th one: receivers
		// started one after the other have their SRTP state side by side
		// in memory, and two shards sealing for neighbours would share
		// its cache lines.
		t := &target{s: ss, device: id, shard: len(ss.order) * len(e.senders) / len(s.Devices)}
		switch {
		case e.cfg.Caps != nil && e.cfg.Caps.HasCap(id, protocol.CapSRTPGCM):
			sec, err := newTargetSRTP(ss.secret[:], id, e.cfg.Fence, s.SSRC)
			if err != nil {
				return fmt.Errorf("broadcast: session %s: device %s: %w", s.ID, id, err)
			}
			t.sec = sec
		case e.cfg.RequireSRTP:
			t.refused, t.state, t.err = true, DeviceFailed, loa.ErrorMessage(ErrPlainRefused)
			refused = append(refused, id)
		default:
			rand.Read(t.token[:])
		}
		ss.targets[id] = t
		ss.order = append(ss.order, t)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return loa.Errorf(loa.EUNAVAILABLE, "broadcast: engine closed")
	}
	if _, dup := e.sessions[s.ID]; dup {
		return loa.Errorf(loa.ECONFLICT, "session %s is already running", s.ID)
	}
	for _, t := range ss.order {
		for t.recvSSRC == 0 || e.byRecv[t.recvSSRC] != nil {
			t.recvSSRC = mrand.Uint32()
		}
		e.byRecv[t.recvSSRC] = t
	}
	e.seq++
	ss.seqNo = e.seq
	e.sessions[s.ID] = ss
	lost := map[*session][]string{} // preempted session → its devices this one took
	for _, t := range ss.order {
		if t.refused {
			continue
		}
		if old := e.claim(t); old != nil {
			if lost[old] == nil {
				old.preempts.Add(1)
			}
			lost[old] = append(lost[old], t.device)
		}
	}
	if len(lost) > 0 {
		// Not from here: e.mu is held, and so may be the caller's locks.
		e.wg.Add(1)
		go e.notifyPreempted(lost, s.ID, time.Now())
	}
	if len(refused) > 0 {
		e.log.Warn("plain receivers refused (-require-srtp)", "session", s.ID, "devices", len(refused),
			"first", refused[0])
		if e.cfg.Refused != nil {
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				for _, id := range refused {
					e.cfg.Refused(s.ID, id, ErrPlainRefused)
				}
			}()
		}
	}
	ss.publish()
	var rctx context.Context
	rctx, ss.cancel = context.WithCancel(context.Background())
	e.metrics.active.Inc()
	e.wg.Add(1)
	go ss.run(rctx)
	e.log.Info("session started", "session", s.ID, "priority", int(s.Priority),
		"devices", len(ss.order), "frames", frames, "max_duration", maxDur)
	return nil
}

// Stop stops a running session: RTCP BYE to its receivers, Untune to the
// devices it holds, an ended outcome (loa.SessionStopped, reason). It
// returns once the stream has stopped and the subscribers were told;
// device commands continue in the background.
func (e *Engine) Stop(ctx context.Context, sessionID, reason string) error {
	e.mu.Lock()
	s := e.sessions[sessionID]
	if s == nil {
		e.mu.Unlock()
		return loa.Errorf(loa.ENOTFOUND, "session %s is not running", sessionID)
	}
	if s.stopState == "" {
		s.stopState, s.stopReason = loa.SessionStopped, reason
	}
	e.mu.Unlock()
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broadcast: stop %s: %w", sessionID, ctx.Err())
	}
}

// AddListener sends a session's stream to a static third-party receiver
// (ffmpeg or GStreamer playing protocol.SDP), which needs no RTCP. With
// sdes (protocol.SDESKeyLen bytes of master key, then protocol.SDESSaltLen
// of salt) the stream is SRTP in protocol.SDESSuite; nil sends plain RTP.
// Adding a listener again replaces its key.
func (e *Engine) AddListener(sessionID string, dest netip.AddrPort, sdes []byte) error {
	if !dest.IsValid() || dest.Port() == 0 {
		return loa.Errorf(loa.EINVALID, "listener %s: need an address and a port", dest)
	}
	dest = netip.AddrPortFrom(dest.Addr().Unmap(), dest.Port())
	if e.is4 && !dest.Addr().Is4() {
		return loa.Errorf(loa.EINVALID, "listener %s: the media socket is IPv4 only", dest)
	}
	var tx *srtpTx
	if sdes != nil {
		if len(sdes) != protocol.SDESKeyLen+protocol.SDESSaltLen {
			return loa.Errorf(loa.EINVALID, "listener %s: SDES key must be %d bytes", dest, protocol.SDESKeyLen+protocol.SDESSaltLen)
		}
		var err error
		tx, err = newSRTPTx(srtp.ProtectionProfileAes128CmHmacSha1_80,
			sdes[:protocol.SDESKeyLen], sdes[protocol.SDESKeyLen:], 0)
		if err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[sessionID]
	if s == nil || s.stopState != "" {
		return loa.Errorf(loa.ENOTFOUND, "session %s is not running", sessionID)
	}
	if tx != nil {
		tx.ssrc = s.ssrc
	}
	l := &listener{addr: dest, ua: net.UDPAddrFromAddrPort(dest), tx: tx,
		shard: (len(s.order) + len(s.listeners)) % len(e.senders)}
	replaced := false
	for i, old := range s.listeners {
		if old.addr == dest {
			l.shard = old.shard // its key changes, not who seals for it
			s.listeners[i], replaced = l, true
		}
	}
	if !replaced {
		s.listeners = append(s.listeners, l)
	}
	s.publish()
	e.log.Info("listener added", "session", sessionID, "addr", dest.String(), "srtp", tx != nil)
	return nil
}

// RemoveListener stops sending a session's stream to a static receiver;
// ENOTFOUND if the session is not running or has no such listener.
func (e *Engine) RemoveListener(sessionID string, dest netip.AddrPort) error {
	dest = netip.AddrPortFrom(dest.Addr().Unmap(), dest.Port())
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[sessionID]
	if s == nil {
		return loa.Errorf(loa.ENOTFOUND, "session %s is not running", sessionID)
	}
	i := slices.IndexFunc(s.listeners, func(l *listener) bool { return l.addr == dest })
	if i < 0 {
		return loa.Errorf(loa.ENOTFOUND, "session %s has no listener %s", sessionID, dest)
	}
	s.listeners = slices.Delete(slices.Clone(s.listeners), i, i+1)
	s.publish()
	e.log.Info("listener removed", "session", sessionID, "addr", dest.String())
	return nil
}

// MediaClock is what a running session's SDP says of its timeline (RFC
// 7273); false once it has ended.
func (e *Engine) MediaClock(sessionID string) (protocol.MediaClock, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[sessionID]
	if s == nil {
		return protocol.MediaClock{}, false
	}
	return protocol.NewMediaClock(e.cfg.RefClock, s.tl.t0Ms, s.tl.ts0), true
}

// Device states in DeviceStatus.
const (
	DeviceTuning    = "tuning"    // Tune sent, no answer yet
	DeviceTuned     = "tuned"     // the device acked
	DeviceFailed    = "failed"    // Tune failed; Err says why
	DeviceWaiting   = "waiting"   // unreachable (offline, or the broker link down): Tune is retried while the session runs
	DevicePreempted = "preempted" // a session of higher priority holds the device
)

// SessionStatus is a snapshot of a running session.
type SessionStatus struct {
	ID        string
	Priority  loa.Priority
	Sent      uint64 // stream packets sent so far (each to every receiver)
	Frames    int    // packets in the source, 0 when unknown
	Devices   map[string]DeviceStatus
	Listeners int
}

// DeviceStatus is one device's part in a session.
type DeviceStatus struct {
	State  string
	Addr   string        // the authenticated source address of its RTCP; RTP goes there
	SRTP   bool          // it announced srtp-gcm: keys in its play, SRTP and SRTCP
	Err    string        // why Tune failed
	Loss   float64       // fraction lost (0–1) from its last receiver report
	Jitter time.Duration // interarrival jitter from its last receiver report
}

// Status reports a running session; false once it has ended.
func (e *Engine) Status(sessionID string) (SessionStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[sessionID]
	if s == nil {
		return SessionStatus{}, false
	}
	st := SessionStatus{
		ID:        s.id,
		Priority:  s.prio,
		Sent:      s.sent.Load(),
		Frames:    s.frames,
		Devices:   make(map[string]DeviceStatus, len(s.order)),
		Listeners: len(s.listeners),
	}
	for _, t := range s.order {
		ds := DeviceStatus{
			State:  t.state,
			SRTP:   t.sec != nil,
			Err:    t.err,
			Loss:   float64(t.loss) / 256,
			Jitter: time.Duration(t.jitter) * time.Second / protocol.ClockRate,
		}
		if t.addr.IsValid() {
			ds.Addr = t.addr.String()
		}
		st.Devices[t.device] = ds
	}
	return st, true
}

// playArgs is the play command for t; e.mu must be held. The SSRCs stay
// the same when a preempted device is tuned back; an SRTP receiver's keys
// do not (rekey).
func (e *Engine) playArgs(t *target) protocol.PlayArgs {
	a := protocol.PlayArgs{
		Session:  t.s.id,
		Addr:     e.public,
		SSRC:     t.s.ssrc,
		PT:       protocol.PayloadType,
		RecvSSRC: t.recvSSRC,
		DelayMs:  int(e.cfg.Delay / time.Millisecond),
		Priority: uint8(t.s.prio),
		Frames:   t.s.frames,
		EndFrame: t.s.endFrame(),
		Volume:   t.s.volume,
	}
	if e.cfg.Caps != nil && e.cfg.Caps.HasCap(t.device, protocol.CapTimeline) {
		a.T0Ms, a.TS0 = t.s.tl.t0Ms, t.s.tl.ts0
		if e.cfg.Offsets != nil {
			// One set under a longer delay than today's, which this one
			// cannot honour, is not sent: the play must decode.
			off := e.cfg.Offsets.OffsetMs(t.device)
			if off >= protocol.MinOffsetMs && off <= protocol.MaxOffsetMs && a.DelayMs+off >= protocol.MinLeadMs {
				a.OffsetMs = off
			}
		}
	}
	if t.sec != nil {
		keys, fence := t.sec.keys, e.cfg.Fence
		a.Keys, a.Fence = &keys, &fence
	} else {
		a.Token = hex.EncodeToString(t.token[:])
	}
	return a
}

// ReceiverLoss is the loss a session's receivers report now, as an RTCP
// fraction lost (/256): the 90th percentile of the last report of each
// receiver it holds, so an encoder that adds FEC for it covers nearly all
// of them, not the worst one alone. 0 when none has reported.
func (e *Engine) ReceiverLoss(sessionID string) uint8 {
	e.mu.Lock()
	s := e.sessions[sessionID]
	var losses []uint8
	if s != nil {
		for _, t := range s.order {
			if t.holds && t.addr.IsValid() {
				losses = append(losses, t.loss)
			}
		}
	}
	e.mu.Unlock()
	if len(losses) == 0 {
		return 0
	}
	slices.Sort(losses)
	return losses[(len(losses)*9+9)/10-1]
}
