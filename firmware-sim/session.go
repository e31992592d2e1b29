package firmwaresim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/rtp"

	"github.com/loa-broadcast/loa/protocol"
)

// aheadSlack is how far past the playout delay D a packet may land ahead
// of the play-out point: the sender paces in real time, so a genuine packet
// is at most D plus network jitter, a Sender Report's correction
// (maxSRSkew) and a stall of this process ahead. Anything further is
// treated as corrupt, so one packet far ahead (forged in v1, where nothing
// authenticates the source) cannot stretch the programme by more than this;
// play.frames bounds it further for recorded programmes.
const aheadSlack = 3 * time.Second

// maxDatagram is the largest datagram the stream socket reads whole; the
// controller's packets are far smaller.
const maxDatagram = 1500

// stallSlack is how late the play-out timer may fire before the receiver
// counts it as a stall of its own process rather than timer jitter.
const stallSlack = 50 * time.Millisecond

// reorderHold is how long a packet held back for reordering waits for the
// next one before it is delivered anyway.
const reorderHold = 60 * time.Millisecond

// invalidError marks play args the receiver cannot use.
type invalidError struct{ error }

func isInvalid(err error) bool {
	var ie invalidError
	return errors.As(err, &ie)
}

// seenSlot remembers which slot a ring entry of received packets holds.
type seenSlot struct {
	slot int64
	ok   bool
}

// session is one play of one stream: a UDP socket, a reader goroutine
// (RTP into the jitter buffer, RTCP from the controller) and a play-out
// goroutine that owns the decoder, the RTCP reports and the session's end.
type session struct {
	r     *Receiver
	args  protocol.PlayArgs
	log   *slog.Logger
	token []byte // v1: the RTCP token; nil with keys
	// crypto is the SRTP state when the play carried keys (v2); nil for v1.
	crypto *streamCrypto
	pt     uint8
	delay  time.Duration
	conn   *net.UDPConn
	dest   *net.UDPAddr
	// from is dest as a source address: the only one the receiver takes
	// packets from (contract: "accepts media only from play.addr").
	from    netip.AddrPort
	dec     *opus.Decoder // nil when only verifying
	wav     *wavWriter
	keepPCM bool
	impair  Impairment
	rng     *rand.Rand // reader goroutine only
	pcmBuf  []int16    // play-out goroutine only
	gap     int        // play-out goroutine only: slots in a row without audio of their own
	// endFrame is play.end_frame (0: unknown, or a v1 receiver, which
	// does not know the field).
	endFrame int
	// local is the cache item (kind:key) a local play plays, with no
	// socket; "" for a stream. expiry ends it at its Until.
	local  string
	expiry *time.Timer
	onEnd  func(SessionStats) // LocalPlay.OnEnd

	stopc      chan struct{}
	stopOnce   sync.Once
	wake       chan struct{}
	done       chan struct{}
	readerDone chan struct{}

	mu          sync.Mutex
	reason      string // asked for by stop
	stopPlayed  uint64 // slots played when stop was asked
	ended       bool   // no more packets are accepted
	started     bool   // the first valid packet arrived
	ext0        int64  // extended seq of slot 0, the first frame to play
	maxExt      int64  // highest extended seq received
	next        int64  // extended seq of the next slot to play
	ts0         uint32 // timestamp of slot 0
	tsRef       uint32 // timestamp of the first packet, for jitter
	buf         map[int64][]byte
	seen        [1024]seenSlot
	base        time.Time // when slot 0 plays (monotonic)
	arrivalBase time.Time // base from the first packet's arrival
	lastArrival time.Time
	firstArr    time.Time
	sr          *senderReport // latest SR of the stream
	bye         bool
	// lastTS is the RTP timestamp of the stream's last frame once known
	// (haveLast): from play.end_frame placed by a Sender Report, or from
	// the Sender Report of a BYE compound, whichever ends it first.
	lastTS      uint32
	haveLast    bool
	jitter      float64 // RFC 3550, in timestamp units
	lastTransit float64
	haveTransit bool
	priorExp    int64
	priorRecv   uint64
	st          SessionStats
	pcm         []int16
	// tl is the play-out on the session timeline (play.t0_ms, contract
	// v2); nil: by the Sender Reports (v1 behaviour).
	tl       *timelinePlay
	lastRRTR time.Time // when the last time request went out
	rrtrs    []rrtr    // recent time requests awaiting their answer
}

