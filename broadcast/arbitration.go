package broadcast

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// device is the engine's view of one receiver: which session it plays and
// the commands on their way to it.
type device struct {
	id string

	// cmd serialises Tune and Untune to the device so they arrive in the
	// order they were decided.
	cmd sync.Mutex

	// Guarded by e.mu.
	holder  *session
	gen     uint64             // bumped on every decision; a command for an older one is not sent
	cancel  context.CancelFunc // cancels the command in flight when a newer decision supersedes it
	refs    int                // running sessions that target the device
	pending int                // commands not yet done
}

// claim arbitrates t's device for t's session at start; e.mu must be held.
// A higher priority takes the device; at equal priority the session that
// plays keeps it, except in the emergency band where the newest wins
// (loa.Priority.Preempts).
func (e *Engine) claim(t *target) (preempted *session) {
	d := e.devices[t.device]
	if d == nil {
		d = &device{id: t.device}
		e.devices[t.device] = d
	}
	d.refs++
	if d.holder != nil && !t.s.prio.Preempts(d.holder.prio) {
		t.state = DevicePreempted
		return nil
	}
	if old := d.holder; old != nil {
		ot := old.targets[d.id]
		ot.holds, ot.state, ot.err = false, DevicePreempted, ""
		old.publish()
		e.log.Info("device preempted", "device", d.id, "session", old.id, "by", t.s.id)
		preempted = old
	}
	e.hold(d, t)
	e.command(d, nil, t)
	return preempted
}

// hold makes t's session the device's holder; e.mu must be held.
func (e *Engine) hold(d *device, t *target) {
	d.holder = t.s
	t.holds, t.state, t.err = true, DeviceTuning, ""
	if t.sec != nil {
		if t.sec.holds > 0 {
			e.rekey(t)
		}
		t.sec.holds++
	}
	t.s.publish()
}

// release hands the devices s held to the best session still running that
// targets them, and untunes the ones left without one when untune is set;
// e.mu must be held and s already removed from e.sessions.
func (e *Engine) release(s *session, untune bool) {
	for _, t := range s.order {
		if t.refused {
			continue // never claimed
		}
		d := e.devices[t.device]
		d.refs--
		if d.holder == s {
			d.holder = nil
			t.holds = false
			next := e.successor(d)
			if next != nil {
				e.hold(d, next)
				e.log.Info("device returned", "device", d.id, "session", next.s.id, "from", s.id)
			}
			if !e.closed {
				var un *session
				var after time.Duration
				if untune {
					un = s
				} else if next != nil {
					// It ended by itself: its last packets still sit in the
					// receiver's playout buffer. Retune once they have played.
					after = e.cfg.Delay + 2*protocol.FrameDuration
				}
				e.commandAfter(d, un, next, after)
			}
		}
		e.forget(d)
	}
}

// successor picks the running session that should get d back: the highest
// priority; among equals the oldest (it was playing first), or in the
// emergency band the newest.
func (e *Engine) successor(d *device) *target {
	var best *target
	for _, s := range e.sessions {
		t := s.targets[d.id]
		if t == nil || t.refused || s.stopState != "" {
			continue
		}
		if best == nil || s.prio > best.s.prio ||
			s.prio == best.s.prio && (s.prio.Emergency() == (s.seqNo > best.s.seqNo)) {
			best = t
		}
	}
	return best
}

// forget drops d once nothing refers to it; e.mu must be held.
func (e *Engine) forget(d *device) {
	if d.refs == 0 && d.pending == 0 && d.holder == nil && e.devices[d.id] == d {
		delete(e.devices, d.id)
	}
}

// command sends the device what was just decided: Untune the session it
// leaves (if any), then Tune the one it joins (if any). e.mu must be held.
// A newer decision cancels this one's call in flight and, if this one has
// not started, skips its Tune.
func (e *Engine) command(d *device, untune *session, tune *target) {
	e.commandAfter(d, untune, tune, 0)
}

// commandAfter is command sent after a pause (a newer decision still
// supersedes it); e.mu must be held.
func (e *Engine) commandAfter(d *device, untune *session, tune *target, after time.Duration) {
	d.gen++
	if d.cancel != nil {
		d.cancel()
		d.cancel = nil
	}
	if untune == nil && tune == nil {
		return
	}
	c := devCommand{d: d, gen: d.gen, tune: tune, after: after}
	if untune != nil {
		c.untune = untune.id
	}
	if tune != nil {
		c.args = e.playArgs(tune)
	}
	d.pending++
	e.wg.Add(1)
	go e.runCommand(c)
}

type devCommand struct {
	d      *device
	gen    uint64
	untune string  // session to leave, "" for none
	tune   *target // session to join, nil for none
	args   protocol.PlayArgs
	after  time.Duration // wait before sending
}

