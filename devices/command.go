package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// pending is a command waiting for its final ack.
type pending struct {
	device string
	ch     chan protocol.Ack    // capacity 1: the final ack
	onAck  func(a protocol.Ack) // optional: sees accepted and progress acks; must not block
}

// cmdOpts adjust one command: firmware waits across a reboot and watches
// its progress acks.
type cmdOpts struct {
	timeout time.Duration // wait for the final ack; 0 = Config.CommandTimeout
	onAck   func(a protocol.Ack)
}

// Command sends op with args (JSON; empty for none) to the device and
// waits for its final ack (loa.CommandService). The command carries a
// random id and expires CommandTTL from now. Errors:
//   - EINVALID: bad device id, op or args (protocol.CheckArgs), or the
//     device failed it as invalid;
//   - EUNAVAILABLE without sending: the device is known to be offline, or
//     the connection to the broker is down;
//   - EUNAVAILABLE: the device failed the command or it expired on the
//     device (the ack's msg is in the error), or the broker refused it;
//   - ETIMEOUT: no final ack within CommandTimeout or before ctx ended
//     (then the error also wraps ctx.Err()).
//
// The result is returned with the error too: its ID is set once the
// command was recorded, and its State tells how far it got.
func (f *Fleet) Command(ctx context.Context, deviceID, op string, args json.RawMessage) (loa.CommandResult, error) {
	if string(args) == "null" {
		args = nil
	}
	if protocol.KnownOp(op) { // command refuses the others
		if err := protocol.CheckArgs(op, args); err != nil {
			return loa.CommandResult{Device: deviceID, Op: op}, loa.Errorf(loa.EINVALID, "args: %v", err)
		}
	}
	ack, err := f.command(ctx, deviceID, op, args, cmdOpts{})
	res, ok := f.CommandResult(ack.ID)
	if !ok { // refused before it was recorded, or forgotten already
		res = loa.CommandResult{ID: ack.ID, Device: deviceID, Op: op, State: ack.State, Code: ack.Code, Msg: ack.Msg}
	}
	return res, err
}

// command sends op with args, checked by the caller, and returns the final
// ack; the ack always carries the command id once it was recorded, and
// its State is empty when no final ack arrived.
func (f *Fleet) command(ctx context.Context, deviceID, op string, raw json.RawMessage, o cmdOpts) (protocol.Ack, error) {
	if err := loa.ValidateID("device", deviceID); err != nil {
		return protocol.Ack{}, err
	}
	if !protocol.KnownOp(op) {
		return protocol.Ack{}, loa.Errorf(loa.EINVALID, "op: unknown command %q", op)
	}
	select {
	case <-f.closing:
		return protocol.Ack{}, loa.Errorf(loa.EUNAVAILABLE, "device %s: fleet is closed", deviceID)
	default:
	}
	if err := ctx.Err(); err != nil { // send nothing the caller no longer waits for
		return protocol.Ack{}, fmt.Errorf("%w: %w", loa.Errorf(loa.ETIMEOUT, "device %s: %s not sent: %v", deviceID, op, err), err)
	}

	id := randomHex(8)
	sent := f.now()
	res := loa.CommandResult{ID: id, Device: deviceID, Op: op, State: loa.CommandSent, SentAt: sent}
	if !f.LinkUp() {
		// Failing now beats a stale command queued until the broker is
		// back; callers that wait outages out retry (Unreachable).
		return f.refuse(res, "broker connection down", linkDownError{unreachableError{loa.Errorf(loa.EUNAVAILABLE,
			"device %s: %s not sent: the controller is not connected to the mqtt broker %s (reconnecting); try again shortly",
			deviceID, op, f.cfg.Broker)}})
	}
	if f.knownOffline(deviceID) {
		return f.refuse(res, "device offline", unreachable(loa.Errorf(loa.EUNAVAILABLE, "device %s is offline", deviceID)))
	}
	payload, err := json.Marshal(protocol.Command{ID: id, Op: op, Exp: sent.Add(f.cfg.CommandTTL).UnixMilli(), Args: raw,
		Fence: f.fenceFor(deviceID)})
	if err != nil { // raw is not JSON: the callers checked it
		return protocol.Ack{}, fmt.Errorf("%w: %w", loa.Errorf(loa.EINVALID, "%s args: %v", op, err), err)
	}

	p := &pending{device: deviceID, ch: make(chan protocol.Ack, 1), onAck: o.onAck}
	f.cmdMu.Lock()
	f.pending[id] = p
	f.results.put(res)
	f.cmdMu.Unlock()
	f.commands.Add(1)
	start := time.Now() // monotonic, for the latency histogram

	tok := f.client.Publish(protocol.DeviceTopic(deviceID, protocol.KindCmd), protocol.QoS[protocol.KindCmd], false, payload)
	published := tok.Done()
	timeout := f.cfg.CommandTimeout
	if o.timeout > 0 {
		timeout = o.timeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case a := <-p.ch:
			return f.acked(deviceID, op, a, start)
		case <-published:
			published = nil
			if err := tok.Error(); err != nil {
				return f.abandon(p, id, op, start, loa.CommandUnavailable,
					fmt.Errorf("%w: %w", loa.Errorf(loa.EUNAVAILABLE, "device %s: %s: broker did not take the command: %v", deviceID, op, err), err))
			}
		case <-timer.C:
			return f.abandon(p, id, op, start, loa.CommandTimeout,
				loa.Errorf(loa.ETIMEOUT, "device %s: no answer to %s within %v", deviceID, op, timeout))
		case <-ctx.Done():
			return f.abandon(p, id, op, start, loa.CommandTimeout,
				fmt.Errorf("%w: %w", loa.Errorf(loa.ETIMEOUT, "device %s: no answer to %s: %v", deviceID, op, ctx.Err()), ctx.Err()))
		case <-f.closing:
			return f.abandon(p, id, op, start, loa.CommandUnavailable,
				loa.Errorf(loa.EUNAVAILABLE, "device %s: fleet closed while waiting for %s", deviceID, op))
		}
	}
}

