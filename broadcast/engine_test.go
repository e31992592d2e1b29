package broadcast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

func TestStreamReachesAuthenticatedReceivers(t *testing.T) {
	for _, bind := range []string{"127.0.0.1:0", ":0"} {
		t.Run(bind, func(t *testing.T) {
			h := newHarness(t, bind)
			const frames = 60
			src := opusPackets(t, frames)
			devs := []string{"d1", "d2", "d3"}
			var rs []*receiver
			for _, d := range devs {
				rs = append(rs, h.tuner.device(d))
			}
			const ssrc = 0x10a0
			gate := newGate(&sliceSource{pkts: src})
			h.start(t, "s1", loa.PriorityNormal, ssrc, gate, frames, devs...)
			waitFor(t, "receivers authenticated", func() bool { return h.authenticated("s1") == len(devs) })
			gate.open()

			var streams []stream
			for _, r := range rs {
				streams = append(streams, r.untilBye(t, ssrc))
			}
			if e := h.ended(t, "s1"); e.state != loa.SessionEnded || e.reason != "" {
				t.Errorf("ended = %+v, want ended with no reason", e)
			}
			bySeq := map[uint16][]byte{}
			for i, s := range streams {
				if len(s.rtp) != frames {
					t.Fatalf("%s got %d of %d packets", devs[i], len(s.rtp), frames)
				}
				last := s.rtp[len(s.rtp)-1]
				for j, p := range s.rtp {
					if p.Version != 2 || p.PayloadType != protocol.PayloadType || p.Marker || p.Padding || p.Extension {
						t.Fatalf("%s packet %d header %+v", devs[i], j, p.Header)
					}
					if j > 0 {
						prev := s.rtp[j-1]
						if p.SequenceNumber != prev.SequenceNumber+1 || p.Timestamp != prev.Timestamp+protocol.FrameSamples {
							t.Fatalf("%s: seq/ts %d/%d after %d/%d", devs[i], p.SequenceNumber, p.Timestamp,
								prev.SequenceNumber, prev.Timestamp)
						}
					}
					// The last packet before BYE is the source's last; count back from it.
					k := frames - 1 - int(last.SequenceNumber-p.SequenceNumber)
					if k < 0 || !bytes.Equal(p.Payload, src[k]) {
						t.Fatalf("%s: packet seq %d is not source packet %d", devs[i], p.SequenceNumber, k)
					}
					if other, ok := bySeq[p.SequenceNumber]; ok && !bytes.Equal(other, p.Payload) {
						t.Fatalf("payload of seq %d differs between receivers", p.SequenceNumber)
					}
					bySeq[p.SequenceNumber] = p.Payload
				}
				// The sender clock: NTP and RTP time advance together, 48 kHz.
				if len(s.srs) < 1 {
					t.Fatalf("%s: no sender report", devs[i])
				}
				for _, sr := range s.srs {
					if sr.SSRC != ssrc {
						t.Errorf("SR ssrc %x", sr.SSRC)
					}
				}
				// The SR sent with the BYE ends the list, so there are at least two.
				srs := s.srs
				if len(srs) < 2 {
					t.Fatalf("%s: %d sender reports", devs[i], len(srs))
				}
				for j := 1; j < len(srs); j++ {
					a, b := srs[j-1], srs[j]
					dNTP := float64(b.NTPTime-a.NTPTime) / (1 << 32)
					dRTP := float64(b.RTPTime-a.RTPTime) / protocol.ClockRate
					if diff := dNTP - dRTP; diff > 1e-6 || diff < -1e-6 {
						t.Errorf("%s: SR %d: NTP advanced %.6fs, RTP %.6fs", devs[i], j, dNTP, dRTP)
					}
				}
			}
		})
	}
}

