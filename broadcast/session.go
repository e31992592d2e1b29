package broadcast

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// reportEvery is the number of packets between Sender Reports (~1 s).
const reportEvery = int(time.Second / protocol.FrameDuration)

// session is one running stream.
type session struct {
	e       *Engine
	id      string
	ssrc    uint32
	prio    loa.Priority
	volume  int // the receivers' volume while it plays (emergency band; 0 = their own)
	frames  int
	maxDur  time.Duration
	src     Source
	seq0    uint16
	tl      timeline                     // fixed by Start: play.t0_ms/ts0 and every timestamp sent
	secret  [protocol.SRTPSecretLen]byte // SRTP receivers' keys derive from it (contract v2, Keys)
	seqNo   uint64                       // start order among sessions
	started time.Time                    // packet n is due at started + n·20 ms (monotonic); set and read by run only

	cancel context.CancelFunc // ends run early (Stop, Close)
	done   chan struct{}      // closed after finish

	// preempts counts the preempted outcomes about it not yet delivered
	// (Add under e.mu while it runs); its ended outcome waits for them.
	preempts sync.WaitGroup

	// dests is who gets RTP now. It is rebuilt under e.mu whenever it
	// changes and read without locks by run, once per packet.
	dests  atomic.Pointer[destSet]
	sent   atomic.Uint64
	octets atomic.Uint64
	// gaps counts the frames its source had no packet for (loa.ErrGap):
	// their sequence numbers and timestamps went by unsent.
	gaps atomic.Uint64
	// wall0 is started on the wall clock (unix ns; 0 before packet 0 is
	// due).
	wall0 atomic.Int64
	// lead is packet 0's timestamp, in samples after tl.ts0, plus the
	// timeline the stream skipped over pauses of its source: packet n's
	// timestamp is lead + n·960 samples after ts0. Set by run only.
	lead atomic.Int64
	// reportNow asks for a Sender Report with the next packet: a receiver
	// that just joined cannot place packets on the sender clock without one.
	reportNow atomic.Bool

	// Guarded by e.mu.
	targets    map[string]*target
	order      []*target
	listeners  []*listener
	stopState  string // set by Stop or Close before cancel
	stopReason string
	notBefore  time.Time     // a scheduled start: packet 0 leaves no earlier
	ready      chan struct{} // closed once every device it holds can hear it
	isReady    bool

	// fixed (set by Start, read by run): tl was fixed in advance and
	// packet 0 is the frame of notBefore on it, even if it leaves later
	// (loa.Session.T0Ms).
	fixed bool
}

// checkReady closes ready once every device the session holds has
// authenticated its address or failed to tune; e.mu must be held. Until
// then run holds packet 0 back (at most Config.Lead), so receivers hear a
// programme from its first word and no later than they must.
func (s *session) checkReady() {
	if s.isReady {
		return
	}
	for _, t := range s.order {
		// A receiver out of reach (waiting) is not waited for: it joins
		// whenever it is back.
		if t.holds && !t.addr.IsValid() && t.state != DeviceFailed && t.state != DeviceWaiting {
			return
		}
	}
	s.isReady = true
	close(s.ready)
}

// target is one device's membership in a session.
type target struct {
	s        *session
	device   string
	recvSSRC uint32
	shard    int                     // the shard that sends to it (Start), for good
	token    [protocol.TokenLen]byte // v1 receivers (sec == nil)
	refused  bool                    // a plain receiver under RequireSRTP: never claimed nor tuned

	// Guarded by e.mu.
	sec    *targetSRTP // SRTP receivers (contract v2); nil: v1, plain RTP and the token
	holds  bool        // the device plays this session now
	state  string
	err    string
	addr   netip.AddrPort // authenticated RTCP source; RTP goes there
	ua     *net.UDPAddr   // addr, as sendmmsg wants it
	last   netip.AddrPort // SRTP: the address last authenticated, kept when a BYE clears addr
	chals  []challenge    // SRTP: address challenges in flight, at most maxChallenges
	loss   uint8
	jitter uint32
	// Time exchanges (timeline): a token bucket of protocol.TimeExchangeInterval.
	xrAt     time.Time
	xrTokens float64
	// received is the most packets its reports said arrived
	// (Config.Reception is told each time it grows).
	received uint64
}

