package firmwaresim

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/loa-broadcast/loa/protocol"
)

// ctlAddr is play.addr of offline sessions.
var ctlAddr = netip.MustParseAddrPort("127.0.0.1:5004")

// offlineSession is a session with no socket or goroutines, to feed
// datagrams to directly.
func offlineSession() *session {
	return &session{
		r:     &Receiver{log: quiet, outbox: make(chan outMsg, 16)},
		args:  protocol.PlayArgs{Session: "f", SSRC: 42, PT: protocol.PayloadType, RecvSSRC: 43},
		log:   quiet,
		pt:    protocol.PayloadType,
		delay: protocol.DefaultDelay,
		from:  ctlAddr,
		buf:   map[int64][]byte{},
		wake:  make(chan struct{}, 1),
	}
}

// testKeys are the keys of offline SRTP sessions.
var testKeys = protocol.SRTPKeys{Profile: protocol.SRTPProfile, Key: "00112233445566778899aabbccddeeff", Salt: "0102030405060708090a0b0c"}

// offlineSRTPSession is an offline session under testKeys; its own SRTCP
// (challenge answers) goes from and to conn, which nobody reads.
func offlineSRTPSession(t testing.TB, conn *net.UDPConn) *session {
	t.Helper()
	s := offlineSession()
	c, err := newStreamCrypto(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	s.crypto, s.conn, s.dest = c, conn, conn.LocalAddr().(*net.UDPAddr)
	return s
}

// sinkConn is a loopback socket for offline sessions' answers.
func sinkConn(t testing.TB) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// datagram feeds b from play.addr, as the reader goroutine does.
func (s *session) datagram(b []byte, at time.Time) { s.datagramFrom(b, s.from, at) }

func (s *session) datagramFrom(b []byte, from netip.AddrPort, at time.Time) {
	if in := s.receive(b, from); in != nil {
		s.accept(in, at)
	}
}

// seal encrypts plain RTP or RTCP under c, as the controller does; nil
// when b is neither.
func seal(c *srtp.Context, b []byte) []byte {
	var out []byte
	var err error
	if isRTCP(b) {
		out, err = c.EncryptRTCP(nil, b, nil)
	} else {
		out, err = c.EncryptRTP(nil, b, nil)
	}
	if err != nil {
		return nil
	}
	return out
}

func rtpBytes(seq uint16, ts uint32, payload []byte) []byte {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: protocol.PayloadType, SequenceNumber: seq, Timestamp: ts, SSRC: 42},
		Payload: payload}).Marshal()
	return b
}

// FuzzStreamInput feeds arbitrary datagrams after a valid first packet:
// the receiver must neither panic nor let its buffer run away.
func FuzzStreamInput(f *testing.F) {
	celt := []byte{31 << 3, 1, 2, 3}
	f.Add(rtpBytes(101, 960, celt))
	f.Add(rtpBytes(99, 0xffffffff-959, celt))
	f.Add(rtpBytes(40000, 960*39900, celt))
	bye, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{}, &rtcp.Goodbye{Sources: []uint32{42}}})
	f.Add(bye)
	sr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 42, NTPTime: 1 << 63, RTPTime: 7}})
	f.Add(sr)
	f.Add([]byte{0x80, 200, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := offlineSession()
		now := time.Now()
		s.datagram(rtpBytes(100, 0, celt), now)
		s.datagram(b, now.Add(time.Millisecond))
		s.datagram(b, now.Add(2*time.Millisecond))
		st := s.snapshot()
		if st.Received+st.Duplicate+st.Corrupt > 3 || st.Received == 0 {
			t.Fatalf("stats %+v after 3 datagrams", st)
		}
		if s.maxExt-s.next > s.aheadLimit() || len(s.buf) > 3 || st.Expected <= 0 || st.Expected > int(s.aheadLimit())+1 {
			t.Fatalf("buffer: next %d, max %d, %d held, expected %d", s.next, s.maxExt, len(s.buf), st.Expected)
		}
	})
}

// FuzzStreamInputSRTP feeds arbitrary datagrams to an SRTP session after
// a genuine first packet: as they are (they must not authenticate), from
// another address, and sealed under the session's keys twice (the parsers
// behind authentication see them; the second copy is a replay).
func FuzzStreamInputSRTP(f *testing.F) {
	celt := []byte{31 << 3, 1, 2, 3}
	f.Add(rtpBytes(101, 960, celt))
	f.Add(rtpBytes(40000, 960*39900, celt))
	bye, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 42}, &rtcp.Goodbye{Sources: []uint32{42}}})
	f.Add(bye)
	challenge, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 42},
		&rtcp.ApplicationDefined{Name: protocol.RTCPChallengeName, SubType: protocol.ChallengeSubtype, SSRC: 42, Data: make([]byte, 16)}})
	f.Add(challenge)
	f.Add([]byte{0x80, 200, 0, 1, 0, 0, 0, 42})
	f.Add([]byte{})
	conn := sinkConn(f)
	key, salt, _ := testKeys.Material()
	other := netip.MustParseAddrPort("127.0.0.1:5005")
	f.Fuzz(func(t *testing.T, b []byte) {
		s := offlineSRTPSession(t, conn)
		sender, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		s.datagram(seal(sender, rtpBytes(100, 0, celt)), now)
		if st := s.snapshot(); st.Received != 1 || st.AuthFailures != 0 {
			t.Fatalf("genuine first packet: %+v", st)
		}
		s.datagram(b, now.Add(time.Millisecond))
		s.datagramFrom(b, other, now.Add(time.Millisecond))
		if st := s.snapshot(); st.Received != 1 || st.AuthFailures != 2 {
			t.Fatalf("unsealed datagram, or from another address, was taken: %+v", st)
		}
		if sealed := seal(sender, b); sealed != nil {
			s.datagram(sealed, now.Add(2*time.Millisecond))
			before := s.snapshot().AuthFailures
			s.datagram(sealed, now.Add(3*time.Millisecond))
			if st := s.snapshot(); st.AuthFailures != before+1 || st.Received > 2 {
				t.Fatalf("replay: %+v (auth failures %d before)", st, before)
			}
		}
		st := s.snapshot()
		if s.maxExt-s.next > s.aheadLimit() || len(s.buf) > 2 || st.Expected <= 0 || st.Expected > int(s.aheadLimit())+1 {
			t.Fatalf("buffer: next %d, max %d, %d held, expected %d", s.next, s.maxExt, len(s.buf), st.Expected)
		}
	})
}