// startSession opens the stream socket and sends the first RTCP compound
// from it, which opens the NAT mapping and authenticates the receiver.
func startSession(r *Receiver, args protocol.PlayArgs) (*session, error) {
	var token []byte
	var crypto *streamCrypto
	var err error
	switch {
	case args.Keys != nil && r.cfg.V1:
		return nil, invalidError{errors.New("keys: this receiver announced no " + protocol.CapSRTPGCM)}
	case args.Keys != nil && args.RecvSSRC == args.SSRC:
		// Both directions share the keys: equal SSRCs would reuse nonces.
		return nil, invalidError{errors.New("keys: recv_ssrc must differ from ssrc")}
	case args.Keys != nil:
		if crypto, err = newStreamCrypto(*args.Keys); err != nil {
			return nil, invalidError{err}
		}
	default:
		if token, err = hex.DecodeString(args.Token); err != nil {
			return nil, invalidError{fmt.Errorf("token: %w", err)}
		}
	}
	dest, err := net.ResolveUDPAddr("udp", args.Addr)
	if err != nil {
		return nil, invalidError{fmt.Errorf("addr %q: %w", args.Addr, err)}
	}
	network := "udp4"
	if dest.IP.To4() == nil {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("stream socket: %w", err)
	}
	s := &session{
		r:          r,
		args:       args,
		log:        r.log.With("session", args.Session),
		token:      token,
		crypto:     crypto,
		pt:         args.PT,
		delay:      r.playDelay(args.DelayMs),
		conn:       conn,
		dest:       dest,
		from:       unmapped(dest.AddrPort()),
		keepPCM:    r.cfg.KeepPCM && r.cfg.Decode,
		impair:     r.cfg.Impair,
		pcmBuf:     make([]int16, protocol.FrameSamples),
		stopc:      make(chan struct{}),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		buf:        make(map[int64][]byte),
		st:         SessionStats{Session: args.Session},
	}
	if !r.cfg.V1 {
		s.endFrame = args.EndFrame
		if args.T0Ms > 0 {
			s.tl = &timelinePlay{}
		}
	}
	if s.pt == 0 {
		s.pt = protocol.PayloadType
	}
	r.mu.Lock()
	s.rng = rand.New(rand.NewSource(r.cfg.Impair.Seed + int64(len(r.sessions))))
	r.mu.Unlock()
	fail := func(err error) (*session, error) {
		conn.Close()
		if s.wav != nil {
			s.wav.close(0)
		}
		return nil, err
	}
	if r.cfg.Decode {
		if s.dec, err = newDecoder(); err != nil {
			return fail(fmt.Errorf("opus decoder: %w", err))
		}
		if r.cfg.WAVDir != "" {
			name := fileSafe(r.cfg.ID + "-" + args.Session + ".wav")
			if s.wav, err = createWAV(filepath.Join(r.cfg.WAVDir, name)); err != nil {
				return fail(err)
			}
		}
	}
	if err := s.sendReport(false); err != nil {
		return fail(fmt.Errorf("first rtcp to %s: %w", dest, err))
	}
	return s, nil
}

func newDecoder() (*opus.Decoder, error) {
	return opus.NewDecoder(protocol.ClockRate, protocol.Channels)
}

func fileSafe(name string) string {
	return strings.Map(func(c rune) rune {
		if c == '/' || c == '\\' || c == 0 {
			return '_'
		}
		return c
	}, name)
}

// begin starts the session's goroutines.
func (s *session) begin() {
	s.r.overrideVolume(s)
	if s.local == "" {
		go s.read()
	}
	go s.run()
}

// stop ends the session now, without draining, and waits until it ended.
func (s *session) stop(reason string) {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.reason = reason
		s.stopPlayed = s.st.Played
		s.mu.Unlock()
		close(s.stopc)
	})
	<-s.done
}

func (s *session) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

