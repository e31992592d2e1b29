package broadcast

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// timelineCaps adds the timeline capability to the fake tuner's caps.
type timelineCaps struct {
	f  *fakeTuner
	tl map[string]bool
}

func (c *timelineCaps) HasCap(id, capability string) bool {
	if capability == protocol.CapTimeline {
		return c.tl[id]
	}
	return c.f.HasCap(id, capability)
}

type offsetMap map[string]int

func (m offsetMap) OffsetMs(id string) int { return m[id] }

// newTimelineHarness is a harness whose devices in timeline announce
// CapTimeline.
func newTimelineHarness(t *testing.T, cfg Config, timeline ...string) *harness {
	t.Helper()
	caps := &timelineCaps{tl: map[string]bool{}}
	for _, id := range timeline {
		caps.tl[id] = true
	}
	cfg.Bind, cfg.Caps = "127.0.0.1:0", caps
	h := newHarnessConfig(t, cfg)
	caps.f = h.tuner
	return h
}

// utcOf is the contract's UTC(ts) = t0_ms + (ts − ts0)/48 kHz.
func utcOf(a protocol.PlayArgs, ts uint32) time.Time {
	return time.UnixMilli(a.T0Ms).Add(time.Duration(uint64(ts-a.TS0) * uint64(time.Second) / protocol.ClockRate))
}

func ntpToTime(v uint64) time.Time {
	sec := int64(v>>32) - ntpEpochOffset
	frac := (v & 0xffffffff) * uint64(time.Second) >> 32
	return time.Unix(sec, int64(frac))
}

func near(a, b time.Time, d time.Duration) bool { return a.Sub(b).Abs() <= d }

// TestTimelineInPlayAndOnEveryPacket: receivers that announce timeline get
// t0_ms/ts0 (and their offset) in their play; every RTP timestamp they get
// is on that timeline, pre-roll included (a scheduled start is not packet 0
// at ts0), and every Sender Report maps the same timeline. v1 receivers
// get none of it.
func TestTimelineInPlayAndOnEveryPacket(t *testing.T) {
	h := newTimelineHarness(t, Config{Offsets: offsetMap{"tl": 40, "v1": 40}, Lead: guard}, "tl", "tls")
	r := h.tuner.device("tl")
	h.tuner.srtpDevice("tls")
	h.tuner.device("v1")
	notBefore := time.Now().Add(150 * time.Millisecond)
	s := &loa.Session{ID: "s", SSRC: 0x7173, Priority: loa.PriorityNormal, Devices: []string{"tl", "tls", "v1"},
		ScheduledAt: notBefore}
	const frames = 60
	if err := h.e.Start(context.Background(), s, &sliceSource{pkts: opusPackets(t, frames)}, frames); err != nil {
		t.Fatal(err)
	}
	got := r.untilBye(t, s.SSRC)
	c, _ := h.tuner.last("tune", "tl", "s")
	a := c.args
	if a.T0Ms == 0 || a.OffsetMs != 40 {
		t.Fatalf("timeline play %+v: want t0_ms and offset_ms 40", a)
	}
	if _, err := protocol.DecodePlayArgs(mustJSON(t, a)); err != nil {
		t.Errorf("play does not decode: %v", err)
	}
	if c, _ := h.tuner.last("tune", "tls", "s"); c.args.T0Ms != a.T0Ms || c.args.TS0 != a.TS0 || c.args.Keys == nil {
		t.Errorf("SRTP timeline play %+v: want keys and the same timeline %d/%d", c.args, a.T0Ms, a.TS0)
	}
	if c, _ := h.tuner.last("tune", "v1", "s"); c.args.T0Ms != 0 || c.args.TS0 != 0 || c.args.OffsetMs != 0 {
		t.Errorf("v1 play %+v carries timeline fields", c.args)
	}
	if len(got.rtp) != frames {
		t.Fatalf("got %d packets, want %d", len(got.rtp), frames)
	}
	// Packet 0 left no earlier than the scheduled start, and its timestamp
	// says so: the pre-roll is on the timeline, not squeezed out of it.
	if first := utcOf(a, got.rtp[0].Timestamp); first.Before(notBefore.Truncate(time.Millisecond)) {
		t.Errorf("packet 0 at UTC %v, before the scheduled start %v", first, notBefore)
	}
	for i, p := range got.rtp {
		if i > 0 && p.Timestamp-got.rtp[i-1].Timestamp != protocol.FrameSamples {
			t.Errorf("packet %d: timestamp step %d", i, p.Timestamp-got.rtp[i-1].Timestamp)
		}
	}
	// Sent no earlier than its timeline instant: the last packet arrived
	// before the BYE did, which arrived before now.
	if last := utcOf(a, got.rtp[frames-1].Timestamp); last.After(time.Now()) {
		t.Errorf("last packet's UTC %v is in the future", last)
	}
	if len(got.srs) < 2 {
		t.Fatalf("%d sender reports", len(got.srs))
	}
	for _, sr := range got.srs {
		if at := ntpToTime(sr.NTPTime); !near(at, utcOf(a, sr.RTPTime), time.Microsecond) {
			t.Errorf("SR maps %d to %v, the timeline to %v", sr.RTPTime, at, utcOf(a, sr.RTPTime))
		}
	}
}

