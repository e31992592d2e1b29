package daemon

import (
	"context"
	"sync/atomic"
	"time"
)

// A leader's lease: how long after its lead was last confirmed by a
// quorum it still sends packets. A leader frozen (SIGSTOP, a paused VM)
// and thawed runs on for a moment before Raft makes it step down; its
// streams' late packets would reach receivers still tuned by it that have
// not yet heard from its successor's higher fence. Confirmations every
// leaseCheckEvery keep a live leader's lease fresh; a thaw finds it stale.
const (
	leaseFor        = 1500 * time.Millisecond
	leaseCheckEvery = 250 * time.Millisecond
)

// Times are on the monotonic clock (offsets from start, which keeps its
// monotonic reading): a step of the wall clock, as a thawed VM's time
// resync makes, must neither keep a stale lease valid nor end a fresh one.
type leaderLease struct {
	verify    func() error
	start     time.Time
	confirmed atomic.Int64 // the last confirmation, as ns since start
}

// newLeaderLease starts confirmed: the node was just elected.
func newLeaderLease(verify func() error) *leaderLease {
	return &leaderLease{verify: verify, start: time.Now()}
}

// valid reports whether the lead was confirmed within leaseFor.
func (l *leaderLease) valid() bool {
	return time.Since(l.start)-time.Duration(l.confirmed.Load()) < leaseFor
}

// run confirms the lead until ctx ends.
func (l *leaderLease) run(ctx context.Context) {
	t := time.NewTicker(leaseCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		asked := time.Since(l.start)
		if l.verify() == nil {
			l.confirmed.Store(int64(asked))
		}
	}
}
