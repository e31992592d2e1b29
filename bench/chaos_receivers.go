package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
)

// chaosReceivers are the simulated receivers of `loa bench chaos`, in this
// process. A reboot powers one off (Kill: the broker publishes its Will)
// and boots a new one with the same identity; each boot keeps its own
// record of the sessions it played, and the checks read every boot's.
type chaosReceivers struct {
	mu    sync.Mutex
	cfgs  map[string]firmwaresim.Config
	boots map[string][]*chaosBoot // by device, oldest first
	ids   []string
}

// chaosBoot is one boot of a receiver: alive from up until down (zero
// while it runs).
type chaosBoot struct {
	r        *firmwaresim.Receiver
	up, down time.Time
}

func newChaosReceivers(cfgs []firmwaresim.Config, fleet *firmwaresim.Fleet) *chaosReceivers {
	rs := &chaosReceivers{cfgs: map[string]firmwaresim.Config{}, boots: map[string][]*chaosBoot{}}
	now := time.Now()
	for i, r := range fleet.Receivers() {
		rs.cfgs[r.ID()] = cfgs[i]
		rs.boots[r.ID()] = []*chaosBoot{{r: r, up: now}}
		rs.ids = append(rs.ids, r.ID())
	}
	return rs
}

// running is the running boot of each receiver, nil for one powered off.
func (rs *chaosReceivers) running() []*firmwaresim.Receiver {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []*firmwaresim.Receiver
	for _, id := range rs.ids {
		if b := rs.boots[id]; b[len(b)-1].down.IsZero() {
			out = append(out, b[len(b)-1].r)
		}
	}
	return out
}

// powerOff kills the running boot of id.
func (rs *chaosReceivers) powerOff(id string) {
	rs.mu.Lock()
	b := rs.boots[id][len(rs.boots[id])-1]
	if !b.down.IsZero() {
		rs.mu.Unlock()
		return
	}
	b.down = time.Now()
	rs.mu.Unlock()
	b.r.Kill()
}

// boot starts a new boot of id, retrying while the broker is away.
func (rs *chaosReceivers) boot(ctx context.Context, id string) error {
	for {
		r := firmwaresim.NewReceiver(rs.cfgs[id])
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := r.Start(sctx)
		cancel()
		if err == nil {
			rs.mu.Lock()
			rs.boots[id] = append(rs.boots[id], &chaosBoot{r: r, up: time.Now()})
			rs.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("reboot %s: %w", id, err)
		}
		sleepCtx(ctx, time.Second)
	}
}

// aliveDuring reports whether some boot of id ran at a moment of [from, to].
func (rs *chaosReceivers) aliveDuring(id string, from, to time.Time) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, b := range rs.boots[id] {
		if b.up.Before(to) && (b.down.IsZero() || b.down.After(from)) {
			return true
		}
	}
	return false
}

// record is every part of every session id's boots played, by session.
func (rs *chaosReceivers) record(id string) map[string][]firmwaresim.SessionStats {
	rs.mu.Lock()
	boots := append([]*chaosBoot(nil), rs.boots[id]...)
	rs.mu.Unlock()
	out := map[string][]firmwaresim.SessionStats{}
	for _, b := range boots {
		for _, st := range b.r.Sessions() {
			out[st.Session] = append(out[st.Session], st)
		}
	}
	return out
}

// setLoss sets every running receiver's burst loss.
func (rs *chaosReceivers) setLoss(p float64) {
	for _, r := range rs.running() {
		r.SetLoss(p)
	}
}

// close powers off every running boot (an orderly close can wait on its
// outbox after reconnects; the record is what counts here).
func (rs *chaosReceivers) close() {
	var wg sync.WaitGroup
	for _, r := range rs.running() {
		wg.Add(1)
		go func() { defer wg.Done(); r.Kill() }()
	}
	wg.Wait()
}

// describe lists id's boots and the sessions each played, for a report.
func (rs *chaosReceivers) describe(id string, t0 time.Time) string {
	rs.mu.Lock()
	boots := append([]*chaosBoot(nil), rs.boots[id]...)
	rs.mu.Unlock()
	var out []string
	for _, b := range boots {
		var ss []string
		for _, st := range b.r.Sessions() {
			ss = append(ss, st.Session)
		}
		down := "running"
		if !b.down.IsZero() {
			down = fmt.Sprintf("off at %.1fs", b.down.Sub(t0).Seconds())
		}
		out = append(out, fmt.Sprintf("boot up at %.1fs, %s, sessions %v", b.up.Sub(t0).Seconds(), down, ss))
	}
	return strings.Join(out, "; ")
}
