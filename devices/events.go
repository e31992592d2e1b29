package devices

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// notice is an event, a presence change, a telemetry sample or a command
// result on its way to subscribers.
type notice struct {
	presence bool
	id       string
	ev       protocol.Event
	st       loa.DeviceState
	tele     *loa.Telemetry // a telemetry notice (observe.go)
	cmd      *commandNotice // a command result notice (observe.go)
}

type eventSub struct {
	n  uint64
	fn func(string, protocol.Event)
}

type presenceSub struct {
	n  uint64
	fn func(loa.DeviceState)
}

// subscribers are copy-on-write lists, so the notifier reads them without
// a lock and never calls out while holding one.
type subscribers struct {
	mu       sync.Mutex
	next     uint64
	events   atomic.Pointer[[]eventSub]
	presence atomic.Pointer[[]presenceSub]
	tele     atomic.Pointer[[]teleSub]    // observe.go
	commands atomic.Pointer[[]commandSub] // observe.go
}

func (s *subscribers) hasEvents() bool {
	p := s.events.Load()
	return p != nil && len(*p) > 0
}

func (s *subscribers) hasPresence() bool {
	p := s.presence.Load()
	return p != nil && len(*p) > 0
}

func load[T any](p *atomic.Pointer[[]T]) []T {
	if l := p.Load(); l != nil {
		return *l
	}
	return nil
}

// OnEvent calls fn with every valid event a device sends (played,
// finished, amp_fault, ...), in arrival order per device, on the fleet's
// notifier goroutine and outside its locks. fn must not block for long:
// every subscriber shares that goroutine. ev.Stream is shared between
// subscribers and must not be modified. cancel stops further calls.
func (f *Fleet) OnEvent(fn func(deviceID string, ev protocol.Event)) (cancel func()) {
	s := &f.subs
	s.mu.Lock()
	s.next++
	n := s.next
	l := append(slices.Clone(load(&s.events)), eventSub{n: n, fn: fn})
	s.events.Store(&l)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		l := removeSub(load(&s.events), func(e eventSub) bool { return e.n == n })
		s.events.Store(&l)
	}
}

// OnPresence calls fn with the device's state whenever it comes online,
// goes offline or reboots, under the same rules as OnEvent.
func (f *Fleet) OnPresence(fn func(st loa.DeviceState)) (cancel func()) {
	s := &f.subs
	s.mu.Lock()
	s.next++
	n := s.next
	l := append(slices.Clone(load(&s.presence)), presenceSub{n: n, fn: fn})
	s.presence.Store(&l)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		l := removeSub(load(&s.presence), func(p presenceSub) bool { return p.n == n })
		s.presence.Store(&l)
	}
}

func removeSub[T any](l []T, match func(T) bool) []T {
	out := make([]T, 0, len(l))
	for _, x := range l {
		if !match(x) {
			out = append(out, x)
		}
	}
	return out
}

func (f *Fleet) publishEvent(id string, ev protocol.Event) {
	if f.subs.hasEvents() {
		f.pushNotice(notice{id: id, ev: ev})
	}
}

func (f *Fleet) pushNotice(n notice) {
	if !f.notices.push(n) {
		if d := f.dropped.Add(1); d == 1 || d%1000 == 0 {
			f.log.Warn("fleet subscribers behind; dropping notices", "dropped", d, "device", n.id)
		}
	}
}

// notify runs on the notifier goroutine.
func (f *Fleet) notify(batch []notice) {
	for i := range batch {
		n := &batch[i]
		if n.presence {
			for _, s := range load(&f.subs.presence) {
				f.call(n.id, func() { s.fn(n.st) })
			}
			continue
		}
		if n.tele != nil || n.cmd != nil {
			f.notifyObservers(n)
			continue
		}
		for _, s := range load(&f.subs.events) {
			f.call(n.id, func() { s.fn(n.id, n.ev) })
		}
	}
}

// call runs one subscriber; a panicking subscriber is logged, not fatal to
// the fleet.
func (f *Fleet) call(id string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("fleet: subscriber panicked", "device", id, "panic", r)
		}
	}()
	fn()
}