func (s *session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// read receives the stream: RTCP from the controller (Sender Reports,
// BYE, challenges) and RTP, impaired on the way into the jitter buffer.
// Impairments apply after authentication, so SRTP's replay window sees the
// packets in the order the controller sent them.
func (s *session) read() {
	defer close(s.readerDone)
	b := make([]byte, maxDatagram)
	var held *rtpIn // held back for reordering
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(b)
		switch {
		case err == nil:
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			if held != nil {
				s.deliver(held)
				held = nil
			}
			s.conn.SetReadDeadline(time.Time{})
			continue
		default:
			// Transient (e.g. an ICMP error reported on the socket): keep
			// listening; the stream timeout ends a dead session.
			s.log.Debug("stream socket", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		in := s.receive(b[:n], from)
		if in == nil {
			continue
		}
		im := s.impair
		if loss := s.loss(); loss > 0 && s.rng.Float64() < loss {
			continue
		}
		if im.Jitter > 0 {
			in.delay = time.Duration(s.rng.Int63n(int64(im.Jitter) + 1))
		}
		if held == nil && im.Reorder > 0 && s.rng.Float64() < im.Reorder {
			held = in
			s.conn.SetReadDeadline(time.Now().Add(reorderHold))
			continue
		}
		s.deliver(in)
		if held != nil {
			s.deliver(held)
			held = nil
			s.conn.SetReadDeadline(time.Time{})
		}
	}
}

// receive takes one datagram: RTCP is handled here, the stream's RTP is
// returned for the jitter buffer (nil otherwise). Whatever does not come
// from play.addr, and with keys whatever does not authenticate or is a
// replay, is dropped unread and counted in AuthFailures.
func (s *session) receive(b []byte, from netip.AddrPort) *rtpIn {
	if unmapped(from) != s.from {
		s.authFailed()
		return nil
	}
	control := isRTCP(b)
	if c := s.crypto; c != nil {
		var err error
		if control {
			b, err = c.openRTCP(b)
		} else {
			b, err = c.openRTP(b)
		}
		if err != nil {
			s.authFailed()
			return nil
		}
	}
	if control {
		s.handleRTCP(b)
		return nil
	}
	return s.parseRTP(b)
}

func (s *session) authFailed() {
	s.mu.Lock()
	s.st.AuthFailures++
	s.mu.Unlock()
}

func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// parseRTP returns the stream's packet in b (copied), or nil: garbage
// counts as corrupt, another SSRC or payload type is not this stream.
func (s *session) parseRTP(b []byte) *rtpIn {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil || p.Version != 2 {
		s.mu.Lock()
		s.st.Corrupt++
		s.mu.Unlock()
		return nil
	}
	if p.SSRC != s.args.SSRC || p.PayloadType != s.pt {
		return nil
	}
	return &rtpIn{seq: p.SequenceNumber, ts: p.Timestamp, payload: append([]byte(nil), p.Payload...)}
}

type rtpIn struct {
	seq     uint16
	ts      uint32
	payload []byte
	delay   time.Duration
}

func (s *session) deliver(in *rtpIn) {
	if in.delay <= 0 {
		s.accept(in, time.Now())
		return
	}
	time.AfterFunc(in.delay, func() { s.accept(in, time.Now()) })
}

// extOffset keeps extended sequence numbers positive when a packet from
// before the first one arrives; RFC 3550 cycles count from the first.
const extOffset = 1 << 16

// accept puts a packet into the jitter buffer, keyed by its extended
// sequence number; slot 0 is the first packet received, or an earlier one
// that arrives before anything played and while its play time is ahead.
func (s *session) accept(in *rtpIn, arrival time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if n, err := opusPacketSamples(in.payload); err != nil || n != protocol.FrameSamples {
		s.st.Corrupt++
		return
	}
	if !s.started {
		s.started = true
		s.ext0 = extOffset + int64(in.seq)
		s.maxExt, s.next = s.ext0, s.ext0
		s.ts0, s.tsRef = in.ts, in.ts
		s.firstArr = arrival
		if s.tl != nil && !s.tl.off {
			s.tl.due = arrival // the DAC starts at once, silent until the timeline's instant
		}
		s.arrivalBase = arrival.Add(s.delay)
		s.base = s.arrivalBase
		if s.sr != nil {
			s.applySR()
		}
		s.poke()
	}
	ext := s.maxExt + int64(int16(in.seq-uint16(s.maxExt)))
	end, haveEnd := s.endSlot()
	if int64(int32(in.ts-s.ts0)) != (ext-s.ext0)*protocol.FrameSamples || ext > s.next+s.aheadLimit() ||
		(s.args.Frames > 0 && ext-s.ext0 >= int64(s.args.Frames)) || (haveEnd && ext > end) {
		// Off the grid, beyond the jitter buffer's horizon, or past the
		// end of a programme of play.frames counted from the first packet
		// or of the stream's known last frame.
		s.st.Corrupt++
		return
	}
	if e := &s.seen[ext&1023]; e.ok && e.slot == ext {
		s.st.Duplicate++
		return
	} else {
		*e = seenSlot{slot: ext, ok: true}
	}
	s.st.Received++
	s.lastArrival = arrival
	if s.tl != nil && !s.tl.off && s.crypto != nil && !s.r.cfg.Clock.GNSS {
		// Each authenticated packet left on its timeline instant: a
		// reading of the down leg for the sync's drift.
		sent := time.UnixMilli(s.args.T0Ms).Add(time.Duration(int32(in.ts-s.args.TS0)) * time.Second / protocol.ClockRate)
		s.r.sync.AddMedia(s.r.clock.SystemAt(arrival), sent)
	}
	// RFC 3550 §6.4.1 interarrival jitter, in timestamp units.
	transit := arrival.Sub(s.firstArr).Seconds()*protocol.ClockRate - float64(int32(in.ts-s.tsRef))
	if s.haveTransit {
		d := transit - s.lastTransit
		if d < 0 {
			d = -d
		}
		s.jitter += (d - s.jitter) / 16
	}
	s.lastTransit, s.haveTransit = transit, true
	if ext < s.next && s.next == s.ext0 { // nothing taken for play-out yet
		// Reordered ahead of the first packet: start the stream earlier
		// if this frame's play time is still ahead.
		shift := time.Duration(ext-s.ext0) * protocol.FrameDuration
		if base := s.base.Add(shift); base.After(arrival) {
			s.ext0, s.next, s.ts0 = ext, ext, in.ts
			s.base, s.arrivalBase = base, s.arrivalBase.Add(shift)
			s.poke()
		}
	}
	if ext < s.next {
		s.st.Late++
		return
	}
	s.maxExt = max(s.maxExt, ext)
	s.buf[ext] = in.payload
}

// endSlot is the slot of the stream's last frame, once it is known and
// the stream started. s.mu is held.
func (s *session) endSlot() (int64, bool) {
	if !s.started || !s.haveLast {
		return 0, false
	}
	return s.ext0 + int64(int32(s.lastTS-s.ts0))/protocol.FrameSamples, true
}

// setLast records ts as the stream's last frame unless an earlier one is
// known. s.mu is held.
func (s *session) setLast(ts uint32) {
	if !s.haveLast || int32(ts-s.lastTS) < 0 {
		s.lastTS, s.haveLast = ts, true
	}
}

// over reports whether the stream is over and played out, and why: every
// slot up to its known last frame played (after a BYE, or play.end_frame
// when every BYE was lost), or a BYE with no last frame known and nothing
// after the highest packet. s.mu is held.
func (s *session) over() (string, bool) {
	reason := EndEndFrame
	switch {
	case s.local != "":
		reason = EndPlayedOut
	case s.bye:
		reason = EndBye
	}
	if end, ok := s.endSlot(); ok && s.next > end {
		return reason, true
	}
	return reason, s.bye && (!s.started || (!s.haveLast && s.next > s.maxExt))
}

// aheadLimit is how many slots past the play-out point a packet may land.
func (s *session) aheadLimit() int64 {
	return int64((s.delay + aheadSlack) / protocol.FrameDuration)
}

// run is the play-out clock: slot n plays at base + n·20 ms on the
// monotonic clock. It also sends the periodic RTCP and ends the session.
func (s *session) run() {
	defer close(s.done)
	every := protocol.RTCPReportInterval
	if s.tl != nil {
		// Each report opens a time exchange: one a second, a little
		// more so that none comes faster than the controller allows.
		every = protocol.TimeExchangeInterval + exchangeSlack
	}
	report := time.NewTicker(every)
	defer report.Stop()
	slot := time.NewTimer(time.Hour)
	slot.Stop()
	defer slot.Stop()
	first := time.NewTimer(FirstPacketTimeout)
	defer first.Stop()
	var target time.Time // when the slot timer should fire
	var ahead bool       // it was set in the future, not to catch up
	reset := func() {
		if due, ok := s.timelineDue(); ok {
			ahead = false
			slot.Reset(time.Until(due))
			return
		}
		s.mu.Lock()
		target = s.base.Add(time.Duration(s.next-s.ext0) * protocol.FrameDuration)
		s.mu.Unlock()
		d := time.Until(target)
		ahead = d > 0
		slot.Reset(d)
	}
	for {
		select {
		case <-s.stopc:
			s.mu.Lock()
			reason := s.reason
			s.mu.Unlock()
			s.finish(reason)
			return
		case <-report.C:
			if err := s.sendReport(false); err != nil {
				s.log.Warn("rtcp report", "err", err)
			}
		case <-first.C:
			s.mu.Lock()
			started := s.started
			s.mu.Unlock()
			if !started {
				s.finish(EndTimeout)
				return
			}
		case <-s.wake:
			s.mu.Lock()
			started := s.started
			reason, over := s.over()
			s.mu.Unlock()
			if over {
				s.finish(reason)
				return
			}
			if started {
				reset()
			}
		case <-slot.C:
			select {
			case <-s.stopc: // a stop wins over a slot that is due
				continue
			default:
			}
			if _, ok := s.timelineDue(); ok {
				if reason := s.timelineFrame(); reason != "" {
					s.finish(reason)
					return
				}
				reset()
				continue
			}
			if late := time.Since(target); ahead && late > stallSlack {
				// This process stalled (a loaded host): a speaker cannot
				// play the missed time in no time, so its clock resumes
				// where it stopped; a later Sender Report re-syncs it.
				s.mu.Lock()
				s.base = s.base.Add(late)
				s.mu.Unlock()
				s.log.Debug("play-out stalled", "late", late)
			}
			if reason := s.playSlot(); reason != "" {
				s.finish(reason)
				return
			}
			reset()
		}
	}
}

// playSlot plays the next slot: its own packet if present, else the next
// packet's in-band FEC, else packet-loss concealment for at most
// MaxConcealFrames slots in a row, else silence. It returns an end reason
// once the stream is over and the buffer drained.
func (s *session) playSlot() string {
	s.mu.Lock()
	n := s.next
	pkt, have := s.buf[n]
	delete(s.buf, n)
	var after []byte
	if !have {
		after = s.buf[n+1]
	}
	s.next++
	s.mu.Unlock()

	pcm := s.pcmBuf[:protocol.FrameSamples:protocol.FrameSamples]
	const (
		fromPacket = iota
		fec
		concealed
		silence
	)
	kind, corrupt := concealed, false
	switch {
	case have && s.dec == nil:
		kind = fromPacket // verified when it entered the buffer
	case have:
		if k, err := s.dec.Decode(pkt, pcm); err == nil && k == protocol.FrameSamples {
			kind = fromPacket
		} else {
			corrupt = true
		}
	case after != nil && s.dec != nil:
		if err := s.dec.DecodeFEC(after, pcm); err == nil {
			kind = fec
		}
	}
	if kind == concealed {
		s.gap++
		if s.gap > protocol.MaxConcealFrames {
			// Concealing a long gap only makes noise (a stream that
			// stopped, a dead link): a speaker goes quiet.
			kind = silence
		}
	} else {
		s.gap = 0
	}
	switch {
	case kind == silence:
		clear(pcm)
	case kind == concealed && s.dec != nil:
		if err := s.dec.DecodePLC(pcm); err != nil {
			clear(pcm)
		}
	}

	now := time.Now()
	s.mu.Lock()
	s.st.Played++
	first := s.st.Played == 1
	if first {
		s.st.FirstPlayed = now
	}
	switch kind {
	case fromPacket:
		if s.dec != nil {
			s.st.Decoded++
		}
	case fec:
		s.st.FECRecovered++
	case concealed:
		s.st.Concealed++
	case silence:
		s.st.Silence++
	}
	if corrupt {
		s.st.Corrupt++
	}
	if s.keepPCM {
		s.pcm = append(s.pcm, pcm...)
	}
	silent := s.r.silenced(s.args.Priority)
	if silent {
		s.st.Muted++
	}
	reason, over := s.over()
	stalled := false
	switch {
	case over:
	case s.next > s.maxExt && now.Sub(s.lastArrival) > StreamTimeout:
		reason = EndTimeout
	default:
		reason = ""
		stalled = s.next > s.maxExt && !s.lastArrival.IsZero() && now.Sub(s.lastArrival) > linkProbeAfter
	}
	s.mu.Unlock()
	if stalled {
		s.r.probeLink()
	}

	if s.wav != nil {
		if silent {
			clear(pcm)
		}
		if err := s.wav.write(pcm); err != nil {
			s.log.Warn("wav write", "err", err)
		}
	}
	if first {
		s.r.send(protocol.KindEvent, protocol.Event{Type: protocol.EventPlayed, TS: now.UnixMilli(), Session: s.args.Session})
	}
	return reason
}

// finish ends the session: a BYE goes to the controller, the socket closes
// and the finished event carries the totals. Every slot played counts and
// stays in the WAV, the concealment and silence after the stream's last
// packet included: they are what the speaker emitted.
func (s *session) finish(reason string) {
	s.mu.Lock()
	s.ended = true
	s.st.EndReason = reason
	s.st.Ended = time.Now()
	s.buf = nil
	played := int64(s.st.Played)
	s.mu.Unlock()

	silent := s.r.killed.Load()
	if s.expiry != nil {
		s.expiry.Stop()
	}
	if !silent {
		if err := s.sendReport(true); err != nil {
			s.log.Debug("rtcp bye", "err", err)
		}
	}
	if s.conn != nil {
		s.conn.Close()
	}
	<-s.readerDone
	if s.wav != nil {
		if err := s.wav.close(played * protocol.FrameSamples); err != nil {
			s.log.Warn("wav close", "err", err)
		}
	}
	st := s.snapshot()
	if !silent {
		ss := st.StreamStats()
		s.r.send(protocol.KindEvent, protocol.Event{Type: protocol.EventFinished, TS: st.Ended.UnixMilli(), Session: s.args.Session, Stream: &ss})
	}
	s.mu.Lock()
	s.st.Done = true
	_, resyncs := s.playoutSync()
	s.mu.Unlock()
	s.r.resyncs.Add(int64(resyncs))
	s.log.Debug("session finished", "reason", reason, "played", st.Played, "expected", st.Expected,
		"concealed", st.Concealed, "fec", st.FECRecovered)
	s.r.restoreVolume(s)
	s.r.sessionEnded(s)
	if s.onEnd != nil {
		s.onEnd(s.snapshot())
	}
}

// snapshot returns the stats with the derived fields filled in.
func (s *session) snapshot() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.SRTP = s.crypto != nil
	if s.started {
		// Frames of the stream up to its known last one that were due
		// but never came are lost too, at the very end included.
		last := s.maxExt
		if end, ok := s.endSlot(); ok {
			last = max(last, min(end, s.next-1))
		}
		st.Expected = int(last - s.ext0 + 1)
	}
	if uint64(st.Expected) > st.Received {
		st.Lost = uint64(st.Expected) - st.Received
	}
	st.JitterMs = s.jitter * 1000 / protocol.ClockRate
	return st
}

func (s *session) pcmCopy() []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int16(nil), s.pcm...)
}