// pausing blocks once, at packet at, until released: a live input that
// stops delivering for a while.
type pausing struct {
	Source
	n, at    int
	release  chan struct{}
	paused   chan struct{}
	resumed  time.Time
	resumeMu sync.Mutex
}

func (p *pausing) Next() ([]byte, error) {
	if p.n == p.at {
		close(p.paused)
		<-p.release
		p.resumeMu.Lock()
		p.resumed = time.Now()
		p.resumeMu.Unlock()
	}
	p.n++
	return p.Source.Next()
}

// TestTimelineAdvancesOverASourcePause: a live source that pauses for
// longer than the playout delay resumes on the timeline at the instant it
// resumed, not in the past where every receiver would drop it; sequence
// numbers stay continuous and the report after it maps the jump.
func TestTimelineAdvancesOverASourcePause(t *testing.T) {
	h := newTimelineHarness(t, Config{Delay: 40 * time.Millisecond, Lead: guard}, "tl")
	r := h.tuner.device("tl")
	const frames, at = 30, 10
	src := &pausing{Source: &sliceSource{pkts: opusPackets(t, frames)}, at: at,
		release: make(chan struct{}), paused: make(chan struct{})}
	h.start(t, "s", loa.PriorityNormal, 0x9a, src, frames, "tl")
	<-src.paused
	// The pause must outlast the delay; nothing here measures how long.
	time.Sleep(200 * time.Millisecond)
	close(src.release)
	got := r.untilBye(t, 0x9a)
	c, _ := h.tuner.last("tune", "tl", "s")
	a := c.args
	if len(got.rtp) != frames {
		t.Fatalf("got %d packets, want %d", len(got.rtp), frames)
	}
	for i := 1; i < frames; i++ {
		if got.rtp[i].SequenceNumber != got.rtp[i-1].SequenceNumber+1 {
			t.Errorf("packet %d: sequence %d after %d", i, got.rtp[i].SequenceNumber, got.rtp[i-1].SequenceNumber)
		}
	}
	src.resumeMu.Lock()
	resumed := src.resumed
	src.resumeMu.Unlock()
	// Its timeline instant is when the source gave it, to a frame.
	if u := utcOf(a, got.rtp[at].Timestamp); u.Before(resumed.Add(-protocol.FrameDuration-time.Millisecond)) || u.After(time.Now()) {
		t.Errorf("packet %d after the pause is at UTC %v; the source resumed at %v", at, u, resumed)
	}
	for _, sr := range got.srs {
		if !near(ntpToTime(sr.NTPTime), utcOf(a, sr.RTPTime), time.Microsecond) {
			t.Errorf("SR %d→%v is off the timeline", sr.RTPTime, ntpToTime(sr.NTPTime))
		}
	}
	jumped := false
	for _, sr := range got.srs {
		// A report after the jump places the packet count on the new timestamps.
		if int(sr.PacketCount) >= at && int(sr.PacketCount) < frames && sr.RTPTime == got.rtp[sr.PacketCount].Timestamp {
			jumped = true
		}
	}
	if !jumped {
		t.Error("no Sender Report after the pause maps the packets sent after it")
	}
}

// xrFrom is a receiver's time exchange request: an XR with an RRTR block.
func xrFrom(ssrc uint32, t1 uint64) *rtcp.ExtendedReport {
	return &rtcp.ExtendedReport{SenderSSRC: ssrc, Reports: []rtcp.ReportBlock{
		&rtcp.ReceiverReferenceTimeReportBlock{NTPTimestamp: t1}}}
}

