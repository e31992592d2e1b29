package broadcast

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// sntpRequestOf is what a minimal SNTP client sends (RFC 4330 §5): LI 0,
// the version, mode 3, and its clock in the transmit timestamp.
func sntpRequestOf(version byte, t1 uint64) []byte {
	b := make([]byte, sntpLen)
	b[0] = version<<3 | sntpModeReq
	b[2] = 6 // poll 64 s
	binary.BigEndian.PutUint64(b[40:48], t1)
	return b
}

// TestSNTPAnswersClients is a tiny SNTP client against the responder: a
// mode 4 reply of the configured stratum that echoes its transmit
// timestamp, with receive and transmit timestamps on the controller's
// clock, from which the client's offset (one clock here) is within half
// the round trip of zero. Malformed requests get no answer.
func TestSNTPAnswersClients(t *testing.T) {
	s, err := ListenSNTP(context.Background(), "127.0.0.1:0", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(guard)); err != nil {
		t.Fatal(err)
	}
	// Malformed first: too short, a server's mode, version 0, no transmit
	// timestamp. Only the valid request after them is answered.
	bad := [][]byte{
		sntpRequestOf(4, 1)[:47],
		func() []byte { b := sntpRequestOf(4, 1); b[0] = 4<<3 | sntpModeReply; return b }(),
		sntpRequestOf(0, 1),
		sntpRequestOf(4, 0),
	}
	for _, b := range bad {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, version := range []byte{4, 3} {
		t1 := time.Now()
		if _, err := c.Write(sntpRequestOf(version, ntpTime(t1))); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 128)
		n, err := c.Read(buf)
		t4 := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		r := buf[:n]
		if n != sntpLen || r[0]&7 != sntpModeReply || r[0]>>3&7 != version || r[1] != 3 {
			t.Fatalf("reply %x: want 48 bytes, mode 4, version %d, stratum 3", r, version)
		}
		if orig := binary.BigEndian.Uint64(r[24:32]); orig != ntpTime(t1) {
			t.Fatalf("originate %#x answers another request than %#x", orig, ntpTime(t1))
		}
		t2 := ntpToTime(binary.BigEndian.Uint64(r[32:40]))
		t3 := ntpToTime(binary.BigEndian.Uint64(r[40:48]))
		theta := (t2.Sub(t1) + t3.Sub(t4)) / 2
		delta := t4.Sub(t1) - t3.Sub(t2)
		t.Logf("SNTP v%d: θ = %v, δ = %v", version, theta, delta)
		if t3.Before(t2) || theta.Abs() > delta/2+time.Microsecond {
			t.Errorf("T2 %v T3 %v: θ = %v with δ = %v on one clock", t2, t3, theta, delta)
		}
	}
	if _, err := ListenSNTP(context.Background(), "127.0.0.1:0", 16, nil); err == nil {
		t.Error("stratum 16 (unsynchronised) accepted")
	}
}

// FuzzSNTPRequest: the parser takes any datagram without panicking, and
// whatever it accepts is answered with a well-formed reply that echoes the
// request's transmit timestamp.
func FuzzSNTPRequest(f *testing.F) {
	f.Add(sntpRequestOf(4, 1))
	f.Add(sntpRequestOf(3, 1<<63))
	f.Add(append(sntpRequestOf(4, 7), make([]byte, 20)...))
	f.Add([]byte{0x23})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseSNTPRequest(b)
		if err != nil {
			return
		}
		if len(b) < sntpLen || b[0]&7 != sntpModeReq || req.transmit == 0 {
			t.Fatalf("accepted %x", b)
		}
		out := make([]byte, sntpLen)
		now := time.Now()
		sntpReply(out, req, 2, now, now)
		if out[0]&7 != sntpModeReply || out[0]>>3 != b[0]>>3&7 || binary.BigEndian.Uint64(out[24:32]) != req.transmit {
			t.Fatalf("reply %x to %x", out, b)
		}
	})
}