// refuse records a command that is not sent.
func (f *Fleet) refuse(res loa.CommandResult, msg string, err error) (protocol.Ack, error) {
	res.State, res.Code, res.Msg, res.DoneAt = loa.CommandUnavailable, loa.ErrorCode(err), msg, res.SentAt
	f.cmdMu.Lock()
	f.results.put(res)
	f.cmdMu.Unlock()
	f.metrics.command(res.Op, loa.CommandUnavailable, 0)
	return protocol.Ack{ID: res.ID}, err
}

// knownOffline reports whether the device is not known to be online: its
// last accepted status was offline, or none has arrived since the link
// came back. Devices never heard of may be online: they get the command.
func (f *Fleet) knownOffline(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[id]
	return ok && !d.online()
}

// unreachableError is a command not sent because the device could not be
// reached now (offline, or the controller's broker link is down): one
// that may succeed later, unlike a device's refusal.
type unreachableError struct{ err error }

func unreachable(err error) error { return unreachableError{err} }

func (e unreachableError) Error() string { return e.err.Error() }
func (e unreachableError) Unwrap() error { return e.err }

// Unreachable marks the error for callers that wait outages out
// (broadcast retries such tunes while its session runs).
func (e unreachableError) Unreachable() bool { return true }

// LinkRetryAfter is when a command refused because the controller's
// broker link is down may be tried again (the API's Retry-After): paho
// reconnects within its back-off, at most 10 s apart.
const LinkRetryAfter = 5 * time.Second

// linkDownError is the refusal of a command while the broker link is
// down: unreachable (callers that wait outages out retry it) and, for an
// interactive caller, when to try again.
type linkDownError struct{ unreachableError }

func (linkDownError) RetryAfter() time.Duration { return LinkRetryAfter }

// abandon stops waiting for command id. If the handler claimed the final
// ack in the meantime, that ack wins.
func (f *Fleet) abandon(p *pending, id, op string, start time.Time, state string, err error) (protocol.Ack, error) {
	f.cmdMu.Lock()
	if _, waiting := f.pending[id]; !waiting {
		f.cmdMu.Unlock()
		return f.acked(p.device, op, <-p.ch, start)
	}
	delete(f.pending, id)
	if r := f.results.get(id); r != nil {
		r.State, r.Code, r.Msg, r.DoneAt = state, loa.ErrorCode(err), loa.ErrorMessage(err), f.now()
	}
	f.cmdMu.Unlock()
	if state == loa.CommandTimeout {
		f.timeouts.Add(1)
	}
	f.metrics.command(op, state, time.Since(start))
	return protocol.Ack{ID: id}, err
}

// acked turns a final ack into Command's result.
func (f *Fleet) acked(device, op string, a protocol.Ack, start time.Time) (protocol.Ack, error) {
	f.metrics.command(op, a.State, time.Since(start))
	return a, ackError(device, op, a)
}

func ackError(device, op string, a protocol.Ack) error {
	switch a.State {
	case protocol.AckDone:
		return nil
	case protocol.AckExpired:
		return loa.Errorf(loa.EUNAVAILABLE, "device %s: %s expired before the device could run it%s", device, op, suffix(a.Msg))
	default:
		return loa.Errorf(ackCode(a.Code), "device %s: %s failed%s", device, op, suffix(a.Msg))
	}
}

// ackCode maps a device's failure code: the device judged the command
// itself bad (EINVALID), or it could not carry it out (EUNAVAILABLE).
func ackCode(code string) string {
	switch code {
	case loa.EINVALID, loa.EUNSUPPORTED:
		return loa.EINVALID
	default:
		return loa.EUNAVAILABLE
	}
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + truncate(msg, 200)
}

