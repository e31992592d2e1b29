package firmwaresim

import (
	"fmt"
	"slices"

	"github.com/loa-broadcast/loa/protocol"
)

// CodeFence is the ack code of a play refused because a controller of a
// higher fence already played that session here (contract v2, "fence").
const CodeFence = "fence"

// maxFences bounds the sessions whose highest fence a receiver remembers;
// the oldest is forgotten first, long after its session ended.
const maxFences = 64

// fenceBook is the highest fence seen, in flash on a real receiver: it
// survives reboots. Receiver.mu guards it.
type fenceBook struct {
	// station is the highest fence of any play that carried one: a
	// deposed leader's play of another session (a schedule it still
	// starts) is refused too, not only a replay of one the new leader
	// took over.
	station protocol.Fence
	order   []string // sessions, oldest first
	high    map[string]protocol.Fence
}

// admitFence checks a play's fence (absent counts as {0, 0}) against the
// highest seen for its session and, when the play carries one, against
// the highest seen for any session; when it is not lower, records it, so
// a deposed controller cannot take a speaker back nor start anything on
// it. A v1 receiver announces no fence and checks none.
func (r *Receiver) admitFence(args protocol.PlayArgs) error {
	if r.cfg.V1 {
		return nil
	}
	var f protocol.Fence
	if args.Fence != nil {
		f = *args.Fence
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := &r.fences
	if args.Fence != nil && f.Less(b.station) {
		return fmt.Errorf("fence {%d %d} is lower than {%d %d}, already seen from a controller",
			f.Gen, f.Term, b.station.Gen, b.station.Term)
	}
	high, seen := b.high[args.Session]
	if seen && f.Less(high) {
		return fmt.Errorf("fence {%d %d} is lower than {%d %d}, already seen for session %s",
			f.Gen, f.Term, high.Gen, high.Term, args.Session)
	}
	if b.station.Less(f) {
		b.station = f
	}
	if b.high == nil {
		b.high = make(map[string]protocol.Fence)
	}
	if !seen {
		if len(b.order) == maxFences {
			delete(b.high, b.order[0])
			b.order = slices.Delete(b.order, 0, 1)
		}
		b.order = append(b.order, args.Session)
	}
	b.high[args.Session] = f
	return nil
}

// admitCommandFence checks a command envelope's fence (absent: nothing
// to check) against the station fence and, when it is not lower, raises
// the station fence to it: a deposed controller's stop, mute or config is
// refused like its plays.
func (r *Receiver) admitCommandFence(cmd protocol.Command) error {
	if r.cfg.V1 || cmd.Fence == nil {
		return nil
	}
	f := *cmd.Fence
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.Less(r.fences.station) {
		return fmt.Errorf("command fence {%d %d} is lower than {%d %d}, already seen from a controller",
			f.Gen, f.Term, r.fences.station.Gen, r.fences.station.Term)
	}
	r.fences.station = f
	return nil
}

// Fence returns the highest fence the receiver has accepted a play of.
func (r *Receiver) Fence() protocol.Fence {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fences.station
}

// samePlay reports whether two plays are the same command (a controller's
// retry): equal fields, keys and fence compared by value.
func samePlay(a, b protocol.PlayArgs) bool {
	ka, kb, fa, fb := a.Keys, b.Keys, a.Fence, b.Fence
	a.Keys, b.Keys, a.Fence, b.Fence = nil, nil, nil, nil
	return a == b && eqPtr(ka, kb) && eqPtr(fa, fb)
}

func eqPtr[T comparable](a, b *T) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}
