package firmwaresim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/hraban/opus"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// waitLimit only keeps a broken test from hanging; no assertion is timed.
const waitLimit = 20 * time.Second

// testDelayMs is the play-out delay in tests: far more than
// protocol.DefaultDelay, so that a loaded machine pausing the test's sender
// (or catching up the receiver's clock) does not make packets late.
const testDelayMs = 1500

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type mqttMsg struct {
	topic    string
	payload  []byte
	retained bool
}

// recorder is the controller's side of MQTT: it records everything under
// loa/v1/dev/ and sends commands.
type recorder struct {
	c      mqtt.Client
	mu     sync.Mutex
	msgs   []mqttMsg
	notify chan struct{}
}

func newRecorder(t *testing.T, broker, clientID string) *recorder {
	t.Helper()
	return newRecorderAs(t, broker, clientID, "", "")
}

// newRecorderAs is newRecorder with the controller's broker account.
func newRecorderAs(t *testing.T, broker, clientID, user, pass string) *recorder {
	t.Helper()
	rec := &recorder{notify: make(chan struct{})}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetAutoReconnect(false).
		SetUsername(user).SetPassword(pass)
	rec.c = mqtt.NewClient(opts)
	if err := waitToken(rec.c.Connect()); err != nil {
		t.Fatal(err)
	}
	err := waitToken(rec.c.Subscribe(protocol.Prefix+"dev/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		rec.mu.Lock()
		rec.msgs = append(rec.msgs, mqttMsg{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()})
		close(rec.notify)
		rec.notify = make(chan struct{})
		rec.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.c.Disconnect(0) })
	return rec
}

