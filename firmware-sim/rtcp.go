package firmwaresim

import (
	"fmt"
	"slices"
	"time"

	"github.com/pion/rtcp"

	"github.com/loa-broadcast/loa/protocol"
)

// maxSRSkew bounds how far the Sender Report clock may move the play-out
// point from the one the first packet's arrival gave; beyond it the
// controller's clock is not trusted (the device clock is unsynchronised).
const maxSRSkew = time.Second

// senderReport is the controller's latest NTP ↔ RTP timestamp mapping.
type senderReport struct {
	wall time.Time // NTP time of the report, sender's wall clock
	rtp  uint32
	lsr  uint32    // middle 32 bits of the NTP timestamp, echoed in reports
	at   time.Time // when it arrived, for the DLSR field
}

// isRTCP tells RTCP from RTP on a multiplexed port (RFC 5761 §4): RTCP
// packet types 192–223 fall where RTP's marker bit and payload type are.
func isRTCP(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223
}

func ntpTime(ntp uint64) time.Time {
	const unixToNTP = 2208988800
	secs := int64(ntp>>32) - unixToNTP
	nanos := int64((ntp & 0xffffffff) * 1e9 >> 32)
	return time.Unix(secs, nanos)
}

// handleRTCP takes the stream's Sender Reports (the sender clock all
// receivers play against), its BYE and, with keys, the address challenge.
// With keys, b has been authenticated and decrypted.
func (s *session) handleRTCP(b []byte) {
	var t4 time.Time // an answer's arrival, before anything else
	if s.tl != nil {
		t4 = s.r.clock.Now()
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		s.mu.Lock()
		s.st.Corrupt++
		s.mu.Unlock()
		return
	}
	if s.impair.ByeLoss > 0 && s.rng.Float64() < s.impair.ByeLoss && s.hasBye(pkts) {
		return // lost on the way, the whole compound
	}
	var sr *rtcp.SenderReport // of this compound
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			if p.SSRC != s.args.SSRC {
				continue
			}
			sr = p
			s.mu.Lock()
			s.sr = &senderReport{wall: ntpTime(p.NTPTime), rtp: p.RTPTime, lsr: uint32(p.NTPTime >> 16), at: time.Now()}
			if s.endFrame > 0 && !clockOnly(pkts) {
				// The packet count is the index of the frame at RTPTime.
				s.setLast(p.RTPTime + uint32(s.endFrame-int(p.PacketCount))*protocol.FrameSamples)
			}
			moved := s.started && s.applySR()
			s.mu.Unlock()
			if moved {
				s.poke()
			}
		case *rtcp.Goodbye:
			for _, src := range p.Sources {
				if src == s.args.SSRC {
					s.mu.Lock()
					s.bye = true
					if sr != nil && s.endFrame > 0 {
						// A controller that sends end_frame puts its BYE's
						// report at the frame after the last it sent.
						s.setLast(sr.RTPTime - protocol.FrameSamples)
					}
					s.mu.Unlock()
					s.poke()
				}
			}
		case *rtcp.ExtendedReport:
			// Only an authenticated answer moves the clock.
			if sr != nil && s.tl != nil && s.crypto != nil {
				s.takeDLRR(p, sr.NTPTime, t4)
			}
		case *rtcp.ApplicationDefined:
			// Only an authenticated challenge is answered: in v1 anyone
			// could make the receiver send to play.addr at will.
			if s.crypto != nil && p.Name == protocol.RTCPChallengeName && p.SubType == protocol.ChallengeSubtype &&
				len(p.Data) == protocol.ChallengeLen {
				if err := s.send(false, p.Data); err != nil {
					s.log.Warn("challenge answer", "err", err)
				}
			}
		}
	}
}