// reply is what a receiver takes from an exchange's answer.
type reply struct {
	sr   *rtcp.SenderReport
	dlrr rtcp.DLRRReport
}

func replyIn(pkts []rtcp.Packet, recv uint32) (reply, bool) {
	var r reply
	found := false
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			r.sr = p
		case *rtcp.ExtendedReport:
			for _, b := range p.Reports {
				if d, ok := b.(*rtcp.DLRRReportBlock); ok {
					for _, x := range d.Reports {
						if x.SSRC == recv {
							r.dlrr, found = x, true
						}
					}
				}
			}
		}
	}
	return r, found && r.sr != nil
}

// nextReply reads r until an exchange answer for recv arrives; open turns
// a datagram into RTCP.
func (r *receiver) nextReply(t *testing.T, recv uint32, open func([]byte) ([]rtcp.Packet, error)) (reply, time.Time) {
	t.Helper()
	for {
		b := r.next(t)
		t4 := time.Now()
		if !isRTCP(b) {
			continue
		}
		pkts, err := open(b)
		if err != nil {
			t.Fatalf("RTCP from the engine: %v", err)
		}
		if x, ok := replyIn(pkts, recv); ok {
			return x, t4
		}
	}
}

// offsetOf is what a receiver computes from an answer (contract): θ and δ.
func offsetOf(t *testing.T, x reply, t1 uint64, t4 time.Time) (theta, delta time.Duration) {
	t.Helper()
	if x.dlrr.LastRR != uint32(t1>>16) {
		t.Fatalf("LRR %#x, want the middle of T1 %#x", x.dlrr.LastRR, uint32(t1>>16))
	}
	T1 := ntpToTime(t1)
	T3 := ntpToTime(x.sr.NTPTime)
	T2 := T3.Add(-time.Duration(uint64(x.dlrr.DLRR) * uint64(time.Second) >> 16))
	theta = (T2.Sub(T1) + T3.Sub(t4)) / 2
	delta = t4.Sub(T1) - T3.Sub(T2)
	return theta, delta
}

// quantum covers the rounding in an answer: DLRR in 1/65536 s, T3 on a
// 48 kHz sample, NTP fractions.
const quantum = 60 * time.Microsecond

