package broadcast

import (
	"crypto/subtle"
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
		e.handleDatagram(buf[:n], from)
	}
}

// isRTCP tells RTCP from RTP on a multiplexed port (RFC 5761 §4): RTCP
// packet types sit in 192–223, which no RTP payload type with or without
// the marker bit maps to for the dynamic types in use.
func isRTCP(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223
}

// handleDatagram processes one datagram that arrived at the media socket
// from the given address. A compound of a Receiver Report from a known
// receiver SSRC with an APP packet carrying that receiver's token
// authenticates from as the receiver's address; the stream follows it.
// Anything else is counted and dropped. It reports whether the datagram
// was accepted.
func (e *Engine) handleDatagram(b []byte, from netip.AddrPort) bool {
	if !e.acceptRTCP(b, from) {
		e.metrics.rtcpIgnored.Inc()
		return false
	}
	e.metrics.rtcpAccepted.Inc()
	return true
}

func (e *Engine) acceptRTCP(b []byte, from netip.AddrPort) bool {
	if !isRTCP(b) || !from.IsValid() || from.Port() == 0 {
		return false
	}
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
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if e.is4 && !from.Addr().Is4() {
		return false
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.byRecv[rr.SSRC]
	if t == nil || subtle.ConstantTimeCompare(app.Data, t.token[:]) != 1 {
		return false
	}
	for _, r := range rr.Reports {
		if r.SSRC == t.s.ssrc {
			t.loss, t.jitter = r.FractionLost, r.Jitter
		}
	}
	if leaving {
		// The receiver left (its session ended or it was told to stop):
		// no more RTP to it until it reports again. Mobile data costs.
		if t.addr.IsValid() {
			e.log.Info("receiver left", "session", t.s.id, "device", t.device, "addr", t.addr.String())
			t.addr, t.ua = netip.AddrPort{}, nil
			t.s.publish()
		}
		return true
	}
	if t.addr != from {
		e.log.Info("receiver address", "session", t.s.id, "device", t.device,
			"addr", from.String(), "was", t.addr.String())
		t.addr = from
		t.ua = net.UDPAddrFromAddrPort(from)
		t.s.publish()
		t.s.reportNow.Store(true)
	}
	return true
}

// ntpEpochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

func ntpTime(t time.Time) uint64 {
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + ntpEpochOffset
	frac := (uint64(ns%1e9) << 32) / 1e9
	return sec<<32 | frac
}

// srPackets maps packet n's RTP timestamp to the wall-clock time it was
// due. Every receiver of the session gets the same mapping, derived from
// the session's start, which is what lets them play in step.
func (s *session) srPackets(n int) []rtcp.Packet {
	at := s.started.Round(0).Add(time.Duration(n) * protocol.FrameDuration)
	return []rtcp.Packet{
		&rtcp.SenderReport{
			SSRC:        s.ssrc,
			NTPTime:     ntpTime(at),
			RTPTime:     s.ts0 + uint32(n)*protocol.FrameSamples,
			PacketCount: uint32(s.sent.Load()),
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