// wait returns the first message (in arrival order) that matches.
func (rec *recorder) wait(t *testing.T, what string, match func(mqttMsg) bool) mqttMsg {
	t.Helper()
	deadline := time.After(waitLimit)
	for i := 0; ; {
		rec.mu.Lock()
		for ; i < len(rec.msgs); i++ {
			if match(rec.msgs[i]) {
				m := rec.msgs[i]
				rec.mu.Unlock()
				return m
			}
		}
		ch := rec.notify
		rec.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func (rec *recorder) all(match func(mqttMsg) bool) []mqttMsg {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []mqttMsg
	for _, m := range rec.msgs {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

var cmdSeq struct {
	sync.Mutex
	n int
}

// send publishes a command to device id and returns its id.
func (rec *recorder) send(t *testing.T, dev, op string, args any, exp time.Time) string {
	t.Helper()
	cmdSeq.Lock()
	cmdSeq.n++
	id := fmt.Sprintf("c%d", cmdSeq.n)
	cmdSeq.Unlock()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(protocol.Command{ID: id, Op: op, Exp: exp.UnixMilli(), Args: raw})
	if err != nil {
		t.Fatal(err)
	}
	rec.sendRaw(t, dev, b)
	return id
}

func (rec *recorder) sendRaw(t *testing.T, dev string, b []byte) {
	t.Helper()
	if err := waitToken(rec.c.Publish(protocol.DeviceTopic(dev, protocol.KindCmd), 1, false, b)); err != nil {
		t.Fatal(err)
	}
}

func (rec *recorder) ack(t *testing.T, dev, cmdID, state string) protocol.Ack {
	t.Helper()
	m := rec.wait(t, "ack "+state+" of "+cmdID, func(m mqttMsg) bool {
		if m.topic != protocol.DeviceTopic(dev, protocol.KindAck) {
			return false
		}
		a, err := protocol.DecodeAck(m.payload)
		return err == nil && a.ID == cmdID && a.State == state
	})
	a, _ := protocol.DecodeAck(m.payload)
	return a
}

// finalAck returns the final ack of a command, whatever its state.
func (rec *recorder) finalAck(t *testing.T, dev, cmdID string) protocol.Ack {
	t.Helper()
	m := rec.wait(t, "final ack of "+cmdID, func(m mqttMsg) bool {
		if m.topic != protocol.DeviceTopic(dev, protocol.KindAck) {
			return false
		}
		a, err := protocol.DecodeAck(m.payload)
		return err == nil && a.ID == cmdID && a.Final()
	})
	a, _ := protocol.DecodeAck(m.payload)
	return a
}

func (rec *recorder) event(t *testing.T, dev, typ, session string) protocol.Event {
	t.Helper()
	m := rec.wait(t, typ+" event of "+dev, func(m mqttMsg) bool {
		if m.topic != protocol.DeviceTopic(dev, protocol.KindEvent) {
			return false
		}
		e, err := protocol.DecodeEvent(m.payload)
		return err == nil && e.Type == typ && e.Session == session
	})
	e, _ := protocol.DecodeEvent(m.payload)
	return e
}

// rtcpReport is one RTCP compound a receiver sent the controller.
type rtcpReport struct {
	from   *net.UDPAddr
	cname  string
	rr     *rtcp.ReceiverReport
	bye    bool
	answer []byte // SRTP: the nonce of an APP LOA2 challenge answer
	rrtr   uint64 // an XR time request's NTP timestamp (T1); 0: none
}

// streamer is the controller's media side of one session: one UDP socket,
// receivers authenticated by their RTCP, an Opus-encoded 1 kHz tone. It
// speaks contract v2 (SRTP and SRTCP under keys derived per receiver, as
// CONTRACT.md says) unless made plain (v1: RTP and the RTCP token).
type streamer struct {
	t       *testing.T
	conn    *net.UDPConn
	session string
	token   []byte
	ssrc    uint32
	seq0    uint16
	ts0     uint32
	frames  [][]byte
	srtp    bool
	secret  []byte
	fence   protocol.Fence

	sendMu sync.Mutex // the SRTP contexts are not safe for concurrent use

	mu      sync.Mutex
	addrs   map[string]*net.UDPAddr // by CNAME, once authenticated
	recv    map[string]uint32       // RecvSSRC per device
	peers   map[string]*srtpPeer    // SRTP state per device
	retired []*srtpPeer             // of earlier plays: their last reports may still come
	reports []rtcpReport
	bad     []string // why an RTCP compound was refused
	notify  chan struct{}
	// onReport, if set before the play, sees every accepted report
	// (a time-exchange responder answers from it).
	onReport func(rtcpReport)
}

// srtpPeer is the controller's SRTP state for one receiver.
type srtpPeer struct {
	keys protocol.SRTPKeys
	recv uint32        // the receiver's SSRC
	seal *srtp.Context // RTP and SRTCP to the receiver
	open *srtp.Context // SRTCP from the receiver, replay protection on
}

// newStreamer returns a contract v2 streamer: SRTP to every receiver.
func newStreamer(t *testing.T, session string, frames int) *streamer {
	return newStreamerMode(t, session, frames, true)
}

// newPlainStreamer returns a contract v1 streamer: plain RTP, token RTCP.
func newPlainStreamer(t *testing.T, session string, frames int) *streamer {
	return newStreamerMode(t, session, frames, false)
}

func newStreamerMode(t *testing.T, session string, frames int, srtp bool) *streamer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &streamer{
		t: t, conn: conn, session: session,
		token: make([]byte, protocol.TokenLen), ssrc: 0x10ad0001, seq0: 65500, ts0: 4294960000,
		frames: toneFrames(t, frames), srtp: srtp, secret: make([]byte, protocol.SRTPSecretLen), fence: protocol.Fence{Gen: 3, Term: 1},
		addrs: map[string]*net.UDPAddr{}, recv: map[string]uint32{}, peers: map[string]*srtpPeer{}, notify: make(chan struct{}),
	}
	rand.Read(s.token)
	rand.Read(s.secret)
	done := make(chan struct{})
	go s.read(done)
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

// toneFrames encodes a 1 kHz tone as 20 ms Opus frames at 32 kbit/s with
// in-band FEC, as the controller does.
func toneFrames(t testing.TB, n int) [][]byte {
	return sineFrames(t, n, 1000)
}

// sineFrames encodes a tone of hz as toneFrames does.
func sineFrames(t testing.TB, n int, hz float64) [][]byte {
	t.Helper()
	enc, err := opus.NewEncoder(protocol.ClockRate, 1, opus.AppAudio)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{enc.SetBitrate(32000), enc.SetInBandFEC(true), enc.SetPacketLossPerc(10)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	pcm := make([]int16, protocol.FrameSamples)
	out := make([][]byte, n)
	for i := range n {
		for j := range pcm {
			k := i*protocol.FrameSamples + j
			pcm[j] = int16(12000 * math.Sin(2*math.Pi*hz*float64(k)/protocol.ClockRate))
		}
		buf := make([]byte, 1500)
		m, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = buf[:m]
	}
	return out
}

// playArgs is dev's play; with SRTP it carries dev's keys, derived from
// the session secret as the contract says, and a fresh SRTP state.
func (s *streamer) playArgs(dev string, recvSSRC uint32) protocol.PlayArgs {
	a := protocol.PlayArgs{
		Session: s.session, Addr: s.conn.LocalAddr().String(), SSRC: s.ssrc, PT: protocol.PayloadType,
		RecvSSRC: recvSSRC, DelayMs: testDelayMs, Priority: 64, Frames: len(s.frames),
	}
	var peer *srtpPeer
	if s.srtp {
		keys, err := protocol.DeriveSRTPKeys(s.secret, dev, s.fence)
		if err != nil {
			s.t.Fatal(err)
		}
		peer = &srtpPeer{keys: keys, recv: recvSSRC, seal: srtpContext(s.t, keys), open: srtpContext(s.t, keys,
			srtp.SRTCPReplayProtection(protocol.SRTPReplayWindow))}
		fence := s.fence
		a.Keys, a.Fence = &keys, &fence
	} else {
		a.Token = hex.EncodeToString(s.token)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recv[dev] = recvSSRC
	switch old := s.peers[dev]; {
	case old != nil && peer != nil && old.keys == peer.keys && old.recv == recvSSRC:
		// The same play again (a retry): the same SRTP state.
	default:
		if old != nil {
			s.retired = append(s.retired, old)
		}
		s.peers[dev] = peer
	}
	return a
}

func srtpContext(t testing.TB, k protocol.SRTPKeys, opts ...srtp.ContextOption) *srtp.Context {
	t.Helper()
	key, salt, err := k.Material()
	if err != nil {
		t.Fatal(err)
	}
	c, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// read checks every RTCP compound as the controller must: SRTCP that
// authenticates under the keys of the receiver whose SSRC it names (v1:
// plain RTCP with APP LOA1 and the session token), RR first with the
// receiver's SSRC, SDES CNAME.
func (s *streamer) read(done chan struct{}) {
	defer close(done)
	b := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDP(b)
		if err != nil {
			return
		}
		pkt := b[:n]
		var rep rtcpReport
		why := ""
		if s.srtp {
			pkt, why = s.openSRTCP(pkt)
		}
		if why == "" {
			rep, why = s.check(pkt, from)
		}
		s.mu.Lock()
		if why != "" {
			s.bad = append(s.bad, why)
		} else {
			if _, ok := s.addrs[rep.cname]; !ok {
				s.addrs[rep.cname] = from
			}
			s.reports = append(s.reports, rep)
		}
		close(s.notify)
		s.notify = make(chan struct{})
		on := s.onReport
		s.mu.Unlock()
		if on != nil && why == "" {
			on(rep)
		}
	}
}

// openSRTCP authenticates a receiver's SRTCP with the keys of the
// receiver whose SSRC is in its (clear) header.
func (s *streamer) openSRTCP(b []byte) ([]byte, string) {
	if len(b) < 8 {
		return nil, "short srtcp"
	}
	ssrc := binary.BigEndian.Uint32(b[4:])
	var peers []*srtpPeer // the current play's first
	s.mu.Lock()
	for _, p := range s.peers {
		if p != nil && p.recv == ssrc {
			peers = append(peers, p)
		}
	}
	for _, p := range slices.Backward(s.retired) {
		if p.recv == ssrc {
			peers = append(peers, p)
		}
	}
	s.mu.Unlock()
	if len(peers) == 0 {
		return nil, fmt.Sprintf("srtcp from unknown SSRC %d", ssrc)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	var err error
	for _, p := range peers {
		var out []byte
		if out, err = p.open.DecryptRTCP(nil, b, nil); err == nil {
			return out, ""
		}
	}
	return nil, "srtcp: " + err.Error()
}

func (s *streamer) check(b []byte, from *net.UDPAddr) (rtcpReport, string) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return rtcpReport{}, err.Error()
	}
	if err := rtcp.CompoundPacket(pkts).Validate(); err != nil {
		return rtcpReport{}, "compound: " + err.Error()
	}
	rep := rtcpReport{from: from}
	var app *rtcp.ApplicationDefined
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.ReceiverReport:
			rep.rr = p
		case *rtcp.SourceDescription:
			for _, it := range p.Chunks[0].Items {
				if it.Type == rtcp.SDESCNAME {
					rep.cname = it.Text
				}
			}
		case *rtcp.ApplicationDefined:
			if p.Name == protocol.RTCPChallengeName {
				if p.SubType != protocol.ResponseSubtype || len(p.Data) != protocol.ChallengeLen {
					return rep, "malformed challenge answer"
				}
				rep.answer = p.Data
				continue
			}
			app = p
		case *rtcp.Goodbye:
			rep.bye = true
		case *rtcp.ExtendedReport:
			for _, b := range p.Reports {
				if rr, ok := b.(*rtcp.ReceiverReferenceTimeReportBlock); ok {
					rep.rrtr = rr.NTPTimestamp
				}
			}
		}
	}
	s.mu.Lock()
	want, known := s.recv[rep.cname]
	s.mu.Unlock()
	switch {
	case rep.rr == nil:
		return rep, "no receiver report first"
	case !known:
		return rep, "unknown cname " + rep.cname
	case rep.rr.SSRC != want:
		return rep, "receiver report SSRC"
	case s.srtp && app != nil:
		return rep, "an APP packet beside SRTCP: " + app.Name
	case !s.srtp && rep.answer != nil:
		return rep, "a challenge answer in v1"
	case s.srtp:
		return rep, ""
	case app == nil || app.Name != protocol.RTCPAppName || app.SSRC != want:
		return rep, "no APP " + protocol.RTCPAppName + " from the receiver SSRC"
	case !bytes.Equal(app.Data, s.token):
		return rep, "wrong token"
	}
	return rep, ""
}

// waitReceivers waits until n receivers authenticated.
func (s *streamer) waitReceivers(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		s.mu.Lock()
		got, ch, bad := len(s.addrs), s.notify, s.bad
		s.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("refused RTCP: %v", bad)
		}
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d of %d receivers authenticated", got, n)
		}
	}
}

