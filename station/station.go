// Package station holds the station's behaviour: sessions and their
// arbitration outcomes, schedule starts, fallbacks, media import, alerts
// with their delivery reports, and CAP ingest. It composes the store with
// the audio engine and the fleet through the small interfaces declared
// here, so it never imports broadcast, devices, broker or api; the daemon
// wires the concrete types together.
package station

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/netip"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// Streamer is the audio engine as sessions drive it: it streams a
// session's packets to the receivers it wins, and stops it. Its outcomes
// come back through HandleOutcome.
type Streamer interface {
	Start(ctx context.Context, s *loa.Session, src loa.PacketSource, frames int) error
	Stop(ctx context.Context, sessionID, reason string) error
}

// Listeners adds static receivers to a running session, for SDP: with an
// SDES key (protocol.SDESKeyLen+SDESSaltLen bytes) their stream is SRTP,
// with nil plain RTP.
type Listeners interface {
	AddListener(sessionID string, dest netip.AddrPort, sdes []byte) error
	RemoveListener(sessionID string, dest netip.AddrPort) error
	LocalAddr() netip.AddrPort
	PublicAddr() string
}

// MediaClocks, if the Listeners implement it, gives a running session's
// timeline for its SDP (RFC 7273 ts-refclk and mediaclk).
type MediaClocks interface {
	MediaClock(sessionID string) (protocol.MediaClock, bool)
}

// Tuner tells a receiver to join or leave a session's stream: the fleet,
// as the engine uses it.
type Tuner interface {
	Tune(ctx context.Context, deviceID string, args protocol.PlayArgs) error
	Untune(ctx context.Context, deviceID, sessionID string) error
}

// Fleet is what alerts follow of the receivers: their presence and their
// played and finished events.
type Fleet interface {
	DeviceState(id string) (loa.DeviceState, bool)
	OnEvent(fn func(deviceID string, ev protocol.Event)) (cancel func())
	OnPresence(fn func(st loa.DeviceState)) (cancel func())
}

// newID is a random 16-hex-digit id.
func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randomSSRC() uint32 {
	var b [4]byte
	for {
		rand.Read(b[:])
		if v := binary.BigEndian.Uint32(b[:]); v != 0 {
			return v
		}
	}
}
