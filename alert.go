package loa

import (
	"context"
	"time"
)

// Alert levels (Thông tư 39/2020/TT-BTTTT).
const (
	AlertEmergency = "khan_cap" // khẩn cấp: emergency band, overrides volume and mute
	AlertPriority  = "uu_tien"  // ưu tiên: priority band
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
)

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
	ID        string        `json:"id"`
	Title     string        `json:"title"`
	Level     string        `json:"level"`   // AlertEmergency or AlertPriority
	Content   AlertContent  `json:"content"` // exactly one of MediaID, Text
	Targets   Targets       `json:"targets"` // areas and/or devices; the province's area for everyone
	Repeats   int           `json:"repeats"` // times to play, 1–10 (0 means 1)
	Gap       time.Duration `json:"gap_ns"`  // silence between repeats
	Volume    int           `json:"volume"`  // emergency level: the receivers' volume while it plays (0 = 100)
	ExpiresAt time.Time     `json:"expires_at"`
	Test      bool          `json:"test,omitempty"` // an exercise/test: sounds only in areas marked for tests
	CAP       *AlertCAPInfo `json:"cap,omitempty"`  // set when the alert came from a CAP message

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
	Device    string    `json:"device"`
	Area      string    `json:"area"`
	State     string    `json:"state"`
	Reason    string    `json:"reason,omitempty"`
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