// waitReport waits for a report from dev that matches.
func (s *streamer) waitReport(t *testing.T, dev string, match func(rtcpReport) bool) rtcpReport {
	t.Helper()
	deadline := time.After(waitLimit)
	for i := 0; ; {
		s.mu.Lock()
		for ; i < len(s.reports); i++ {
			if r := s.reports[i]; r.cname == dev && match(r) {
				s.mu.Unlock()
				return r
			}
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no matching RTCP report from %s", dev)
		}
	}
}

func (s *streamer) packet(i int) []byte { return s.packetOf(i, s.frames[i]) }

// packetOf is the stream's RTP packet of frame i (seq0+i, ts0+i·960),
// whatever its payload: a forger who saw the stream can build it.
func (s *streamer) packetOf(i int, payload []byte) []byte {
	p := rtp.Packet{
		Header: rtp.Header{Version: 2, PayloadType: protocol.PayloadType, SequenceNumber: s.seq0 + uint16(i),
			Timestamp: s.ts0 + uint32(i*protocol.FrameSamples), SSRC: s.ssrc},
		Payload: payload,
	}
	b, err := p.Marshal()
	if err != nil {
		s.t.Error(err)
	}
	return b
}

// sendAll sends b (RTP or RTCP) to every authenticated receiver, sealed
// under each one's keys with SRTP.
func (s *streamer) sendAll(b []byte) {
	s.mu.Lock()
	devs := make([]string, 0, len(s.addrs))
	for dev := range s.addrs {
		devs = append(devs, dev)
	}
	s.mu.Unlock()
	for _, dev := range devs {
		s.sendTo(dev, b)
	}
}