func TestOnlyAuthenticatedReceiversGetRTP(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	good := h.tuner.device("good")
	silent := h.tuner.device("silent")
	wrong := h.tuner.device("wrong")
	h.tuner.on("silent", func(context.Context, protocol.PlayArgs) error { return nil })
	h.tuner.on("wrong", func(_ context.Context, args protocol.PlayArgs) error {
		wrong.sendAuth(t, args, "wrong", bytes.Repeat([]byte{0xAA}, protocol.TokenLen))
		return nil
	})
	const frames = 40
	gate := newGate(&sliceSource{pkts: opusPackets(t, frames)})
	h.start(t, "s", loa.PriorityNormal, 77, gate, frames, "good", "silent", "wrong")
	waitFor(t, "good authenticated", func() bool { return h.authenticated("s") == 1 })
	waitFor(t, "wrong token refused", func() bool { return counter(t, h.e.metrics.rtcpIgnored) == 1 })
	gate.open()
	s := good.untilBye(t, 77)
	h.ended(t, "s")
	if len(s.rtp) != frames {
		t.Fatalf("the authenticated receiver got %d of %d packets", len(s.rtp), frames)
	}
	if n := silent.countRTP(); n != 0 {
		t.Errorf("a receiver that never authenticated got %d RTP packets", n)
	}
	if n := wrong.countRTP(); n != 0 {
		t.Errorf("a receiver with a wrong token got %d RTP packets", n)
	}
	if v := counter(t, h.e.metrics.rtcpIgnored); v < 1 {
		t.Errorf("rtcp ignored = %v, want the wrong token counted", v)
	}
}

func TestJunkIsIgnoredAndStreamGoesOn(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.device("d")
	var args protocol.PlayArgs
	h.tuner.on("d", func(_ context.Context, a protocol.PlayArgs) error {
		args = a
		r.authenticate(t, "d", a)
		return nil
	})
	h.start(t, "live", loa.PriorityHigh, 5, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	first := r.rtpOf(t, 5)
	waitFor(t, "authentication", func() bool { return counter(t, h.e.metrics.rtcpAccepted) == 1 })

	attacker := newReceiver(t)
	tok := make([]byte, protocol.TokenLen)
	rtpPkt := append([]byte{0x80, protocol.PayloadType, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9}, opusPackets(t, 1)[0]...)
	junk := [][]byte{
		{},
		{0xff},
		bytes.Repeat([]byte{0x42}, 100),
		rtpPkt,
		{0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1}, // RR with no SDES/APP
		authPacket(t, 0xdead, 5, "x", tok),   // unknown SSRC
		authPacket(t, args.RecvSSRC, 5, "d", tok),                // right SSRC, wrong token
		authPacket(t, args.RecvSSRC, 5, "d", tok[:8]),            // short token
		{0x80, 0xcc, 0x00, 0x05, 0, 0, 0, 1, 'L', 'O', 'A', '1'}, // APP claiming more than it has
	}
	to := h.e.LocalAddr()
	to = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), to.Port())
	for _, b := range junk {
		if _, err := attacker.conn.WriteToUDPAddrPort(b, to); err != nil && len(b) > 0 {
			t.Fatal(err)
		}
	}
	nonEmpty := 0
	for _, b := range junk {
		if len(b) > 0 {
			nonEmpty++
		}
	}
	waitFor(t, "junk counted", func() bool { return counter(t, h.e.metrics.rtcpIgnored) >= float64(nonEmpty) })
	if n := attacker.countRTP(); n != 0 {
		t.Errorf("the attacker got %d RTP packets", n)
	}
	// The stream goes on, to the same place, without a gap: every packet
	// since the first, through the junk, arrives in order.
	prev := first
	for range 10 {
		p := r.rtpOf(t, 5)
		if p.SequenceNumber != prev.SequenceNumber+1 || p.Timestamp != prev.Timestamp+protocol.FrameSamples {
			t.Fatalf("seq/ts %d/%d after %d/%d", p.SequenceNumber, p.Timestamp, prev.SequenceNumber, prev.Timestamp)
		}
		prev = p
	}
	if st := h.status(t, "live"); st.Devices["d"].Addr != r.addr().String() {
		t.Errorf("addr = %q, want %s", st.Devices["d"].Addr, r.addr())
	}
}

