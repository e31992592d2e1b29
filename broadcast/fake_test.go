package broadcast

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// guard bounds every wait in these tests so a bug hangs nothing; it is
// never what a test asserts.
const guard = 10 * time.Second

var (
	opusOnce  sync.Once
	opusFrame [][]byte
	opusErr   error
)

// opusPackets returns n real Opus packets: 20 ms frames of a 440 Hz tone
// encoded at 32 kbit/s mono with in-band FEC, as the media store holds them.
func opusPackets(t testing.TB, n int) [][]byte {
	t.Helper()
	opusOnce.Do(func() {
		enc, err := opus.NewEncoder(protocol.ClockRate, protocol.Channels, opus.AppAudio)
		if err != nil {
			opusErr = err
			return
		}
		if err := enc.SetBitrate(32000); err != nil {
			opusErr = err
			return
		}
		if err := enc.SetInBandFEC(true); err != nil {
			opusErr = err
			return
		}
		pcm := make([]int16, protocol.FrameSamples)
		for f := 0; f < 500; f++ {
			for i := range pcm {
				s := f*protocol.FrameSamples + i
				pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(s)/protocol.ClockRate))
			}
			buf := make([]byte, 1500)
			k, err := enc.Encode(pcm, buf)
			if err != nil {
				opusErr = err
				return
			}
			opusFrame = append(opusFrame, buf[:k])
		}
	})
	if opusErr != nil {
		t.Fatalf("opus: %v", opusErr)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = opusFrame[i%len(opusFrame)]
	}
	return out
}

// sliceSource plays packets once.
type sliceSource struct {
	pkts [][]byte
	i    int
}

func (s *sliceSource) Next() ([]byte, error) {
	if s.i >= len(s.pkts) {
		return nil, io.EOF
	}
	s.i++
	return s.pkts[s.i-1], nil
}

// loopSource never ends, like a live microphone.
type loopSource struct {
	pkts [][]byte
	i    int
}

func (s *loopSource) Next() ([]byte, error) {
	p := s.pkts[s.i%len(s.pkts)]
	s.i++
	return p, nil
}

// receiver is a test device's RTP socket; it keeps every datagram in order.
// A device that was given SRTP keys speaks SRTP through its peer.
type receiver struct {
	conn *net.UDPConn
	in   chan []byte

	mu   sync.Mutex
	peer *srtpPeer // the last SRTP play's, nil for v1
}

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{conn: c, in: make(chan []byte, 1<<14)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			select {
			case r.in <- append([]byte(nil), buf[:n]...):
			default:
				t.Errorf("receiver %s: buffer full", c.LocalAddr())
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return r
}

func (r *receiver) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// authenticate sends what a receiver sends to open its NAT, from r's
// socket: RR + SDES + APP with the token (v1), or with keys its first SRTCP
// report under a new SRTP context (contract v2).
func (r *receiver) authenticate(t testing.TB, device string, args protocol.PlayArgs) {
	t.Helper()
	if args.Keys != nil {
		p := newSRTPPeer(t, device, args)
		r.mu.Lock()
		r.peer = p
		r.mu.Unlock()
		r.send(t, args, p.report(t))
		return
	}
	tok, err := hex.DecodeString(args.Token)
	if err != nil {
		t.Errorf("token %q: %v", args.Token, err)
		return
	}
	r.sendAuth(t, args, device, tok)
}

func (r *receiver) sendAuth(t testing.TB, args protocol.PlayArgs, device string, token []byte) {
	t.Helper()
	r.send(t, args, authPacket(t, args.RecvSSRC, args.SSRC, device, token))
}

// send sends b from r's socket to the play's address.
func (r *receiver) send(t testing.TB, args protocol.PlayArgs, b []byte) {
	t.Helper()
	to, err := netip.ParseAddrPort(args.Addr)
	if err != nil {
		t.Errorf("play addr %q: %v", args.Addr, err)
		return
	}
	if _, err := r.conn.WriteToUDPAddrPort(b, to); err != nil {
		t.Errorf("send to %s: %v", to, err)
	}
}

// srtp returns the receiver's SRTP peer, failing if it has none.
func (r *receiver) srtp(t testing.TB) *srtpPeer {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peer == nil {
		t.Fatal("receiver has no SRTP keys")
	}
	return r.peer
}

func authPacket(t testing.TB, recvSSRC, mediaSSRC uint32, device string, token []byte) []byte {
	b, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: recvSSRC, Reports: []rtcp.ReceptionReport{
			{SSRC: mediaSSRC, FractionLost: 64, Jitter: 480},
		}},
		rtcp.NewCNAMESourceDescription(recvSSRC, device),
		&rtcp.ApplicationDefined{SSRC: recvSSRC, Name: protocol.RTCPAppName, Data: token},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// next returns the next datagram, failing the test if none comes.
func (r *receiver) next(t testing.TB) []byte {
	t.Helper()
	select {
	case b := <-r.in:
		return b
	case <-time.After(guard):
		t.Fatalf("receiver %s: nothing arrived", r.addr())
		return nil
	}
}

// stream is what a receiver got of one SSRC up to its BYE.
type stream struct {
	rtp []*rtp.Packet
	srs []*rtcp.SenderReport
	bye *rtcp.Goodbye
}

// untilBye reads r until a BYE for ssrc, keeping packets of that SSRC.
func (r *receiver) untilBye(t testing.TB, ssrc uint32) stream {
	t.Helper()
	var s stream
	for s.bye == nil {
		b := r.next(t)
		if isRTCP(b) {
			pkts, err := rtcp.Unmarshal(b)
			if err != nil {
				t.Fatalf("bad RTCP from engine: %v", err)
			}
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.SenderReport:
					if p.SSRC == ssrc {
						s.srs = append(s.srs, p)
					}
				case *rtcp.Goodbye:
					if len(p.Sources) == 1 && p.Sources[0] == ssrc {
						s.bye = p
					}
				}
			}
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatalf("bad RTP from engine: %v", err)
		}
		if p.SSRC == ssrc {
			s.rtp = append(s.rtp, &p)
		}
	}
	return s
}

