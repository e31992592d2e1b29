package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// GroupRun is one command fanned out to many devices. Devices not online
// when it is prepared are settled "offline" at once and never sent it
// (a command queued for an offline receiver would only expire); the
// others are sent it together by Run, which then collects every final ack
// on one channel, so thousands of devices cost no goroutine, timer or
// store transaction each.
type GroupRun struct {
	f       *Fleet
	op      string
	args    json.RawMessage
	timeout time.Duration

	mu      sync.Mutex // guards results and pending
	results []loa.GroupResult
	pending int
	index   map[string]int // command id → results index, for the devices sent to
	send    []int          // results indexes of the devices to send to
}

// PrepareGroup validates a group command and settles the devices that are
// not online now as offline; nothing is sent until Run. ids must be
// distinct. The results are ordered by device id. timeout bounds the wait
// for acks and is also the command's expiry on the devices.
func (f *Fleet) PrepareGroup(op string, args json.RawMessage, ids []string, timeout time.Duration) (*GroupRun, error) {
	if !protocol.KnownOp(op) {
		return nil, loa.Errorf(loa.EINVALID, "op: unknown command %q", op)
	}
	if timeout <= 0 {
		return nil, loa.Errorf(loa.EINVALID, "timeout: must be positive")
	}
	if err := protocol.CheckArgs(op, args); err != nil {
		return nil, loa.Errorf(loa.EINVALID, "args: %v", err)
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if i := firstDup(sorted); i >= 0 {
		return nil, loa.Errorf(loa.EINVALID, "devices: %q named twice", sorted[i])
	}
	g := &GroupRun{f: f, op: op, args: args, timeout: timeout,
		results: make([]loa.GroupResult, len(sorted)), index: make(map[string]int, len(sorted))}
	up := f.LinkUp()
	f.mu.Lock()
	for i, id := range sorted {
		if err := loa.ValidateID("device", id); err != nil {
			f.mu.Unlock()
			return nil, err
		}
		g.results[i].Device = id
		// A device the fleet never heard from is not online either. While
		// the link is down presence is unknown: the last known decides,
		// and Run fails those for the link, not as offline.
		if d, ok := f.devices[id]; ok && (d.online() || !up && d.st.Online) {
			g.results[i].State = loa.GroupPending
			g.send = append(g.send, i)
		} else {
			g.results[i].State, g.results[i].Code, g.results[i].Msg = loa.GroupOffline, loa.EUNAVAILABLE, "not sent: device offline"
		}
	}
	f.mu.Unlock()
	g.pending = len(g.send)
	return g, nil
}

func firstDup(sorted []string) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return i
		}
	}
	return -1
}

// Results returns a copy of the results as they are now.
func (g *GroupRun) Results() []loa.GroupResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.results)
}

