package loa

import (
	"context"
	"time"
)

// LiveRequest asks to go on air with a WebRTC client's microphone (a WHIP
// offer).
type LiveRequest struct {
	Offer       string // the client's SDP offer
	Targets     Targets
	Priority    Priority
	MaxDuration time.Duration // 0: DefaultStreamMaxDuration
	Record      bool          // keep what aired in the media library (Session.RecordingID)
	CreatedBy   string
}

// LiveService runs live microphone sessions (WHIP, RFC 9725): the client's
// Opus forwarded to receivers as it came, as a session like any other.
type LiveService interface {
	// StartLive answers the offer and puts the uplink on air: the session
	// (Origin live) and the SDP answer.
	StartLive(ctx context.Context, req LiveRequest) (*Session, string, error)
	// TrickleLive adds the client's trickled ICE candidates (an
	// application/trickle-ice-sdpfrag body).
	TrickleLive(ctx context.Context, sessionID, frag string) error
	// EndLive ends the session at its client's request (WHIP DELETE).
	EndLive(ctx context.Context, sessionID, by string) error
}
