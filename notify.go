package loa

import (
	"context"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// Notification events a rule can follow.
const (
	// NotifyAlarm: an alarm raised and not acknowledged within the rule's
	// AfterMinutes.
	NotifyAlarm = "alarm"
	// NotifyAlertDelivery: an alert whose report settled (ended or
	// expired) with fewer than BelowPercent % of its receivers reached.
	NotifyAlertDelivery = "alert_delivery"
)

// Notification channels (ChannelSMS, "sms", is shared with alert delivery).
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// Notification log statuses.
const (
	NotifySent    = "sent"    // the channel accepted the message
	NotifyFailed  = "failed"  // the channel refused it, or the person has no address for it
	NotifyAcked   = "acked"   // someone acknowledged: the escalation stopped
	NotifyStopped = "stopped" // the alarm cleared, or the rule was disabled or deleted, before the chain ended
)

// Bounds of notification rules.
const (
	MaxNotifyChain   = 10
	MaxNotifyMinutes = 7 * 24 * 60
)

// NotifyStep is one link of a rule's escalation chain: who is told, how,
// and how many minutes after the previous link (the first: after the
// rule's AfterMinutes) nobody acknowledged.
type NotifyStep struct {
	Username     string `json:"username"`
	Channel      string `json:"channel"`
	AfterMinutes int    `json:"after_minutes"`
}

// NotifyRule says which events reach whom. An alarm rule matches alarms
// of its area's subtree (every alarm, station ones included, when AreaID
// is empty), of AlarmKinds (any when empty) and at least MinSeverity.
type NotifyRule struct {
	ID           string       `json:"id"`
	Name         string       `json:"name,omitempty"`
	AreaID       string       `json:"area_id,omitempty"`
	Event        string       `json:"event"`
	AlarmKinds   []string     `json:"alarm_kinds,omitempty"`
	MinSeverity  string       `json:"min_severity,omitempty"`
	AfterMinutes int          `json:"after_minutes"`
	BelowPercent float64      `json:"below_percent,omitempty"`
	Chain        []NotifyStep `json:"chain"`
	Enabled      bool         `json:"enabled"`
	CreatedBy    string       `json:"created_by,omitempty"`
	UpdatedAt    time.Time    `json:"updated_at"`
}

// Validate checks a rule's own fields (not whether its area and people
// exist).
func (r *NotifyRule) Validate() error {
	if err := ValidateName("name", r.Name, false); err != nil {
		return err
	}
	if r.AreaID != "" {
		if err := ValidateID("area_id", r.AreaID); err != nil {
			return err
		}
	}
	switch r.Event {
	case NotifyAlarm:
		for _, k := range r.AlarmKinds {
			if err := ValidateID("alarm_kinds", k); err != nil {
				return err
			}
		}
		if r.BelowPercent != 0 {
			return Errorf(EINVALID, "below_percent: only for event alert_delivery")
		}
	case NotifyAlertDelivery:
		if len(r.AlarmKinds) > 0 || r.MinSeverity != "" {
			return Errorf(EINVALID, "alarm_kinds: only for event alarm")
		}
		if r.BelowPercent <= 0 || r.BelowPercent > 100 {
			return Errorf(EINVALID, "below_percent: within (0, 100]")
		}
	default:
		return Errorf(EINVALID, "event: want alarm or alert_delivery, not %q", r.Event)
	}
	switch r.MinSeverity {
	case "", SeverityWarning, SeverityCritical:
	default:
		return Errorf(EINVALID, "min_severity: want warning or critical, not %q", r.MinSeverity)
	}
	if r.AfterMinutes < 0 || r.AfterMinutes > MaxNotifyMinutes {
		return Errorf(EINVALID, "after_minutes: within 0..%d", MaxNotifyMinutes)
	}
	if len(r.Chain) == 0 || len(r.Chain) > MaxNotifyChain {
		return Errorf(EINVALID, "chain: 1..%d steps", MaxNotifyChain)
	}
	for _, s := range r.Chain {
		if err := ValidateUsername("chain.username", s.Username); err != nil {
			return err
		}
		switch s.Channel {
		case ChannelEmail, ChannelSMS, ChannelWebhook:
		default:
			return Errorf(EINVALID, "chain.channel: want email, sms or webhook, not %q", s.Channel)
		}
		if s.AfterMinutes < 0 || s.AfterMinutes > MaxNotifyMinutes {
			return Errorf(EINVALID, "chain.after_minutes: within 0..%d", MaxNotifyMinutes)
		}
	}
	return nil
}

// MatchesAlarm reports whether an enabled alarm rule covers al; tree
// places the alarm's area under the rule's.
func (r *NotifyRule) MatchesAlarm(al *Alarm, tree AreaTree) bool {
	if !r.Enabled || r.Event != NotifyAlarm {
		return false
	}
	if len(r.AlarmKinds) > 0 && !slices.Contains(r.AlarmKinds, al.Kind) {
		return false
	}
	if r.MinSeverity == SeverityCritical && al.Severity != SeverityCritical {
		return false
	}
	return r.AreaID == "" || al.Area != "" && tree.Within(al.Area, r.AreaID)
}

// NotifyLogEntry is one line of the notification log: a message sent or
// failed, or an escalation acknowledged or stopped.
type NotifyLogEntry struct {
	ID       string    `json:"id"`
	At       time.Time `json:"at"`
	RuleID   string    `json:"rule_id"`
	Escalate string    `json:"escalation"`         // the escalation (one event, one rule)
	AlarmID  string    `json:"alarm_id,omitempty"` // the alarm it is about
	AlertID  string    `json:"alert_id,omitempty"` // or the alert
	AreaID   string    `json:"area_id,omitempty"`  // the event's area, for scope
	Step     int       `json:"step"`               // index in the chain
	Username string    `json:"username,omitempty"`
	Channel  string    `json:"channel,omitempty"`
	To       string    `json:"to,omitempty"` // the address or number used
	Status   string    `json:"status"`
	Text     string    `json:"text,omitempty"` // what was sent (the SMS, or the e-mail's subject)
	Error    string    `json:"error,omitempty"`
	By       string    `json:"by,omitempty"` // who acknowledged
}

// ValidateEmail checks a user's e-mail address: empty, or one plain
// address (no display name).
func ValidateEmail(field, s string) error {
	if s == "" {
		return nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 || strings.ContainsAny(s, "\r\n") {
		return Errorf(EINVALID, "%s: %q is not an e-mail address like name@example.vn", field, s)
	}
	return nil
}

// ValidatePhone checks a user's mobile number: empty, or E.164.
func ValidatePhone(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || strings.Trim(s[1:], "0123456789") != "" {
		return Errorf(EINVALID, "%s: %q is not an E.164 number ('+' and 8–15 digits, e.g. +84912345678)", field, s)
	}
	return nil
}

// NotifyService keeps notification rules and the notification log, and
// takes acknowledgements from e-mail links (the API consumes it).
type NotifyService interface {
	Rules(ctx context.Context) ([]*NotifyRule, error)
	Rule(ctx context.Context, id string) (*NotifyRule, error) // ENOTFOUND if none
	// PutRule validates and stores r (new when ID is empty: an id is set).
	PutRule(ctx context.Context, r *NotifyRule) error
	DeleteRule(ctx context.Context, id string) error
	// NotifyLog returns up to limit entries, newest first, keep decides.
	NotifyLog(ctx context.Context, limit int, keep func(*NotifyLogEntry) bool) ([]NotifyLogEntry, error)
	// AckLink resolves a link's token to its escalation; EINVALID if it
	// is forged, ENOTFOUND if the escalation ended (acknowledged or
	// cleared already). An alarm's is acknowledged on the alarm (which
	// ends it); an alert's with AckEscalation.
	AckLink(ctx context.Context, token string) (*NotifyEscalation, error)
	// AckEscalation ends escalation id as acknowledged by by.
	AckEscalation(ctx context.Context, id, by, note string) error
}

// NotifyEscalation is one event (an alarm or an alert) going along one
// rule's chain. It is stored before each step is sent (Next moves first),
// so a restart resumes it and never sends a step twice; it is deleted
// when the alarm is acknowledged or cleared, or the rule goes.
type NotifyEscalation struct {
	ID      string    `json:"id"`
	RuleID  string    `json:"rule_id"`
	AlarmID string    `json:"alarm_id,omitempty"`
	AlertID string    `json:"alert_id,omitempty"`
	AreaID  string    `json:"area_id,omitempty"`
	Since   time.Time `json:"since"`   // the event: the alarm raised, the alert settled
	Next    int       `json:"next"`    // the chain's next step; len(chain): all sent
	LastAt  time.Time `json:"last_at"` // the last step's send (zero before the first)
	// An alert's delivery when it ended: its title, receivers reached
	// (played it through) of all.
	Title     string `json:"title,omitempty"`
	Reached   int    `json:"reached,omitempty"`
	Receivers int    `json:"receivers,omitempty"`
}
