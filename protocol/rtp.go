package protocol

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// The RTP profile (RFC 3550 + RFC 7587): 48 kHz clock, 20 ms mono Opus
// frames, one Opus packet per RTP packet, marker 0, DTX off. RTCP shares
// the RTP port (RFC 5761).
const (
	ClockRate     = 48000
	FrameSamples  = 960 // samples per 20 ms frame at 48 kHz; the timestamp step
	FrameDuration = 20 * time.Millisecond
	PayloadType   = 111
	Channels      = 1
)

// Receivers authenticate the RTCP that opens their NAT mapping with a
// compound packet: Receiver Report (SSRC = PlayArgs.RecvSSRC), SDES CNAME
// (the device id) and an APP packet named RTCPAppName whose data is the
// TokenLen bytes of PlayArgs.Token. The controller sends a session's RTP
// only to addresses whose report carried a valid token, and ignores the rest.
const (
	RTCPAppName = "LOA1"
	TokenLen    = 16
)

// RTCPReportInterval is how often receivers send their report; it also
// keeps 4G NAT mappings (often 30 s or less for UDP) open.
const RTCPReportInterval = 2 * time.Second

// End of stream. The controller sends its BYE ByeRepeats times,
// ByeSpacing apart, so one lost datagram does not leave a receiver waiting
// for the stream timeout. A receiver conceals a gap in the stream for at
// most MaxConcealFrames frames (200 ms), then plays silence: concealment
// of a stream that stopped is noise, not programme.
const (
	ByeRepeats       = 3
	ByeSpacing       = 20 * time.Millisecond
	MaxConcealFrames = 10
)

// DefaultDelay is the playout delay D receivers add to the sender clock.
const DefaultDelay = 200 * time.Millisecond

// SDES (RFC 4568) keys third-party listeners get in their SDP: ffmpeg's SDP
// reader decrypts AES_CM_128_HMAC_SHA1_80 (it has no GCM), so a listener's
// stream is SRTP in that suite under a key of its own, drawn per SDP.
const (
	SDESSuite   = "AES_CM_128_HMAC_SHA1_80"
	SDESKeyLen  = 16
	SDESSaltLen = 14
)

// SDP describes a session's stream for third-party receivers (ffmpeg,
// GStreamer): the stream arrives at dest (the receiver's own address) from
// the controller at src. Opus is always signalled as opus/48000/2 (RFC 7587);
// sprop-stereo=0 says the content is mono. With sdes (the SDESKeyLen-byte
// master key then the SDESSaltLen-byte salt) the stream is SRTP, RTP/SAVP
// with an a=crypto line (RFC 4568); without, plain RTP/AVP.
func SDP(sessionID string, ssrc uint32, src netip.Addr, dest netip.AddrPort, sdes []byte) string {
	ipv := func(a netip.Addr) string {
		if a.Is4() || a.Is4In6() {
			return "IP4 " + a.Unmap().String()
		}
		return "IP6 " + a.String()
	}
	proto := "RTP/AVP"
	if sdes != nil {
		proto = "RTP/SAVP"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\n")
	fmt.Fprintf(&b, "o=- %d 1 IN %s\r\n", ssrc, ipv(src))
	fmt.Fprintf(&b, "s=Loa session %s\r\n", sessionID)
	fmt.Fprintf(&b, "c=IN %s\r\n", ipv(dest.Addr()))
	fmt.Fprintf(&b, "t=0 0\r\n")
	fmt.Fprintf(&b, "m=audio %d %s %d\r\n", dest.Port(), proto, PayloadType)
	fmt.Fprintf(&b, "a=rtpmap:%d opus/%d/2\r\n", PayloadType, ClockRate)
	fmt.Fprintf(&b, "a=fmtp:%d minptime=20;useinbandfec=1;sprop-stereo=0;stereo=0\r\n", PayloadType)
	fmt.Fprintf(&b, "a=ptime:20\r\n")
	if sdes != nil {
		fmt.Fprintf(&b, "a=crypto:1 %s inline:%s\r\n", SDESSuite, base64.StdEncoding.EncodeToString(sdes))
	}
	fmt.Fprintf(&b, "a=ssrc:%d cname:loa-%s\r\n", ssrc, sessionID)
	fmt.Fprintf(&b, "a=rtcp-mux\r\n")
	fmt.Fprintf(&b, "a=recvonly\r\n")
	return b.String()
}

// MediaClock is what a session's SDP says of its timeline (RFC 7273): the
// reference clock RefClk, "local" (the controller's own) or
// "ntp=host[:port]" (its SNTP responder), and Direct, the RTP timestamp at
// that clock's epoch (1900-01-01 UTC, the NTP era 0), so that the media
// clock is the reference clock itself: UTC(ts) = t0_ms + (ts − ts0)/48 kHz.
type MediaClock struct {
	RefClk string
	Direct uint32
}

// NewMediaClock is the media clock of the timeline (t0Ms, ts0).
func NewMediaClock(refclk string, t0Ms int64, ts0 uint32) MediaClock {
	if refclk == "" {
		refclk = "local"
	}
	const ntpEpochMs = 2208988800 * 1000 // 1900 to 1970
	return MediaClock{RefClk: refclk, Direct: ts0 - uint32((t0Ms+ntpEpochMs)*(ClockRate/1000))}
}

// SDPLines are the media-level attributes (after the m= line) of c.
func (c MediaClock) SDPLines() string {
	return fmt.Sprintf("a=ts-refclk:%s\r\na=mediaclk:direct=%d\r\n", c.RefClk, c.Direct)
}
