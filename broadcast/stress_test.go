package broadcast

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"

	"github.com/loa-broadcast/loa"
)

// Sessions with overlapping devices and mixed priorities start and stop
// concurrently. Throughout, every device is held by a session no other
// running session outranks; at the end the engine keeps no device state.
func TestArbitrationUnderConcurrency(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	const devices, sessions = 12, 24
	var ids []string
	for i := range devices {
		ids = append(ids, fmt.Sprintf("d%02d", i))
		h.tuner.device(ids[i])
	}
	opusPackets(t, 4) // fills opusFrame
	prios := []loa.Priority{20, 64, 64, 150, 240, 240}
	r := rand.New(rand.NewPCG(7, 7))
	type spec struct {
		id   string
		prio loa.Priority
		devs []string
	}
	var specs []spec
	for i := range sessions {
		var devs []string
		for _, d := range ids {
			if r.IntN(3) == 0 {
				devs = append(devs, d)
			}
		}
		specs = append(specs, spec{fmt.Sprintf("s%02d", i), prios[r.IntN(len(prios))], devs})
	}

	check := func() {
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		for id, d := range h.e.devices {
			for _, s := range h.e.sessions {
				tg := s.targets[id]
				if tg == nil || s.stopState != "" {
					continue
				}
				if tg.holds != (d.holder == s) {
					t.Errorf("%s in %s: holds=%v, holder %v", id, s.id, tg.holds, d.holder != nil && d.holder == s)
				}
				if d.holder == nil {
					t.Errorf("%s: no holder while %s targets it", id, s.id)
				} else if s.prio > d.holder.prio {
					t.Errorf("%s: held by %s (%d) while %s (%d) runs", id, d.holder.id, d.holder.prio, s.id, s.prio)
				}
			}
		}
	}

	var wg sync.WaitGroup
	for _, sp := range specs {
		wg.Go(func() {
			s := &loa.Session{ID: sp.id, SSRC: rand.Uint32() | 1, Priority: sp.prio, Devices: sp.devs}
			if err := h.e.Start(context.Background(), s, &loopSource{pkts: opusFrame[:4]}, 0); err != nil {
				t.Errorf("start %s: %v", sp.id, err)
			}
			check()
		})
	}
	wg.Wait()
	check()
	for _, i := range r.Perm(sessions) {
		wg.Go(func() {
			if err := h.e.Stop(context.Background(), specs[i].id, "stress"); err != nil {
				t.Errorf("stop %s: %v", specs[i].id, err)
			}
			check()
		})
	}
	wg.Wait()
	waitFor(t, "device state released", func() bool {
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		return len(h.e.devices) == 0 && len(h.e.byRecv) == 0 && len(h.e.sessions) == 0
	})
	for _, sp := range specs {
		h.ended(t, sp.id)
	}
}

func TestIPv6Engine(t *testing.T) {
	h := newHarness(t, "[::1]:0")
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	r := &receiver{conn: c, in: make(chan []byte, 1024)}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r.in <- append([]byte(nil), buf[:n]...)
		}
	}()
	t.Cleanup(func() { c.Close() })
	h.tuner.mu.Lock()
	h.tuner.receivers["d"] = r
	h.tuner.mu.Unlock()
	gate := newGate(&sliceSource{pkts: opusPackets(t, 20)})
	h.start(t, "s", loa.PriorityNormal, 81, gate, 20, "d")
	waitFor(t, "authenticated", func() bool { return h.authenticated("s") == 1 })
	gate.open()
	if s := r.untilBye(t, 81); len(s.rtp) != 20 {
		t.Fatalf("%d of 20 packets over IPv6", len(s.rtp))
	}
	if h.e.PublicAddr() != h.e.LocalAddr().String() || h.e.LocalAddr().Addr().Is4() {
		t.Errorf("public %s local %s", h.e.PublicAddr(), h.e.LocalAddr())
	}
}

func TestIPv4EngineRefusesIPv6Listener(t *testing.T) {
	h := newHarness(t, "127.0.0.1:0")
	h.start(t, "s", loa.PriorityNormal, 1, &loopSource{pkts: opusPackets(t, 1)}, 0)
	if err := h.e.AddListener("s", netipMust("[::1]:5004"), nil); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("v6 listener on a v4 socket: %v", err)
	}
}