// sendTo sends b to one receiver, sealed under its keys with SRTP.
func (s *streamer) sendTo(dev string, b []byte) {
	s.sendRaw(s.addr(dev), s.sealFor(dev, b))
}

// sealFor returns b (RTP or RTCP) as dev gets it: under its keys with SRTP.
func (s *streamer) sealFor(dev string, b []byte) []byte {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	peer := s.peers[dev]
	s.mu.Unlock()
	if peer == nil {
		return b
	}
	var err error
	if isRTCP(b) {
		b, err = peer.seal.EncryptRTCP(nil, b, nil)
	} else {
		b, err = peer.seal.EncryptRTP(nil, b, nil)
	}
	if err != nil {
		s.t.Error(err)
	}
	return b
}

// sendRaw sends b as it is from the streamer's socket: the right source
// address, whatever the content.
func (s *streamer) sendRaw(to *net.UDPAddr, b []byte) {
	if _, err := s.conn.WriteToUDP(b, to); err != nil {
		s.t.Error(err)
	}
}

// addr returns dev's address, as its RTCP showed it.
func (s *streamer) addr(dev string) *net.UDPAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[dev]
}

// sr maps timestamp ts to the wall time at.
func (s *streamer) sr(at time.Time, ts uint32) *rtcp.SenderReport {
	secs := uint64(at.Unix() + 2208988800)
	frac := uint64(at.Nanosecond()) << 32 / 1e9
	return &rtcp.SenderReport{SSRC: s.ssrc, NTPTime: secs<<32 | frac, RTPTime: ts}
}

