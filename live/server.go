// Package live takes live audio from WebRTC (WHIP, RFC 9725): a browser's
// or any WHIP client's Opus, kept on the controller's timeline by a
// reorder and drift buffer and handed to the audio engine as it came,
// without decoding, or transcoded when the uplink's Opus cannot be
// forwarded. One UDP port serves every peer connection.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// Config configures a Server.
type Config struct {
	// Bind is the one UDP address every peer connection uses (ICE UDP
	// mux), e.g. ":8443" or "127.0.0.1:0".
	Bind string
	// Public are the addresses clients reach the controller at when it is
	// behind a 1:1 NAT: its host candidates carry them instead of its own.
	Public []string
	// ICEServers are STUN/TURN servers offered to the ICE agent ("turn:host:3478"
	// with Username and Credential): optional.
	ICEServers []webrtc.ICEServer
	// UplinkTimeout ends an uplink that sent no audio for this long (5 s
	// if zero); before its first packet it has twice as long to connect.
	UplinkTimeout time.Duration
	// Depth is the buffer's target in frames (DefaultDepth if zero).
	Depth  int
	Logger *slog.Logger
}

// Server accepts WHIP offers.
type Server struct {
	cfg  Config
	log  *slog.Logger
	api  *webrtc.API
	conn net.PacketConn
	mux  ice.UDPMux

	metrics *metrics

	mu      sync.Mutex
	uplinks map[*Uplink]struct{}
	closed  bool
}

// New binds the UDP port and readies the WebRTC stack: a media engine with
// Opus alone, no interceptors (the RTCP to the client is the uplink's
// own), host candidates on the one port (rewritten to Public).
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UplinkTimeout <= 0 {
		cfg.UplinkTimeout = 5 * time.Second
	}
	for _, p := range cfg.Public {
		if _, err := netip.ParseAddr(p); err != nil {
			return nil, loa.Errorf(loa.EINVALID, "live public address %q: not an IP address", p)
		}
	}
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: protocol.ClockRate, Channels: 2, SDPFmtpLine: OpusFmtp},
		PayloadType:        protocol.PayloadType,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("live: register opus: %w", err)
	}
	conn, err := net.ListenPacket("udp", cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("live: listen %s: %w", cfg.Bind, err)
	}
	var se webrtc.SettingEngine
	mux := webrtc.NewICEUDPMux(nil, conn)
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok && ua.IP.IsLoopback() {
		se.SetIncludeLoopbackCandidate(true)
	}
	if len(cfg.Public) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{External: cfg.Public, AsCandidateType: webrtc.ICECandidateTypeHost}); err != nil {
			conn.Close()
			return nil, fmt.Errorf("live: public address: %w", err)
		}
	}
	// An empty registry: pion's default interceptors would send Receiver
	// Reports of their own, with the uplink's loss alone, contradicting
	// ours (and NACKs, whose retransmissions would come too late).
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	return &Server{cfg: cfg, log: cfg.Logger, api: api, conn: conn, mux: mux, metrics: newMetrics(), uplinks: map[*Uplink]struct{}{}}, nil
}

// LocalAddr is the UDP address every peer connection uses.
func (s *Server) LocalAddr() netip.AddrPort {
	if ua, ok := s.conn.LocalAddr().(*net.UDPAddr); ok {
		return ua.AddrPort()
	}
	return netip.AddrPort{}
}

// Close ends every uplink and releases the port.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ups := make([]*Uplink, 0, len(s.uplinks))
	for u := range s.uplinks {
		ups = append(ups, u)
	}
	s.mu.Unlock()
	for _, u := range ups {
		u.Close()
	}
	err := s.mux.Close() // closes the port too
	if cerr := s.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}

// Options are what an uplink needs from its session.
type Options struct {
	// Loss is the share of packets the session's receivers report lost
	// (RTCP fraction lost, /256): the Receiver Reports to the client carry
	// it, so its encoder adds in-band FEC. Nil: only the uplink's own loss.
	Loss func() uint8
}

// maxOffer bounds an offer's size (the API bounds the body too).
const maxOffer = 64 << 10

