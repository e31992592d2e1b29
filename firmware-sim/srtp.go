package firmwaresim

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/loa-broadcast/loa/protocol"
)

// streamCrypto is a session's SRTP and SRTCP state (contract v2), under
// the keys of its play command. Both directions share the keys; the SSRCs
// (play.ssrc from the controller, play.recv_ssrc from the receiver) keep
// their nonces apart.
type streamCrypto struct {
	// in opens the controller's SRTP and SRTCP, with replay protection on
	// (pion's default is off). Reader goroutine only, as are inBuf (what
	// it opened, read before the next datagram) and the headers.
	in      *srtp.Context
	inBuf   []byte
	rtpHdr  rtp.Header
	rtcpHdr rtcp.Header

	// out seals the receiver's own SRTCP; the run goroutine (reports) and
	// the reader (challenge answers) both send, so it has a lock, held
	// until the packet is written so SRTCP indices leave in order.
	outMu  sync.Mutex
	out    *srtp.Context
	outBuf []byte
}

func newStreamCrypto(k protocol.SRTPKeys) (*streamCrypto, error) {
	key, salt, err := k.Material()
	if err != nil {
		return nil, err
	}
	in, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm,
		srtp.SRTPReplayProtection(protocol.SRTPReplayWindow),
		srtp.SRTCPReplayProtection(protocol.SRTPReplayWindow))
	if err != nil {
		return nil, fmt.Errorf("srtp: %w", err)
	}
	out, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		return nil, fmt.Errorf("srtp: %w", err)
	}
	return &streamCrypto{
		in:     in,
		out:    out,
		inBuf:  make([]byte, 0, maxDatagram),
		outBuf: make([]byte, 0, maxDatagram),
	}, nil
}

// errNotSRTP is a datagram too short to be an authenticated packet.
var errNotSRTP = errors.New("srtp: not an authenticated packet")

// openRTP authenticates and decrypts an SRTP packet into a buffer reused
// for the next one: a forgery, a replay or anything else fails.
func (c *streamCrypto) openRTP(b []byte) ([]byte, error) {
	if len(b) < 12 {
		return nil, errNotSRTP
	}
	out, err := c.in.DecryptRTP(c.inBuf[:0], b, &c.rtpHdr)
	if err != nil {
		return nil, err
	}
	c.inBuf = out[:0]
	return out, nil
}

// openRTCP authenticates and decrypts an SRTCP compound packet, likewise.
func (c *streamCrypto) openRTCP(b []byte) ([]byte, error) {
	if len(b) < 8 {
		return nil, errNotSRTP
	}
	out, err := c.in.DecryptRTCP(c.inBuf[:0], b, &c.rtcpHdr)
	if err != nil {
		return nil, err
	}
	c.inBuf = out[:0]
	return out, nil
}

// sealRTCP encrypts a compound RTCP packet and hands it to send with
// outMu held.
func (c *streamCrypto) sealRTCP(b []byte, send func([]byte) error) error {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	out, err := c.out.EncryptRTCP(c.outBuf[:0], b, nil)
	if err != nil {
		return fmt.Errorf("srtcp: %w", err)
	}
	c.outBuf = out[:0]
	return send(out)
}
