package broadcast

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/pion/rtcp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// FuzzHandleDatagram feeds arbitrary datagrams to the RTCP receive path of
// an engine with a live session: it must never panic, and must accept
// only a datagram that carries the device's token and receiver SSRC.
func FuzzHandleDatagram(f *testing.F) {
	h := newHarness(f, "127.0.0.1:0")
	h.tuner.device("d")
	h.tuner.on("d", func(context.Context, protocol.PlayArgs) error { return nil })
	h.start(f, "s", loa.PriorityNormal, 0x5eed, &loopSource{pkts: opusPackets(f, 10)}, 0, "d")
	waitFor(f, "tune", func() bool { return h.tuner.count("tune", "d", "s") == 1 })
	c, _ := h.tuner.last("tune", "d", "s")
	token, _ := hex.DecodeString(c.args.Token)

	// A socket nobody reads: the kernel drops what the engine sends it.
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sink.Close() })
	from := sink.LocalAddr().(*net.UDPAddr).AddrPort()

	valid := authPacket(f, c.args.RecvSSRC, 0x5eed, "d", token)
	f.Add(valid)
	f.Add(authPacket(f, c.args.RecvSSRC, 0x5eed, "d", make([]byte, protocol.TokenLen)))
	f.Add(authPacket(f, c.args.RecvSSRC+1, 0x5eed, "d", token))
	f.Add([]byte{0x80, protocol.PayloadType, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xfc, 0xff, 0xfe})
	f.Add([]byte{0x80, 0xc9, 0x00, 0x01, 0, 0, 0, 1})
	f.Add([]byte{0x81, 0xcc, 0x00, 0x02, 0, 0, 0, 1, 'L', 'O', 'A', '1'})
	bye, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: c.args.RecvSSRC}, &rtcp.Goodbye{Sources: []uint32{1}, Reason: "x"}})
	f.Add(bye)
	f.Add(valid[:len(valid)-1])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, b []byte) {
		ok := h.e.handleDatagram(b, from)
		if ok && (!bytes.Contains(b, token) || !bytes.Contains(b, valid[4:8])) {
			t.Fatalf("accepted a datagram without the token and receiver SSRC: %x", b)
		}
		if ok {
			if st := h.status(t, "s"); st.Devices["d"].Addr != from.String() {
				t.Fatalf("accepted, but addr = %q", st.Devices["d"].Addr)
			}
		}
	})
}

func TestHandleDatagramAcceptsTheValidCompound(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	h.tuner.device("d")
	h.tuner.on("d", func(context.Context, protocol.PlayArgs) error { return nil })
	h.start(t, "s", loa.PriorityNormal, 0x77, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	waitFor(t, "tune", func() bool { return h.tuner.count("tune", "d", "s") == 1 })
	c, _ := h.tuner.last("tune", "d", "s")
	token, _ := hex.DecodeString(c.args.Token)
	from := netip.MustParseAddrPort("127.0.0.1:9")

	// Without SDES, and with the APP padded, it still authenticates.
	noSDES, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: c.args.RecvSSRC},
		&rtcp.ApplicationDefined{SSRC: c.args.RecvSSRC, Name: protocol.RTCPAppName, Data: token},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"RR+SDES+APP", authPacket(t, c.args.RecvSSRC, 0x77, "d", token), true},
		{"RR+APP", noSDES, true},
		{"APP with another SSRC", func() []byte {
			b, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: c.args.RecvSSRC},
				&rtcp.ApplicationDefined{SSRC: 1, Name: protocol.RTCPAppName, Data: token}})
			return b
		}(), false},
		{"APP with another name", func() []byte {
			b, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: c.args.RecvSSRC},
				&rtcp.ApplicationDefined{SSRC: c.args.RecvSSRC, Name: "XXXX", Data: token}})
			return b
		}(), false},
		{"SR first", func() []byte {
			b, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: c.args.RecvSSRC},
				&rtcp.ApplicationDefined{SSRC: c.args.RecvSSRC, Name: protocol.RTCPAppName, Data: token}})
			return b
		}(), false},
		{"token with a flipped bit", authPacket(t, c.args.RecvSSRC, 0x77, "d", flip(token)), false},
	}
	for _, tt := range tests {
		if got := h.e.handleDatagram(tt.b, from); got != tt.want {
			t.Errorf("%s: accepted = %v, want %v", tt.name, got, tt.want)
		}
	}
	if st := h.status(t, "s").Devices["d"]; st.Addr != from.String() || st.Jitter != 10e6 {
		t.Errorf("status %+v, want addr %s and 10ms jitter", st, from)
	}
}