func TestRTPFollowsTheObservedAddress(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	h.tuner.device("d") // the socket the device "owns" stays silent
	natA, natB := newReceiver(t), newReceiver(t)
	var args protocol.PlayArgs
	h.tuner.on("d", func(_ context.Context, a protocol.PlayArgs) error {
		args = a
		natA.authenticate(t, "d", a) // the carrier's NAT maps the device to A
		return nil
	})
	h.start(t, "s", loa.PriorityNormal, 9, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	natA.rtpOf(t, 9)
	if got := h.status(t, "s").Devices["d"]; got.Addr != natA.addr().String() || got.Loss != 0.25 {
		t.Errorf("status = %+v, want addr %s and loss 0.25 from the report", got, natA.addr())
	}
	// The NAT rebinds: the next report comes from B, and the stream follows.
	natB.authenticate(t, "d", args)
	p := natB.rtpOf(t, 9)
	waitFor(t, "status addr B", func() bool { return h.status(t, "s").Devices["d"].Addr == natB.addr().String() })
	natA.countRTP()
	// After B's first packet, A gets at most what was already in flight.
	q := natB.rtpOf(t, 9)
	if q.SequenceNumber != p.SequenceNumber+1 {
		t.Errorf("B: seq %d after %d", q.SequenceNumber, p.SequenceNumber)
	}
	if n := h.tuner.receivers["d"].countRTP(); n != 0 {
		t.Errorf("the unauthenticated socket got %d packets", n)
	}
}

func TestStopSendsByeAndUntunes(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.device("d")
	h.start(t, "s", loa.PriorityNormal, 11, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	r.rtpOf(t, 11)
	if err := h.e.Stop(context.Background(), "s", "operator"); err != nil {
		t.Fatal(err)
	}
	s := r.untilBye(t, 11)
	if s.bye.Reason != "operator" {
		t.Errorf("BYE reason %q", s.bye.Reason)
	}
	if e := h.ended(t, "s"); e.state != loa.SessionStopped || e.reason != "operator" {
		t.Errorf("ended = %+v", e)
	}
	waitFor(t, "untune", func() bool { return h.tuner.count("untune", "d", "s") == 1 })
	if _, ok := h.e.Status("s"); ok {
		t.Error("status of a stopped session")
	}
	if err := h.e.Stop(context.Background(), "s", "again"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("second stop: %v, want ENOTFOUND", err)
	}
	if n := r.countRTP(); n != 0 {
		t.Errorf("%d RTP packets after BYE", n)
	}
}

func TestMaxDurationStopsTheSession(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.device("d")
	s := &loa.Session{ID: "mic", SSRC: 3, Priority: loa.PriorityHigh, Devices: []string{"d"},
		MaxDuration: 5 * protocol.FrameDuration}
	gate := newGate(&loopSource{pkts: opusPackets(t, 10)})
	if err := h.e.Start(context.Background(), s, gate, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "authenticated", func() bool { return h.authenticated("mic") == 1 })
	gate.open()
	st := r.untilBye(t, 3)
	if e := h.ended(t, "mic"); e.state != loa.SessionStopped || e.reason != ReasonMaxDuration {
		t.Errorf("ended = %+v", e)
	}
	if last := st.srs[len(st.srs)-1]; last.PacketCount != 5 {
		t.Errorf("sent %d packets in 5 frames' time", last.PacketCount)
	}
	waitFor(t, "untune", func() bool { return h.tuner.count("untune", "d", "mic") == 1 })
}

func TestDefaultMaxDuration(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	h.start(t, "a", 40, 1, &loopSource{pkts: opusPackets(t, 1)}, 100)
	h.start(t, "b", 40, 2, &loopSource{pkts: opusPackets(t, 1)}, 0)
	h.e.mu.Lock()
	a, b := h.e.sessions["a"].maxDur, h.e.sessions["b"].maxDur
	h.e.mu.Unlock()
	if a != 100*protocol.FrameDuration+30e9 || b != 4*3600e9 {
		t.Errorf("max durations %v, %v", a, b)
	}
}

func TestAddListenerGetsTheStreamWithoutRTCP(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	ffmpeg := newReceiver(t)
	h.start(t, "s", loa.PriorityNormal, 21, &loopSource{pkts: opusPackets(t, 10)}, 0)
	if err := h.e.AddListener("s", ffmpeg.addr(), nil); err != nil {
		t.Fatal(err)
	}
	if err := h.e.AddListener("s", ffmpeg.addr(), nil); err != nil {
		t.Fatal(err)
	}
	p := ffmpeg.rtpOf(t, 21)
	if q := ffmpeg.rtpOf(t, 21); q.SequenceNumber != p.SequenceNumber+1 {
		t.Errorf("listener: seq %d after %d (added twice, sent twice?)", q.SequenceNumber, p.SequenceNumber)
	}
	if st := h.status(t, "s"); st.Listeners != 1 || st.Sent == 0 {
		t.Errorf("status %+v", st)
	}
	if err := h.e.AddListener("nope", ffmpeg.addr(), nil); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("unknown session: %v", err)
	}
	if err := h.e.Stop(context.Background(), "s", ""); err != nil {
		t.Fatal(err)
	}
	ffmpeg.untilBye(t, 21)
}

func TestRemoveListener(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	ffmpeg, other := newReceiver(t), newReceiver(t)
	h.start(t, "s", loa.PriorityNormal, 22, &loopSource{pkts: opusPackets(t, 10)}, 0)
	for _, r := range []*receiver{ffmpeg, other} {
		if err := h.e.AddListener("s", r.addr(), nil); err != nil {
			t.Fatal(err)
		}
	}
	ffmpeg.rtpOf(t, 22)
	if err := h.e.RemoveListener("s", ffmpeg.addr()); err != nil {
		t.Fatal(err)
	}
	if st := h.status(t, "s"); st.Listeners != 1 {
		t.Errorf("listeners after removal: %d, want 1", st.Listeners)
	}
	other.rtpOf(t, 22) // the other still gets the stream
	if err := h.e.RemoveListener("s", ffmpeg.addr()); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("removed twice: %v, want not found", err)
	}
	if err := h.e.RemoveListener("nope", other.addr()); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("unknown session: %v", err)
	}
}

