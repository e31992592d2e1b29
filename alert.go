package loa

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Alert levels (Thông tư 39/2020/TT-BTTTT).
const (
	AlertEmergency = "khan_cap" // khẩn cấp: emergency band, overrides volume and mute
	AlertPriority  = "uu_tien"  // ưu tiên: priority band
)

// Alert priorities: khẩn cấp plays in the emergency band, above everything
// but another emergency (where the newest wins); ưu tiên in the priority
// band, above every programme and below any emergency. Both leave room in
// their band for sessions an operator starts by hand (a live microphone at
// 200 ties with ưu tiên alerts and so does not cut one off).
const (
	AlertPriorityEmergency Priority = 240
	AlertPriorityHigh      Priority = 200
)

// Alert limits.
const (
	MaxAlertRepeats = 10
	MaxAlertGap     = time.Minute
	MaxAlertExpiry  = 24 * time.Hour
	MaxAlertText    = 2000 // characters of speech text
	MaxAlertTitle   = 200  // bytes
	DefaultVolume   = 100  // an emergency alert's volume when none is given
)

// Alert states.
const (
	AlertActive    = "active"    // sending or playing its repeats
	AlertFinished  = "finished"  // every repeat played (or every receiver settled)
	AlertCancelled = "cancelled" // cancelled by a user or a CAP Cancel
	AlertExpired   = "expired"   // its expiry passed before every receiver played it
)

// Delivery states of one receiver in an alert's report, in order.
const (
	DeliveryQueued   = "queued"   // chosen as a target, play command not yet acked
	DeliveryAcked    = "acked"    // the receiver acked the play command
	DeliveryStarted  = "started"  // the receiver played the first frame
	DeliveryFinished = "finished" // the receiver played every repeat
	DeliveryFailed   = "failed"   // Reason says why
)

// Delivery failure reasons.
const (
	ReasonOffline     = "offline"     // offline at send time and not back before expiry
	ReasonNoAck       = "no_ack"      // no ack before the command timeout
	ReasonNoStream    = "no_stream"   // acked but no frame played
	ReasonCancelled   = "cancelled"   // the alert was cancelled before it finished here
	ReasonRefused     = "refused"     // the receiver refused the play command
	ReasonInterrupted = "interrupted" // a newer emergency alert took the receiver
	ReasonExpiredHere = "expired"     // the alert expired before it finished here
	ReasonFailed      = "failed"      // the session carrying the alert failed on the controller
	ReasonPartial     = "partial"     // played only part of it: joined late, or lost the stream
)

// Delivery channels besides the stream (Delivery.Channel).
const ChannelStored = "stored"

// AlertContent is what an alert plays: a media item, or Text spoken in
// Vietnamese by the controller's speech engine. Tone puts an attention
// tone before it.
type AlertContent struct {
	MediaID string `json:"media_id,omitempty"`
	Text    string `json:"text,omitempty"`
	Tone    bool   `json:"tone,omitempty"`
}

// Alert is an emergency or priority bulletin pushed to receivers now.
type Alert struct {
	ID      string       `json:"id"`
	Title   string       `json:"title"`
	Level   string       `json:"level"`   // AlertEmergency or AlertPriority
	Content AlertContent `json:"content"` // exactly one of MediaID, Text (or neither, with StoredCode)
	// StoredCode names a stored message (StoredMessage.Code): receivers
	// that hold it play it from their own storage (play_stored), the
	// others get it streamed; without Content the stored message's media
	// is the content.
	StoredCode int           `json:"stored_code,omitempty"`
	Targets    Targets       `json:"targets"` // areas and/or devices; the province's area for everyone
	Repeats    int           `json:"repeats"` // times to play, 1–10 (0 means 1)
	Gap        time.Duration `json:"gap_ns"`  // silence between repeats
	Volume     int           `json:"volume"`  // emergency level: the receivers' volume while it plays (0 = 100)
	ExpiresAt  time.Time     `json:"expires_at"`
	Test       bool          `json:"test,omitempty"` // an exercise/test: sounds only in areas marked for tests
	CAP        *AlertCAPInfo `json:"cap,omitempty"`  // set when the alert came from a CAP message

	State     string    `json:"state"`
	SessionID string    `json:"session_id,omitempty"` // the session carrying it
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Reason    string    `json:"reason,omitempty"` // why it ended early (cancel reason)

	Report []Delivery `json:"report"` // one per target receiver
}

// AlertCAPInfo keeps what a CAP message said, for export and for Cancel.
type AlertCAPInfo struct {
	Identifier string `json:"identifier"`
	Sender     string `json:"sender"`
	Sent       string `json:"sent"` // as received, RFC 3339 with zone
	XML        string `json:"xml"`  // the message as received
}

// Delivery is one receiver's line in an alert's delivery report.
type Delivery struct {
	Device string `json:"device"`
	Area   string `json:"area"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"` // a refusal's own words (the receiver's, or the controller's: -require-srtp)
	// Channel is how it reached the receiver when not by the stream:
	// ChannelStored (played from its own storage, play_stored).
	Channel   string    `json:"channel,omitempty"`
	Repeats   int       `json:"repeats"` // repeats played so far
	Late      bool      `json:"late"`    // got it after coming back online
	QueuedAt  time.Time `json:"queued_at"`
	AckedAt   time.Time `json:"acked_at,omitzero"`
	StartedAt time.Time `json:"started_at,omitzero"` // first frame played, receiver clock
	EndedAt   time.Time `json:"ended_at,omitzero"`
}