// Run sends the command to every device that was online when prepared and
// waits until each has a final ack, the timeout passes (the rest become
// "timeout"), ctx ends (its cause is the reason) or the fleet closes (the
// rest become "timeout" with the reason). It returns the final results.
// While the controller's broker link is down it waits for the link (the
// devices say so) until the timeout, when they fail "not sent"; a publish
// the link dropped is sent again once it is back. Run once.
func (g *GroupRun) Run(ctx context.Context) []loa.GroupResult {
	f := g.f
	n := len(g.send)
	if n == 0 {
		return g.Results()
	}
	start := time.Now() // monotonic, for the latency histogram
	exp := f.now().Add(g.timeout).UnixMilli()
	timer := time.NewTimer(g.timeout)
	defer timer.Stop()

	select {
	case <-f.closing:
		g.abandon(nil, "not sent: the controller is stopping", loa.EUNAVAILABLE, loa.GroupFailed, start)
		return g.Results()
	default:
	}
	// While the controller's broker link is down the command waits for it,
	// until its deadline: an outage is waited out, not failed.
	if !g.awaitLink(ctx, timer.C, start) {
		return g.Results()
	}
	sent := f.now()

	// Register every command before the first publish, so no ack can
	// arrive for a command not yet pending. Each pending gets exactly one
	// final ack (applyAck deletes it as it sends), so a channel of n never
	// blocks the handler.
	acks := make(chan protocol.Ack, n)
	ids := make([]string, n)
	g.mu.Lock()
	f.cmdMu.Lock()
	for k, i := range g.send {
		id := randomHex(8)
		ids[k] = id
		g.index[id] = i
		dev := g.results[i].Device
		g.results[i].Command = id
		f.pending[id] = &pending{device: dev, ch: acks}
		f.results.put(loa.CommandResult{ID: id, Device: dev, Op: g.op, State: loa.CommandSent, SentAt: sent})
	}
	f.cmdMu.Unlock()
	g.mu.Unlock()
	f.commands.Add(uint64(n))

	// Publishing only queues each command with paho; its writer sends
	// them back to back. A publish the broker refuses fails that device.
	type refused struct {
		id  string
		err error
	}
	refusals := make(chan refused, n)
	tokens := make([]mqtt.Token, n)
	topics := make([]string, n)
	payloads := make([][]byte, n)
	for k, i := range g.send {
		topics[k] = protocol.DeviceTopic(g.results[i].Device, protocol.KindCmd)
		payload, err := json.Marshal(protocol.Command{ID: ids[k], Op: g.op, Exp: exp, Args: g.args,
			Fence: f.fenceFor(g.results[i].Device)})
		if err != nil { // args were checked valid JSON
			refusals <- refused{ids[k], err}
			continue
		}
		payloads[k] = payload
		tokens[k] = f.client.Publish(topics[k], protocol.QoS[protocol.KindCmd], false, payload)
	}
	byID := make(map[string]int, n) // command id → index in ids
	for k, id := range ids {
		byID[id] = k
	}
	stopWatch := make(chan struct{})
	var watchers sync.WaitGroup
	watchers.Add(1)
	go func() { // one goroutine watches every publish token, in order
		defer watchers.Done()
		for k, tok := range tokens {
			if tok == nil {
				continue
			}
			select {
			case <-tok.Done():
				if err := tok.Error(); err != nil {
					refusals <- refused{ids[k], err}
				}
			case <-stopWatch:
				return
			}
		}
	}()
	defer func() { close(stopWatch); watchers.Wait() }()

	// A publish paho could not hand to the broker (the link dropped under
	// it) is sent again once the link is back, until the deadline; the
	// device never had it, so nothing runs twice.
	var retry []int
	var linkBack <-chan struct{}
	for g.left() > 0 {
		select {
		case a := <-acks:
			g.settle(a, start)
			continue
		case r := <-refusals:
			k, ok := byID[r.id]
			if !ok || payloads[k] == nil || !g.waiting(r.id) {
				g.refuse(r.id, r.err, start)
				continue
			}
			retry = append(retry, k)
			g.note(r.id, "waiting for the broker connection to send again")
			linkBack = f.linkUpAgain()
			continue
		case <-linkBack:
			linkBack = nil
			for _, k := range retry {
				g.note(ids[k], "")
				tok := f.client.Publish(topics[k], protocol.QoS[protocol.KindCmd], false, payloads[k])
				watchers.Add(1)
				go func(id string) {
					defer watchers.Done()
					select {
					case <-tok.Done():
						if err := tok.Error(); err != nil {
							select {
							case refusals <- refused{id, err}:
							case <-stopWatch:
							}
						}
					case <-stopWatch:
					}
				}(ids[k])
			}
			retry = nil
			continue
		case <-timer.C:
			g.abandon(ids, fmt.Sprintf("no final ack within %v", g.timeout), loa.ETIMEOUT, loa.GroupTimeout, start)
		case <-ctx.Done():
			g.abandon(ids, "abandoned: "+context.Cause(ctx).Error(), loa.ETIMEOUT, loa.GroupTimeout, start)
		case <-f.closing:
			g.abandon(ids, "abandoned: the controller is stopping", loa.EUNAVAILABLE, loa.GroupTimeout, start)
		}
		// Every device abandon did not settle had its final ack delivered
		// before abandon took the lock: it is in the channel now.
		for len(acks) > 0 {
			g.settle(<-acks, start)
		}
		break
	}
	return g.Results()
}

// awaitLink waits until the controller's broker link is up, noting on
// every device that the command waits for it. At the deadline (the
// devices fail "not sent"), when ctx ends or the fleet closes, it settles
// every device and returns false.
func (g *GroupRun) awaitLink(ctx context.Context, deadline <-chan time.Time, start time.Time) bool {
	f := g.f
	back := f.linkUpAgain()
	select {
	case <-back:
		return true
	default:
	}
	const waitMsg = "waiting for the broker connection"
	g.mu.Lock()
	for _, i := range g.send {
		g.results[i].Msg = waitMsg
	}
	g.mu.Unlock()
	f.log.Info("group command waits for the broker connection", "op", g.op, "devices", len(g.send))
	select {
	case <-back:
		g.mu.Lock()
		for _, i := range g.send {
			g.results[i].Msg = ""
		}
		g.mu.Unlock()
		return true
	case <-deadline:
		g.abandon(nil, fmt.Sprintf("not sent: broker connection down until the deadline (%v)", g.timeout), loa.EUNAVAILABLE, loa.GroupFailed, start)
	case <-ctx.Done():
		g.abandon(nil, "not sent: abandoned while the broker connection was down: "+context.Cause(ctx).Error(), loa.ETIMEOUT, loa.GroupTimeout, start)
	case <-f.closing:
		g.abandon(nil, "not sent: the controller is stopping", loa.EUNAVAILABLE, loa.GroupFailed, start)
	}
	return false
}

