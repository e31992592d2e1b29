package live

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/loa-broadcast/loa/protocol"
)

// Client is a WHIP client (RFC 9725) sending Opus packets, as OBS or a
// browser would: for tests and `loa bench live`. Its offer goes without
// candidates, which follow by PATCH (trickle).
type Client struct {
	pc       *webrtc.PeerConnection
	track    *webrtc.TrackLocalStaticRTP
	hc       *http.Client
	token    string
	Resource string // the session's URL, from Location

	seq  uint16
	ts   uint32
	mu   sync.Mutex
	rrs  []rtcp.ReceptionReport
	done chan struct{}
}

// Dial offers an Opus track to the WHIP endpoint at endpoint (with its
// query: targets, priority), authenticated by token, and trickles its
// candidates. fmtp is the Opus fmtp it offers ("" for a browser's).
func Dial(ctx context.Context, hc *http.Client, endpoint, token, fmtp string) (*Client, error) {
	if fmtp == "" {
		fmtp = "minptime=10;useinbandfec=1"
	}
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: protocol.ClockRate, Channels: 2, SDPFmtpLine: fmtp},
		PayloadType:        protocol.PayloadType,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: protocol.ClockRate, Channels: 2}, "audio", "loa")
	if err != nil {
		pc.Close()
		return nil, err
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		pc.Close()
		return nil, err
	}
	c := &Client{pc: pc, track: track, hc: hc, token: token, seq: uint16(rand.Uint32()), ts: rand.Uint32(), done: make(chan struct{})}
	var (
		cmu   sync.Mutex
		cands []string
		gdone = make(chan struct{})
	)
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic == nil {
			close(gdone)
			return
		}
		cmu.Lock()
		cands = append(cands, ic.ToJSON().Candidate)
		cmu.Unlock()
	})
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		pc.Close()
		return nil, err
	}
	answer, loc, err := c.post(ctx, endpoint, offer.SDP)
	if err != nil {
		pc.Close()
		return nil, err
	}
	base, _ := url.Parse(endpoint)
	if ref, err := url.Parse(loc); err == nil && base != nil {
		c.Resource = base.ResolveReference(ref).String()
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		pc.Close()
		return nil, err
	}
	select {
	case <-gdone:
	case <-ctx.Done():
		pc.Close()
		return nil, ctx.Err()
	}
	cmu.Lock()
	var frag strings.Builder
	fmt.Fprintf(&frag, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n", attr(offer.SDP, "ice-ufrag"), attr(offer.SDP, "ice-pwd"))
	for _, cand := range cands {
		fmt.Fprintf(&frag, "a=%s\r\n", cand)
	}
	frag.WriteString("a=end-of-candidates\r\n")
	cmu.Unlock()
	if err := c.Patch(ctx, frag.String()); err != nil {
		pc.Close()
		return nil, err
	}
	go c.readRTCP()
	return c, nil
}

// attr is the value of the first a=key: line of an SDP.
func attr(sdp, key string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "a="+key+":"); ok {
			return v
		}
	}
	return ""
}

func (c *Client) request(ctx context.Context, method, u, ctype, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

func (c *Client) post(ctx context.Context, endpoint, offer string) (answer, location string, err error) {
	resp, b, err := c.request(ctx, http.MethodPost, endpoint, "application/sdp", offer)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("whip: POST %s: %s: %s", endpoint, resp.Status, bytes.TrimSpace(b))
	}
	return string(b), resp.Header.Get("Location"), nil
}

// Patch sends a trickle fragment to the session.
func (c *Client) Patch(ctx context.Context, frag string) error {
	resp, b, err := c.request(ctx, http.MethodPatch, c.Resource, "application/trickle-ice-sdpfrag", frag)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("whip: PATCH %s: %s: %s", c.Resource, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// Connected waits until the peer connection is up.
func (c *Client) Connected(ctx context.Context) error {
	for c.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		select {
		case <-ctx.Done():
			return fmt.Errorf("whip: not connected (%s): %w", c.pc.ConnectionState(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Send sends the next Opus packet (20 ms, as a browser's, or any length
// Opus allows); lose drops it as the uplink would (its sequence number and
// timestamp go by).
func (c *Client) Send(payload []byte, lose bool) error {
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: c.seq, Timestamp: c.ts}, Payload: payload}
	c.seq++
	d, ok := packetDuration(payload)
	if !ok {
		d = protocol.FrameSamples
	}
	c.ts += uint32(d)
	if lose {
		return nil
	}
	return c.track.WriteRTP(p)
}

// ReceiverReports are the report blocks the controller sent about the
// uplink, oldest first.
func (c *Client) ReceiverReports() []rtcp.ReceptionReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rtcp.ReceptionReport(nil), c.rrs...)
}

func (c *Client) readRTCP() {
	defer close(c.done)
	ts := c.pc.GetTransceivers()
	if len(ts) == 0 {
		return
	}
	s := ts[0].Sender()
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if rr, ok := p.(*rtcp.ReceiverReport); ok {
				c.mu.Lock()
				c.rrs = append(c.rrs, rr.Reports...)
				c.mu.Unlock()
			}
		}
	}
}

// Close ends the session (DELETE) and the peer connection.
func (c *Client) Close(ctx context.Context) error {
	var err error
	if c.Resource != "" {
		var resp *http.Response
		resp, _, err = c.request(ctx, http.MethodDelete, c.Resource, "", "")
		if err == nil && resp.StatusCode/100 != 2 {
			err = fmt.Errorf("whip: DELETE %s: %s", c.Resource, resp.Status)
		}
	}
	c.pc.Close()
	return err
}

// Hangup closes the peer connection without a DELETE (a closed browser).
func (c *Client) Hangup() error { return c.pc.Close() }
