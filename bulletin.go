package loa

import (
	"context"
	"slices"
	"time"
)

// Bulletin levels (Thông tư 39/2020/TT-BTTTT): a province's bulletin is
// thông thường or ưu tiên; khẩn cấp goes out as an alert, not a bulletin.
const (
	BulletinNormal   = "normal"   // thông thường
	BulletinPriority = "priority" // ưu tiên: must be scheduled, and air, by MustAirBy
)

// A commune's state of a bulletin, from received to aired, declined or
// expired.
const (
	BulletinReceived  = "received"  // in its inbox, not decided
	BulletinScheduled = "scheduled" // accepted into play now, a schedule or a playlist
	BulletinAired     = "aired"     // its receivers' own evidence: a delivery line that played it
	BulletinDeclined  = "declined"  // with a reason
	BulletinExpired   = "expired"   // valid_until passed before it aired or was declined
)

// How a commune accepts a bulletin.
const (
	AcceptPlayNow  = "play_now" // a session now, to the commune
	AcceptSchedule = "schedule" // a one-off schedule at a time within the validity
	AcceptPlaylist = "playlist" // into a playlist slot: the commune's schedules playing it play the bulletin too
)

// AlarmBulletinDeadline is the station alarm naming the communes that
// have not scheduled an ưu tiên bulletin by its must_air_by; cleared when
// they schedule it (or decline it) or the bulletin expires.
const AlarmBulletinDeadline = "bulletin_deadline_missed"

// Bounds of a bulletin's fields.
const (
	MaxBulletinTitle  = 200
	MaxBulletinText   = 5000
	MaxBulletinReason = 500
	MaxBulletinAreas  = 500
)

// Bulletin is a province's item for its communes to air in their own
// programmes: one media item (uploaded, or Text spoken as alerts' text
// is), a validity window and, when ưu tiên, a deadline.
type Bulletin struct {
	ID         string    `json:"id"`
	Title      string    `json:"title"`
	Category   string    `json:"category,omitempty"`
	Level      string    `json:"level"`
	MediaID    string    `json:"media_id"`
	Text       string    `json:"text,omitempty"` // what was spoken, when it came as text
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
	MustAirBy  time.Time `json:"must_air_by,omitzero"` // priority only
	Areas      []string  `json:"areas"`                // the target communes
	CreatedBy  string    `json:"created_by,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// Source is where an imported bulletin came from: the publisher's
	// feed URL ("" for one published here) and its id there.
	Source     string `json:"source,omitempty"`
	SourceID   string `json:"source_id,omitempty"`
	SourceArea string `json:"source_area,omitempty"` // the commune it was for there

	// Communes is the tracking: one entry per target commune.
	Communes []BulletinCommune `json:"communes"`
}

// BulletinCommune is one commune's handling of a bulletin.
type BulletinCommune struct {
	AreaID     string    `json:"area_id"`
	State      string    `json:"state"`
	ReceivedAt time.Time `json:"received_at"`
	// Accepted: how, by whom, and what it made (a session, a schedule at
	// At, a playlist).
	How        string    `json:"how,omitempty"`
	By         string    `json:"by,omitempty"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	At         time.Time `json:"at,omitzero"`
	SessionID  string    `json:"session_id,omitempty"`
	ScheduleID string    `json:"schedule_id,omitempty"`
	PlaylistID string    `json:"playlist_id,omitempty"`
	DeclinedAt time.Time `json:"declined_at,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	// Aired: the first receiver's start and how many of the commune's
	// receivers played it, from their delivery lines.
	AiredAt   time.Time `json:"aired_at,omitzero"`
	Receivers int       `json:"receivers,omitempty"`
	// Missed: an ưu tiên bulletin not scheduled by its must_air_by.
	Missed    bool      `json:"missed,omitempty"`
	ExpiredAt time.Time `json:"expired_at,omitzero"`
	// Reported is what was last reported to the publisher of an imported
	// bulletin ("state receivers"), so each change goes back once.
	Reported string `json:"reported,omitempty"`
}

// Commune returns the entry of area, nil if the bulletin does not target it.
func (b *Bulletin) Commune(area string) *BulletinCommune {
	i := slices.IndexFunc(b.Communes, func(c BulletinCommune) bool { return c.AreaID == area })
	if i < 0 {
		return nil
	}
	return &b.Communes[i]
}

// Validate checks a bulletin as published (before its media exists).
func (b *Bulletin) Validate() error {
	switch {
	case b.Title == "" || len(b.Title) > MaxBulletinTitle:
		return Errorf(EINVALID, "title: required, at most %d bytes", MaxBulletinTitle)
	case len(b.Category) > MaxBulletinTitle:
		return Errorf(EINVALID, "category: at most %d bytes", MaxBulletinTitle)
	case b.Level != BulletinNormal && b.Level != BulletinPriority:
		return Errorf(EINVALID, "level: normal or priority, not %q", b.Level)
	case (b.MediaID == "") == (b.Text == ""):
		return Errorf(EINVALID, "media_id, text: name exactly one")
	case len(b.Text) > MaxBulletinText:
		return Errorf(EINVALID, "text: at most %d bytes", MaxBulletinText)
	case len(b.Areas) == 0 || len(b.Areas) > MaxBulletinAreas:
		return Errorf(EINVALID, "areas: name 1 to %d communes", MaxBulletinAreas)
	case b.ValidUntil.IsZero() || !b.ValidUntil.After(b.ValidFrom):
		return Errorf(EINVALID, "valid_until: required, after valid_from")
	case b.Level == BulletinPriority && b.MustAirBy.IsZero():
		return Errorf(EINVALID, "must_air_by: required for a priority bulletin")
	case b.Level == BulletinNormal && !b.MustAirBy.IsZero():
		return Errorf(EINVALID, "must_air_by: only a priority bulletin has a deadline")
	case !b.MustAirBy.IsZero() && (b.MustAirBy.Before(b.ValidFrom) || b.MustAirBy.After(b.ValidUntil)):
		return Errorf(EINVALID, "must_air_by: within valid_from..valid_until")
	}
	for i, a := range b.Areas {
		if err := ValidateID("areas", a); err != nil {
			return err
		}
		if slices.Contains(b.Areas[:i], a) {
			return Errorf(EINVALID, "areas: %q named twice", a)
		}
	}
	return nil
}

// BulletinAcceptance is a commune's acceptance of a bulletin.
type BulletinAcceptance struct {
	AreaID     string    `json:"area_id"`
	How        string    `json:"how"`
	At         time.Time `json:"at,omitzero"`           // schedule: when it plays
	PlaylistID string    `json:"playlist_id,omitempty"` // playlist: which one
	Position   int       `json:"position,omitempty"`    // playlist: the slot (0 first; past the end: last)
	By         string    `json:"-"`
}

// BulletinService publishes bulletins, keeps communes' inboxes and tracks
// them.
type BulletinService interface {
	// Publish checks b, speaks its Text into a media item when it has no
	// MediaID, and delivers it to its communes' inboxes.
	Publish(ctx context.Context, b *Bulletin) error
	Bulletin(ctx context.Context, id string) (*Bulletin, error)
	Bulletins(ctx context.Context) ([]*Bulletin, error) // newest first
	Accept(ctx context.Context, id string, a BulletinAcceptance) (*Bulletin, error)
	Decline(ctx context.Context, id, area, by, reason string) (*Bulletin, error)
	// Report takes a subscribing controller's report of one of its
	// communes (the feed): forward only; the same state again is no change.
	Report(ctx context.Context, id string, r FeedReport) (*Bulletin, error)
}