// rtpOf waits for the next RTP packet of ssrc.
func (r *receiver) rtpOf(t testing.TB, ssrc uint32) *rtp.Packet {
	t.Helper()
	for {
		b := r.next(t)
		if isRTCP(b) {
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatalf("bad RTP from engine: %v", err)
		}
		if p.SSRC == ssrc {
			return &p
		}
	}
}

// countRTP drains what has arrived without waiting and counts RTP packets.
func (r *receiver) countRTP() int {
	n := 0
	for {
		select {
		case b := <-r.in:
			if !isRTCP(b) {
				n++
			}
		default:
			return n
		}
	}
}

type call struct {
	op      string // "tune" or "untune"
	device  string
	session string
	args    protocol.PlayArgs
}

// fakeTuner stands in for devices.Fleet: it records calls and, acting as
// the device, authenticates from the device's receiver socket.
type fakeTuner struct {
	t         testing.TB
	mu        sync.Mutex
	calls     []call
	receivers map[string]*receiver
	srtp      map[string]bool // devices that announce srtp-gcm (Caps)
	// tune overrides what a device does on Tune; nil means authenticate.
	tune map[string]func(ctx context.Context, args protocol.PlayArgs) error
	// untune overrides what a device answers to Untune; nil means done.
	untune map[string]func(ctx context.Context, session string) error
}

func newFakeTuner(t testing.TB) *fakeTuner {
	return &fakeTuner{t: t, receivers: map[string]*receiver{}, srtp: map[string]bool{},
		tune: map[string]func(context.Context, protocol.PlayArgs) error{}, untune: map[string]func(context.Context, string) error{}}
}

// srtpDevice adds a device that announces srtp-gcm.
func (f *fakeTuner) srtpDevice(id string) *receiver {
	r := f.device(id)
	f.mu.Lock()
	f.srtp[id] = true
	f.mu.Unlock()
	return r
}

// HasCap makes the fake tuner the engine's Caps.
func (f *fakeTuner) HasCap(id, c string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return c == protocol.CapSRTPGCM && f.srtp[id]
}

// device adds a device with its own receiver socket.
func (f *fakeTuner) device(id string) *receiver {
	r := newReceiver(f.t)
	f.mu.Lock()
	f.receivers[id] = r
	f.mu.Unlock()
	return r
}