// clockOnly reports whether the Sender Report of pkts maps the clock only
// (contract: the answer to a time exchange, with a DLRR block, or a
// compound with a challenge): its packet count places no frame, since one
// sent before packet 0 cannot know where packet 0 will be.
func clockOnly(pkts []rtcp.Packet) bool {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.ExtendedReport:
			for _, b := range p.Reports {
				if _, ok := b.(*rtcp.DLRRReportBlock); ok {
					return true
				}
			}
		case *rtcp.ApplicationDefined:
			if p.Name == protocol.RTCPChallengeName {
				return true
			}
		}
	}
	return false
}

// hasBye reports whether pkts hold a BYE of the stream.
func (s *session) hasBye(pkts []rtcp.Packet) bool {
	for _, p := range pkts {
		if g, ok := p.(*rtcp.Goodbye); ok && slices.Contains(g.Sources, s.args.SSRC) {
			return true
		}
	}
	return false
}

// applySR moves the play-out point to the sender clock: slot 0 (timestamp
// ts0) plays at the sender's wall time of ts0 plus the delay D, the same
// instant on every receiver whose clock is synchronised. It reports
// whether the play-out point moved. s.mu is held.
func (s *session) applySR() bool {
	sr := s.sr
	wall := sr.wall.Add(time.Duration(int32(s.ts0-sr.rtp)) * time.Second / protocol.ClockRate).Add(s.delay)
	now := time.Now()
	base := now.Add(wall.Sub(now)) // onto the monotonic clock
	if d := base.Sub(s.arrivalBase); d > maxSRSkew || d < -maxSRSkew {
		s.log.Debug("sender report clock ignored", "skew", d)
		return false
	}
	// Once playing, follow the sender clock only when it drifted: moving the
	// play-out point re-times every later slot.
	tolerance := time.Millisecond
	if s.next != s.ext0 {
		tolerance = protocol.FrameDuration / 2
	}
	if d := base.Sub(s.base); d < tolerance && d > -tolerance {
		return false
	}
	s.base = base
	return true
}

// reportBlock is the RFC 3550 reception report of the stream. s.mu is held.
func (s *session) reportBlock(now time.Time) rtcp.ReceptionReport {
	expected := s.maxExt - s.ext0 + 1
	lost := expected - int64(s.st.Received)
	lost = max(0, min(lost, 0x7fffff))
	expInt := expected - s.priorExp
	lostInt := expInt - int64(s.st.Received-s.priorRecv)
	s.priorExp, s.priorRecv = expected, s.st.Received
	var fraction uint8
	if expInt > 0 && lostInt > 0 {
		fraction = uint8(lostInt << 8 / expInt)
	}
	rb := rtcp.ReceptionReport{
		SSRC:               s.args.SSRC,
		FractionLost:       fraction,
		TotalLost:          uint32(lost),
		LastSequenceNumber: uint32(s.maxExt - extOffset),
		Jitter:             uint32(s.jitter),
	}
	if s.sr != nil {
		rb.LastSenderReport = s.sr.lsr
		rb.Delay = uint32(now.Sub(s.sr.at) * 65536 / time.Second)
	}
	return rb
}

// sendReport sends the receiver's compound from its RTP socket: Receiver
// Report (with a report block once packets arrived), SDES CNAME = device
// id, in v1 the APP RTCPAppName carrying the token; and a BYE when the
// session ends. With keys it is SRTCP, which authenticates it instead.
func (s *session) sendReport(bye bool) error { return s.send(bye, nil) }

