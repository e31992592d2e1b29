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
	"github.com/pion/srtp/v3"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// FanoutResult is what BenchFanout measured.
type FanoutResult struct {
	Receivers                 int
	ControllerPPS             float64 // RTP datagrams/s the engine sent, all receivers together (plain RTP)
	RawPPS                    float64 // datagrams/s a bare sendmmsg loop reached on the same sockets
	Ratio                     float64 // ControllerPPS / RawPPS: share of the raw capacity the paced stream used
	CPUSecondsPerReceiverHour float64 // process CPU per receiver per hour of streaming (includes the loopback receivers)
	Behind                    int     // receivers that got < 99% of the packets sent while they listened, both runs

	// The same with every receiver an SRTP one (AEAD_AES_128_GCM, a key
	// each): the engine seals per receiver, the receivers decrypt and
	// authenticate with their own keys.
	ControllerPPSSRTP             float64
	RatioSRTP                     float64 // ControllerPPSSRTP / RawPPS
	CPUSecondsPerReceiverHourSRTP float64 // includes the receivers' decryption
	AuthFailures                  uint64  // packets that did not authenticate at a receiver (goal 0)
}

// benchPayloadSize is the size of a 20 ms mono Opus frame at ~32 kbit/s.
const benchPayloadSize = 80

// BenchFanout streams one session to n receiver sockets on 127.0.0.1 for
// d as plain RTP, then for d as SRTP (a key per receiver, each socket
// decrypting with its own), each socket drained and counted by its own
// goroutine and authenticated by RTCP or SRTCP as a device would, then
// drives a bare sendmmsg loop of the same packets to the same sockets for
// d at full speed. It writes readable lines to log.
func BenchFanout(ctx context.Context, n int, d time.Duration, log io.Writer) (FanoutResult, error) {
	return benchFanout(ctx, n, d, log, -1)
}

// benchFanout is BenchFanout; receiver wrongKey (if ≥ 0) decrypts with a
// key not its own, the negative control of AuthFailures.
func benchFanout(ctx context.Context, n int, d time.Duration, log io.Writer, wrongKey int) (FanoutResult, error) {
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
	rx.wrongKey = wrongKey

	payloads := benchPayloads(protocol.ClockRate / protocol.FrameSamples)
	fmt.Fprintf(log, "fanout: %d receivers on 127.0.0.1, %v of 20 ms packets of %d bytes, plain RTP then SRTP\n", n, d, benchPayloadSize)
	for _, srtp := range []bool{false, true} {
		run, err := rx.stream(ctx, payloads, d, srtp)
		if err != nil {
			return res, err
		}
		mode := "plain"
		if srtp {
			mode = "srtp"
			res.ControllerPPSSRTP, res.CPUSecondsPerReceiverHourSRTP = run.pps, run.cpu
			res.AuthFailures = rx.authFailures()
		} else {
			res.ControllerPPS, res.CPUSecondsPerReceiverHour = run.pps, run.cpu
		}
		res.Behind += run.behind
		fmt.Fprintf(log, "engine %s: %.0f pkt/s (%d packets to each receiver in %v; paced target %d pkt/s)\n",
			mode, run.pps, run.expected, run.elapsed.Round(time.Millisecond), 50*n)
		fmt.Fprintf(log, "engine %s: %.4f CPU s per receiver-hour, %.2f%% of one core (process total, loopback receive included)\n",
			mode, run.cpu, 100*run.cpuSeconds/run.elapsed.Seconds())
		fmt.Fprintf(log, "engine %s: %d of %d receivers behind (< 99%% of %d packets)\n", mode, run.behind, n, run.expected)
	}
	fmt.Fprintf(log, "engine srtp: %d packets did not authenticate at their receiver\n", res.AuthFailures)

	raw, rawCPU, err := rawFanout(ctx, rx, payloads, d)
	if err != nil {
		return res, err
	}
	res.RawPPS = raw
	if raw > 0 {
		res.Ratio = res.ControllerPPS / raw
		res.RatioSRTP = res.ControllerPPSSRTP / raw
	}
	fmt.Fprintf(log, "raw sendmmsg: %.0f pkt/s at full speed (%.2f µs CPU per packet)\n", raw, rawCPU.Seconds()*1e6)
	fmt.Fprintf(log, "ratio: the paced stream used %.4f (plain) and %.4f (srtp) of raw capacity; headroom for ~%.0f receivers at 50 pkt/s\n",
		res.Ratio, res.RatioSRTP, raw/50)
	return res, nil
}

// benchRun is one streaming run's figures.
type benchRun struct {
	pps, cpu   float64 // datagrams/s; CPU s per receiver-hour
	cpuSeconds float64
	elapsed    time.Duration
	expected   uint64 // packets each receiver should have had
	behind     int
}