func TestTuneFailureIsReportedAndOthersPlay(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	ok := h.tuner.device("ok")
	h.tuner.device("broken")
	release := make(chan struct{})
	h.tuner.on("broken", func(ctx context.Context, _ protocol.PlayArgs) error {
		<-release
		return fmt.Errorf("device did not ack")
	})
	h.start(t, "s", loa.PriorityNormal, 31, &loopSource{pkts: opusPackets(t, 10)}, 0, "ok", "broken")
	ok.rtpOf(t, 31) // the stream runs while broken's Tune hangs
	if st := h.deviceState("s", "broken"); st != DeviceTuning {
		t.Errorf("broken = %q while its Tune hangs", st)
	}
	close(release)
	waitFor(t, "failed state", func() bool { return h.deviceState("s", "broken") == DeviceFailed })
	st := h.status(t, "s")
	if st.Devices["broken"].Err != "device did not ack" || st.Devices["ok"].State != DeviceTuned {
		t.Errorf("status %+v", st)
	}
}

func TestStartValidates(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	src := &loopSource{pkts: opusPackets(t, 1)}
	for _, s := range []*loa.Session{{SSRC: 1}, {ID: "x"}} {
		if err := h.e.Start(context.Background(), s, src, 0); loa.ErrorCode(err) != loa.EINVALID {
			t.Errorf("start %+v: %v", s, err)
		}
	}
	h.start(t, "x", 40, 1, src, 0)
	if err := h.e.Start(context.Background(), &loa.Session{ID: "x", SSRC: 2}, src, 0); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("duplicate: %v", err)
	}
}