func TestStreamInputCounts(t *testing.T) {
	celt := []byte{31 << 3, 1, 2, 3}
	s := offlineSession()
	now := time.Now()
	for _, d := range []struct {
		b  []byte
		at time.Duration
	}{
		{rtpBytes(65535, 5000, celt), 0},
		{rtpBytes(1, 5000+2*960, celt), 40},     // across the wrap, one missing
		{rtpBytes(1, 5000+2*960, celt), 41},     // duplicate
		{rtpBytes(2, 5000+2*960, celt), 42},     // timestamp off the grid
		{rtpBytes(3, 5000+4*960, []byte{}), 43}, // no Opus
		{[]byte{0x80, 0x6f, 0, 0}, 44},          // truncated RTP
		{rtpBytes(65534, 5000-960, celt), 45},   // before the first, in time: becomes slot 0
	} {
		s.datagram(d.b, now.Add(d.at*time.Millisecond))
	}
	st := s.snapshot()
	if st.Expected != 4 || st.Received != 3 || st.Lost != 1 || st.Duplicate != 1 || st.Corrupt != 3 || st.Late != 0 {
		t.Errorf("stats %+v", st)
	}
	if s.ts0 != 5000-960 || s.next != s.ext0 || uint16(s.ext0) != 65534 {
		t.Errorf("slot 0 is seq %d ts %d", uint16(s.ext0), s.ts0)
	}
}

func BenchmarkAccept(b *testing.B) {
	frames := toneFrames(b, 50)
	s := offlineSession()
	now := time.Now()
	b.ReportAllocs()
	for i := range b.N {
		in := &rtpIn{seq: uint16(i), ts: uint32(i * protocol.FrameSamples), payload: frames[i%50]}
		s.accept(in, now)
		s.mu.Lock()
		delete(s.buf, s.next)
		s.next++
		s.mu.Unlock()
	}
}

func BenchmarkPlaySlot(b *testing.B) {
	for _, decode := range []bool{false, true} {
		name := "verify"
		if decode {
			name = "decode"
		}
		b.Run(name, func(b *testing.B) {
			frames := toneFrames(b, 50)
			s := offlineSession()
			s.pcmBuf = make([]int16, protocol.FrameSamples)
			if decode {
				s.dec, _ = newDecoder()
			}
			now := time.Now()
			b.ReportAllocs()
			for i := range b.N {
				s.accept(&rtpIn{seq: uint16(i), ts: uint32(i * protocol.FrameSamples), payload: frames[i%50]}, now)
				s.playSlot()
			}
		})
	}
}

// BenchmarkReceive is the reader's per-datagram cost, from the socket's
// bytes to the jitter buffer: plain (v1: the source check and the parse)
// and SRTP (plus authentication and decryption, in a reused buffer).
func BenchmarkReceive(b *testing.B) {
	const batch = 1 << 14 // packets sealed ahead, outside the timer
	frames := toneFrames(b, 50)
	key, salt, _ := testKeys.Material()
	for _, keyed := range []bool{false, true} {
		name := "plain"
		if keyed {
			name = "srtp"
		}
		b.Run(name, func(b *testing.B) {
			conn := sinkConn(b)
			var s *session
			pkts := make([][]byte, batch)
			next := batch
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if next == batch { // a new session for the next batch
					b.StopTimer()
					s = offlineSession()
					var sender *srtp.Context
					if keyed {
						s = offlineSRTPSession(b, conn)
						sender, _ = srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
					}
					for j := range pkts {
						pkts[j] = rtpBytes(uint16(j), uint32(j*protocol.FrameSamples), frames[j%50])
						if keyed {
							pkts[j] = seal(sender, pkts[j])
						}
					}
					next = 0
					b.StartTimer()
				}
				if in := s.receive(pkts[next], ctlAddr); in != nil {
					s.accept(in, now)
				}
				next++
				s.mu.Lock()
				delete(s.buf, s.next)
				s.next++
				s.mu.Unlock()
				_ = i
			}
			if st := s.snapshot(); st.Received == 0 || st.AuthFailures != 0 || st.Corrupt != 0 {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}
