package station

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// People told (issue 16): rules say which alarms reach whom, by which
// channel; an alarm not acknowledged within the rule's minutes goes along
// its chain, one person after another, until someone acknowledges it
// (the console, or the e-mail's link) or it clears. The state is level-
// triggered: each round compares the active alarms with the escalations
// in the store, so a restart resumes where it was, and each step is
// claimed in the store before it is sent, so none is sent twice.

// ActiveAlarms lists the alarms not cleared (devices.Alarms).
type ActiveAlarms interface {
	Active() []loa.Alarm
}

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	DB       *store.DB
	Alarms   ActiveAlarms
	Channels map[string]NotifyChannel // by loa.Channel*; a missing one logs a failure
	// Key signs the acknowledgement links (from the station key, so links
	// survive a restart).
	Key       []byte
	PublicURL string        // the console's address in links, e.g. https://loa.example.vn
	Minute    time.Duration // what a rule's minute is: time.Minute (tests: shorter)
	Tick      time.Duration // how often rules are evaluated; 0: 5 s
	Now       func() time.Time
	Zone      *time.Location // of times in messages; nil: Asia/Ho_Chi_Minh
	Logger    *slog.Logger
}

// Notifier runs the notification rules (loa.NotifyService).
type Notifier struct {
	cfg NotifierConfig
	db  *store.DB
	log *slog.Logger
	mu  sync.Mutex // one round at a time

	endedMu sync.Mutex
	ended   []endedAlert // alerts that ended since the last round
}

// endedAlert is what a round needs of an alert that ended.
type endedAlert struct {
	ID, Title          string
	At                 time.Time
	Reached, Receivers int
	Areas              []string // of its receivers
}

// AlertEnded takes an alert as it ends (Alerts.OnEnd): its delivery is
// weighed against the alert_delivery rules at the next round. A cancelled
// alert was stopped on purpose: nobody is told.
func (n *Notifier) AlertEnded(a *loa.Alert) {
	if a.State == loa.AlertCancelled || len(a.Report) == 0 {
		return
	}
	e := endedAlert{ID: a.ID, Title: a.Title, At: a.EndedAt, Receivers: len(a.Report)}
	seen := map[string]bool{}
	for i := range a.Report {
		d := &a.Report[i]
		if d.State == loa.DeliveryFinished {
			e.Reached++
		}
		if d.Area != "" && !seen[d.Area] {
			seen[d.Area] = true
			e.Areas = append(e.Areas, d.Area)
		}
	}
	n.endedMu.Lock()
	n.ended = append(n.ended, e)
	n.endedMu.Unlock()
}

