package firmwaresim

import (
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// A frozen controller (a hung host, a cut link, SIGSTOP) resets no
// connection: MQTT's keep-alive notices it only after up to keep-alive +
// ping timeout, and all that time the speaker is silent. A stream that
// stalls mid-session is the first sign, so the receiver checks its broker
// link then (contract: "Broker link"): an UNSUBSCRIBE of a topic it never
// held must be answered with UNSUBACK at once; unanswered, the connection
// is dropped and the next broker address tried.
const (
	linkProbeAfter   = time.Second     // stream silent this long mid-session
	linkProbeTimeout = 2 * time.Second // UNSUBACK within this
	// At most one probe in this (one in flight): a stall lasts from
	// linkProbeAfter to StreamTimeout, so every stall gets one.
	linkProbeEvery = linkProbeTimeout
)

// probeLink checks the broker link, at most once per linkProbeEvery, in
// the background: the caller is the play-out.
func (r *Receiver) probeLink() {
	now := time.Now().UnixNano()
	if last := r.lastProbe.Load(); now-last < int64(linkProbeEvery) || !r.lastProbe.CompareAndSwap(last, now) {
		return
	}
	c := r.mqttClient()
	if c == nil || !c.IsConnectionOpen() || r.ended.Load() {
		return // reconnecting already, or gone
	}
	r.probes.Add(1)
	go func() {
		tok := c.Unsubscribe(protocol.DeviceTopic(r.cfg.ID, "probe"))
		if tok.WaitTimeout(linkProbeTimeout) {
			return // answered (an error is an answer too: the link works)
		}
		if r.mqttClient() != c || r.ended.Load() {
			return
		}
		r.log.Warn("broker link unanswered while the stream stalled: trying the next broker", "timeout", linkProbeTimeout)
		r.linkDrops.Add(1)
		r.brokers.setAside(time.Now())
		r.connMu.Lock()
		if r.conn != nil {
			// A deadline, not Close: paho takes a read on a connection
			// closed under it for its own Disconnect and would not
			// reconnect; a timed-out read is a lost connection, and the
			// reconnect tries the next address first.
			r.conn.SetDeadline(time.Now())
		}
		r.connMu.Unlock()
	}()
}

// LinkProbes returns how many times the receiver checked its broker link
// over a stalled stream, and how many of those found it dead.
func (r *Receiver) LinkProbes() (probes, drops uint64) {
	return r.probes.Load(), r.linkDrops.Load()
}
