package broadcast

import (
	"net/netip"
	"time"

	"github.com/pion/rtcp"

	"github.com/loa-broadcast/loa/protocol"
)

// Time exchange (contract v2, timeline): a receiver adds to its RTCP
// compound an XR packet (RFC 3611) with a Receiver Reference Time block
// carrying its clock T1; the controller answers at once, to that receiver
// only, with a Sender Report whose NTP timestamp is its clock at send (T3)
// and an XR DLRR block giving LRR = the middle 32 bits of T1 and
// DLRR = T3 − T2 (T2: its clock when the report arrived). The receiver
// then has the four timestamps of an NTP exchange, on the path its stream
// already takes, NAT or not.

// exchangeBurst is how many exchanges a receiver may have answered back to
// back: the limit is one per protocol.TimeExchangeInterval on average, with
// room for a report that jitter brought in early.
const exchangeBurst = 2

// rrtrOf returns T1 from the Receiver Reference Time block of an XR packet
// the receiver ssrc sent in pkts.
func rrtrOf(pkts []rtcp.Packet, ssrc uint32) (uint64, bool) {
	for _, p := range pkts {
		xr, ok := p.(*rtcp.ExtendedReport)
		if !ok || xr.SenderSSRC != ssrc {
			continue
		}
		for _, r := range xr.Reports {
			if b, ok := r.(*rtcp.ReceiverReferenceTimeReportBlock); ok {
				return b.NTPTimestamp, true
			}
		}
	}
	return 0, false
}

// exchangeLocked reports whether t may have a time exchange answered now,
// spending one of its tokens if so; a faster one is counted and ignored.
// e.mu must be held.
func (e *Engine) exchangeLocked(t *target, now time.Time) bool {
	if t.xrAt.IsZero() {
		t.xrTokens = exchangeBurst
	} else {
		t.xrTokens += float64(now.Sub(t.xrAt)) / float64(protocol.TimeExchangeInterval)
		t.xrTokens = min(t.xrTokens, exchangeBurst)
	}
	t.xrAt = now
	if t.xrTokens < 1 {
		e.metrics.exchangesIgnored.Inc()
		return false
	}
	t.xrTokens--
	return true
}

// exchange is a time exchange to answer, prepared under e.mu.
type exchange struct {
	t  *target
	tx *srtpTx // nil: plain RTCP (a v1 receiver)
	to netip.AddrPort
	t1 uint64    // the receiver's clock in its RRTR
	t2 time.Time // the controller's clock when it arrived
}

// answer sends the exchange's SR + SDES + XR DLRR compound, sealed for an
// SRTP receiver, at once.
func (e *Engine) answer(x exchange) {
	b, err := rtcp.Marshal(x.t.s.exchangeReply(x.t.recvSSRC, x.t1, x.t2, time.Now()))
	if err == nil && x.tx != nil {
		b, err = x.tx.rtcp(make([]byte, 0, sealedSize), b)
	}
	if err == nil {
		_, err = e.conn.WriteToUDPAddrPort(b, x.to)
	}
	if err != nil {
		e.log.Warn("time exchange not answered", "session", x.t.s.id, "device", x.t.device, "err", err)
		return
	}
	e.metrics.exchanges.Inc()
	e.metrics.rtcpSent.Inc()
}

// exchangeReply is the answer to the RRTR t1 of receiver recv that arrived
// at t2, sent at now: the SR maps the timeline at T3, the first sample
// after now, and its NTP timestamp is T3.
func (s *session) exchangeReply(recv uint32, t1 uint64, t2, now time.Time) []rtcp.Packet {
	samples := s.tl.samplesAt(now) + 1
	t3 := s.tl.utc(samples)
	count := int64(0) // before packet 0: see the contract
	if s.wall0.Load() != 0 {
		count = max(0, (samples-s.lead.Load())/protocol.FrameSamples)
	}
	return []rtcp.Packet{
		&rtcp.SenderReport{
			SSRC:        s.ssrc,
			NTPTime:     ntpTime(t3),
			RTPTime:     s.tl.tsOf(samples),
			PacketCount: uint32(count),
			OctetCount:  uint32(s.octets.Load()),
		},
		rtcp.NewCNAMESourceDescription(s.ssrc, "loa-"+s.id),
		&rtcp.ExtendedReport{
			SenderSSRC: s.ssrc,
			Reports: []rtcp.ReportBlock{&rtcp.DLRRReportBlock{
				Reports: []rtcp.DLRRReport{{SSRC: recv, LastRR: uint32(t1 >> 16), DLRR: dlrr(t3.Sub(t2))}},
			}},
		},
	}
}

// dlrr is d in units of 1/65536 s (RFC 3611 §4.5), 0 if negative.
func dlrr(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32(min(d*65536/time.Second, 1<<32-1))
}
