package broadcast

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-broadcast/loa"
)

// subscriber is one Subscribe call.
type subscriber struct {
	fn  func(loa.SessionOutcome)
	off atomic.Bool // set by its cancel
}

// Subscribe calls fn with every outcome of every session from now on:
// loa.OutcomeStreaming from the session's goroutine once its first packet
// has left; loa.OutcomePreempted, from a goroutine of its own, when a new
// session takes devices from it; loa.OutcomeEnded once, from the session's
// goroutine after its last packet and BYE (so before Stop returns), and
// always last: it waits for the session's preempted outcomes. Outcomes of
// different sessions may arrive concurrently. Subscribers are called in
// the order they subscribed, each until it returns: fn must not call
// Close or Stop, nor block long (it holds up a stream, or Close).
//
// cancel stops delivery to fn (a call already under way completes).
// Every goroutine that calls fn ends before Close returns, so after Close
// no subscriber is ever called.
func (e *Engine) Subscribe(fn func(loa.SessionOutcome)) (cancel func()) {
	s := &subscriber{fn: fn}
	e.subMu.Lock()
	subs := append(slices.Clone(*e.subs.Load()), s)
	e.subs.Store(&subs)
	e.subMu.Unlock()
	return sync.OnceFunc(func() {
		s.off.Store(true)
		e.subMu.Lock()
		subs := slices.DeleteFunc(slices.Clone(*e.subs.Load()), func(x *subscriber) bool { return x == s })
		e.subs.Store(&subs)
		e.subMu.Unlock()
	})
}

// deliver calls the subscribers with o, in subscription order.
func (e *Engine) deliver(o loa.SessionOutcome) {
	for _, s := range *e.subs.Load() {
		if !s.off.Load() {
			s.fn(o)
		}
	}
}

// notifyPreempted tells the subscribers which devices the session by took
// from each session in lost; it runs on its own goroutine (started under
// e.mu, which subscribers must not wait for) and the ended outcome of each
// session in lost waits for it.
func (e *Engine) notifyPreempted(lost map[*session][]string, by string, at time.Time) {
	defer e.wg.Done()
	for s, devices := range lost {
		e.deliver(loa.SessionOutcome{Kind: loa.OutcomePreempted, Session: s.id, At: at, Devices: devices, By: by})
		s.preempts.Done()
	}
}
