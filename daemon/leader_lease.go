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

type leaderLease struct {
	verify    func() error
	confirmed atomic.Int64 // unix ns of the last confirmation
}

// newLeaderLease starts confirmed: the node was just elected.
func newLeaderLease(verify func() error) *leaderLease {
	l := &leaderLease{verify: verify}
	l.confirmed.Store(time.Now().UnixNano())
	return l
}

// valid reports whether the lead was confirmed within leaseFor.
func (l *leaderLease) valid() bool {
	return time.Since(time.Unix(0, l.confirmed.Load())) < leaseFor
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
		asked := time.Now()
		if l.verify() == nil {
			l.confirmed.Store(asked.UnixNano())
		}
	}
}