// applyAck records an ack and wakes the waiting Command on a final one.
// It reports whether the ack belonged to a command of this fleet; acks for
// unknown ids (or from another device than the command's) are ignored and
// counted. A final ack arriving after Command gave up still updates the
// CommandResult.
func (f *Fleet) applyAck(device string, a protocol.Ack, now time.Time) bool {
	f.cmdMu.Lock()
	p := f.pending[a.ID]
	r := f.results.get(a.ID)
	if (p == nil && r == nil) || (p != nil && p.device != device) || (r != nil && r.Device != device) {
		f.cmdMu.Unlock()
		n := f.unknownAcks.Add(1)
		f.log.Debug("fleet: ack for an unknown command ignored", "device", device, "command", truncate(a.ID, 64), "unknown_acks", n)
		return false
	}
	// While the command is pending every ack updates the result; after
	// Command gave up, only a final ack does (a late truth beats "timeout").
	if r != nil && (p != nil || a.Final()) {
		r.State = a.State
		r.Msg = truncate(a.Msg, 200)
		if a.Final() {
			r.DoneAt = now
			r.Code = loa.ErrorCode(ackError(device, r.Op, a))
		}
	}
	var onAck func(protocol.Ack)
	if p != nil && a.Final() {
		delete(f.pending, a.ID)
		p.ch <- a // capacity 1; the entry is deleted, so nothing sends again
	} else if p != nil {
		onAck = p.onAck
	}
	f.cmdMu.Unlock()
	if onAck != nil {
		onAck(a)
	}
	return true
}

// CommandResult returns the result of a recent command by id.
func (f *Fleet) CommandResult(id string) (loa.CommandResult, bool) {
	f.cmdMu.Lock()
	defer f.cmdMu.Unlock()
	if r := f.results.get(id); r != nil {
		return *r, true
	}
	return loa.CommandResult{}, false
}

var _ loa.CommandService = (*Fleet)(nil)

// Tune tells the device to play a session's stream (satisfies
// broadcast.Tuner).
func (f *Fleet) Tune(ctx context.Context, deviceID string, args protocol.PlayArgs) error {
	b, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("devices: encoding play args: %w", err)
	}
	if _, err := protocol.DecodePlayArgs(b); err != nil {
		return loa.Errorf(loa.EINVALID, "%v", err)
	}
	_, err = f.command(ctx, deviceID, protocol.OpPlay, b, cmdOpts{})
	return err
}

// SendOp sends op with args (encoded and checked as the receiver will
// decode them) and returns the device's final ack, Result included; the
// error is as Command's.
func (f *Fleet) SendOp(ctx context.Context, deviceID, op string, args any) (protocol.Ack, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return protocol.Ack{}, fmt.Errorf("devices: encoding %s args: %w", op, err)
	}
	if err := protocol.CheckArgs(op, b); err != nil {
		return protocol.Ack{}, loa.Errorf(loa.EINVALID, "%v", err)
	}
	var o cmdOpts
	if op == protocol.OpCache {
		o.timeout = cacheTimeout // downloads over a slow link
	}
	return f.command(ctx, deviceID, op, b, o)
}

// cacheTimeout bounds the wait for a cache manifest's final ack.
const cacheTimeout = 10 * time.Minute

// Untune tells the device to stop playing a session.
func (f *Fleet) Untune(ctx context.Context, deviceID, sessionID string) error {
	if sessionID == "" {
		return loa.Errorf(loa.EINVALID, "stop: session is required")
	}
	b, err := json.Marshal(protocol.StopArgs{Session: sessionID})
	if err != nil {
		return fmt.Errorf("devices: encoding stop args: %w", err)
	}
	_, err = f.command(ctx, deviceID, protocol.OpStop, b, cmdOpts{})
	return err
}

// SetVolume sets the device's volume, 0–100.
func (f *Fleet) SetVolume(ctx context.Context, deviceID string, level int) error {
	if level < 0 || level > 100 {
		return loa.Errorf(loa.EINVALID, "volume: level %d outside 0..100", level)
	}
	b, err := json.Marshal(protocol.VolumeArgs{Level: level})
	if err != nil {
		return fmt.Errorf("devices: encoding volume args: %w", err)
	}
	_, err = f.command(ctx, deviceID, protocol.OpVolume, b, cmdOpts{})
	return err
}

// results is a bounded map of recent command results: when full, the
// oldest is forgotten.
type results struct {
	buf  []loa.CommandResult
	idx  map[string]int
	next int
	max  int
}

func newResults(max int) results {
	return results{idx: make(map[string]int), max: max}
}

func (r *results) put(c loa.CommandResult) {
	if len(r.buf) < r.max {
		r.idx[c.ID] = len(r.buf)
		r.buf = append(r.buf, c)
		return
	}
	delete(r.idx, r.buf[r.next].ID)
	r.buf[r.next] = c
	r.idx[c.ID] = r.next
	r.next = (r.next + 1) % r.max
}

func (r *results) get(id string) *loa.CommandResult {
	if i, ok := r.idx[id]; ok {
		return &r.buf[i]
	}
	return nil
}
