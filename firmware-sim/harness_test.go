package firmwaresim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/hraban/opus"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

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
	rec := &recorder{notify: make(chan struct{})}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetAutoReconnect(false)
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
	from  *net.UDPAddr
	cname string
	rr    *rtcp.ReceiverReport
	bye   bool
}

// streamer is the controller's media side of one session: one UDP socket,
// receivers authenticated by their RTCP, an Opus-encoded 1 kHz tone.
type streamer struct {
	t       *testing.T
	conn    *net.UDPConn
	session string
	token   []byte
	ssrc    uint32
	seq0    uint16
	ts0     uint32
	frames  [][]byte

	mu      sync.Mutex
	addrs   map[string]*net.UDPAddr // by CNAME, once authenticated
	recv    map[string]uint32       // RecvSSRC per device
	reports []rtcpReport
	bad     []string // why an RTCP compound was refused
	notify  chan struct{}
}

func newStreamer(t *testing.T, session string, frames int) *streamer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &streamer{
		t: t, conn: conn, session: session,
		token: make([]byte, protocol.TokenLen), ssrc: 0x10ad0001, seq0: 65500, ts0: 4294960000,
		frames: toneFrames(t, frames),
		addrs:  map[string]*net.UDPAddr{}, recv: map[string]uint32{}, notify: make(chan struct{}),
	}
	rand.Read(s.token)
	done := make(chan struct{})
	go s.read(done)
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

// toneFrames encodes a 1 kHz tone as 20 ms Opus frames at 32 kbit/s with
// in-band FEC, as the controller does.
func toneFrames(t testing.TB, n int) [][]byte {
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
			pcm[j] = int16(12000 * math.Sin(2*math.Pi*1000*float64(k)/protocol.ClockRate))
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

func (s *streamer) playArgs(dev string, recvSSRC uint32) protocol.PlayArgs {
	s.mu.Lock()
	s.recv[dev] = recvSSRC
	s.mu.Unlock()
	return protocol.PlayArgs{
		Session: s.session, Addr: s.conn.LocalAddr().String(), SSRC: s.ssrc, PT: protocol.PayloadType,
		RecvSSRC: recvSSRC, Token: hex.EncodeToString(s.token), DelayMs: testDelayMs, Priority: 64, Frames: len(s.frames),
	}
}

// read checks every RTCP compound as the controller must: RR first with
// the receiver's SSRC, SDES CNAME, APP LOA1 with the session token.
func (s *streamer) read(done chan struct{}) {
	defer close(done)
	b := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDP(b)
		if err != nil {
			return
		}
		rep, why := s.check(b[:n], from)
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
		s.mu.Unlock()
	}
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
			app = p
		case *rtcp.Goodbye:
			rep.bye = true
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

func (s *streamer) packet(i int) []byte {
	p := rtp.Packet{
		Header: rtp.Header{Version: 2, PayloadType: protocol.PayloadType, SequenceNumber: s.seq0 + uint16(i),
			Timestamp: s.ts0 + uint32(i*protocol.FrameSamples), SSRC: s.ssrc},
		Payload: s.frames[i],
	}
	b, err := p.Marshal()
	if err != nil {
		s.t.Error(err)
	}
	return b
}

func (s *streamer) sendAll(b []byte) {
	s.mu.Lock()
	addrs := make([]*net.UDPAddr, 0, len(s.addrs))
	for _, a := range s.addrs {
		addrs = append(addrs, a)
	}
	s.mu.Unlock()
	for _, a := range addrs {
		if _, err := s.conn.WriteToUDP(b, a); err != nil {
			s.t.Error(err)
		}
	}
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
func (s *streamer) stream(ctx context.Context, order []int) {
	start := time.Now()
	for n, i := range order {
		select {
		case <-time.After(time.Until(start.Add(time.Duration(n) * protocol.FrameDuration))):
		case <-ctx.Done():
			return
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