// send sends the report compound; a non-nil nonce adds the answer to the
// controller's address challenge (APP RTCPChallengeName, ResponseSubtype).
func (s *session) send(bye bool, nonce []byte) error {
	if s.conn == nil { // a local play: no stream to report on
		return nil
	}
	recv := s.args.RecvSSRC
	rr := &rtcp.ReceiverReport{SSRC: recv}
	s.mu.Lock()
	if s.started {
		rr.Reports = []rtcp.ReceptionReport{s.reportBlock(time.Now())}
	}
	reason := s.reason
	s.mu.Unlock()
	pkts := []rtcp.Packet{rr, rtcp.NewCNAMESourceDescription(recv, s.r.cfg.ID)}
	if s.crypto == nil {
		pkts = append(pkts, &rtcp.ApplicationDefined{Name: protocol.RTCPAppName, SSRC: recv, Data: s.token})
	}
	if nonce != nil {
		pkts = append(pkts, &rtcp.ApplicationDefined{Name: protocol.RTCPChallengeName, SubType: protocol.ResponseSubtype,
			SSRC: recv, Data: nonce})
	}
	if xr := s.timeRequest(); xr != nil && !bye {
		pkts = append(pkts, xr)
	}
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{recv}, Reason: reason})
	}
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		return fmt.Errorf("rtcp: %w", err)
	}
	write := func(b []byte) error {
		if _, err := s.conn.WriteToUDP(b, s.dest); err != nil {
			return fmt.Errorf("rtcp: %w", err)
		}
		return nil
	}
	if s.crypto != nil {
		return s.crypto.sealRTCP(b, write)
	}
	return write(b)
}

// pendingRRTRs is how many of its recent time requests a session keeps to
// match answers against.
const pendingRRTRs = 4

// rrtr is a time request sent: its NTP timestamp's middle 32 bits (the LRR
// an answer carries) and T1 in full.
type rrtr struct {
	lrr uint32
	t1  time.Time
}

// timeRequest is the XR with a Receiver Reference Time block that opens a
// time exchange (T1 = the receiver's clock now), at most one per
// TimeExchangeInterval, for sessions with a timeline; nil otherwise. A
// GNSS-like board reads its reference instead.
func (s *session) timeRequest() *rtcp.ExtendedReport {
	if s.tl == nil {
		return nil
	}
	r := s.r
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastRRTR.IsZero() && now.Sub(s.lastRRTR) < protocol.TimeExchangeInterval {
		return nil
	}
	s.lastRRTR = now
	if ref, ok := r.clock.GNSSAt(now); ok {
		r.sync.AddReference(r.clock.SystemAt(now), ref, r.cfg.Clock.GNSSError)
		return nil
	}
	t1 := r.clock.SystemAt(now)
	ntp := NTPTimestamp(t1)
	s.rrtrs = append(s.rrtrs, rrtr{lrr: uint32(ntp >> 16), t1: t1})
	if len(s.rrtrs) > pendingRRTRs {
		s.rrtrs = s.rrtrs[1:]
	}
	return &rtcp.ExtendedReport{SenderSSRC: s.args.RecvSSRC,
		Reports: []rtcp.ReportBlock{&rtcp.ReceiverReferenceTimeReportBlock{NTPTimestamp: ntp}}}
}

// takeDLRR completes a time exchange from the controller's answer: its
// DLRR sub-block for this receiver names the request (LRR), the compound's
// Sender Report carries T3 and t4 is when it arrived. An answer to no
// request of ours, or a second one, is ignored.
func (s *session) takeDLRR(xr *rtcp.ExtendedReport, srNTP uint64, t4 time.Time) {
	for _, b := range xr.Reports {
		dl, ok := b.(*rtcp.DLRRReportBlock)
		if !ok {
			continue
		}
		for _, rep := range dl.Reports {
			if rep.SSRC != s.args.RecvSSRC {
				continue
			}
			s.mu.Lock()
			i := slices.IndexFunc(s.rrtrs, func(q rrtr) bool { return q.lrr == rep.LastRR })
			var t1 time.Time
			if i >= 0 {
				t1 = s.rrtrs[i].t1
				s.rrtrs = slices.Delete(s.rrtrs, i, i+1)
			}
			s.mu.Unlock()
			if i < 0 {
				continue
			}
			if !s.r.sync.AddExchange(ExchangeFromDLRR(t1, srNTP, rep.DLRR, t4)) {
				s.log.Debug("time exchange discarded", "lrr", rep.LastRR)
			}
		}
	}
}