// Accept answers a WHIP offer: the uplink, and the answer's SDP. An offer
// with no audio the controller can take is EUNSUPPORTED; a malformed one
// EINVALID.
func (s *Server) Accept(ctx context.Context, offer string, opts Options) (*Uplink, string, error) {
	if err := checkOffer(offer); err != nil {
		return nil, "", err
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{ICEServers: s.cfg.ICEServers})
	if err != nil {
		return nil, "", fmt.Errorf("live: peer connection: %w", err)
	}
	u := newUplink(s, pc, opts)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		pc.Close()
		return nil, "", loa.Errorf(loa.EINVALID, "offer: %v", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.Close()
		return nil, "", loa.Errorf(loa.EUNSUPPORTED, "offer: no answer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		pc.Close()
		return nil, "", fmt.Errorf("live: local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		pc.Close()
		return nil, "", fmt.Errorf("live: gathering candidates: %w", ctx.Err())
	}
	local := pc.LocalDescription()
	if !hasOpus(local.SDP) {
		pc.Close()
		return nil, "", loa.Errorf(loa.EUNSUPPORTED, "offer: no Opus audio to receive (the controller takes Opus only)")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pc.Close()
		return nil, "", loa.Errorf(loa.EUNAVAILABLE, "live: closed")
	}
	s.uplinks[u] = struct{}{}
	s.mu.Unlock()
	s.metrics.uplinks.Inc()
	go u.watch()
	return u, pinProfile(local.SDP), nil
}

// forget drops an ended uplink and counts what it did.
func (s *Server) forget(u *Uplink, st Stats, reason string) {
	s.mu.Lock()
	_, had := s.uplinks[u]
	delete(s.uplinks, u)
	s.mu.Unlock()
	if !had {
		return // never accepted
	}
	m := s.metrics
	m.uplinks.Dec()
	m.received.Add(float64(st.Received))
	m.lost.Add(float64(st.Lost))
	m.dropped.Add(float64(st.Dropped))
	m.inserted.Add(float64(st.Inserted))
	if u.Transcoded() {
		m.transcoded.Inc()
	}
	m.ended.WithLabelValues(reason).Inc()
}

// checkOffer parses an offer and requires an audio section offering Opus.
func checkOffer(offer string) error {
	if len(offer) > maxOffer {
		return loa.Errorf(loa.ETOOLARGE, "offer: larger than %d bytes", maxOffer)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return loa.Errorf(loa.EINVALID, "offer: not SDP: %v", err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.Contains(strings.ToLower(a.Value), "opus/48000") {
				return nil
			}
		}
	}
	return loa.Errorf(loa.EUNSUPPORTED, "offer: no Opus audio (the controller takes Opus/48000 only)")
}

// hasOpus reports whether an answer accepted an audio section with Opus.
func hasOpus(answer string) bool {
	var d sdp.SessionDescription
	if d.UnmarshalString(answer) != nil {
		return false
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media == "audio" && m.MediaName.Port.Value != 0 {
			for _, a := range m.Attributes {
				if a.Key == "rtpmap" && strings.Contains(strings.ToLower(a.Value), "opus/48000") {
					return true
				}
			}
		}
	}
	return false
}

// pinProfile makes each audio section of an answer ask for the receivers'
// profile: its Opus fmtp is OpusFmtp (pion's answer echoes the offer's),
// and a=ptime:20. Only the text the client gets changes: what it says is
// what the client's encoder is to send.
func pinProfile(answer string) string {
	lines := strings.SplitAfter(answer, "\n")
	var out []string
	inAudio, hasPtime := false, false
	opusPT := ""
	end := func() {
		if inAudio && !hasPtime {
			out = append(out, "a=ptime:20\r\n")
		}
	}
	for _, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		switch {
		case strings.HasPrefix(t, "m="):
			end()
			inAudio, hasPtime, opusPT = strings.HasPrefix(t, "m=audio"), false, ""
		case inAudio && strings.HasPrefix(t, "a=rtpmap:") && strings.Contains(strings.ToLower(t), " opus/48000"):
			opusPT = strings.Fields(strings.TrimPrefix(t, "a=rtpmap:"))[0]
			out = append(out, l, "a=fmtp:"+opusPT+" "+OpusFmtp+"\r\n")
			continue
		case inAudio && opusPT != "" && strings.HasPrefix(t, "a=fmtp:"+opusPT+" "):
			continue // replaced after its rtpmap
		case inAudio && strings.HasPrefix(t, "a=ptime:"):
			hasPtime = true
		}
		out = append(out, l)
	}
	end()
	return strings.Join(out, "")
}