func flip(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)-1] ^= 1
	return c
}

func TestReceiverByeStopsItsStream(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	r := h.tuner.device("d")
	var args protocol.PlayArgs
	h.tuner.on("d", func(_ context.Context, a protocol.PlayArgs) error {
		args = a
		r.authenticate(t, "d", a)
		return nil
	})
	h.start(t, "s", loa.PriorityNormal, 71, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	r.rtpOf(t, 71)
	token, _ := hex.DecodeString(args.Token)
	bye, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: args.RecvSSRC},
		rtcp.NewCNAMESourceDescription(args.RecvSSRC, "d"),
		&rtcp.ApplicationDefined{SSRC: args.RecvSSRC, Name: protocol.RTCPAppName, Data: token},
		&rtcp.Goodbye{Sources: []uint32{args.RecvSSRC}, Reason: "finished"},
	})
	if err != nil {
		t.Fatal(err)
	}
	to := netip.MustParseAddrPort(args.Addr)
	if _, err := r.conn.WriteToUDPAddrPort(bye, to); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "address cleared", func() bool { return h.status(t, "s").Devices["d"].Addr == "" })
	// Packets up to index sent may have taken the old destinations; every
	// later one was sent after the BYE was handled and must not come.
	sent := h.status(t, "s").Sent
	waitFor(t, "three more packets sent", func() bool { return h.status(t, "s").Sent >= sent+3 })
	h.e.mu.Lock()
	seq0 := h.e.sessions["s"].seq0
	h.e.mu.Unlock()
	for {
		select {
		case b := <-r.in:
			if isRTCP(b) {
				continue
			}
			if idx := (uint16(b[2])<<8 | uint16(b[3])) - seq0; idx > uint16(sent) {
				t.Fatalf("packet %d arrived after the BYE (sent %d then)", idx, sent)
			}
			continue
		default:
		}
		break
	}
	// Reporting again brings it back.
	r.authenticate(t, "d", args)
	r.rtpOf(t, 71)
}

// TestReceptionTellsProgress: a receiver's authenticated reports tell
// Config.Reception the packets they say arrived, each time that grows,
// counted from the stream's first sequence number (across a wrap), less
// the loss; a report with no progress, or not authenticated, tells nothing.
func TestReceptionTellsProgress(t *testing.T) {
	type told struct {
		session, device string
		n               uint64
	}
	var mu sync.Mutex
	var got []told
	h := newHarnessConfig(t, Config{Bind: "127.0.0.1:0", Reception: func(s, d string, n uint64) {
		mu.Lock()
		got = append(got, told{s, d, n})
		mu.Unlock()
	}})
	h.tuner.device("d")
	h.tuner.on("d", func(context.Context, protocol.PlayArgs) error { return nil })
	h.start(t, "s", loa.PriorityNormal, 0x77, &loopSource{pkts: opusPackets(t, 10)}, 0, "d")
	waitFor(t, "tune", func() bool { return h.tuner.count("tune", "d", "s") == 1 })
	c, _ := h.tuner.last("tune", "d", "s")
	token, _ := hex.DecodeString(c.args.Token)
	seq0 := h.seq0(t, "s")
	from := netip.MustParseAddrPort("127.0.0.1:9")
	report := func(highest uint32, lost uint32, tok []byte) []byte {
		b, err := rtcp.Marshal([]rtcp.Packet{
			&rtcp.ReceiverReport{SSRC: c.args.RecvSSRC, Reports: []rtcp.ReceptionReport{
				{SSRC: 0x77, LastSequenceNumber: highest, TotalLost: lost}}},
			&rtcp.ApplicationDefined{SSRC: c.args.RecvSSRC, Name: protocol.RTCPAppName, Data: tok},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	h.e.handleDatagram(report(uint32(seq0)+99, 0, token), from)        // 100 arrived
	h.e.handleDatagram(report(uint32(seq0)+99, 0, token), from)        // no progress
	h.e.handleDatagram(report(uint32(seq0)+999, 0, flip(token)), from) // not authenticated
	h.e.handleDatagram(report(uint32(seq0)+70000, 10, token), from)    // 70001 expected, 10 lost
	mu.Lock()
	defer mu.Unlock()
	want := []told{{"s", "d", 100}, {"s", "d", 69991}}
	if !slices.Equal(got, want) {
		t.Errorf("told %v, want %v", got, want)
	}
	// A receiver that joined after the 16-bit sequence wrapped counts its
	// cycles from there.
	if n := receivedPackets(65530, rtcp.ReceptionReport{LastSequenceNumber: 4}); n != 11 {
		t.Errorf("received %d across the wrap, want 11", n)
	}
}
