package broadcast

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
)

// SNTP is a small SNTP v4 server (RFC 4330) on the controller's clock, the
// clock every session's timeline is on: a receiver that disciplines its
// clock with chrony, or GStreamer's rfc7273-sync following the SDP's
// ts-refclk:ntp=, uses it instead of the RTCP XR exchange (contract v2,
// timeline). It answers client requests (mode 3) with server replies
// (mode 4) of the same size, so it amplifies nothing, and drops anything
// else.
type SNTP struct {
	conn    *net.UDPConn
	stratum uint8
	log     *slog.Logger
	wg      sync.WaitGroup
}

// SNTP packet layout (RFC 4330 §4): 48 bytes without extensions.
const (
	sntpLen       = 48
	sntpModeReq   = 3
	sntpModeReply = 4
	// sntpPrecision is log2 of the clock's precision in seconds: ~1 µs.
	sntpPrecision = -20
)

// ListenSNTP answers SNTP on addr (e.g. ":123" or "127.0.0.1:0") as a
// server of the given stratum (1–15) until Close.
func ListenSNTP(ctx context.Context, addr string, stratum int, log *slog.Logger) (*SNTP, error) {
	if stratum < 1 || stratum > 15 {
		return nil, loa.Errorf(loa.EINVALID, "sntp: stratum %d outside 1..15", stratum)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("sntp: listen %q: %w", addr, err)
	}
	s := &SNTP{conn: pc.(*net.UDPConn), stratum: uint8(stratum), log: log}
	s.wg.Add(1)
	go s.serve()
	log.Info("sntp responder", "addr", s.Addr().String(), "stratum", stratum)
	return s, nil
}

// Addr is the address the responder is bound to.
func (s *SNTP) Addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close stops answering and waits for the reader.
func (s *SNTP) Close() error {
	err := s.conn.Close()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("sntp: close: %w", err)
	}
	return nil
}

func (s *SNTP) serve() {
	defer s.wg.Done()
	buf := make([]byte, 512)
	out := make([]byte, sntpLen)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("sntp read", "err", err)
			continue
		}
		recv := time.Now()
		req, err := parseSNTPRequest(buf[:n])
		if err != nil || from.Port() == 0 {
			continue
		}
		sntpReply(out, req, s.stratum, recv, time.Now())
		if _, err := s.conn.WriteToUDPAddrPort(out, from); err != nil {
			s.log.Debug("sntp reply", "to", from.String(), "err", err)
		}
	}
}

// sntpRequest is what a reply needs of a client's request.
type sntpRequest struct {
	version  uint8
	poll     int8
	transmit uint64 // the client's transmit timestamp, echoed as originate
}

// parseSNTPRequest accepts an SNTP or NTP client request: at least 48
// bytes (extension fields and a MAC may follow and are ignored), mode 3,
// version 1–4 and a non-zero transmit timestamp (RFC 4330 §5).
func parseSNTPRequest(b []byte) (sntpRequest, error) {
	if len(b) < sntpLen {
		return sntpRequest{}, fmt.Errorf("sntp: %d bytes, want at least %d", len(b), sntpLen)
	}
	vn, mode := b[0]>>3&7, b[0]&7
	if mode != sntpModeReq {
		return sntpRequest{}, fmt.Errorf("sntp: mode %d, want %d", mode, sntpModeReq)
	}
	if vn < 1 || vn > 4 {
		return sntpRequest{}, fmt.Errorf("sntp: version %d outside 1..4", vn)
	}
	tx := binary.BigEndian.Uint64(b[40:48])
	if tx == 0 {
		return sntpRequest{}, errors.New("sntp: zero transmit timestamp")
	}
	return sntpRequest{version: vn, poll: int8(b[2]), transmit: tx}, nil
}

// sntpReply writes into out (48 bytes) the reply to req received at recv
// and sent at sent: LI 0, the request's version, mode 4, the stratum, the
// reference ID "LOCL" (the controller's own clock), and the originate,
// receive and transmit timestamps.
func sntpReply(out []byte, req sntpRequest, stratum uint8, recv, sent time.Time) {
	clear(out[:sntpLen])
	out[0] = req.version<<3 | sntpModeReply
	out[1] = stratum
	out[2] = byte(req.poll)
	out[3] = 256 + sntpPrecision // two's complement
	// Root delay 0; root dispersion 1/65536 s × 16 (~0.25 ms).
	binary.BigEndian.PutUint32(out[8:12], 16)
	copy(out[12:16], "LOCL")
	binary.BigEndian.PutUint64(out[16:24], ntpTime(recv)) // reference: the clock is its own reference
	binary.BigEndian.PutUint64(out[24:32], req.transmit)
	binary.BigEndian.PutUint64(out[32:40], ntpTime(recv))
	binary.BigEndian.PutUint64(out[40:48], ntpTime(sent))
}
