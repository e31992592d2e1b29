package firmwaresim

import (
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// Why a session ended on a receiver.
const (
	EndBye       = "bye"       // the stream's RTCP BYE, after the buffer drained
	EndStop      = "stop"      // a stop command, or the receiver closing
	EndPreempted = "preempted" // a play for another session replaced it
	EndTimeout   = "timeout"   // no packets for StreamTimeout after the stream started
	EndEndFrame  = "end_frame" // play.end_frame played, every BYE lost
)

// StreamTimeout ends a session whose packets stopped arriving.
const StreamTimeout = 3 * time.Second

// FirstPacketTimeout ends a session whose stream never started.
const FirstPacketTimeout = 30 * time.Second

// SessionStats count what a receiver did with one session's stream, with
// the semantics of protocol.StreamStats and RFC 3550:
//
//   - Expected: packets from the first one (slot 0: the first received, or
//     an earlier one reordered behind it in time to play) to the highest
//     sequence number received, or to the stream's last frame when it is
//     known (play.end_frame, a BYE's Sender Report) and its slot has come:
//     frames lost at the very end count.
//   - Received: distinct valid packets of the stream, late ones included.
//   - Lost: Expected − Received, never below zero.
//   - Late: received after their play-out slot had passed.
//   - Duplicate: received again; not counted in Received.
//   - Corrupt: not RTP, not a valid Opus packet of one 20 ms frame, a
//     timestamp off the 960-sample grid, or failing to decode.
//   - Played: play-out slots played, = Decoded (or verified) + FECRecovered
//   - Concealed + Silence: everything the speaker emitted, as the WAV holds
//     it. Equal to Expected once a session that ended by BYE or end_frame
//     is Done; a session that timed out also played its silent wait.
//   - Decoded: frames decoded from their own packet (only when decoding).
//   - FECRecovered: missing frames rebuilt from the next packet's in-band FEC.
//   - Concealed: missing frames filled by packet-loss concealment, at most
//     protocol.MaxConcealFrames in a row.
//   - Silence: missing frames played as silence, past that bound.
//   - JitterMs: RFC 3550 interarrival jitter.
//   - AuthFailures: datagrams dropped unread: not from play.addr, or (with
//     keys) failing SRTP/SRTCP authentication or replayed. Not in Received
//     nor Corrupt.
type SessionStats struct {
	Session  string
	Expected int
	SRTP     bool // the play carried keys: the stream was SRTP (v2)

	Received, Lost, Late, Duplicate, Corrupt uint64
	Concealed, FECRecovered, Played, Decoded uint64
	Silence                                  uint64 // of Played, missing frames played silent after MaxConcealFrames
	Muted                                    uint64 // of Played, frames played as silence while muted
	AuthFailures                             uint64
	// Skipped are slots passed over unplayed to keep to the session
	// timeline (a late start, a re-sync after the clock estimate moved).
	Skipped uint64
	// Stalled are the Skipped slots passed over because this process
	// served the virtual DAC late (a loaded host stalled it by more than
	// 50 ms): the simulation's, not the stream's or the clock's, doing.
	Stalled uint64

	JitterMs           float64
	FirstPlayed, Ended time.Time
	// FirstSampleAt is the true instant the session's first sample left
	// the virtual DAC, when it played on its timeline (ground truth), and
	// FirstSampleTS that sample's RTP timestamp.
	FirstSampleAt time.Time
	FirstSampleTS uint32
	EndReason     string
	Done          bool
	// Local is the cache item a local play played (kind:key, e.g.
	// "stored:12"); "" for a stream.
	Local string
}

// StreamStats returns the stats in their wire form.
func (s SessionStats) StreamStats() protocol.StreamStats {
	return protocol.StreamStats{
		Received:     s.Received,
		Lost:         s.Lost,
		Late:         s.Late,
		Concealed:    s.Concealed,
		FECRecovered: s.FECRecovered,
		Played:       s.Played,
		Decoded:      s.Decoded,
		JitterMs:     s.JitterMs,
		AuthFailures: s.AuthFailures,
		Silence:      s.Silence,
	}
}

// FromPacket is the number of frames played from their own packet,
// decoded or verified.
func (s SessionStats) FromPacket() uint64 {
	return s.Played - s.Concealed - s.Silence - s.FECRecovered
}
