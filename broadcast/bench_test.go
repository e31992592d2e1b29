package broadcast

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/loa-broadcast/loa/protocol"
)

// TestBenchFanoutRuns checks the benchmark's plumbing on a small fleet; the
// figures themselves are for `go test -bench` and `loa bench`.
func TestBenchFanoutRuns(t *testing.T) {
	var log strings.Builder
	res, err := BenchFanout(context.Background(), 20, 300*time.Millisecond, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + log.String())
	if res.Receivers != 20 || res.ControllerPPS <= 0 || res.RawPPS <= 0 || res.Ratio <= 0 ||
		res.ControllerPPSSRTP <= 0 || res.RatioSRTP <= 0 || res.CPUSecondsPerReceiverHourSRTP <= 0 {
		t.Errorf("result %+v", res)
	}
	if res.AuthFailures != 0 {
		t.Errorf("%d packets did not authenticate at their receivers", res.AuthFailures)
	}
	if !strings.Contains(log.String(), "raw sendmmsg") || !strings.Contains(log.String(), "engine srtp") {
		t.Error("no raw or SRTP figure in the log")
	}
}

// The negative control: a receiver decrypting with a key not its own
// counts every packet as an auth failure and falls behind, so a zero in
// AuthFailures means the others did decrypt.
func TestBenchFanoutCountsAuthFailures(t *testing.T) {
	res, err := benchFanout(context.Background(), 4, 200*time.Millisecond, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.AuthFailures == 0 || res.Behind != 1 {
		t.Errorf("with one wrong key: %d auth failures, %d behind; want some, and 1", res.AuthFailures, res.Behind)
	}
}

// BenchmarkStreamFanout runs BenchFanout with 1000 receivers and prints its
// figures.
func BenchmarkStreamFanout(b *testing.B) {
	for range b.N {
		res, err := BenchFanout(context.Background(), 1000, 3*time.Second, os.Stdout)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.ControllerPPS, "engine-pkt/s")
		b.ReportMetric(res.RawPPS, "raw-pkt/s")
		b.ReportMetric(res.CPUSecondsPerReceiverHour, "cpu-s/receiver-h")
		b.ReportMetric(res.ControllerPPSSRTP, "engine-srtp-pkt/s")
		b.ReportMetric(res.CPUSecondsPerReceiverHourSRTP, "cpu-s/receiver-h-srtp")
		b.ReportMetric(float64(res.Behind), "behind")
	}
}

// BenchmarkFanout1000 measures sending one RTP packet (header + real Opus
// payload) to 1000 receivers on loopback: one op is 1000 datagrams. With
// "drained" every socket is read by a goroutine of this process, so the
// figure includes delivery and wake-ups on the same CPUs; "sink" sockets
// are never read and show the sender's own cost.
func BenchmarkFanout1000(b *testing.B) {
	for _, drain := range []bool{true, false} {
		name := map[bool]string{true: "drained", false: "sink"}[drain]
		b.Run(name, func(b *testing.B) { benchmarkFanout(b, 1000, drain) })
	}
}

func benchmarkFanout(b *testing.B, n int, drain bool) {
	rx, err := openBenchReceivers(n, drain)
	if err != nil {
		b.Fatal(err)
	}
	defer rx.close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	dests := make([]*net.UDPAddr, n)
	for i, rc := range rx.conns {
		dests[i] = rc.LocalAddr().(*net.UDPAddr)
	}
	fo := newFanout(c, newBatchWriter(c))
	payload := opusPackets(b, 1)[0]
	h := rtp.Header{Version: 2, PayloadType: protocol.PayloadType, SSRC: 1}
	var hdr [12]byte
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for i := range b.N {
		h.SequenceNumber = uint16(i)
		if _, err := h.MarshalTo(hdr[:]); err != nil {
			b.Fatal(err)
		}
		k, err := fo.send(hdr[:], payload, dests)
		if err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "pkt/s")
	b.ReportMetric(float64(len(payload)+12), "bytes/pkt")
}

// BenchmarkFanoutSRTP1000 is BenchmarkFanout1000/sink with every
// receiver an SRTP one: one op seals the packet under 1000 keys and sends
// the 1000 datagrams. It should not allocate.
func BenchmarkFanoutSRTP1000(b *testing.B) {
	const n = 1000
	rx, err := openBenchReceivers(n, false)
	if err != nil {
		b.Fatal(err)
	}
	defer rx.close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var secret [protocol.SRTPSecretLen]byte
	dests := make([]sealedDest, n)
	for i, rc := range rx.conns {
		sec, err := newTargetSRTP(secret[:], rx.id(i), protocol.Fence{Gen: 1}, 1)
		if err != nil {
			b.Fatal(err)
		}
		dests[i] = sealedDest{ua: rc.LocalAddr().(*net.UDPAddr), tx: sec.tx}
	}
	fo := newFanout(c, newBatchWriter(c))
	payload := opusPackets(b, 1)[0]
	h := rtp.Header{Version: 2, PayloadType: protocol.PayloadType, SSRC: 1}
	var sh rtp.Header
	pkt := make([]byte, 0, maxDatagram)
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for i := range b.N {
		h.SequenceNumber = uint16(i)
		if _, err := h.MarshalTo(pkt[:12]); err != nil {
			b.Fatal(err)
		}
		pkt = append(pkt[:12], payload...)
		index := uint64(i)
		k, _, err := fo.sendSealed(dests, func(d *sealedDest, dst []byte) ([]byte, error) {
			return d.tx.rtp(dst, pkt, &sh, index)
		})
		if err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "pkt/s")
}

// TestBenchCoresRuns checks the plumbing of BenchCores on a small fleet:
// every run sends, what waits in the sinks authenticates, and the peer is
// handed the same sockets.
func TestBenchCoresRuns(t *testing.T) {
	const n = 8
	var log bytes.Buffer
	var got []netip.AddrPort
	res, err := BenchCores(context.Background(), CoresConfig{Receivers: n, Cores: 2, For: 100 * time.Millisecond, Log: &log,
		Peer: func(_ context.Context, sinks []netip.AddrPort, _ io.Writer) (PeerRun, error) {
			got = sinks
			return PeerRun{Name: "peer", Datagrams: 1, USPerDatagram: 1}, nil
		}})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, r := range []CoresRun{res.One, res.Many, res.Dups, res.OneDescriptor, res.Pinned} {
		if r.Datagrams == 0 || r.CPU <= 0 {
			t.Errorf("%s: %d datagrams, %v CPU", r.Name, r.Datagrams, r.CPU)
		}
	}
	if res.Verified < 5*n || res.VerifyFailed != 0 {
		t.Errorf("%d queued datagrams authenticated, %d not; want ≥ %d and 0", res.Verified, res.VerifyFailed, 5*n)
	}
	if len(got) != n || res.Peer == nil {
		t.Errorf("the peer was given %d sinks, want %d", len(got), n)
	}
	if !strings.Contains(log.String(), "negative control") {
		t.Errorf("no negative control in the log:\n%s", log.String())
	}
}