func TestCloseEndsSessions(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.device("d")
	h.start(t, "s", loa.PriorityNormal, 41, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	r.rtpOf(t, 41)
	if err := h.e.Close(); err != nil {
		t.Fatal(err)
	}
	r.untilBye(t, 41)
	if e := h.ended(t, "s"); e.state != loa.SessionStopped || e.reason != ReasonShutdown {
		t.Errorf("ended = %+v", e)
	}
	if err := h.e.Start(context.Background(), &loa.Session{ID: "t", SSRC: 1}, &loopSource{pkts: opusPackets(t, 1)}, 0); err == nil {
		t.Error("start after close succeeded")
	}
}

func TestJoiningReceiverGetsASenderReportAtOnce(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.device("d")
	args := make(chan protocol.PlayArgs, 1)
	h.tuner.on("d", func(_ context.Context, a protocol.PlayArgs) error { args <- a; return nil })
	h.start(t, "s", loa.PriorityNormal, 51, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	waitFor(t, "a few packets", func() bool { return h.status(t, "s").Sent >= 3 })
	r.authenticate(t, "d", <-args)
	// Reports are due every 50 packets; the joiner must not wait for the next.
	for i := 0; ; i++ {
		b := r.next(t)
		if isRTCP(b) {
			break
		}
		if i == 10 {
			t.Fatal("10 RTP packets before the first sender report")
		}
	}
}

func TestFanoutSendDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	h := newHarness(t, "127.0.0.1:0")
	var dests []*net.UDPAddr
	for range 3 {
		dests = append(dests, net.UDPAddrFromAddrPort(newReceiver(t).addr()))
	}
	fo := newFanout(h.e.conn, h.e.bw)
	hdr, payload := make([]byte, 12), opusPackets(t, 1)[0]
	hdr[0], hdr[1] = 0x80, protocol.PayloadType
	fo.send(hdr, payload, dests) // warm the scratch and x/net's pool
	if a := testing.AllocsPerRun(100, func() { fo.send(hdr, payload, dests) }); a >= 1 {
		t.Errorf("%v allocations per send", a)
	}
}

func TestLeadHoldsThePacketsBack(t *testing.T) {
	// A lead no test outlasts: nothing may be sent while a device the
	// session holds has tuned but not yet opened its path.
	h := newHarnessConfig(t, Config{Bind: "127.0.0.1:0", Lead: time.Hour})
	r := h.tuner.device("d")
	src := opusPackets(t, 20)
	h.start(t, "s", loa.PriorityNormal, 91, &sliceSource{pkts: src}, 20, "d", "quiet")
	waitFor(t, "authenticated", func() bool { return h.status(t, "s").Devices["d"].Addr != "" })
	waitFor(t, "quiet tuned", func() bool { return h.status(t, "s").Devices["quiet"].State == DeviceTuned })
	if st := h.status(t, "s"); st.Sent != 0 {
		t.Errorf("sent %d packets while a receiver was not ready", st.Sent)
	}
	if err := h.e.Stop(context.Background(), "s", "cancelled"); err != nil {
		t.Fatal(err)
	}
	s := r.untilBye(t, 91)
	if len(s.rtp) != 0 {
		t.Errorf("%d RTP packets for a session stopped in its lead", len(s.rtp))
	}
}

func TestLeadEndsWhenEveryDeviceIsReady(t *testing.T) {
	// With an hour's lead, the programme still plays at once: every device
	// it holds either authenticated or failed to tune.
	h := newHarnessConfig(t, Config{Bind: "127.0.0.1:0", Lead: time.Hour})
	r := h.tuner.device("d")
	h.tuner.on("broken", func(context.Context, protocol.PlayArgs) error { return errors.New("no ack") })
	src := opusPackets(t, 20)
	h.start(t, "s", loa.PriorityNormal, 93, &sliceSource{pkts: src}, 20, "d", "broken")
	s := r.untilBye(t, 93)
	if len(s.rtp) != len(src) || !bytes.Equal(s.rtp[0].Payload, src[0]) {
		t.Errorf("got %d of %d packets", len(s.rtp), len(src))
	}
}

func TestLeadLetsReceiversHearTheStart(t *testing.T) {
	// Two seconds is ample for a tune and a report on loopback.
	h := newHarnessConfig(t, Config{Bind: "127.0.0.1:0", Lead: 2 * time.Second})
	r := h.tuner.device("d")
	src := opusPackets(t, 20)
	h.start(t, "s", loa.PriorityNormal, 92, &sliceSource{pkts: src}, 20, "d")
	s := r.untilBye(t, 92)
	if len(s.rtp) != len(src) || !bytes.Equal(s.rtp[0].Payload, src[0]) {
		t.Errorf("got %d of %d packets", len(s.rtp), len(src))
	}
}

func TestScheduledStartWaitsForItsTime(t *testing.T) {
	first := make(chan time.Time, 1)
	h := newHarnessConfig(t, Config{Bind: "127.0.0.1:0", Lead: time.Hour})
	h.e.Subscribe(func(o loa.SessionOutcome) {
		if o.Kind == loa.OutcomeStreaming {
			first <- o.At
		}
	})
	r := h.tuner.device("d")
	src := opusPackets(t, 5)
	at := time.Now().Add(300 * time.Millisecond)
	s := &loa.Session{ID: "s", SSRC: 94, Priority: loa.PriorityNormal, Devices: []string{"d"}, ScheduledAt: at}
	if err := h.e.Start(context.Background(), s, &sliceSource{pkts: src}, 5); err != nil {
		t.Fatal(err)
	}
	got := r.untilBye(t, 94)
	if len(got.rtp) != len(src) {
		t.Errorf("got %d of %d packets", len(got.rtp), len(src))
	}
	if sent := <-first; sent.Before(at) {
		t.Errorf("the first packet left %v before its scheduled time", at.Sub(sent))
	}
}

// gapSource gives pkts, returning loa.ErrGap at the indices in gaps.
type gapSource struct {
	pkts [][]byte
	gaps map[int]bool
	i    int
}

func (s *gapSource) Next() ([]byte, error) {
	if s.i >= len(s.pkts) {
		return nil, io.EOF
	}
	s.i++
	if s.gaps[s.i-1] {
		return nil, loa.ErrGap
	}
	return s.pkts[s.i-1], nil
}

func TestGapAdvancesSequenceAndTimestampAndSendsNothing(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	const frames = 30
	src := opusPackets(t, frames)
	gaps := map[int]bool{0: true, 7: true, 8: true, 20: true}
	r := h.tuner.device("d1")
	const ssrc = 0x6a9
	gate := newGate(&gapSource{pkts: src, gaps: gaps})
	h.start(t, "s1", loa.PriorityNormal, ssrc, gate, frames, "d1")
	waitFor(t, "receiver authenticated", func() bool { return h.authenticated("s1") == 1 })
	gate.open()
	st := r.untilBye(t, ssrc)
	if e := h.ended(t, "s1"); e.state != loa.SessionEnded {
		t.Errorf("ended = %+v, want ended", e)
	}
	if want := frames - len(gaps); len(st.rtp) != want {
		t.Fatalf("got %d packets, want %d (%d frames, %d gaps)", len(st.rtp), want, frames, len(gaps))
	}
	// Packet 1 is the first sent; every later one sits at its frame's place.
	first := st.rtp[0]
	k := 0
	for i := range frames {
		if gaps[i] {
			continue
		}
		p := st.rtp[k]
		k++
		d := i - 1
		if p.SequenceNumber != first.SequenceNumber+uint16(d) || p.Timestamp != first.Timestamp+uint32(d*protocol.FrameSamples) {
			t.Fatalf("frame %d: seq/ts %d/%d, want %d/%d", i, p.SequenceNumber, p.Timestamp,
				first.SequenceNumber+uint16(d), first.Timestamp+uint32(d*protocol.FrameSamples))
		}
		if !bytes.Equal(p.Payload, src[i]) {
			t.Fatalf("frame %d: payload is not the source's", i)
		}
	}
	// The BYE's Sender Report counts frames, gaps included (play.end_frame).
	if last := st.srs[len(st.srs)-1]; last.PacketCount != frames {
		t.Errorf("last SR packet count %d, want %d", last.PacketCount, frames)
	}
}
