package broadcast

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// FanoutResult is what BenchFanout measured.
type FanoutResult struct {
	Receivers                 int
	ControllerPPS             float64 // RTP datagrams/s the engine sent, all receivers together
	RawPPS                    float64 // datagrams/s a bare sendmmsg loop reached on the same sockets
	Ratio                     float64 // ControllerPPS / RawPPS: share of the raw capacity the paced stream used
	CPUSecondsPerReceiverHour float64 // process CPU per receiver per hour of streaming (includes the loopback receivers)
	Behind                    int     // receivers that got < 99% of the packets sent while they listened
}

// benchPayloadSize is the size of a 20 ms mono Opus frame at ~32 kbit/s.
const benchPayloadSize = 80

// BenchFanout streams one session to n receiver sockets on 127.0.0.1 for
// d, each socket drained and counted by its own goroutine and
// authenticated by RTCP as a device would, then drives a bare sendmmsg loop
// of the same packets to the same sockets for d at full speed. It writes
// readable lines to log.
func BenchFanout(ctx context.Context, n int, d time.Duration, log io.Writer) (FanoutResult, error) {
	if n <= 0 || d <= 0 {
		return FanoutResult{}, loa.Errorf(loa.EINVALID, "bench: need receivers > 0 and a duration")
	}
	if log == nil {
		log = io.Discard
	}
	res := FanoutResult{Receivers: n}
	rx, err := openBenchReceivers(n, true)
	if err != nil {
		return res, err
	}
	defer rx.close()

	payloads := benchPayloads(protocol.ClockRate / protocol.FrameSamples)
	e, err := Open(ctx, Config{Bind: "127.0.0.1:0", Tuner: rx})
	if err != nil {
		return res, err
	}
	defer e.Close()
	s := &loa.Session{ID: "bench", SSRC: rand.Uint32() | 1, Priority: loa.PriorityNormal}
	for i := range n {
		s.Devices = append(s.Devices, rx.id(i))
	}
	fmt.Fprintf(log, "fanout: %d receivers on 127.0.0.1, %v of 20 ms packets of %d bytes\n", n, d, benchPayloadSize)
	if err := e.Start(ctx, s, &benchSource{pkts: payloads}, 0); err != nil {
		return res, err
	}
	if err := rx.waitAuthenticated(ctx, e, s.ID); err != nil {
		return res, err
	}

	before := rx.counts()
	st, _ := e.Status(s.ID)
	sent0, cpu0, t0 := st.Sent, processCPU(), time.Now()
	if err := sleep(ctx, d); err != nil {
		return res, err
	}
	st, _ = e.Status(s.ID)
	sent1, cpu1, elapsed := st.Sent, processCPU(), time.Since(t0)
	if err := e.Stop(ctx, s.ID, "bench done"); err != nil {
		return res, err
	}
	after := rx.settled(ctx)

	res.ControllerPPS = float64(sent1-sent0) * float64(n) / elapsed.Seconds()
	hours := float64(n) * elapsed.Hours()
	res.CPUSecondsPerReceiverHour = (cpu1 - cpu0).Seconds() / hours
	expected := sent1 - sent0
	for i := range n {
		if float64(after[i]-before[i]) < 0.99*float64(expected) {
			res.Behind++
		}
	}
	fmt.Fprintf(log, "engine: %.0f pkt/s (%d packets to each receiver in %v; paced target %d pkt/s)\n",
		res.ControllerPPS, expected, elapsed.Round(time.Millisecond), 50*n)
	fmt.Fprintf(log, "engine: %.4f CPU s per receiver-hour, %.2f%% of one core (process total, loopback receive included)\n",
		res.CPUSecondsPerReceiverHour, 100*(cpu1-cpu0).Seconds()/elapsed.Seconds())
	fmt.Fprintf(log, "engine: %d of %d receivers behind (< 99%% of %d packets)\n", res.Behind, n, expected)

	raw, rawCPU, err := rawFanout(ctx, rx, payloads, d)
	if err != nil {
		return res, err
	}
	res.RawPPS = raw
	if raw > 0 {
		res.Ratio = res.ControllerPPS / raw
	}
	fmt.Fprintf(log, "raw sendmmsg: %.0f pkt/s at full speed (%.2f µs CPU per packet)\n", raw, rawCPU.Seconds()*1e6)
	fmt.Fprintf(log, "ratio: the paced stream used %.4f of raw capacity; headroom for ~%.0f receivers at 50 pkt/s\n",
		res.Ratio, raw/50)
	return res, nil
}

// benchPayloads are Opus-shaped packets: a TOC byte for a 20 ms mono
// CELT frame, then noise, at the size the encoder produces for speech.
func benchPayloads(k int) [][]byte {
	out := make([][]byte, k)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range out {
		p := make([]byte, benchPayloadSize)
		p[0] = 0xf8 // config 31 (CELT FB 20 ms), mono, one frame
		for j := 1; j < len(p); j++ {
			p[j] = byte(r.Uint32())
		}
		out[i] = p
	}
	return out
}

// benchSource loops forever over its packets, like a live source.
type benchSource struct {
	pkts [][]byte
	i    int
}

func (s *benchSource) Next() ([]byte, error) {
	p := s.pkts[s.i%len(s.pkts)]
	s.i++
	return p, nil
}

// benchReceivers are the sockets of the simulated devices; they also act as
// the Tuner, authenticating each device from its own socket.
type benchReceivers struct {
	conns []*net.UDPConn
	n     []atomic.Uint64
	wg    sync.WaitGroup

	mu   sync.Mutex
	auth map[string]func() error // resends a device's report
}