// stream runs one session to every receiver for d, plain or SRTP, and
// measures it.
func (rx *benchReceivers) stream(ctx context.Context, payloads [][]byte, d time.Duration, srtp bool) (benchRun, error) {
	var run benchRun
	n := len(rx.conns)
	rx.srtp.Store(srtp)
	e, err := Open(ctx, Config{Bind: "127.0.0.1:0", Tuner: rx, Caps: rx, Fence: protocol.Fence{Gen: 1}})
	if err != nil {
		return run, err
	}
	defer e.Close()
	s := &loa.Session{ID: "bench", SSRC: rand.Uint32() | 1, Priority: loa.PriorityNormal}
	for i := range n {
		s.Devices = append(s.Devices, rx.id(i))
	}
	if err := e.Start(ctx, s, &benchSource{pkts: payloads}, 0); err != nil {
		return run, err
	}
	if err := rx.waitAuthenticated(ctx, e, s.ID); err != nil {
		return run, err
	}

	before := rx.counts()
	st, _ := e.Status(s.ID)
	sent0, cpu0, t0 := st.Sent, processCPU(), time.Now()
	if err := sleep(ctx, d); err != nil {
		return run, err
	}
	st, _ = e.Status(s.ID)
	sent1, cpu1, elapsed := st.Sent, processCPU(), time.Since(t0)
	if err := e.Stop(ctx, s.ID, "bench done"); err != nil {
		return run, err
	}
	after := rx.settled(ctx)

	run.elapsed, run.cpuSeconds = elapsed, (cpu1 - cpu0).Seconds()
	run.pps = float64(sent1-sent0) * float64(n) / elapsed.Seconds()
	run.cpu = run.cpuSeconds / (float64(n) * elapsed.Hours())
	run.expected = sent1 - sent0
	for i := range n {
		if float64(after[i]-before[i]) < 0.99*float64(run.expected) {
			run.behind++
		}
	}
	return run, nil
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
// the Tuner, authenticating each device from its own socket, and as Caps:
// in an SRTP run every device announces srtp-gcm and decrypts with its keys.
type benchReceivers struct {
	conns []*net.UDPConn
	n     []atomic.Uint64 // RTP packets received (and, with SRTP, authenticated)
	fail  []atomic.Uint64 // SRTP packets that did not authenticate
	keys  []atomic.Pointer[srtp.Context]
	wg    sync.WaitGroup

	srtp     atomic.Bool
	wrongKey int // this receiver decrypts under a wrong key (negative control); -1: none
	// from is the engine's address, once a play named it: a datagram from
	// anywhere else is a failure, as a receiver drops it (play.addr).
	from atomic.Pointer[netip.AddrPort]

	mu   sync.Mutex
	auth map[string]func() error // resends a device's report
}

// openBenchReceivers opens n sockets on 127.0.0.1, each drained by its own
// goroutine when drain is set; undrained, the kernel drops what overflows.
func openBenchReceivers(n int, drain bool) (*benchReceivers, error) {
	rx := &benchReceivers{n: make([]atomic.Uint64, n), fail: make([]atomic.Uint64, n),
		keys: make([]atomic.Pointer[srtp.Context], n), auth: make(map[string]func() error), wrongKey: -1}
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

// HasCap announces srtp-gcm for every device during an SRTP run.
func (rx *benchReceivers) HasCap(_, c string) bool {
	return c == protocol.CapSRTPGCM && rx.srtp.Load()
}

// drain counts what arrives at receiver i: every RTP packet of a plain
// run; in an SRTP run those that authenticate under its keys (replay
// protection on, as a receiver keeps it), the others as failures.
func (rx *benchReceivers) drain(i int, c *net.UDPConn) {
	defer rx.wg.Done()
	buf := make([]byte, 2048)
	out := make([]byte, 0, 2048)
	var h rtp.Header
	for {
		k, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if k < 12 || isRTCP(buf[:k]) {
			continue
		}
		if want := rx.from.Load(); want != nil && from != *want {
			rx.fail[i].Add(1)
			continue
		}
		if sc := rx.keys[i].Load(); sc != nil {
			if _, err := sc.DecryptRTP(out[:0], buf[:k], &h); err != nil {
				rx.fail[i].Add(1)
				continue
			}
		}
		rx.n[i].Add(1)
	}
}

func (rx *benchReceivers) authFailures() uint64 {
	var sum uint64
	for i := range rx.fail {
		sum += rx.fail[i].Load()
	}
	return sum
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
	to, err := netip.ParseAddrPort(args.Addr)
	if err != nil {
		return err
	}
	rx.from.Store(&to)
	report := []rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: args.RecvSSRC},
		rtcp.NewCNAMESourceDescription(args.RecvSSRC, id),
	}
	var send func() error
	if args.Keys != nil {
		key, salt, err := args.Keys.Material()
		if err != nil {
			return err
		}
		in, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm,
			srtp.SRTPReplayProtection(protocol.SRTPReplayWindow))
		if err != nil {
			return err
		}
		if i == rx.wrongKey {
			bad := append([]byte(nil), key...)
			bad[0] ^= 1
			if in, err = srtp.CreateContext(bad, salt, srtp.ProtectionProfileAeadAes128Gcm); err != nil {
				return err
			}
		}
		out, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
		if err != nil {
			return err
		}
		rx.keys[i].Store(in)
		plain, err := rtcp.Marshal(report)
		if err != nil {
			return err
		}
		var mu sync.Mutex
		send = func() error { // each report sealed afresh: a resent one would be a replay
			mu.Lock()
			b, err := out.EncryptRTCP(nil, plain, nil)
			mu.Unlock()
			if err != nil {
				return err
			}
			_, err = rx.conns[i].WriteToUDPAddrPort(b, to)
			return err
		}
	} else {
		rx.keys[i].Store(nil)
		tok, err := hex.DecodeString(args.Token)
		if err != nil {
			return err
		}
		b, err := rtcp.Marshal(append(report,
			&rtcp.ApplicationDefined{SSRC: args.RecvSSRC, Name: protocol.RTCPAppName, Data: tok}))
		if err != nil {
			return err
		}
		send = func() error {
			_, err := rx.conns[i].WriteToUDPAddrPort(b, to)
			return err
		}
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
