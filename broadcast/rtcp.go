package broadcast

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtcp"

	"github.com/loa-broadcast/loa/protocol"
)

// maxDatagram is larger than any RTCP a receiver sends; longer datagrams
// are truncated by the read and then fail to parse.
const maxDatagram = 1500

// readLoop reads the media socket until it is closed. Only RTCP arrives
// here legitimately; everything is handed to handleDatagram.
func (e *Engine) readLoop() {
	defer e.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := e.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.Warn("media socket read", "err", err)
			continue
		}
		e.handleDatagramAt(buf[:n], from, time.Now())
	}
}

// isRTCP tells RTCP from RTP on a multiplexed port (RFC 5761 §4): RTCP
// packet types sit in 192–223, which no RTP payload type with or without
// the marker bit maps to for the dynamic types in use.
func isRTCP(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223
}

// handleDatagram processes one datagram that arrived at the media socket
// from the given address. A v1 receiver authenticates with a compound of a
// Receiver Report from its receiver SSRC and an APP packet carrying its
// token; the stream follows the address at once. An SRTP receiver's
// report is SRTCP under its keys; the address it comes from moves the
// stream only after a challenge (acceptSRTCP). Anything else is counted and
// dropped. It reports whether the datagram authenticated.
func (e *Engine) handleDatagram(b []byte, from netip.AddrPort) bool {
	return e.handleDatagramAt(b, from, time.Now())
}

// handleDatagramAt is handleDatagram for a datagram read at at: the
// instant a time exchange's T2 is.
func (e *Engine) handleDatagramAt(b []byte, from netip.AddrPort, at time.Time) bool {
	if !e.acceptRTCP(b, from, at) {
		e.metrics.rtcpIgnored.Inc()
		return false
	}
	e.metrics.rtcpAccepted.Inc()
	return true
}