// TestTimeExchangeOverPlainRTCP: a v1-path receiver's RRTR in its
// authenticated compound is answered at once with an SR + XR DLRR for its
// SSRC, from which it computes its offset: zero on loopback (within half
// the round trip, the bound of any exchange), and a clock 1.5 s ahead is
// measured as such. Faster than one a second is counted and ignored; a
// forged compound from elsewhere gets nothing.
func TestTimeExchangeOverPlainRTCP(t *testing.T) {
	h := newTimelineHarness(t, Config{}, "tl")
	r := h.tuner.device("tl")
	h.start(t, "s", loa.PriorityNormal, 0x51, &loopSource{pkts: opusPackets(t, 10)}, 0, "tl")
	r.rtpOf(t, 0x51)
	c, _ := h.tuner.last("tune", "tl", "s")
	a := c.args
	tok := mustHex(t, a.Token)
	plain := func(b []byte) ([]rtcp.Packet, error) { return rtcp.Unmarshal(b) }
	exchange := func(skew time.Duration) (time.Duration, time.Duration) {
		t1 := ntpTime(time.Now().Add(skew))
		b, err := rtcp.Marshal([]rtcp.Packet{
			&rtcp.ReceiverReport{SSRC: a.RecvSSRC},
			rtcp.NewCNAMESourceDescription(a.RecvSSRC, "tl"),
			&rtcp.ApplicationDefined{SSRC: a.RecvSSRC, Name: protocol.RTCPAppName, Data: tok},
			xrFrom(a.RecvSSRC, t1),
		})
		if err != nil {
			t.Fatal(err)
		}
		r.send(t, a, b)
		x, t4 := r.nextReply(t, a.RecvSSRC, plain)
		if x.sr.SSRC != a.SSRC || !near(ntpToTime(x.sr.NTPTime), utcOf(a, x.sr.RTPTime), time.Microsecond) {
			t.Errorf("answer's SR %+v is not the session's timeline", x.sr)
		}
		theta, delta := offsetOf(t, x, t1, t4.Add(skew))
		return theta, delta
	}
	before := counter(t, h.e.metrics.exchanges)
	theta, delta := exchange(0)
	t.Logf("loopback: θ = %v, δ = %v", theta, delta)
	if theta.Abs() > delta/2+quantum || delta < -quantum {
		t.Errorf("θ = %v with δ = %v on one clock: want |θ| ≤ δ/2", theta, delta)
	}
	theta, delta = exchange(1500 * time.Millisecond)
	if off := theta + 1500*time.Millisecond; off.Abs() > delta/2+quantum {
		t.Errorf("a clock 1.5 s ahead measured θ = %v (δ %v)", theta, delta)
	}

	// Two answered back to back (the burst), then nothing until a second
	// has passed.
	waitFor(t, "the answers counted", func() bool { return counter(t, h.e.metrics.exchanges) == before+2 })
	answered := before + 2
	ignored := counter(t, h.e.metrics.exchangesIgnored)
	from := r.addr()
	for range 3 {
		b, _ := rtcp.Marshal([]rtcp.Packet{
			&rtcp.ReceiverReport{SSRC: a.RecvSSRC},
			&rtcp.ApplicationDefined{SSRC: a.RecvSSRC, Name: protocol.RTCPAppName, Data: tok},
			xrFrom(a.RecvSSRC, ntpTime(time.Now())),
		})
		if !h.e.handleDatagram(b, from) {
			t.Fatal("the receiver's compound did not authenticate")
		}
	}
	if got := counter(t, h.e.metrics.exchanges) - answered; got > 1 {
		t.Errorf("%v more answered right after two: the limit is one a second", got)
	}
	if got := counter(t, h.e.metrics.exchangesIgnored) - ignored; got < 2 {
		t.Errorf("%v ignored of three in a row after two", got)
	}

	// Forged: no token, or another receiver's SSRC: nothing answered.
	answered = counter(t, h.e.metrics.exchanges)
	evil := netip.MustParseAddrPort("127.0.0.1:9")
	for _, pkts := range [][]rtcp.Packet{
		{&rtcp.ReceiverReport{SSRC: a.RecvSSRC}, xrFrom(a.RecvSSRC, 1)},
		{&rtcp.ReceiverReport{SSRC: a.RecvSSRC},
			&rtcp.ApplicationDefined{SSRC: a.RecvSSRC, Name: protocol.RTCPAppName, Data: make([]byte, protocol.TokenLen)},
			xrFrom(a.RecvSSRC, 1)},
	} {
		b, _ := rtcp.Marshal(pkts)
		if h.e.handleDatagram(b, evil) {
			t.Error("a forged compound authenticated")
		}
	}
	if counter(t, h.e.metrics.exchanges) != answered {
		t.Error("a forged time exchange was answered")
	}
}

// TestTimeExchangeOverSRTCP: an SRTP receiver's RRTR is answered sealed
// under its keys, to its address only; the same datagram replayed, or a
// fresh report from another address, is not answered (the replay is
// dropped, the other address only challenged).
func TestTimeExchangeOverSRTCP(t *testing.T) {
	h := newTimelineHarness(t, Config{}, "d")
	r := h.tuner.srtpDevice("d")
	h.start(t, "s", loa.PriorityNormal, 0x52, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	r.sealedRTPOf(t, 0x52)
	p := r.srtp(t)
	a := p.args
	open := func(b []byte) ([]rtcp.Packet, error) { _, pkts, err := p.open(b); return pkts, err }

	before := counter(t, h.e.metrics.exchanges)
	t1 := ntpTime(time.Now())
	req := p.report(t, xrFrom(a.RecvSSRC, t1))
	r.send(t, a, req)
	x, t4 := r.nextReply(t, a.RecvSSRC, open)
	theta, delta := offsetOf(t, x, t1, t4)
	t.Logf("SRTCP loopback: θ = %v, δ = %v", theta, delta)
	if theta.Abs() > delta/2+quantum {
		t.Errorf("θ = %v with δ = %v on one clock", theta, delta)
	}

	// The answer can arrive before the engine has counted it.
	waitFor(t, "the answer counted", func() bool { return counter(t, h.e.metrics.exchanges) == before+1 })
	answered := before + 1
	failures := h.srtcpFailures(t)
	evil := newReceiver(t)
	h.e.handleDatagram(req, evil.addr()) // replayed from elsewhere
	h.e.handleDatagram(req, r.addr())    // and from its own address
	if h.srtcpFailures(t)-failures != 2 {
		t.Errorf("replays not dropped by SRTCP replay protection")
	}
	// A fresh report from another address: the receiver moved, or someone
	// forwards its reports. Only a challenge goes there.
	h.e.handleDatagram(p.report(t, xrFrom(a.RecvSSRC, ntpTime(time.Now()))), evil.addr())
	if counter(t, h.e.metrics.exchanges) != answered {
		t.Error("a time exchange was answered to an unproven address")
	}
	b := evil.next(t)
	_, pkts, err := p.open(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := replyIn(pkts, a.RecvSSRC); ok {
		t.Error("the other address got a DLRR")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			default:
				t.Fatalf("bad hex %q", s)
			}
		}
		b[i] = v
	}
	return b
}