// exchangeSlack keeps a timeline session's reports, each with a time
// request, from coming faster than TimeExchangeInterval.
const exchangeSlack = 50 * time.Millisecond

// timelinePlay is a session's play-out on its timeline: the virtual DAC
// asks for samples at its own rate; Playout says which, against the
// disciplined clock. Frames are the stream's 20 ms packets, so a sample
// inserted or removed makes that frame last a sample longer or shorter.
type timelinePlay struct {
	off   bool      // given up for want of sync: the Sender Reports place the output
	due   time.Time // true instant of the DAC's next request
	play  *Playout
	ext0  int64 // extended seq of stream sample 0 (the first packet's)
	first bool  // the first sample left the DAC
}

// timelineDue is when the DAC asks next, while the session plays on its
// timeline.
func (s *session) timelineDue() (time.Time, bool) {
	if s.tl == nil { // fixed at the start
		return time.Time{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tl.due, !s.tl.off
}

// timelineOrigin is when, on the controller's timeline, the sample of the
// first packet (timestamp s.ts0) is handed to the DAC: UTC(ts) + D +
// offset_ms − output_delay. s.mu is held.
func (s *session) timelineOrigin() time.Time {
	utc := time.UnixMilli(s.args.T0Ms).Add(time.Duration(int32(s.ts0-s.args.TS0)) * time.Second / protocol.ClockRate)
	return utc.Add(s.delay).Add(time.Duration(s.args.OffsetMs) * time.Millisecond).Add(-s.r.cfg.OutputDelay)
}

// timelineFrame serves one request of the DAC; it returns an end reason
// once the session is over.
func (s *session) timelineFrame() string {
	const frame = protocol.FrameSamples
	r := s.r
	s.mu.Lock()
	tl := s.tl
	// The DAC runs on its own clock: the request is due at tl.due, however
	// late this process serves it (past a stall, it resumes from now).
	now := tl.due
	stalled := false
	if late := time.Since(now); late > stallSlack {
		now, stalled = now.Add(late), true
	}
	s.mu.Unlock()
	disc, ok := r.sync.Controller(r.clock.SystemAt(now))
	gen := r.sync.Gen()
	s.mu.Lock()
	if !ok {
		if !now.Before(s.arrivalBase) {
			// No time exchange answered by the time the first packet
			// would play without a timeline (a controller without the
			// responder): place by the Sender Reports, on time.
			tl.off = true
			if s.sr != nil {
				s.applySR()
			}
			s.log.Info("no clock sync: playing by the sender reports")
			s.mu.Unlock()
			return ""
		}
		tl.due = now.Add(protocol.FrameDuration)
		s.mu.Unlock()
		return ""
	}
	if tl.play == nil {
		cfg := PlayoutConfig{}
		if r.cfg.Clock.GNSS {
			cfg.Threshold = GNSSCorrectFrom
		}
		tl.play, tl.ext0 = NewPlayout(s.timelineOrigin(), cfg), s.ext0
	}
	start := tl.play.Start(disc, gen)
	k := floorDiv(start+frame/2, frame)
	off := start - k*frame
	n, play := int64(0), false
	if off >= -2 && off <= 2 {
		// On a frame: play it, a sample or two longer or shorter.
		n, play = frame-off, k >= 0
	} else {
		// Between frames (the first request, a re-sync): silence until the
		// next one starts, so it starts exactly.
		n = (floorDiv(start, frame)+1)*frame - start
	}
	tl.play.Played(int(n))
	rate := protocol.ClockRate * r.clock.DACRate(now)
	tl.due = now.Add(time.Duration(float64(n) / rate * float64(time.Second)))
	if play {
		ext := tl.ext0 + k
		for e := s.next; e < ext; e++ {
			delete(s.buf, e) // dropped to catch up
			s.st.Skipped++
			if stalled {
				s.st.Stalled++
			}
		}
		s.next = max(s.next, ext)
		if !tl.first {
			tl.first = true
			s.st.FirstSampleAt = now.Add(r.cfg.OutputDelay)
			s.st.FirstSampleTS = s.ts0 + uint32(int64(int32(ext-tl.ext0))*frame)
		}
	}
	s.mu.Unlock()
	if !play {
		return ""
	}
	return s.playSlot()
}

// playoutSync is the session play-out's part of tele.sync. s.mu is held.
func (s *session) playoutSync() (corrMin, resyncs int) {
	if s.tl == nil || s.tl.play == nil || s.tl.off {
		return 0, 0
	}
	return s.tl.play.CorrectionsPerMin(), s.tl.play.Resyncs
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