func (e *Engine) acceptRTCP(b []byte, from netip.AddrPort, at time.Time) bool {
	if !isRTCP(b) || !from.IsValid() || from.Port() == 0 {
		return false
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if e.is4 && !from.Addr().Is4() {
		return false
	}
	// The sender's SSRC is in the clear in RTCP and SRTCP alike.
	ssrc := binary.BigEndian.Uint32(b[4:8])
	e.mu.Lock()
	t := e.byRecv[ssrc]
	var rx *srtpRx
	if t != nil && t.sec != nil {
		rx = t.sec.rx
	}
	e.mu.Unlock()
	switch {
	case t == nil:
		return false
	case rx != nil:
		return e.acceptSRTCP(t, rx, b, from, at)
	}
	return e.acceptPlain(b, from, at)
}

// acceptPlain is the v1 path: the token authenticates, and the stream
// follows the address it came from at once. A time exchange in the
// compound is answered there.
func (e *Engine) acceptPlain(b []byte, from netip.AddrPort, at time.Time) bool {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil || len(pkts) == 0 {
		return false
	}
	rr, ok := pkts[0].(*rtcp.ReceiverReport)
	if !ok {
		return false
	}
	var app *rtcp.ApplicationDefined
	leaving := false
	for _, p := range pkts[1:] {
		switch p := p.(type) {
		case *rtcp.ApplicationDefined:
			if app == nil && p.Name == protocol.RTCPAppName {
				app = p
			}
		case *rtcp.Goodbye:
			for _, src := range p.Sources {
				leaving = leaving || src == rr.SSRC
			}
		}
	}
	if app == nil || app.SSRC != rr.SSRC || len(app.Data) != protocol.TokenLen {
		return false
	}

	t1, wantsTime := rrtrOf(pkts, rr.SSRC)

	var rc reception
	defer func() { e.tell(rc) }() // after the unlock below
	e.mu.Lock()
	t := e.byRecv[rr.SSRC]
	if t == nil || t.sec != nil || subtle.ConstantTimeCompare(app.Data, t.token[:]) != 1 {
		e.mu.Unlock()
		return false
	}
	rc = e.noteReport(t, rr)
	if leaving {
		e.leave(t)
		e.mu.Unlock()
		return true
	}
	if t.addr != from {
		e.moveTo(t, from)
	}
	answer := wantsTime && e.exchangeLocked(t, at)
	e.mu.Unlock()
	if answer {
		e.answer(exchange{t: t, to: from, t1: t1, t2: at})
	}
	return true
}

// acceptSRTCP is the SRTP path (contract v2, SRTP and SRTCP): a report that
// does not authenticate or is a replay is counted and dropped; the first
// authenticated report fixes the receiver's address; one from another
// address is answered with a challenge there, and only the authenticated
// answer from there moves the stream. A BYE counts only from the current
// address. A time exchange is answered only to the address the stream
// goes to.
func (e *Engine) acceptSRTCP(t *target, rx *srtpRx, b []byte, from netip.AddrPort, at time.Time) bool {
	plain, err := rx.open(b)
	if err != nil {
		e.metrics.srtcpAuthFailures.Inc()
		return false
	}
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil || len(pkts) == 0 {
		return false
	}
	rr, ok := pkts[0].(*rtcp.ReceiverReport)
	if !ok || rr.SSRC != t.recvSSRC {
		return false
	}
	var answer []byte
	leaving := false
	for _, p := range pkts[1:] {
		switch p := p.(type) {
		case *rtcp.ApplicationDefined:
			if p.Name == protocol.RTCPChallengeName && p.SubType == protocol.ResponseSubtype &&
				p.SSRC == rr.SSRC && len(p.Data) == protocol.ChallengeLen {
				answer = p.Data
			}
		case *rtcp.Goodbye:
			for _, src := range p.Sources {
				leaving = leaving || src == rr.SSRC
			}
		}
	}

	e.mu.Lock()
	if e.byRecv[rr.SSRC] != t || t.sec == nil || t.sec.rx != rx {
		e.mu.Unlock() // the session ended, or the receiver was rekeyed meanwhile
		return false
	}
	t1, wantsTime := rrtrOf(pkts, rr.SSRC)
	var send []byte
	var tx *srtpTx
	var x *exchange
	var rc reception
	switch {
	case from == t.addr || !t.addr.IsValid() && (from == t.last || !t.last.IsValid()):
		// From where the stream goes, or the first report (after a BYE,
		// from where it went).
		rc = e.noteReport(t, rr)
		if leaving {
			e.leave(t)
		} else if t.addr != from {
			e.moveTo(t, from)
		}
		if !leaving && wantsTime && e.exchangeLocked(t, at) {
			x = &exchange{t: t, tx: t.sec.tx, to: from, t1: t1, t2: at}
		}
	case answer != nil && t.answers(from, answer):
		e.metrics.challengesAnswered.Inc()
		rc = e.noteReport(t, rr)
		if leaving {
			t.last = from
			e.leave(t)
		} else {
			e.moveTo(t, from)
		}
	case leaving:
		// A BYE from elsewhere moves and stops nothing.
	default:
		send, tx = e.challengeLocked(t, from)
	}
	e.mu.Unlock()
	e.tell(rc)
	if send != nil {
		e.sendChallenge(t, tx, send, from)
	}
	if x != nil {
		e.answer(*x)
	}
	return true
}

// noteReport keeps the loss and jitter a receiver reported on its
// session's stream, and returns the packets it says arrived when that
// progressed (for Config.Reception); e.mu must be held.
func (e *Engine) noteReport(t *target, rr *rtcp.ReceiverReport) reception {
	var rc reception
	for _, r := range rr.Reports {
		if r.SSRC != t.s.ssrc {
			continue
		}
		t.loss, t.jitter = r.FractionLost, r.Jitter
		if n := receivedPackets(t.s.seq0, r); n > t.received {
			t.received = n
			rc = reception{session: t.s.id, device: t.device, received: n}
		}
	}
	return rc
}

// reception is a receiver's progress to tell Config.Reception, outside e.mu.
type reception struct {
	session, device string
	received        uint64
}

func (e *Engine) tell(rc reception) {
	if rc.received > 0 && e.cfg.Reception != nil {
		e.cfg.Reception(rc.session, rc.device, rc.received)
	}
}

// receivedPackets is what a report block says arrived of a stream whose
// first sequence number is seq0: up to its extended highest sequence
// number, less its cumulative loss. A receiver counts cycles from the
// first packet it got, so one that joined after a wrap of the 16-bit
// sequence counts one cycle fewer than the stream.
func receivedPackets(seq0 uint16, r rtcp.ReceptionReport) uint64 {
	ext := int64(r.LastSequenceNumber)
	if ext < int64(seq0) {
		ext += 1 << 16
	}
	return uint64(max(0, ext-int64(seq0)+1-int64(r.TotalLost)))
}

// moveTo sends t's stream to addr from now on; e.mu must be held.
func (e *Engine) moveTo(t *target, addr netip.AddrPort) {
	e.log.Info("receiver address", "session", t.s.id, "device", t.device,
		"addr", addr.String(), "was", t.addr.String())
	if t.sec != nil && t.last.IsValid() && t.last != addr {
		e.metrics.addressMoves.Inc()
	}
	t.addr, t.last = addr, addr
	t.ua = net.UDPAddrFromAddrPort(addr)
	t.s.publish()
	t.s.reportNow.Store(true)
}

// leave stops t's stream: the receiver left (its session ended or it was
// told to stop). No more RTP to it until it reports again: mobile data
// costs. e.mu must be held.
func (e *Engine) leave(t *target) {
	if !t.addr.IsValid() {
		return
	}
	e.log.Info("receiver left", "session", t.s.id, "device", t.device, "addr", t.addr.String())
	t.addr, t.ua = netip.AddrPort{}, nil
	t.s.publish()
}

// challengeLocked prepares the challenge to an SRTP receiver's report from
// addr, which is not where its stream goes: a Sender Report and an APP
// packet LOA2 subtype 1 with a nonce. e.mu must be held; the caller seals and
// sends it without the lock.
func (e *Engine) challengeLocked(t *target, addr netip.AddrPort) ([]byte, *srtpTx) {
	c := t.challengeTo(addr, time.Now())
	pkts := t.s.srPackets(int(t.s.sent.Load() + t.s.gaps.Load()))
	pkts = append(pkts, &rtcp.ApplicationDefined{
		SubType: protocol.ChallengeSubtype, SSRC: t.s.ssrc, Name: protocol.RTCPChallengeName,
		Data: c.nonce[:],
	})
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		e.log.Error("challenge", "session", t.s.id, "err", err)
		return nil, nil
	}
	return b, t.sec.tx
}

