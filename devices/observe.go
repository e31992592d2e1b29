package devices

import (
	"slices"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// The health book and the alarm evaluator watch the fleet through these
// subscriptions, on the notifier goroutine, like OnEvent and OnPresence.

type teleSub struct {
	n  uint64
	fn func(string, loa.Telemetry)
}

type commandSub struct {
	n  uint64
	fn func(loa.CommandResult, protocol.Ack)
}

// commandNotice is a command's final ack with the result it completed.
type commandNotice struct {
	res loa.CommandResult
	ack protocol.Ack
}

// OnTelemetry calls fn with every valid telemetry sample (At is the
// receive time; Stream is shared between subscribers and must not be
// modified), under the rules of OnEvent.
func (f *Fleet) OnTelemetry(fn func(deviceID string, t loa.Telemetry)) (cancel func()) {
	return subscribe(&f.subs, &f.subs.tele, func(n uint64) teleSub { return teleSub{n, fn} }, func(s teleSub) uint64 { return s.n })
}

// OnCommandResult calls fn with every command of this fleet that a device
// answered with a final ack (done, failed, expired), under the rules of
// OnEvent.
func (f *Fleet) OnCommandResult(fn func(r loa.CommandResult, a protocol.Ack)) (cancel func()) {
	return subscribe(&f.subs, &f.subs.commands, func(n uint64) commandSub { return commandSub{n, fn} }, func(s commandSub) uint64 { return s.n })
}

func subscribe[T any](s *subscribers, list interface {
	Load() *[]T
	Store(*[]T)
}, mk func(uint64) T, num func(T) uint64) func() {
	s.mu.Lock()
	s.next++
	n := s.next
	cur := list.Load()
	var l []T
	if cur != nil {
		l = slices.Clone(*cur)
	}
	l = append(l, mk(n))
	list.Store(&l)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		var old []T
		if cur := list.Load(); cur != nil {
			old = *cur
		}
		l := removeSub(old, func(x T) bool { return num(x) == n })
		list.Store(&l)
	}
}

// observeTelemetry passes the device's telemetry just applied to the
// telemetry subscribers.
func (f *Fleet) observeTelemetry(id string) {
	if len(load(&f.subs.tele)) == 0 {
		return
	}
	f.mu.Lock()
	d, ok := f.devices[id]
	var t loa.Telemetry
	if ok {
		t = d.tele
		if d.hasStream {
			s := d.stream
			t.Stream = &s
		}
	}
	f.mu.Unlock()
	if ok {
		f.pushNotice(notice{id: id, tele: &t})
	}
}

// observeAck passes a final ack with its command's result to the command
// subscribers.
func (f *Fleet) observeAck(a protocol.Ack) {
	if !a.Final() || len(load(&f.subs.commands)) == 0 {
		return
	}
	f.cmdMu.Lock()
	r := f.results.get(a.ID)
	var res loa.CommandResult
	if r != nil {
		res = *r
	}
	f.cmdMu.Unlock()
	if r != nil {
		f.pushNotice(notice{id: res.Device, cmd: &commandNotice{res: res, ack: a}})
	}
}

// notifyObservers runs on the notifier goroutine.
func (f *Fleet) notifyObservers(n *notice) {
	if n.tele != nil {
		for _, s := range load(&f.subs.tele) {
			f.call(n.id, func() { s.fn(n.id, *n.tele) })
		}
		return
	}
	for _, s := range load(&f.subs.commands) {
		f.call(n.id, func() { s.fn(n.cmd.res, n.cmd.ack) })
	}
}