// publish rebuilds dests; e.mu must be held. A new set each time, so run
// can keep using the one it loaded.
func (s *session) publish() {
	d := &destSet{parts: make([]destPart, len(s.e.senders))}
	for _, t := range s.order {
		if !t.holds || t.ua == nil {
			continue
		}
		p := &d.parts[t.shard]
		if t.sec != nil {
			p.sealed = append(p.sealed, sealedDest{ua: t.ua, tx: t.sec.tx})
		} else {
			p.plain = append(p.plain, t.ua)
		}
		d.n++
	}
	for _, l := range s.listeners {
		p := &d.parts[l.shard]
		if l.tx != nil {
			p.sealed = append(p.sealed, sealedDest{ua: l.ua, tx: l.tx})
		} else {
			p.plain = append(p.plain, l.ua)
		}
		d.n++
	}
	s.dests.Store(d)
	s.checkReady() // after the store: run must see the new receivers
}

// run paces the stream until the source ends, the max duration passes or
// the session is cancelled, then says goodbye and hands its devices back.
func (s *session) run(ctx context.Context) {
	defer s.e.wg.Done()
	defer close(s.done)
	fo := newCrew(s.e)
	defer fo.close()
	if lead := s.e.cfg.Lead; lead > 0 {
		t := time.NewTimer(lead)
		select {
		case <-s.ready:
		case <-t.C:
			s.e.log.Info("starting before every receiver is ready", "session", s.id, "waited", lead)
		case <-ctx.Done():
		}
		t.Stop()
	}
	if wait := time.Until(s.notBefore); wait > 0 && ctx.Err() == nil {
		// Receivers tuned during the scheduler's lead; the programme
		// starts on the second it was scheduled for.
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	s.started = time.Now()
	if s.fixed {
		// Packet 0 carries the frame of notBefore on a timeline receivers
		// know in advance: late, it is paced out to catch up, never
		// shifted (a receiver playing its cached copy takes it over).
		s.started = s.notBefore
	}
	// Packet 0 goes out on the session's timeline, however long the
	// pre-roll held it: its timestamp counts the samples since t0.
	s.lead.Store(s.tl.samplesAt(s.started))
	s.wall0.Store(s.started.UnixNano())
	state, reason, n := s.stream(ctx, fo)
	s.bye(fo, n, reason)
	s.e.finish(s, state, reason)
}

// endFrame is the index of the last frame the session sends, when known:
// the programme's last, or the last before its maximum duration.
func (s *session) endFrame() int {
	if s.frames <= 0 {
		return 0
	}
	return min(s.frames, int((s.maxDur+protocol.FrameDuration-1)/protocol.FrameDuration)) - 1
}

// stream sends packets until it must stop and returns why, with the number
// of packets sent.
func (s *session) stream(ctx context.Context, fo *crew) (state, reason string, sent int) {
	h := rtp.Header{Version: 2, PayloadType: protocol.PayloadType, SSRC: s.ssrc}
	var hdr [12]byte
	pkt := make([]byte, 0, maxDatagram)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	warned := -reportEvery
	skipped := 0 // frames of the timeline skipped over pauses of the source
	for n := 0; ; n++ {
		at := time.Duration(n+skipped) * protocol.FrameDuration
		if at >= s.maxDur {
			return loa.SessionStopped, ReasonMaxDuration, n
		}
		asked := time.Now()
		payload, err := s.src.Next()
		gap := errors.Is(err, loa.ErrGap)
		if gap {
			err = nil // the frame's place on the timeline goes by unsent: receivers conceal it
		}
		if errors.Is(err, io.EOF) {
			return loa.SessionEnded, "", n
		}
		if err != nil {
			s.e.log.Error("source failed", "session", s.id, "packet", n, "err", err)
			return loa.SessionFailed, "source: " + err.Error(), n
		}
		if k := s.pause(asked, at); k > 0 {
			// The source paused for longer than the playout delay: what it
			// gives now is played from now, not compressed into the past
			// where every receiver would drop it as late.
			skipped += k
			at += time.Duration(k) * protocol.FrameDuration
			s.lead.Add(int64(k) * protocol.FrameSamples)
			s.reportNow.Store(true)
		}
		// Sleep to the packet's own deadline, never by a fixed step, so
		// late wake-ups do not accumulate into drift.
		if wait := time.Until(s.started.Add(at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				st, r := s.stopped()
				return st, r, n
			}
		} else if ctx.Err() != nil {
			st, r := s.stopped()
			return st, r, n
		}
		if gap || (s.e.cfg.Gate != nil && !s.e.cfg.Gate()) {
			s.gaps.Add(1)
			if n%reportEvery == 0 || s.reportNow.Swap(false) {
				s.report(fo, n, s.dests.Load())
			}
			continue
		}
		h.SequenceNumber = s.seq0 + uint16(n)
		h.Timestamp = s.tl.tsOf(s.lead.Load() + int64(n)*protocol.FrameSamples)
		if _, err := h.MarshalTo(hdr[:]); err != nil {
			return loa.SessionFailed, "rtp header: " + err.Error(), n
		}
		dests := s.dests.Load()
		pkt = append(append(pkt[:0], hdr[:]...), payload...)
		out := fo.each(dests, sealRTP(hdr[:], payload, pkt, uint64(s.seq0)+uint64(n)))
		k, err := out.sent, out.err
		s.e.metrics.packets.Add(float64(k))
		s.e.metrics.bytes.Add(float64(out.octets))
		s.e.rtpSent.Add(uint64(k))
		if err != nil {
			s.e.metrics.sendErrors.Add(float64(dests.len() - k))
			if n-warned >= reportEvery { // a persistent fault logs once a second, not 50 times
				warned = n
				s.e.log.Warn("send failed", "session", s.id, "sent", k, "of", dests.len(), "err", err)
			}
		}
		if s.sent.Add(1) == 1 {
			s.e.deliver(loa.SessionOutcome{Kind: loa.OutcomeStreaming, Session: s.id, At: time.Now()})
		}
		s.octets.Add(uint64(len(payload)))
		if n%reportEvery == 0 || s.reportNow.Swap(false) {
			s.report(fo, n, dests)
		}
	}
}

// pause is the number of whole frames to skip on the timeline when the
// packet due at at (from the start) is later than the playout delay and
// its source blocked since asked (a live input that paused): late packets
// sent in a burst after a short stall are still playable, after a longer
// one they are not. A stored programme never blocks, so stalls of the
// controller itself keep the burst and the stream's frame count.
func (s *session) pause(asked time.Time, at time.Duration) int {
	now := time.Now()
	late := now.Sub(s.started.Add(at))
	if late <= s.e.cfg.Delay || now.Sub(asked) <= protocol.FrameDuration {
		return 0
	}
	return int(late / protocol.FrameDuration)
}

// stopped reads why the session was cancelled.
func (s *session) stopped() (state, reason string) {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	if s.stopState == "" {
		return loa.SessionStopped, ""
	}
	return s.stopState, s.stopReason
}

// report sends a Sender Report for packet n to every current receiver.
func (s *session) report(fo *crew, n int, dests *destSet) {
	if dests.len() == 0 {
		return
	}
	b, err := s.senderReport(n)
	if err != nil {
		s.e.log.Error("sender report", "session", s.id, "err", err)
		return
	}
	k, err := s.sendRTCP(fo, b, dests)
	if err != nil {
		s.e.log.Warn("sender report not sent to all", "session", s.id, "sent", k, "of", dests.len(), "err", err)
	}
}

// bye tells every current receiver the stream is over, ByeRepeats times
// ByeSpacing apart: a receiver that misses every copy still stops at
// play.end_frame when it was known, and otherwise waits out its stream
// timeout in silence. Each copy is sealed anew for SRTP receivers (a new
// SRTCP index), so none is taken for a replay.
func (s *session) bye(fo *crew, n int, reason string) {
	dests := s.dests.Load()
	if dests.len() == 0 {
		return
	}
	b, err := s.goodbye(n, reason)
	if err != nil {
		s.e.log.Error("bye", "session", s.id, "err", err)
		return
	}
	for i := range protocol.ByeRepeats {
		if i > 0 {
			time.Sleep(protocol.ByeSpacing)
		}
		k, err := s.sendRTCP(fo, b, dests)
		if err != nil && i == 0 {
			s.e.log.Warn("bye not sent to all", "session", s.id, "sent", k, "of", dests.len(), "err", err)
		}
	}
}

// sendRTCP sends the compound b to every destination: as it is to plain
// ones, as SRTCP under its own key to each sealed one.
func (s *session) sendRTCP(fo *crew, b []byte, dests *destSet) (int, error) {
	out := fo.each(dests, sealRTCP(b))
	s.e.metrics.rtcpSent.Add(float64(out.sent))
	return out.sent, out.err
}

// emptyDests is what a finished session publishes; never appended to.
var emptyDests = destSet{}