// sendChallenge seals and sends a challenge compound to addr.
func (e *Engine) sendChallenge(t *target, tx *srtpTx, b []byte, addr netip.AddrPort) {
	sealed, err := tx.rtcp(make([]byte, 0, sealedSize), b)
	if err == nil {
		_, err = e.conn.WriteToUDPAddrPort(sealed, addr)
	}
	if err != nil {
		e.log.Warn("challenge not sent", "session", t.s.id, "device", t.device, "addr", addr.String(), "err", err)
		return
	}
	e.metrics.challengesSent.Inc()
	e.metrics.rtcpSent.Inc()
	e.log.Info("receiver challenged", "session", t.s.id, "device", t.device, "addr", addr.String())
}

// ntpEpochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

func ntpTime(t time.Time) uint64 {
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + ntpEpochOffset
	frac := (uint64(ns%1e9) << 32) / 1e9
	return sec<<32 | frac
}

// srPackets maps packet n's RTP timestamp to its instant on the session's
// timeline (NTP = UTC(ts) on the controller's clock), the mapping every
// receiver of the session shares and play.t0_ms/ts0 state. Its packet
// count is n, the packets before that timestamp: it tells a receiver the
// index of the frames it gets, so it can find play.end_frame. Before
// packet 0 (a challenge) it maps the timestamp of now.
func (s *session) srPackets(n int) []rtcp.Packet {
	samples := s.tl.samplesAt(time.Now())
	if s.wall0.Load() != 0 {
		samples = s.lead.Load() + int64(n)*protocol.FrameSamples
	}
	return []rtcp.Packet{
		&rtcp.SenderReport{
			SSRC:        s.ssrc,
			NTPTime:     ntpTime(s.tl.utc(samples)),
			RTPTime:     s.tl.tsOf(samples),
			PacketCount: uint32(n),
			OctetCount:  uint32(s.octets.Load()),
		},
		rtcp.NewCNAMESourceDescription(s.ssrc, "loa-"+s.id),
	}
}

// senderReport is the Sender Report compound for packet n.
func (s *session) senderReport(n int) ([]byte, error) {
	return rtcp.Marshal(s.srPackets(n))
}

// goodbye is a Sender Report followed by a BYE for the session's SSRC.
func (s *session) goodbye(n int, reason string) ([]byte, error) {
	if len(reason) > 255 {
		reason = reason[:255]
	}
	return rtcp.Marshal(append(s.srPackets(n), &rtcp.Goodbye{Sources: []uint32{s.ssrc}, Reason: reason}))
}