func (f *fakeTuner) on(id string, fn func(ctx context.Context, args protocol.PlayArgs) error) {
	f.mu.Lock()
	f.tune[id] = fn
	f.mu.Unlock()
}

func (f *fakeTuner) Tune(ctx context.Context, id string, args protocol.PlayArgs) error {
	f.mu.Lock()
	f.calls = append(f.calls, call{op: "tune", device: id, session: args.Session, args: args})
	fn, r := f.tune[id], f.receivers[id]
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, args)
	}
	if r != nil {
		r.authenticate(f.t, id, args)
	}
	return nil
}

func (f *fakeTuner) onUntune(id string, fn func(ctx context.Context, session string) error) {
	f.mu.Lock()
	f.untune[id] = fn
	f.mu.Unlock()
}

func (f *fakeTuner) Untune(ctx context.Context, id, session string) error {
	f.mu.Lock()
	f.calls = append(f.calls, call{op: "untune", device: id, session: session})
	fn := f.untune[id]
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, session)
	}
	return nil
}

// count returns how many calls match.
func (f *fakeTuner) count(op, device, session string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.op == op && c.device == device && c.session == session {
			n++
		}
	}
	return n
}

// last returns the last call matching, and whether there was one.
func (f *fakeTuner) last(op, device, session string) (call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		c := f.calls[i]
		if c.op == op && c.device == device && c.session == session {
			return c, true
		}
	}
	return call{}, false
}

// waitFor waits until cond holds; the guard only stops a hang.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type ending struct{ id, state, reason string }

// harness is an engine on 127.0.0.1 with a fake tuner and the sessions
// it ended.
type harness struct {
	e     *Engine
	tuner *fakeTuner
	mu    sync.Mutex
	ends  []ending
}

func newHarness(t testing.TB, bind string) *harness {
	t.Helper()
	return newHarnessConfig(t, Config{Bind: bind})
}

// newHarnessConfig opens an engine with cfg and the fake tuner, and
// subscribes to its ended outcomes.
func newHarnessConfig(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := &harness{tuner: newFakeTuner(t)}
	cfg.Tuner = h.tuner
	if cfg.Caps == nil {
		cfg.Caps = h.tuner
	}
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Subscribe(func(o loa.SessionOutcome) {
		if o.Kind == loa.OutcomeEnded {
			h.mu.Lock()
			h.ends = append(h.ends, ending{o.Session, o.State, o.Reason})
			h.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	h.e = e
	return h
}

func (h *harness) start(t testing.TB, id string, prio loa.Priority, ssrc uint32, src Source, frames int, devices ...string) {
	t.Helper()
	s := &loa.Session{ID: id, SSRC: ssrc, Priority: prio, Devices: devices}
	if err := h.e.Start(context.Background(), s, src, frames); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
}

// ended waits for the ended outcome of session id and checks it came only once.
func (h *harness) ended(t testing.TB, id string) ending {
	t.Helper()
	var got []ending
	waitFor(t, "end of "+id, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		got = got[:0]
		for _, e := range h.ends {
			if e.id == id {
				got = append(got, e)
			}
		}
		return len(got) > 0
	})
	if len(got) != 1 {
		t.Errorf("%s ended %d times: %v", id, len(got), got)
	}
	return got[0]
}

func (h *harness) status(t testing.TB, id string) SessionStatus {
	t.Helper()
	st, ok := h.e.Status(id)
	if !ok {
		t.Fatalf("session %s not running", id)
	}
	return st
}

func (h *harness) deviceState(id, device string) string {
	st, ok := h.e.Status(id)
	if !ok {
		return "(not running)"
	}
	return st.Devices[device].State
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// gate holds a source's first packet until the test opens it, so receivers
// can authenticate before the stream begins without any timing.
type gate struct {
	Source
	ch   chan struct{}
	once sync.Once
}

func newGate(src Source) *gate { return &gate{Source: src, ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) Next() ([]byte, error) {
	<-g.ch
	return g.Source.Next()
}

// authenticated counts the devices of a session with an address.
func (h *harness) authenticated(id string) int {
	st, ok := h.e.Status(id)
	if !ok {
		return -1
	}
	n := 0
	for _, d := range st.Devices {
		if d.Addr != "" {
			n++
		}
	}
	return n
}