// TestMediaClockIsTheTimeline: the SDP's mediaclk:direct is the RTP
// timestamp at the NTP epoch of the session's timeline.
func TestMediaClockIsTheTimeline(t *testing.T) {
	h := newTimelineHarness(t, Config{RefClock: "ntp=192.0.2.1:1123"})
	h.start(t, "s", loa.PriorityNormal, 0x53, &loopSource{pkts: opusPackets(t, 10)}, 0)
	mc, ok := h.e.MediaClock("s")
	if !ok {
		t.Fatal("no media clock for a running session")
	}
	h.e.mu.Lock()
	tl := h.e.sessions["s"].tl
	h.e.mu.Unlock()
	// From the epoch (1900) to t0 in samples, mod 2³².
	since := uint32(uint64(tl.t0Ms+ntpEpochOffset*1000) * 48)
	if mc.Direct+since != tl.ts0 || mc.RefClk != "ntp=192.0.2.1:1123" {
		t.Errorf("media clock %+v for t0 %d ts0 %d", mc, tl.t0Ms, tl.ts0)
	}
	if _, ok := h.e.MediaClock("gone"); ok {
		t.Error("a media clock for no session")
	}
}

// TestOffsetBoundsAreTheContracts: the domain's offset bounds (API
// validation) are the contract's (play decoding).
func TestOffsetBoundsAreTheContracts(t *testing.T) {
	if loa.MinOffsetMs != protocol.MinOffsetMs || loa.MaxOffsetMs != protocol.MaxOffsetMs || loa.MinLeadMs != protocol.MinLeadMs {
		t.Error("offset bounds differ between loa and protocol")
	}
}

// TestTimelineFixedInAdvance: a session whose timeline was announced
// before it started (loa.Session.T0Ms/TS0, a programme receivers hold in
// cache) keeps it: the play carries it, and packet 0 is the frame of
// ScheduledAt on it, even when it leaves after that instant.
func TestTimelineFixedInAdvance(t *testing.T) {
	h := newTimelineHarness(t, Config{Lead: guard}, "tl")
	r := h.tuner.device("tl")
	t0 := time.Now().Add(-time.Second).Truncate(time.Millisecond) // announced a second ago: a late start
	const k = 40                                                  // it joins at frame 40
	s := &loa.Session{ID: "p-1", SSRC: 0x7174, Priority: loa.PriorityNormal, Devices: []string{"tl"},
		T0Ms: t0.UnixMilli(), TS0: 0xfffff000, ScheduledAt: t0.Add(k * protocol.FrameDuration)}
	const frames = 20
	if err := h.e.Start(context.Background(), s, &sliceSource{pkts: opusPackets(t, frames)}, frames); err != nil {
		t.Fatal(err)
	}
	got := r.untilBye(t, s.SSRC)
	c, _ := h.tuner.last("tune", "tl", "p-1")
	if c.args.T0Ms != s.T0Ms || c.args.TS0 != s.TS0 {
		t.Fatalf("play on (%d, %d), want the announced (%d, %d)", c.args.T0Ms, c.args.TS0, s.T0Ms, s.TS0)
	}
	if len(got.rtp) != frames {
		t.Fatalf("got %d packets, want %d", len(got.rtp), frames)
	}
	for i, p := range got.rtp {
		if want := s.TS0 + uint32(k+i)*protocol.FrameSamples; p.Timestamp != want {
			t.Fatalf("packet %d: timestamp %d, want frame %d of the timeline (%d)", i, p.Timestamp, k+i, want)
		}
	}
}
