package broadcast

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// srtpPeer is the receiver side of one SRTP play, built from the contract
// alone (Keys, SRTP and SRTCP): the keys of the play command, SRTP and
// SRTCP in with replay protection, its own reports out as SRTCP.
type srtpPeer struct {
	device string
	args   protocol.PlayArgs

	mu  sync.Mutex
	in  *srtp.Context
	out *srtp.Context
}

func newSRTPPeer(t testing.TB, device string, args protocol.PlayArgs) *srtpPeer {
	t.Helper()
	key, salt, err := args.Keys.Material()
	if err != nil {
		t.Fatalf("play keys: %v", err)
	}
	in, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm,
		srtp.SRTPReplayProtection(protocol.SRTPReplayWindow), srtp.SRTCPReplayProtection(protocol.SRTPReplayWindow))
	if err != nil {
		t.Fatal(err)
	}
	out, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	return &srtpPeer{device: device, args: args, in: in, out: out}
}

// report is the peer's sealed compound: a Receiver Report with a block on
// the stream, SDES CNAME, then extra.
func (p *srtpPeer) report(t testing.TB, extra ...rtcp.Packet) []byte {
	t.Helper()
	rs := p.args.RecvSSRC
	pkts := append([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: rs, Reports: []rtcp.ReceptionReport{{SSRC: p.args.SSRC, FractionLost: 64, Jitter: 480}}},
		rtcp.NewCNAMESourceDescription(rs, p.device),
	}, extra...)
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	sealed, err := p.out.EncryptRTCP(nil, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// answer is the peer's report answering the challenge nonce.
func (p *srtpPeer) answer(t testing.TB, nonce []byte) []byte {
	return p.report(t, &rtcp.ApplicationDefined{SubType: protocol.ResponseSubtype, SSRC: p.args.RecvSSRC,
		Name: protocol.RTCPChallengeName, Data: nonce})
}

// bye is the peer's report with a BYE: it leaves the stream.
func (p *srtpPeer) bye(t testing.TB) []byte {
	return p.report(t, &rtcp.Goodbye{Sources: []uint32{p.args.RecvSSRC}, Reason: "finished"})
}

// open authenticates a datagram from the controller: RTP, or an RTCP
// compound.
func (p *srtpPeer) open(b []byte) (*rtp.Packet, []rtcp.Packet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if isRTCP(b) {
		plain, err := p.in.DecryptRTCP(nil, b, nil)
		if err != nil {
			return nil, nil, err
		}
		pkts, err := rtcp.Unmarshal(plain)
		return nil, pkts, err
	}
	plain, err := p.in.DecryptRTP(nil, b, nil)
	if err != nil {
		return nil, nil, err
	}
	var pkt rtp.Packet
	return &pkt, nil, pkt.Unmarshal(plain)
}

// sealedRTPOf waits for the next RTP packet of ssrc; every datagram must
// authenticate under the receiver's keys.
func (r *receiver) sealedRTPOf(t testing.TB, ssrc uint32) *rtp.Packet {
	t.Helper()
	for {
		b := r.next(t)
		p, _, err := r.srtp(t).open(b)
		if err != nil {
			t.Fatalf("receiver %s: datagram does not authenticate: %v", r.addr(), err)
		}
		if p != nil && p.SSRC == ssrc {
			return p
		}
	}
}

// challengeNonce waits on r for a challenge sealed under p's keys and
// returns its nonce; RTP arriving meanwhile fails the test.
func (r *receiver) challengeNonce(t testing.TB, p *srtpPeer) []byte {
	t.Helper()
	for {
		b := r.next(t)
		if !isRTCP(b) {
			t.Fatalf("receiver %s: RTP before it answered a challenge", r.addr())
		}
		_, pkts, err := p.open(b)
		if err != nil {
			t.Fatalf("challenge does not authenticate: %v", err)
		}
		if len(pkts) == 0 {
			continue
		}
		if _, ok := pkts[0].(*rtcp.SenderReport); !ok {
			t.Fatalf("challenge compound starts with %T, want a Sender Report", pkts[0])
		}
		for _, q := range pkts[1:] {
			if app, ok := q.(*rtcp.ApplicationDefined); ok && app.Name == protocol.RTCPChallengeName &&
				app.SubType == protocol.ChallengeSubtype && len(app.Data) == protocol.ChallengeLen {
				return app.Data
			}
		}
	}
}

// counted returns the engine's counter now.
func (h *harness) srtcpFailures(t testing.TB) float64 {
	return counter(t, h.e.metrics.srtcpAuthFailures)
}

func (h *harness) addr(t testing.TB, session, device string) string {
	return h.status(t, session).Devices[device].Addr
}

// A receiver that announced srtp-gcm gets keys and a fence instead of a
// token, keys derived from the session's secret, its id and the fence, so
// they differ per receiver and per fence; its stream is sealed under them
// and authenticates nowhere else. A v1 receiver in the same session keeps
// the token and plain RTP.
func TestSRTPPlayCarriesKeysAndTheStreamIsSealed(t *testing.T) {
	fence := protocol.Fence{Gen: 7}
	h := newHarnessConfig(t, Config{Bind: "127.0.0.1:0", Fence: fence})
	a, b := h.tuner.srtpDevice("v2a"), h.tuner.srtpDevice("v2b")
	plain := h.tuner.device("v1")
	pkts := opusPackets(t, 50)
	h.start(t, "s", loa.PriorityNormal, 0x5a, &loopSource{pkts: pkts}, 0, "v2a", "v2b", "v1")
	waitFor(t, "three tunes", func() bool {
		return h.tuner.count("tune", "v2a", "s")+h.tuner.count("tune", "v2b", "s")+h.tuner.count("tune", "v1", "s") == 3
	})

	h.e.mu.Lock()
	secret := h.e.sessions["s"].secret
	h.e.mu.Unlock()
	keys := map[string]protocol.SRTPKeys{}
	for _, id := range []string{"v2a", "v2b"} {
		c, _ := h.tuner.last("tune", id, "s")
		if c.args.Keys == nil || c.args.Token != "" || c.args.Fence == nil || *c.args.Fence != fence {
			t.Fatalf("%s play args %+v: want keys and fence %v, no token", id, c.args, fence)
		}
		want, err := protocol.DeriveSRTPKeys(secret[:], id, fence)
		if err != nil || *c.args.Keys != want {
			t.Errorf("%s keys %+v, want HKDF(secret, %s, %v) = %+v", id, *c.args.Keys, id, fence, want)
		}
		other, _ := protocol.DeriveSRTPKeys(secret[:], id, protocol.Fence{Gen: 8})
		if other.Key == want.Key || other.Salt == want.Salt {
			t.Errorf("%s: the same keys under another fence", id)
		}
		if _, err := protocol.DecodePlayArgs(mustJSON(t, c.args)); err != nil {
			t.Errorf("%s play args do not decode: %v", id, err)
		}
		keys[id] = *c.args.Keys
	}
	if keys["v2a"].Key == keys["v2b"].Key {
		t.Error("two receivers got the same key")
	}
	if c, _ := h.tuner.last("tune", "v1", "s"); c.args.Keys != nil || c.args.Fence != nil || len(c.args.Token) != 2*protocol.TokenLen {
		t.Errorf("v1 play args %+v: want a token and no keys", c.args)
	}

	// a's stream is sealed: no clear payload on the wire, the exact payload
	// under a's keys, nothing under b's.
	var raw []byte
	for raw == nil {
		if d := a.next(t); !isRTCP(d) {
			raw = d
		}
	}
	p, _, err := a.srtp(t).open(raw)
	if err != nil {
		t.Fatalf("a's packet under a's keys: %v", err)
	}
	if !bytes.Equal(p.Payload, pkts[int(p.SequenceNumber-h.seq0(t, "s"))%len(pkts)]) {
		t.Error("a's payload is not the source's packet")
	}
	if bytes.Contains(raw, p.Payload[:16]) {
		t.Error("the payload crosses the wire in clear")
	}
	if _, _, err := b.srtp(t).open(raw); err == nil {
		t.Error("a's packet authenticates under b's keys")
	}
	for range 60 { // a second of packets and at least one Sender Report, every one sealed
		a.sealedRTPOf(t, 0x5a)
	}
	b.sealedRTPOf(t, 0x5a)
	if q := plain.rtpOf(t, 0x5a); !bytes.Equal(q.Payload, pkts[int(q.SequenceNumber-h.seq0(t, "s"))%len(pkts)]) {
		t.Error("the v1 receiver's payload is not the source's packet")
	}
	if st := h.status(t, "s").Devices; !st["v2a"].SRTP || st["v1"].SRTP {
		t.Errorf("status %+v", st)
	}

	// The end BYE is SRTCP too.
	if err := h.e.Stop(context.Background(), "s", "done"); err != nil {
		t.Fatal(err)
	}
	for {
		_, c, err := a.srtp(t).open(a.next(t))
		if err != nil {
			t.Fatalf("after stop: %v", err)
		}
		if len(c) > 0 {
			if bye, ok := c[len(c)-1].(*rtcp.Goodbye); ok && bye.Sources[0] == 0x5a {
				break
			}
		}
	}
}

func (h *harness) seq0(t testing.TB, id string) uint16 {
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	return h.e.sessions[id].seq0
}

// Reports that do not authenticate are counted and change nothing; a
// captured report or BYE replayed, from another address or from the
// receiver's own, moves nothing and stops nothing; a genuine report that
// reaches the controller only from another address (taken off the path)
// is answered with a challenge there and moves nothing until answered.
func TestSRTCPForgedAndReplayedReportsMoveAndStopNothing(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.srtpDevice("d")
	var args protocol.PlayArgs
	var first []byte // the report the device sent on tune: on the path, an attacker has it
	h.tuner.on("d", func(_ context.Context, a protocol.PlayArgs) error {
		args = a
		p := newSRTPPeer(t, "d", a)
		r.mu.Lock()
		r.peer = p
		r.mu.Unlock()
		first = p.report(t)
		r.send(t, a, first)
		return nil
	})
	h.start(t, "s", loa.PriorityNormal, 0x77, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	r.sealedRTPOf(t, 0x77)
	p := r.srtp(t)
	home := r.addr()
	evil := newReceiver(t)
	away := evil.addr()

	failures := h.srtcpFailures(t)
	challenges := counter(t, h.e.metrics.challengesSent)
	otherKeys, _ := protocol.DeriveSRTPKeys(make([]byte, 32), "d", protocol.Fence{})
	wrongKey := newSRTPPeer(t, "d", protocol.PlayArgs{RecvSSRC: args.RecvSSRC, SSRC: args.SSRC, Keys: &otherKeys})
	forged := []struct {
		name string
		b    []byte
		from netip.AddrPort
	}{
		{"the captured report replayed from elsewhere", first, away},
		{"the captured report replayed from the receiver's address", first, home},
		{"a v1 compound with a token", authPacket(t, args.RecvSSRC, args.SSRC, "d", make([]byte, protocol.TokenLen)), away},
		{"SRTCP under another key", wrongKey.report(t), away},
		{"SRTCP under another key, from the receiver's address", wrongKey.bye(t), home},
		{"a sealed report with a flipped bit", flip(p.report(t)), away},
		{"a truncated sealed report", p.report(t)[:20], away},
	}
	for i, f := range forged {
		if h.e.handleDatagram(f.b, f.from) {
			t.Errorf("%s: accepted", f.name)
		}
		if got := h.srtcpFailures(t); got != failures+float64(i+1) {
			t.Errorf("%s: %v auth failures counted, want %v", f.name, got-failures, i+1)
		}
	}
	if got := counter(t, h.e.metrics.challengesSent); got != challenges {
		t.Errorf("%v challenges sent for forged reports", got-challenges)
	}

	// A genuine report that only ever arrives from elsewhere (taken off
	// the path and forwarded): authenticated, challenged there, not moved.
	if !h.e.handleDatagram(p.report(t), away) {
		t.Error("a genuine report was not accepted")
	}
	evil.challengeNonce(t, p)
	// A fresh, genuine BYE from elsewhere stops nothing either.
	h.e.handleDatagram(p.bye(t), away)
	if got := h.addr(t, "s", "d"); got != home.String() {
		t.Fatalf("address %s, want %s", got, home)
	}
	sent := h.status(t, "s").Sent
	waitFor(t, "five more packets", func() bool { return h.status(t, "s").Sent >= sent+5 })
	r.sealedRTPOf(t, 0x77)
	if n := evil.countRTP(); n != 0 {
		t.Errorf("the other address got %d RTP packets", n)
	}

	// The receiver leaves with a BYE (the engine stops its stream) and
	// reports again (it comes back). The captured BYE, replayed from the
	// receiver's address or elsewhere, stops nothing.
	bye := p.bye(t)
	r.send(t, args, bye)
	waitFor(t, "the BYE", func() bool { return h.addr(t, "s", "d") == "" })
	r.send(t, args, p.report(t))
	waitFor(t, "back after reporting", func() bool { return h.addr(t, "s", "d") == home.String() })
	for _, from := range []netip.AddrPort{home, away} {
		if h.e.handleDatagram(bye, from) {
			t.Errorf("a replayed BYE from %s was accepted", from)
		}
	}
	if got := h.addr(t, "s", "d"); got != home.String() {
		t.Errorf("after replayed BYEs the address is %q, want %s", got, home)
	}
	if h.e.Stop(context.Background(), "s", "") != nil || h.ended(t, "s").state != loa.SessionStopped {
		t.Error("stop")
	}
}

// A NAT rebinding: the receiver reports from a new address, the engine
// challenges it there at once, and the authenticated answer from there
// moves the stream, without waiting for another report. A wrong nonce, or
// the right one from a third address, moves nothing.
func TestSRTPAddressChangeFollowsTheChallenge(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.srtpDevice("d")
	h.start(t, "s", loa.PriorityNormal, 0x99, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	r.sealedRTPOf(t, 0x99)
	p := r.srtp(t)
	args := p.args

	moved := newReceiver(t)
	moved.mu.Lock()
	moved.peer = p // the same device, its socket now seen from another port
	moved.mu.Unlock()
	moved.send(t, args, p.report(t))
	nonce := moved.challengeNonce(t, p)

	// A wrong nonce from the new address, and the right one from a third.
	moved.send(t, args, p.answer(t, flip(nonce)))
	third := newReceiver(t)
	third.send(t, args, p.answer(t, nonce))
	third.challengeNonce(t, p) // a report from there: challenged in turn
	if got := h.addr(t, "s", "d"); got != r.addr().String() {
		t.Fatalf("moved to %s without the answer", got)
	}

	// The challenge to the new address stands (a nonce is kept for a
	// while): answering it moves the stream.
	moved.send(t, args, p.answer(t, nonce))
	waitFor(t, "the stream to move", func() bool { return h.addr(t, "s", "d") == moved.addr().String() })
	moved.sealedRTPOf(t, 0x99)
	if got := counter(t, h.e.metrics.addressMoves); got != 1 {
		t.Errorf("%v moves counted", got)
	}
	if n := third.countRTP(); n != 0 {
		t.Errorf("the third address got %d RTP packets", n)
	}
}

// With RequireSRTP a plain receiver is not tuned: its status and the
// Refused callback say why, naming -require-srtp; an SRTP receiver of the
// same session plays.
func TestRequireSRTPRefusesPlainReceivers(t *testing.T) {
	var mu sync.Mutex
	refused := map[string]error{}
	h := newHarnessConfig(t, Config{Bind: "127.0.0.1:0", RequireSRTP: true,
		Refused: func(session, device string, err error) {
			mu.Lock()
			refused[session+"/"+device] = err
			mu.Unlock()
		}})
	v2 := h.tuner.srtpDevice("v2")
	h.tuner.device("v1")
	h.start(t, "s", loa.PriorityNormal, 0x42, &loopSource{pkts: opusPackets(t, 10)}, 0, "v2", "v1")
	v2.sealedRTPOf(t, 0x42)
	waitFor(t, "the refusal", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return refused["s/v1"] != nil
	})
	mu.Lock()
	err := refused["s/v1"]
	mu.Unlock()
	if !errors.Is(err, ErrPlainRefused) || !strings.Contains(err.Error(), "-require-srtp") {
		t.Errorf("refused with %v", err)
	}
	st := h.status(t, "s").Devices["v1"]
	if st.State != DeviceFailed || !strings.Contains(st.Err, "-require-srtp") || !strings.Contains(st.Err, protocol.CapSRTPGCM) {
		t.Errorf("v1 status %+v", st)
	}
	if err := h.e.Stop(context.Background(), "s", ""); err != nil {
		t.Fatal(err)
	}
	h.ended(t, "s")
	if n := h.tuner.count("tune", "v1", "s") + h.tuner.count("untune", "v1", "s"); n != 0 {
		t.Errorf("the plain receiver got %d commands", n)
	}
}

// A receiver given a session again after a preemption gets new keys: it
// starts a new SRTP context with the play, and under the old key the
// stream's packet indices would be sealed again from its point of view.
func TestSRTPReceiverTunedBackGetsNewKeys(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.srtpDevice("d")
	h.start(t, "music", loa.PriorityNormal, 0x10, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	r.sealedRTPOf(t, 0x10)
	c1, _ := h.tuner.last("tune", "d", "music")
	h.start(t, "alert", loa.PriorityEmergency, 0x20, &sliceSource{pkts: opusPackets(t, 5)}, 5, "d")
	h.ended(t, "alert")
	waitFor(t, "the tune back", func() bool { return h.tuner.count("tune", "d", "music") == 2 })
	c2, _ := h.tuner.last("tune", "d", "music")
	if c2.args.Keys == nil || *c2.args.Keys == *c1.args.Keys {
		t.Fatalf("tuned back with keys %+v, first %+v", c2.args.Keys, c1.args.Keys)
	}
	// Under the new keys the stream authenticates (packets sealed under
	// the alert's or the old keys may still be in the socket).
	p := r.srtp(t)
	for {
		if q, _, err := p.open(r.next(t)); err == nil && q != nil && q.SSRC == 0x10 {
			break
		}
	}
	r.sealedRTPOf(t, 0x10)
}

// A listener added with an SDES key gets the stream as SRTP in
// AES_CM_128_HMAC_SHA1_80 under that key, Sender Reports as SRTCP.
func TestListenerWithSDESKeyGetsSRTP(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	ffmpeg := newReceiver(t)
	pkts := opusPackets(t, 10)
	h.start(t, "s", loa.PriorityNormal, 0x31, &loopSource{pkts: pkts}, 0)
	key := bytes.Repeat([]byte{7}, protocol.SDESKeyLen+protocol.SDESSaltLen)
	if err := h.e.AddListener("s", ffmpeg.addr(), key[:5]); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("short key: %v", err)
	}
	if err := h.e.AddListener("s", ffmpeg.addr(), key); err != nil {
		t.Fatal(err)
	}
	in, err := srtp.CreateContext(key[:protocol.SDESKeyLen], key[protocol.SDESKeyLen:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		t.Fatal(err)
	}
	var rtps, srs int
	for rtps < 60 || srs == 0 {
		b := ffmpeg.next(t)
		if isRTCP(b) {
			plain, err := in.DecryptRTCP(nil, b, nil)
			if err != nil {
				t.Fatalf("SRTCP: %v", err)
			}
			if c, err := rtcp.Unmarshal(plain); err == nil {
				if _, ok := c[0].(*rtcp.SenderReport); ok {
					srs++
				}
			}
			continue
		}
		plain, err := in.DecryptRTP(nil, b, nil)
		if err != nil {
			t.Fatalf("SRTP: %v", err)
		}
		var q rtp.Packet
		if err := q.Unmarshal(plain); err != nil || !bytes.Equal(q.Payload, pkts[int(q.SequenceNumber-h.seq0(t, "s"))%len(pkts)]) {
			t.Fatalf("listener packet: %v", err)
		}
		rtps++
	}
}

// FuzzHandleSRTCP feeds arbitrary datagrams to the receive path of an
// SRTP receiver: it must never panic, never accept what does not
// authenticate under the receiver's keys, and never move its stream.
func FuzzHandleSRTCP(f *testing.F) {
	h := newHarness(f, "127.0.0.1:0")
	r := h.tuner.srtpDevice("d")
	h.start(f, "s", loa.PriorityNormal, 0x5eed, &loopSource{pkts: opusPackets(f, 10)}, 0, "d")
	waitFor(f, "address", func() bool { return h.addr(f, "s", "d") != "" })
	p := r.srtp(f)
	home := h.addr(f, "s", "d")
	key, salt, _ := p.args.Keys.Material()
	check, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		f.Fatal(err)
	}
	sink := newReceiver(f)
	from := sink.addr()

	f.Add(p.report(f))
	f.Add(p.bye(f))
	f.Add(p.answer(f, make([]byte, protocol.ChallengeLen)))
	f.Add(authPacket(f, p.args.RecvSSRC, p.args.SSRC, "d", make([]byte, protocol.TokenLen)))
	f.Add([]byte{0x81, 0xc9, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ok := h.e.handleDatagram(b, from)
		if ok {
			if _, err := check.DecryptRTCP(nil, b, nil); err != nil {
				t.Fatalf("accepted a datagram that does not authenticate: %x", b)
			}
		}
		if got := h.addr(t, "s", "d"); got != home {
			t.Fatalf("the stream moved to %q without an answered challenge", got)
		}
	})
}
