package loa

import (
	"context"
	"net/netip"
	"time"
)

// Session states.
const (
	SessionPlaying = "playing"
	SessionEnded   = "ended"   // the media played to the end
	SessionStopped = "stopped" // stopped by a user or the max duration
	SessionFailed  = "failed"
)

// SessionShutdown is the reason of a session ended because the controller
// is stopping, not the programme: it stays "playing" in the store and
// resumes at the next start.
const SessionShutdown = "shutdown"

// Origin kinds: what started a session.
const (
	OriginManual   = "manual"   // an operator started it through the API
	OriginSchedule = "schedule" // a schedule fired; ID is the schedule
	OriginAlert    = "alert"    // it carries an alert; ID is the alert
	OriginFallback = "fallback" // an area's background programme; ID is the area
	OriginLive     = "live"     // an official speaking live
	OriginRelay    = "relay"    // a relayed programme
)

// Origin is what started a session, beside who (CreatedBy): authority over
// the session follows it (only those who may cancel an alert may stop its
// session), and the services find their own sessions by it.
type Origin struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
}

// String is "kind:id", or the kind alone.
func (o Origin) String() string {
	if o.ID == "" {
		return o.Kind
	}
	return o.Kind + ":" + o.ID
}

// Session is one programme being played to a set of receivers: one RTP
// stream (one SSRC), encoded once, fanned out to every receiver it wins.
type Session struct {
	ID          string        `json:"id"`
	MediaID     string        `json:"media_id,omitempty"`
	PlaylistID  string        `json:"playlist_id,omitempty"` // instead of MediaID
	Targets     Targets       `json:"targets"`
	Priority    Priority      `json:"priority"`
	Volume      int           `json:"volume,omitempty"` // emergency band: the receivers' volume while it plays, muted or not (1–100; 0 = their own)
	MaxDuration time.Duration `json:"max_duration_ns"`
	SSRC        uint32        `json:"ssrc"`
	State       string        `json:"state"`
	Devices     []string      `json:"devices"`                // resolved at start
	StartedAt   time.Time     `json:"started_at"`             // when packet 0 is due: the scheduled time, or when it was started
	ScheduledAt time.Time     `json:"scheduled_at,omitzero"`  // a scheduled session's start time: packet 0 leaves no earlier
	FirstSentAt time.Time     `json:"first_sent_at,omitzero"` // when its first packet left; zero while it has not aired (pre-roll)
	EndedAt     time.Time     `json:"ended_at,omitzero"`
	Origin      Origin        `json:"origin,omitzero"`
	CreatedBy   string        `json:"created_by,omitempty"` // the user (token) behind it, if any
	StoppedBy   string        `json:"stopped_by,omitempty"` // who stopped it: a token, or the origin that did ("alert:al-1" cancelled)
	Reason      string        `json:"reason,omitempty"`     // why it ended, when not by itself
	// T0Ms and TS0, when T0Ms is set, are the session's timeline fixed in
	// advance (a scheduled programme receivers hold in cache: frame n of
	// the content is RTP timestamp TS0 + n·960, played at T0Ms + n·20 ms;
	// station/offline.go). ScheduledAt is then the instant of its first
	// packet's frame on it. 0: the engine fixes one when it starts.
	T0Ms int64  `json:"t0_ms,omitempty"`
	TS0  uint32 `json:"ts0,omitempty"`
	// Transcoded: the controller decodes and re-encodes its source (a live
	// uplink that offered no Opus it could forward as it is).
	Transcoded bool `json:"transcoded,omitempty"`
	// RecordingID is the media item that keeps what a live session aired
	// (asked with record), once it ended.
	RecordingID string `json:"recording_id,omitempty"`
	// RelayID is the relay a session relays (StartWith: it names no media).
	RelayID string `json:"relay_id,omitempty"`
}

// Validate checks a session request before anything is resolved.
func (s *Session) Validate() error {
	if (s.MediaID == "") == (s.PlaylistID == "") {
		return Errorf(EINVALID, "media_id, playlist_id: name exactly one")
	}
	return s.ValidateStream()
}

// DefaultStreamMaxDuration bounds a session of unknown length started with
// no maximum duration (a live microphone): a forgotten one cannot hold a
// province.
const DefaultStreamMaxDuration = time.Hour

// ValidateStream checks what a session asks of its receivers (targets,
// volume, maximum duration) whatever its content: a session whose packets
// its caller produces (a live microphone, a relay) names no media.
func (s *Session) ValidateStream() error {
	if s.Targets.Empty() {
		return Errorf(EINVALID, "targets: name at least one area or device")
	}
	for _, a := range s.Targets.Areas {
		if err := ValidateID("targets.areas", a); err != nil {
			return err
		}
	}
	for _, d := range s.Targets.Devices {
		if err := ValidateID("targets.devices", d); err != nil {
			return err
		}
	}
	if s.Volume < 0 || s.Volume > 100 {
		return Errorf(EINVALID, "volume: must be within 0..100")
	}
	if s.MaxDuration < 0 || s.MaxDuration > 24*time.Hour {
		return Errorf(EINVALID, "max_duration: must be within 0..24h")
	}
	return nil
}

// SessionService starts and stops sessions.
type SessionService interface {
	// StartSession resolves s.Targets, persists s and starts streaming. It
	// fills ID, SSRC, Devices, State and StartedAt.
	StartSession(ctx context.Context, s *Session) error
	// StopSession stops a playing session; by (a token id, or the origin
	// that stops it, "alert:al-1") is recorded as its StoppedBy.
	StopSession(ctx context.Context, id, by, reason string) error
	Session(ctx context.Context, id string) (*Session, error)
	Sessions(ctx context.Context) ([]*Session, error)
	// SessionSDP adds a third-party listener to the session, for a bounded
	// time, and returns the SDP a receiver listening at its address can
	// play. ECONFLICT when the session or the station has as many
	// listeners as it takes.
	SessionSDP(ctx context.Context, id string, l ListenerRequest) (string, error)
	// RemoveListener stops the stream to a listener; ENOTFOUND if none.
	RemoveListener(ctx context.Context, id string, dest netip.AddrPort) error
}

// Listener limits: how long a third-party listener of a session's SDP
// gets the stream, and how many a session and the station take at once.
const (
	DefaultListenerTime = time.Hour
	MaxListenerTime     = 6 * time.Hour
	MaxSessionListeners = 8
	MaxStationListeners = 64
)

// ListenerRequest asks for a session's stream at Dest for For (0:
// DefaultListenerTime, at most MaxListenerTime).
type ListenerRequest struct {
	Dest netip.AddrPort
	For  time.Duration
	By   string // who asked: a token id
	// Plain sends plain RTP (admins only); otherwise SRTP under an SDES
	// key of the listener's own, given only in the SDP answer.
	Plain bool
}