// waiting reports whether command id still waits for its final ack.
func (g *GroupRun) waiting(id string) bool {
	f := g.f
	f.cmdMu.Lock()
	defer f.cmdMu.Unlock()
	_, ok := f.pending[id]
	return ok
}

// note sets the message of command id's device while it is not final.
func (g *GroupRun) note(id, msg string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i, ok := g.index[id]; ok && !g.results[i].Final() {
		g.results[i].Msg = msg
	}
}

func (g *GroupRun) left() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending
}

// settle records a device's final ack.
func (g *GroupRun) settle(a protocol.Ack, start time.Time) {
	f := g.f
	f.cmdMu.Lock()
	at := f.now()
	if r := f.results.get(a.ID); r != nil && !r.DoneAt.IsZero() {
		at = r.DoneAt // when the handler took the ack, not when we got here
	}
	f.cmdMu.Unlock()
	g.mu.Lock()
	i, ok := g.index[a.ID]
	if !ok || g.results[i].Final() {
		g.mu.Unlock()
		return
	}
	r := &g.results[i]
	r.State, r.AckedAt, r.Msg = a.State, at, truncate(a.Msg, 200)
	if a.State != protocol.AckDone {
		r.Code = loa.ErrorCode(ackError(r.Device, g.op, a))
	}
	if len(a.Result) > 0 && len(a.Result) <= 1024 && json.Valid(a.Result) {
		r.Result = slices.Clone(a.Result)
	}
	g.pending--
	g.mu.Unlock()
	f.metrics.command(g.op, a.State, time.Since(start))
}

// refuse fails a device whose command the broker did not take, unless its
// final ack already came.
func (g *GroupRun) refuse(id string, err error, start time.Time) {
	f := g.f
	f.cmdMu.Lock()
	_, waiting := f.pending[id]
	delete(f.pending, id)
	msg := "broker did not take the command: " + truncate(err.Error(), 200)
	if r := f.results.get(id); waiting && r != nil {
		r.State, r.Code, r.Msg, r.DoneAt = loa.CommandUnavailable, loa.EUNAVAILABLE, msg, f.now()
	}
	f.cmdMu.Unlock()
	if !waiting {
		return // the ack won; it is in the channel
	}
	g.mu.Lock()
	if i, ok := g.index[id]; ok && !g.results[i].Final() {
		g.results[i].State, g.results[i].Code, g.results[i].Msg = loa.GroupFailed, loa.EUNAVAILABLE, msg
		g.pending--
	}
	g.mu.Unlock()
	f.metrics.command(g.op, loa.CommandUnavailable, time.Since(start))
}

// abandon settles with state every device whose command is still pending,
// taking the pending entries out under cmdMu first: an ack the handler
// delivered before that is in the channel and still counts. ids nil means
// nothing was registered: every unsettled device is abandoned.
func (g *GroupRun) abandon(ids []string, msg, code, state string, start time.Time) {
	f := g.f
	now := f.now()
	gone := make(map[string]bool, len(ids))
	f.cmdMu.Lock()
	for _, id := range ids {
		if _, waiting := f.pending[id]; !waiting {
			continue // its final ack is in the channel or already settled
		}
		delete(f.pending, id)
		gone[id] = true
		if r := f.results.get(id); r != nil {
			r.State, r.Code, r.Msg, r.DoneAt = resultState(state), code, msg, now
		}
	}
	f.cmdMu.Unlock()

	g.mu.Lock()
	n := 0
	for i := range g.results {
		r := &g.results[i]
		if r.Final() || (ids != nil && !gone[r.Command]) {
			continue
		}
		r.State, r.Code, r.Msg = state, code, msg
		g.pending--
		n++
	}
	g.mu.Unlock()
	if state == loa.GroupTimeout {
		f.timeouts.Add(uint64(n))
	}
	for range n {
		f.metrics.command(g.op, resultState(state), time.Since(start))
	}
}

// resultState maps a group state to the single-command result state.
func resultState(s string) string {
	if s == loa.GroupTimeout {
		return loa.CommandTimeout
	}
	return loa.CommandUnavailable
}
