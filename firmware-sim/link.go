package firmwaresim

import (
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/loa-broadcast/loa/protocol"
)

// OfflineHold is how long acks and events (QoS 1) wait for a lost broker
// link to come back before they are dropped; telemetry (QoS 0) is dropped
// at once. The hold counts from when the outbox first found the link
// down, so a long outage drops what piled up instead of waiting it out
// message by message.
const OfflineHold = 30 * time.Second

// publishWait bounds the wait for the broker to acknowledge one publish.
const publishWait = 10 * time.Second

// connections signals each new broker connection, so the outbox can wait
// for the link instead of handing paho a message it cannot deliver. With
// a clean session and cleanStore, a QoS 1 publish made while paho
// reconnects, or in flight when the link drops, is never resent: its
// token never completes, and waiting on it stalled every later message.
type connections struct {
	mu   sync.Mutex
	next chan struct{} // closed at the next connection
}

func newConnections() *connections { return &connections{next: make(chan struct{})} }

// await returns a channel closed at the next connection.
func (c *connections) await() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// connected reports a new connection.
func (c *connections) connected() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.next)
	c.next = make(chan struct{})
}

// outbox is the state of outboxLoop: since when it found the link down.
type outbox struct {
	downSince time.Time
}

// deliver publishes m once the link is up, again on a new connection if
// the one it went out on was lost before the broker acknowledged it (QoS
// 1 is at least once), and gives up after OfflineHold. A receiver that
// ended does not wait for the link: Close must not hang on an outage.
func (r *Receiver) deliver(o *outbox, m outMsg) {
	qos := protocol.QoS[m.kind]
	for {
		next := r.conns.await()
		c := r.mqttClient()
		if r.killed.Load() || r.rebooting.Load() || c == nil {
			return // nothing leaves a killed or rebooting receiver
		}
		if !c.IsConnectionOpen() {
			if qos == 0 || r.ended.Load() {
				r.log.Debug("link down, message dropped", "kind", m.kind)
				return
			}
			if !r.awaitLink(o, next, m.kind) {
				return
			}
			continue
		}
		tok := r.publish(m.kind, m.v)
		if tok == nil {
			return
		}
		switch r.awaitToken(tok, next, m.kind) {
		case published:
			o.downSince = time.Time{}
			return
		case replaced:
			// A new connection replaced the one it went out on before the
			// broker acknowledged it, and paho will not resend it.
			if qos == 0 {
				return
			}
		case failed:
			// The link went down under it: wait for the next connection.
			if qos == 0 || r.ended.Load() || !r.awaitLink(o, next, m.kind) {
				return
			}
		case abandoned:
			return
		}
	}
}

// What became of one publish.
type outcome int

const (
	published outcome = iota // the broker has it
	replaced                 // a new connection came before the broker acknowledged it
	failed                   // paho gave up on it
	abandoned                // timed out, or the receiver was killed
)

// awaitToken waits for the broker to acknowledge tok.
func (r *Receiver) awaitToken(tok mqtt.Token, next <-chan struct{}, kind string) outcome {
	timeout := time.NewTimer(publishWait)
	defer timeout.Stop()
	quit := r.quit
	for {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				if !r.killed.Load() {
					r.log.Warn("publish failed", "kind", kind, "err", err)
				}
				return failed
			}
			return published
		case <-next:
			return replaced
		case <-timeout.C:
			r.log.Warn("publish failed", "kind", kind, "err", "mqtt: timed out")
			return abandoned
		case <-quit:
			if r.killed.Load() {
				return abandoned // Kill: nothing more leaves
			}
			quit = nil // Close: the queue still goes out
		}
	}
}

// awaitLink waits for the next connection (true) within the hold, or
// drops the message (false).
func (r *Receiver) awaitLink(o *outbox, next <-chan struct{}, kind string) bool {
	if o.downSince.IsZero() {
		o.downSince = time.Now()
	}
	left := time.Until(o.downSince.Add(OfflineHold))
	if left <= 0 {
		r.log.Warn("broker link down too long, message dropped", "kind", kind)
		return false
	}
	hold := time.NewTimer(left)
	defer hold.Stop()
	select {
	case <-next:
		o.downSince = time.Time{} // the next outage has its own hold
		return true
	case <-hold.C:
		r.log.Warn("broker link down too long, message dropped", "kind", kind)
		return false
	case <-r.quit:
		// Close or Kill: deliver drops it unless the link is up.
		return !r.killed.Load()
	}
}