// senderReport sends an SR mapping the stream's first timestamp to now.
func (s *streamer) senderReport() {
	b, err := rtcp.Marshal([]rtcp.Packet{s.sr(time.Now(), s.ts0)})
	if err != nil {
		s.t.Fatal(err)
	}
	s.sendAll(b)
}

func (s *streamer) bye() {
	b, err := rtcp.Marshal([]rtcp.Packet{s.sr(time.Now(), s.ts0), &rtcp.Goodbye{Sources: []uint32{s.ssrc}}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.sendAll(b)
}

// stream paces the frames at start + n·20 ms; order lets a test send them
// in another order (or skip some). It stops early when ctx ends.
func (s *streamer) stream(ctx context.Context, order []int) { s.streamHook(ctx, order, nil) }

// streamHook is stream calling before(n) before it sends the nth packet.
func (s *streamer) streamHook(ctx context.Context, order []int, before func(n int)) {
	start := time.Now()
	for n, i := range order {
		select {
		case <-time.After(time.Until(start.Add(time.Duration(n) * protocol.FrameDuration))):
		case <-ctx.Done():
			return
		}
		if before != nil {
			before(n)
		}
		s.sendAll(s.packet(i))
	}
}

// waitPlayed waits until the receiver played n slots of session.
func waitPlayed(t *testing.T, r *Receiver, session string, n uint64) {
	t.Helper()
	loatest.Eventually(t, waitLimit, func() bool {
		st, ok := r.Session(session)
		return ok && st.Played >= n
	}, fmt.Sprintf("%s plays %d slots of %s", r.ID(), n, session))
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// startReceiver starts one receiver and closes it at the end of the test.
func startReceiver(t *testing.T, cfg Config) *Receiver {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	r := NewReceiver(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// goertzel returns the power of pcm at freq Hz.
func goertzel(pcm []int16, freq float64) float64 {
	w := 2 * math.Pi * freq / protocol.ClockRate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s := float64(x) + c*s1 - s2
		s2, s1 = s1, s
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

func isTopic(dev, kind string) func(mqttMsg) bool {
	return func(m mqttMsg) bool { return m.topic == protocol.DeviceTopic(dev, kind) }
}