// AlertService sends, cancels and reports alerts.
type AlertService interface {
	// SendAlert validates a, resolves its targets, stores it and starts
	// it. It fills ID, State, SessionID, CreatedAt and Report.
	SendAlert(ctx context.Context, a *Alert) error
	CancelAlert(ctx context.Context, id, reason string) error
	Alert(ctx context.Context, id string) (*Alert, error)
	Alerts(ctx context.Context) ([]*Alert, error)
	// WatchAlert calls fn with the alert now and after every change to it
	// until ctx ends or the alert is final and reported; for live reports.
	WatchAlert(ctx context.Context, id string, fn func(*Alert)) error
}

// Priority is the session priority the alert plays at.
func (a *Alert) Priority() Priority {
	if a.Level == AlertEmergency {
		return AlertPriorityEmergency
	}
	return AlertPriorityHigh
}

// Final reports whether the alert has ended and its report is settled.
func (a *Alert) Final() bool { return a.State != AlertActive && a.State != "" }

// Validate checks an alert request at now, before anything is resolved,
// and fills in defaults (Repeats 0 → 1, an emergency's Volume 0 → 100).
// Every failure is EINVALID naming the field.
func (a *Alert) Validate(now time.Time) error {
	switch a.Level {
	case AlertEmergency, AlertPriority:
	default:
		return Errorf(EINVALID, "level: must be %q (khẩn cấp) or %q (ưu tiên), not %q", AlertEmergency, AlertPriority, a.Level)
	}
	if err := ValidateName("title", a.Title, false); err != nil {
		return err
	}
	c := a.Content
	if a.StoredCode != 0 && (a.StoredCode < MinStoredCode || a.StoredCode > MaxStoredCode) {
		return Errorf(EINVALID, "stored_code: must be within %d..%d, not %d", MinStoredCode, MaxStoredCode, a.StoredCode)
	}
	switch {
	case c.MediaID != "" && strings.TrimSpace(c.Text) != "":
		return Errorf(EINVALID, "content: name exactly one of media_id and text")
	case c.MediaID == "" && strings.TrimSpace(c.Text) == "" && a.StoredCode == 0:
		return Errorf(EINVALID, "content: name exactly one of media_id and text, or a stored_code")
	}
	if c.MediaID != "" {
		if err := ValidateID("content.media_id", c.MediaID); err != nil {
			return err
		}
	}
	if n := utf8.RuneCountInString(c.Text); n > MaxAlertText {
		return Errorf(EINVALID, "content.text: %d characters is too long for speech; at most %d", n, MaxAlertText)
	}
	if !utf8.ValidString(c.Text) {
		return Errorf(EINVALID, "content.text: not valid UTF-8")
	}
	if a.Targets.Empty() {
		return Errorf(EINVALID, "targets: name at least one area or device")
	}
	for _, id := range a.Targets.Areas {
		if err := ValidateID("targets.areas", id); err != nil {
			return err
		}
	}
	for _, id := range a.Targets.Devices {
		if err := ValidateID("targets.devices", id); err != nil {
			return err
		}
	}
	if a.Repeats == 0 {
		a.Repeats = 1
	}
	if a.Repeats < 1 || a.Repeats > MaxAlertRepeats {
		return Errorf(EINVALID, "repeats: must be within 1..%d, not %d", MaxAlertRepeats, a.Repeats)
	}
	if a.Gap < 0 || a.Gap > MaxAlertGap {
		return Errorf(EINVALID, "gap: must be within 0..%v, not %v", MaxAlertGap, a.Gap)
	}
	if a.Volume < 0 || a.Volume > 100 {
		return Errorf(EINVALID, "volume: must be within 1..100 (0 for the default), not %d", a.Volume)
	}
	if a.Volume == 0 && a.Level == AlertEmergency {
		a.Volume = DefaultVolume
	}
	switch {
	case a.ExpiresAt.IsZero():
		return Errorf(EINVALID, "expires_at: required")
	case !a.ExpiresAt.After(now):
		return Errorf(EINVALID, "expires_at: %s has already passed", a.ExpiresAt.UTC().Format(time.RFC3339))
	case a.ExpiresAt.Sub(now) > MaxAlertExpiry:
		return Errorf(EINVALID, "expires_at: at most %v ahead", MaxAlertExpiry)
	}
	return nil
}

// AlertTotals count an alert's receivers by delivery state.
type AlertTotals struct {
	Receivers int `json:"receivers"`
	Queued    int `json:"queued"`
	Acked     int `json:"acked"`
	Started   int `json:"started"`
	Finished  int `json:"finished"`
	Failed    int `json:"failed"`
	Late      int `json:"late"` // of all, got it after coming back online
}

// Add counts d.
func (t *AlertTotals) Add(d *Delivery) {
	t.Receivers++
	switch d.State {
	case DeliveryQueued:
		t.Queued++
	case DeliveryAcked:
		t.Acked++
	case DeliveryStarted:
		t.Started++
	case DeliveryFinished:
		t.Finished++
	case DeliveryFailed:
		t.Failed++
	}
	if d.Late {
		t.Late++
	}
}

// CAPResult is what a CAP message did: an alert sent (Alert), alerts
// cancelled (Cancel; Alert is the first named), or nothing (Silent says
// why a valid message sounds nowhere).
type CAPResult struct {
	Alert  *Alert
	Cancel bool
	Silent string
}
