package loa

import (
	"errors"
	"time"
)

// PacketSource yields pre-encoded 20 ms Opus packets and io.EOF at the
// end: the content of a session, as the audio engine consumes it. The
// engine is done with a packet before it asks for the next, so a source
// may reuse its buffer.
type PacketSource interface {
	Next() ([]byte, error)
}

// ErrGap, returned by a PacketSource's Next, is a frame with no packet (a
// live uplink lost it, or its drift control inserts one): the engine
// advances the sequence number and timestamp by one frame and sends
// nothing, so receivers conceal it.
var ErrGap = errors.New("no packet for this frame")

// Outcome kinds: what the audio engine tells about a session it streams.
const (
	OutcomeStreaming = "streaming" // its first packet left (At)
	OutcomePreempted = "preempted" // a higher session took Devices (By)
	OutcomeEnded     = "ended"     // it ended with State and Reason
)

// SessionOutcome is one thing that happened to a streaming session,
// delivered to the engine's subscribers.
type SessionOutcome struct {
	Kind    string    // OutcomeStreaming, OutcomePreempted or OutcomeEnded
	Session string    // the session's id
	At      time.Time // when it happened
	State   string    // ended: SessionEnded, SessionStopped or SessionFailed
	Reason  string    // ended: why, when not by itself
	Devices []string  // preempted: the receivers taken
	By      string    // preempted: the session that took them
}