// NewNotifier returns a Notifier; Run evaluates its rules.
func NewNotifier(cfg NotifierConfig) *Notifier {
	if cfg.Minute <= 0 {
		cfg.Minute = time.Minute
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Zone == nil {
		cfg.Zone, _ = time.LoadLocation(loa.DefaultZone)
		if cfg.Zone == nil {
			cfg.Zone = time.FixedZone("ICT", 7*3600)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &Notifier{cfg: cfg, db: cfg.DB, log: cfg.Logger}
}

// Run evaluates the rules every tick until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Tick)
	defer t.Stop()
	for {
		if err := n.Round(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("notifications: a round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// escalationID names the escalation of one alarm along one rule, so a
// round finds it again (and a restart does too).
func escalationID(ruleID, alarmID string) string {
	sum := sha256.Sum256([]byte(ruleID + "\x00" + alarmID))
	return hex.EncodeToString(sum[:6])
}

// Round ends the escalations whose alarm was acknowledged or cleared (or
// whose rule went), starts those of new unacknowledged alarms, and sends
// every step that is due.
func (n *Notifier) Round(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	rules, err := n.db.NotifyRules(ctx)
	if err != nil {
		return err
	}
	byID := map[string]*loa.NotifyRule{}
	for _, r := range rules {
		byID[r.ID] = r
	}
	escs, err := n.db.NotifyEscalations(ctx)
	if err != nil {
		return err
	}
	active := map[string]*loa.Alarm{}
	alarms := n.cfg.Alarms.Active()
	for i := range alarms {
		active[alarms[i].ID] = &alarms[i]
	}
	open := map[string]*loa.NotifyEscalation{}
	for _, e := range escs {
		r, al := byID[e.RuleID], active[e.AlarmID]
		switch {
		case r == nil || !r.Enabled:
			n.end(ctx, e, loa.NotifyStopped, "", "the rule was disabled or deleted")
		case e.AlarmID != "" && al == nil:
			n.end(ctx, e, loa.NotifyStopped, "", "the alarm cleared")
		case al != nil && al.Ack != nil:
			n.end(ctx, e, loa.NotifyAcked, al.Ack.By, al.Ack.Note)
		default:
			open[e.ID] = e
		}
	}
	now := n.cfg.Now()
	var tree loa.AreaTree
	areaTree := func() (loa.AreaTree, error) {
		if tree == nil {
			areas, err := n.db.Areas(ctx)
			if err != nil {
				return nil, err
			}
			tree = loa.NewAreaTree(areas)
		}
		return tree, nil
	}
	if err := n.startAlertEscalations(ctx, rules, open, areaTree); err != nil {
		return err
	}
	for _, al := range alarms {
		if al.Ack != nil {
			continue
		}
		for _, r := range rules {
			if r.AreaID != "" {
				if _, err := areaTree(); err != nil {
					return err
				}
			}
			if !r.MatchesAlarm(&al, tree) {
				continue
			}
			id := escalationID(r.ID, al.ID)
			if open[id] != nil {
				continue
			}
			e := &loa.NotifyEscalation{ID: id, RuleID: r.ID, AlarmID: al.ID, AreaID: al.Area, Since: al.RaisedAt}
			if _, err := n.db.StartNotifyEscalation(ctx, e); err != nil {
				return err
			}
			open[id] = e
		}
	}
	for _, e := range open {
		r := byID[e.RuleID]
		if e.Next >= len(r.Chain) {
			if e.AlertID != "" { // nothing to wait for: an alert has ended already
				n.end(ctx, e, loa.NotifyStopped, "", "everyone in the chain was told")
			}
			continue // an alarm's ends with the alarm
		}
		if now.Before(n.due(e, r)) {
			continue
		}
		if err := n.step(ctx, e, r, active[e.AlarmID], now); err != nil {
			return err
		}
	}
	return nil
}

// startAlertEscalations starts an escalation for each alert that ended
// since the last round reaching fewer receivers than an enabled
// alert_delivery rule of its areas wants.
func (n *Notifier) startAlertEscalations(ctx context.Context, rules []*loa.NotifyRule, open map[string]*loa.NotifyEscalation, areaTree func() (loa.AreaTree, error)) error {
	n.endedMu.Lock()
	ended := n.ended
	n.endedMu.Unlock()
	if len(ended) == 0 {
		return nil
	}
	for _, a := range ended {
		for _, r := range rules {
			if !r.Enabled || r.Event != loa.NotifyAlertDelivery || float64(a.Reached)*100 >= r.BelowPercent*float64(a.Receivers) {
				continue
			}
			area := r.AreaID
			if area == "" && len(a.Areas) > 0 {
				area = a.Areas[0]
			} else if area != "" {
				tree, err := areaTree()
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(a.Areas, func(x string) bool { return tree.Within(x, r.AreaID) }) {
					continue
				}
			}
			e := &loa.NotifyEscalation{ID: escalationID(r.ID, "alert\x00"+a.ID), RuleID: r.ID, AlertID: a.ID, AreaID: area,
				Since: a.At, Title: a.Title, Reached: a.Reached, Receivers: a.Receivers}
			if _, err := n.db.StartNotifyEscalation(ctx, e); err != nil {
				return err
			}
			if open[e.ID] == nil {
				open[e.ID] = e
			}
		}
	}
	n.endedMu.Lock()
	n.ended = n.ended[len(ended):]
	n.endedMu.Unlock()
	return nil
}

// due is when e's next step is sent: the first after the rule's minutes
// and its own from the event, each later one its minutes after the
// previous send (so a controller down for an hour resumes one step at a
// time, not in a burst).
func (n *Notifier) due(e *loa.NotifyEscalation, r *loa.NotifyRule) time.Time {
	m := n.cfg.Minute
	s := r.Chain[e.Next]
	if e.Next == 0 || e.LastAt.IsZero() {
		return e.Since.Add(time.Duration(r.AfterMinutes+s.AfterMinutes) * m)
	}
	return e.LastAt.Add(time.Duration(s.AfterMinutes) * m)
}

// step claims e's next step in the store, then sends it and logs and
// audits the outcome.
func (n *Notifier) step(ctx context.Context, e *loa.NotifyEscalation, r *loa.NotifyRule, al *loa.Alarm, now time.Time) error {
	i := e.Next
	ok, err := n.db.ClaimNotifyStep(ctx, e.ID, i, now)
	if err != nil || !ok {
		return err
	}
	e.Next, e.LastAt = i+1, now
	s := r.Chain[i]
	entry := &loa.NotifyLogEntry{At: now.UTC(), RuleID: r.ID, Escalate: e.ID, AlarmID: e.AlarmID, AlertID: e.AlertID, AreaID: e.AreaID,
		Step: i, Username: s.Username, Channel: s.Channel}
	m, err := n.message(ctx, e, s, al)
	entry.To, entry.Text = m.To, m.Text
	if s.Channel == loa.ChannelEmail {
		entry.Text = m.Subject
	}
	if err == nil {
		ch := n.cfg.Channels[s.Channel]
		if ch == nil {
			err = fmt.Errorf("channel %s is not configured on this station", s.Channel)
		} else {
			// A claimed step is never sent again: a shutdown waits for
			// its send rather than dropping it.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			err = ch.Send(sctx, m)
			cancel()
		}
	}
	entry.Status = loa.NotifySent
	if err != nil {
		entry.Status, entry.Error = loa.NotifyFailed, err.Error()
		n.log.Warn("notification not sent", "rule", r.ID, "alarm", e.AlarmID, "step", i, "user", s.Username, "channel", s.Channel, "err", err)
	} else {
		n.log.Info("notification sent", "rule", r.ID, "alarm", e.AlarmID, "step", i, "user", s.Username, "channel", s.Channel)
	}
	n.record(ctx, entry, "notify."+entry.Status, fmt.Sprintf("%s to %s (%s): %s", s.Channel, s.Username, entry.To, firstNonEmpty(entry.Error, entry.Text)))
	return nil
}

// message renders the step's notification to its person.
func (n *Notifier) message(ctx context.Context, e *loa.NotifyEscalation, s loa.NotifyStep, al *loa.Alarm) (NotifyMessage, error) {
	m := NotifyMessage{Username: s.Username, AlarmID: e.AlarmID, RuleID: e.RuleID, Link: n.AckLinkURL(e.ID)}
	u, err := n.db.User(ctx, s.Username)
	if err != nil {
		return m, fmt.Errorf("user %s: %w", s.Username, err)
	}
	if u.Disabled {
		return m, fmt.Errorf("user %s is disabled", s.Username)
	}
	// Nobody is told of what their scope does not show them (a user
	// moved to another commune after the rule was made).
	if area := firstNonEmpty(e.AreaID, alarmArea(al)); u.AreaID != "" {
		areas, err := n.db.Areas(ctx)
		if err != nil {
			return m, err
		}
		if area == "" || !loa.NewAreaTree(areas).Within(area, u.AreaID) {
			return m, fmt.Errorf("user %s's scope (%s) does not cover this event", s.Username, u.AreaID)
		}
	}
	switch s.Channel {
	case loa.ChannelEmail:
		m.To = u.Email
	case loa.ChannelSMS:
		m.To = u.Phone
	default:
		m.To = u.Username
	}
	if m.To == "" {
		return m, fmt.Errorf("user %s has no %s address", s.Username, s.Channel)
	}
	if e.AlertID != "" {
		area := ""
		if e.AreaID != "" {
			if a, err := n.db.Area(ctx, e.AreaID); err == nil {
				area = a.Name
			}
		}
		m.Subject, m.Body, m.Text = renderAlertDelivery(e, area, m.Link, n.cfg.PublicURL, n.cfg.Zone)
		return m, nil
	}
	if al == nil {
		return m, fmt.Errorf("alarm %s is gone", e.AlarmID)
	}
	subj := alarmSubject{}
	if al.Device != "" {
		subj.Device = al.Device
		if d, err := n.db.Device(ctx, al.Device); err == nil && d.Name != "" {
			subj.Device = d.Name
		}
	}
	if al.Area != "" {
		if a, err := n.db.Area(ctx, al.Area); err == nil {
			subj.Area = a.Name
		}
	}
	m.Subject, m.Body, m.Text = renderAlarm(al, subj, m.Link, n.cfg.PublicURL, n.cfg.Zone)
	return m, nil
}

// end deletes e and logs why it ended.
func (n *Notifier) end(ctx context.Context, e *loa.NotifyEscalation, status, by, why string) {
	found, err := n.db.EndNotifyEscalation(ctx, e.ID)
	if err != nil || !found {
		return
	}
	entry := &loa.NotifyLogEntry{At: n.cfg.Now().UTC(), RuleID: e.RuleID, Escalate: e.ID, AlarmID: e.AlarmID, AlertID: e.AlertID,
		AreaID: e.AreaID, Step: e.Next, Status: status, By: by, Text: why}
	detail := why
	if by != "" {
		detail = "by " + by + ": " + why
	}
	n.record(ctx, entry, "notify."+status, detail)
}

// record writes entry to the notification log and the audit log.
func (n *Notifier) record(ctx context.Context, entry *loa.NotifyLogEntry, action, detail string) {
	ctx = context.WithoutCancel(ctx) // a send that happened is logged, shutting down or not
	if err := n.db.AppendNotifyLog(ctx, entry); err != nil {
		n.log.Error("notification log", "err", err)
	}
	obj := entry.AlarmID
	if obj == "" {
		obj = entry.AlertID
	}
	if err := n.db.Audit(ctx, loa.AuditRecord{At: entry.At, Actor: "system", Action: action, Object: obj,
		Detail: detail, Scope: ""}); err != nil {
		n.log.Error("notification audit", "err", err)
	}
}

func alarmArea(al *loa.Alarm) string {
	if al == nil {
		return ""
	}
	return al.Area
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// ackMAC signs an escalation id for its link.
func (n *Notifier) ackMAC(id string) string {
	h := hmac.New(sha256.New, n.cfg.Key)
	h.Write([]byte("loa-notify-ack-v1\x00" + id))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

// AckToken is the signed token of escalation id's link: short, so the
// link fits one SMS.
func (n *Notifier) AckToken(id string) string { return id + "." + n.ackMAC(id) }

// AckLinkURL is the console page that acknowledges escalation id once
// the person has signed in.
func (n *Notifier) AckLinkURL(id string) string {
	return n.cfg.PublicURL + "/#/ack/" + n.AckToken(id)
}

// AckLink checks a link's token and returns its escalation
// (loa.NotifyService): EINVALID if it is forged, ENOTFOUND once the
// escalation ended (acknowledged or cleared): a link lasts as long as its
// escalation.
func (n *Notifier) AckLink(ctx context.Context, token string) (*loa.NotifyEscalation, error) {
	id, mac, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(n.ackMAC(id))) {
		return nil, loa.Errorf(loa.EINVALID, "token: not a link this station made")
	}
	e, err := n.db.NotifyEscalation(ctx, id)
	if err != nil {
		return nil, loa.Errorf(loa.ENOTFOUND, "token: this notification has ended (acknowledged or cleared)")
	}
	return e, nil
}

// AckEscalation ends escalation id as acknowledged by by (an alert's:
// an alarm's ends when the alarm is acknowledged).
// It does not wait for a round: a step being sent goes, none after it.
func (n *Notifier) AckEscalation(ctx context.Context, id, by, note string) error {
	e, err := n.db.NotifyEscalation(ctx, id)
	if err != nil {
		return loa.Errorf(loa.ENOTFOUND, "token: this notification has ended (acknowledged or cleared)")
	}
	n.end(ctx, e, loa.NotifyAcked, by, note)
	return nil
}

// Rules returns every rule (loa.NotifyService).
func (n *Notifier) Rules(ctx context.Context) ([]*loa.NotifyRule, error) {
	return n.db.NotifyRules(ctx)
}

// Rule returns rule id.
func (n *Notifier) Rule(ctx context.Context, id string) (*loa.NotifyRule, error) {
	return n.db.NotifyRule(ctx, id)
}

// PutRule validates and stores r; a new one (no id) gets one.
func (n *Notifier) PutRule(ctx context.Context, r *loa.NotifyRule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.ID == "" {
		r.ID = newID()
	}
	r.UpdatedAt = n.cfg.Now().UTC()
	return n.db.PutNotifyRule(ctx, r)
}

// DeleteRule removes rule id; its escalations stop at the next round.
func (n *Notifier) DeleteRule(ctx context.Context, id string) error {
	return n.db.DeleteNotifyRule(ctx, id)
}

// NotifyLog returns the newest entries keep accepts.
func (n *Notifier) NotifyLog(ctx context.Context, limit int, keep func(*loa.NotifyLogEntry) bool) ([]loa.NotifyLogEntry, error) {
	return n.db.NotifyLog(ctx, limit, keep)
}