// openBenchReceivers opens n sockets on 127.0.0.1, each drained by its own
// goroutine when drain is set; undrained, the kernel drops what overflows.
func openBenchReceivers(n int, drain bool) (*benchReceivers, error) {
	rx := &benchReceivers{n: make([]atomic.Uint64, n), auth: make(map[string]func() error)}
	for i := range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			rx.close()
			return nil, fmt.Errorf("bench: receiver %d: %w", i, err)
		}
		_ = c.SetReadBuffer(1 << 20)
		rx.conns = append(rx.conns, c)
		if drain {
			rx.wg.Add(1)
			go rx.drain(i, c)
		}
	}
	return rx, nil
}

func (rx *benchReceivers) id(i int) string { return fmt.Sprintf("bench-%05d", i) }

func (rx *benchReceivers) drain(i int, c *net.UDPConn) {
	defer rx.wg.Done()
	buf := make([]byte, 2048)
	for {
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		if k >= 12 && !isRTCP(buf[:k]) {
			rx.n[i].Add(1)
		}
	}
}

func (rx *benchReceivers) counts() []uint64 {
	out := make([]uint64, len(rx.n))
	for i := range rx.n {
		out[i] = rx.n[i].Load()
	}
	return out
}

// settled returns the counts once they stop moving: everything sent has
// been read.
func (rx *benchReceivers) settled(ctx context.Context) []uint64 {
	prev := rx.counts()
	for {
		if sleep(ctx, 50*time.Millisecond) != nil {
			return prev
		}
		cur := rx.counts()
		same := true
		for i := range cur {
			if cur[i] != prev[i] {
				same = false
				break
			}
		}
		if same {
			return cur
		}
		prev = cur
	}
}

func (rx *benchReceivers) close() {
	for _, c := range rx.conns {
		c.Close()
	}
	rx.wg.Wait()
}

func (rx *benchReceivers) Tune(ctx context.Context, id string, args protocol.PlayArgs) error {
	var i int
	if _, err := fmt.Sscanf(id, "bench-%05d", &i); err != nil || i < 0 || i >= len(rx.conns) {
		return fmt.Errorf("bench: unknown device %q", id)
	}
	tok, err := hex.DecodeString(args.Token)
	if err != nil {
		return err
	}
	b, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: args.RecvSSRC},
		rtcp.NewCNAMESourceDescription(args.RecvSSRC, id),
		&rtcp.ApplicationDefined{SSRC: args.RecvSSRC, Name: protocol.RTCPAppName, Data: tok},
	})
	if err != nil {
		return err
	}
	to, err := netip.ParseAddrPort(args.Addr)
	if err != nil {
		return err
	}
	send := func() error {
		_, err := rx.conns[i].WriteToUDPAddrPort(b, to)
		return err
	}
	rx.mu.Lock()
	rx.auth[id] = send
	rx.mu.Unlock()
	return send()
}

func (rx *benchReceivers) resend(id string) {
	rx.mu.Lock()
	send := rx.auth[id]
	rx.mu.Unlock()
	if send != nil {
		_ = send()
	}
}

func (rx *benchReceivers) Untune(context.Context, string, string) error { return nil }

// waitAuthenticated waits until every device of the session has an
// address, repeating the reports of those still missing as a receiver
// repeats its RTCP (a burst of first reports can overflow a socket buffer).
func (rx *benchReceivers) waitAuthenticated(ctx context.Context, e *Engine, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for round := 1; ; round++ {
		st, ok := e.Status(id)
		if !ok {
			return errors.New("bench: session ended early")
		}
		done := 0
		for dev, d := range st.Devices {
			if d.Addr != "" {
				done++
			} else if round%20 == 0 {
				rx.resend(dev)
			}
		}
		if done == len(rx.conns) {
			return nil
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return fmt.Errorf("bench: %d of %d receivers authenticated: %w", done, len(rx.conns), err)
		}
	}
}

// rawFanout is the baseline: the same packets to the same sockets through
// the same batched writer, with no pacing, sessions or locks. It returns
// datagrams per second and CPU per datagram.
func rawFanout(ctx context.Context, rx *benchReceivers, payloads [][]byte, d time.Duration) (float64, time.Duration, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, 0, fmt.Errorf("bench: raw socket: %w", err)
	}
	defer c.Close()
	dests := make([]*net.UDPAddr, len(rx.conns))
	for i, rc := range rx.conns {
		dests[i] = rc.LocalAddr().(*net.UDPAddr)
	}
	fo := newFanout(c, newBatchWriter(c))
	h := rtp.Header{Version: 2, PayloadType: protocol.PayloadType, SSRC: 1}
	var hdr [12]byte
	sent := 0
	cpu0, t0 := processCPU(), time.Now()
	for k := 0; time.Since(t0) < d && ctx.Err() == nil; k++ {
		h.SequenceNumber, h.Timestamp = uint16(k), uint32(k)*protocol.FrameSamples
		if _, err := h.MarshalTo(hdr[:]); err != nil {
			return 0, 0, err
		}
		m, _ := fo.send(hdr[:], payloads[k%len(payloads)], dests)
		sent += m
	}
	elapsed, cpu := time.Since(t0), processCPU()-cpu0
	if sent == 0 {
		return 0, 0, errors.New("bench: raw loop sent nothing")
	}
	return float64(sent) / elapsed.Seconds(), cpu / time.Duration(sent), ctx.Err()
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