func (e *Engine) runCommand(c devCommand) {
	defer e.wg.Done()
	d := c.d
	defer func() {
		e.mu.Lock()
		d.pending--
		e.forget(d)
		e.mu.Unlock()
	}()
	if !e.pause(e.ctx, c.after) {
		return
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	e.mu.Lock()
	current := d.gen == c.gen
	if current {
		d.cancel = cancel
	}
	e.mu.Unlock()

	// An untune is sent even when superseded: it names its session, so it
	// cannot disturb whatever the device plays next. A tune or an untune
	// to a receiver out of reach (offline, or the controller's broker link
	// down) is sent again while the decision stands; a newer decision, a
	// tune that went through (the device plays that instead) or Close
	// makes a pending untune moot, and so does untuneHorizon.
	untune, tune := c.untune, c.tune != nil && current
	horizon := time.Now().Add(untuneHorizon)
	for wait := retryFirst; ; wait = min(2*wait, retryMax) {
		uerr, terr, sent := e.sendCommand(ctx, c, untune, tune)
		if uerr == nil || !Unreachable(uerr) || sent && terr == nil || time.Now().After(horizon) {
			untune = ""
		}
		if !sent || terr == nil || !Unreachable(terr) {
			tune = false
		}
		if untune == "" && !tune || ctx.Err() != nil {
			return
		}
		// Wait it out while the decision stands (a newer one, the
		// session's end or Close cancels ctx), then send again.
		if !e.pause(ctx, wait) {
			return
		}
	}
}

// Retry pauses of a tune or untune to an unreachable receiver.
const (
	retryFirst = 250 * time.Millisecond
	retryMax   = 2 * time.Second
)

// untuneHorizon bounds the retries of an untune: by then a receiver has
// long ended the session by itself (its BYE, end_frame or stream timeout,
// the stream having stopped with the session), and one never back does
// not keep the engine retrying.
const untuneHorizon = 5 * time.Minute

// Unreachable reports whether err says the device could not be reached
// now (offline, or the broker link down), so the command may succeed
// later; the Tuner marks such errors with an Unreachable() bool method.
func Unreachable(err error) bool {
	var u interface{ Unreachable() bool }
	return errors.As(err, &u) && u.Unreachable()
}

// pause waits d, or returns false when ctx ends first.
func (e *Engine) pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sendCommand sends one attempt of c: untune first (when not ""), then
// the tune (when tune is set and the decision stands). It returns the
// untune's error, the tune's, and whether a tune was sent at all. The
// semaphore and the device's command lock are held only for the attempt,
// never across a retry's pause.
func (e *Engine) sendCommand(ctx context.Context, c devCommand, untune string, tune bool) (uerr, terr error, sent bool) {
	d := c.d
	sem := e.sem
	if c.tune != nil && c.tune.s.prio.Emergency() {
		sem = e.emSem
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		if untune == "" {
			return nil, nil, false
		}
		// Superseded while queued: the untune still goes (below), bounded
		// by the engine's life rather than the decision's.
		select {
		case sem <- struct{}{}:
		case <-e.ctx.Done():
			return nil, nil, false
		}
	}
	defer func() { <-sem }()
	d.cmd.Lock()
	defer d.cmd.Unlock()

	if untune != "" {
		uctx := ctx
		if ctx.Err() != nil {
			uctx = e.ctx
		}
		uerr = e.cfg.Tuner.Untune(uctx, d.id, untune)
		switch {
		case uerr == nil:
		case Unreachable(uerr) && ctx.Err() == nil:
			e.log.Info("receiver unreachable; untune pending until it is back", "device", d.id, "session", untune, "err", uerr)
		default:
			e.log.Log(uctx, tuneLogLevel(uerr), "untune failed", "device", d.id, "session", untune, "err", uerr)
		}
	}
	if c.tune == nil || !tune || ctx.Err() != nil {
		return uerr, nil, false
	}
	err := e.cfg.Tuner.Tune(ctx, d.id, c.args)
	e.mu.Lock()
	defer e.mu.Unlock()
	if d.gen == c.gen {
		switch {
		case err == nil:
			d.cancel = nil
			c.tune.state, c.tune.err = DeviceTuned, ""
		case Unreachable(err) && ctx.Err() == nil:
			c.tune.state, c.tune.err = DeviceWaiting, err.Error()
			c.tune.s.checkReady()
		default:
			d.cancel = nil
			c.tune.state, c.tune.err = DeviceFailed, err.Error()
			c.tune.s.checkReady()
		}
	}
	if err != nil && !(Unreachable(err) && ctx.Err() == nil) {
		e.log.Log(ctx, tuneLogLevel(err), "tune failed", "device", d.id, "session", c.tune.s.id, "err", err)
	} else if err != nil {
		e.log.Info("receiver unreachable; tune pending until it is back", "device", d.id, "session", c.tune.s.id, "err", err)
	}
	return uerr, err, true
}

// tuneLogLevel keeps a cancelled command (superseded by a newer one for the
// device, or the engine closing) out of the warnings operators read.
func tuneLogLevel(err error) slog.Level {
	if errors.Is(err, context.Canceled) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// finish retires s after its stream stopped and tells the subscribers,
// without locks, once its preempted outcomes have been delivered.
func (e *Engine) finish(s *session, state, reason string) {
	e.mu.Lock()
	delete(e.sessions, s.id)
	for _, t := range s.order {
		delete(e.byRecv, t.recvSSRC)
	}
	s.dests.Store(&emptyDests)
	e.release(s, state != loa.SessionEnded)
	e.mu.Unlock()
	e.metrics.active.Dec()
	e.log.Info("session ended", "session", s.id, "state", state, "reason", reason, "sent", s.sent.Load())
	s.preempts.Wait()
	e.deliver(loa.SessionOutcome{Kind: loa.OutcomeEnded, Session: s.id, At: time.Now(), State: state, Reason: reason})
}
