package broadcast

import (
	"context"
	"net"
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
	if res.Receivers != 20 || res.ControllerPPS <= 0 || res.RawPPS <= 0 || res.Ratio <= 0 {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(log.String(), "raw sendmmsg") {
		t.Error("no raw figure in the log")
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
