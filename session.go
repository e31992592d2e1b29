package loa

import (
	"context"
	"net/netip"
	"strings"
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

// Targets name who a session or schedule is for: whole areas (with all
// their descendants) and single devices.
type Targets struct {
	Areas   []string `json:"areas,omitempty"`
	Devices []string `json:"devices,omitempty"`
}

// Empty reports whether no target is named.
func (t Targets) Empty() bool { return len(t.Areas) == 0 && len(t.Devices) == 0 }

// String names the targets, for logs and the audit log.
func (t Targets) String() string {
	var parts []string
	if len(t.Areas) > 0 {
		parts = append(parts, "areas "+strings.Join(t.Areas, ","))
	}
	if len(t.Devices) > 0 {
		parts = append(parts, "devices "+strings.Join(t.Devices, ","))
	}
	return strings.Join(parts, "; ")
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
	Devices     []string      `json:"devices"`               // resolved at start
	StartedAt   time.Time     `json:"started_at"`            // when packet 0 is due: the scheduled time, or when it was started
	ScheduledAt time.Time     `json:"scheduled_at,omitzero"` // a scheduled session's start time: packet 0 leaves no earlier
	EndedAt     time.Time     `json:"ended_at,omitzero"`
	CreatedBy   string        `json:"created_by,omitempty"`
	Reason      string        `json:"reason,omitempty"` // why it ended, when not by itself
}

// Validate checks a session request before anything is resolved.
func (s *Session) Validate() error {
	if (s.MediaID == "") == (s.PlaylistID == "") {
		return Errorf(EINVALID, "media_id, playlist_id: name exactly one")
	}
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
	StopSession(ctx context.Context, id, reason string) error
	Session(ctx context.Context, id string) (*Session, error)
	Sessions(ctx context.Context) ([]*Session, error)
	// SessionSDP adds dest as a static receiver of the session and returns
	// the SDP a third-party receiver listening at dest can play.
	SessionSDP(ctx context.Context, id string, dest netip.AddrPort) (string, error)
}
