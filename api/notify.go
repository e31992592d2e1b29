package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/loa-broadcast/loa"
)

// Notification rules and their log (loa.NotifyService), for those who
// manage areas (admins, province staff): a scoped caller sees and makes
// only rules of areas within its scope, and the log of events there.

// notifyRuleRequest is the body of POST and PUT /api/v1/notify/rules.
type notifyRuleRequest struct {
	Name         string           `json:"name"`
	AreaID       string           `json:"area_id"`
	Event        string           `json:"event"`
	AlarmKinds   []string         `json:"alarm_kinds"`
	MinSeverity  string           `json:"min_severity"`
	AfterMinutes int              `json:"after_minutes"`
	BelowPercent float64          `json:"below_percent"`
	Chain        []loa.NotifyStep `json:"chain"`
	Enabled      *bool            `json:"enabled"` // absent: true
}

// Bounds of the notification log's answer.
const (
	defaultNotifyLogLimit = 200
	maxNotifyLogLimit     = 2000
)

func (s *Server) notifyService() (loa.NotifyService, error) {
	if s.Notify == nil {
		return nil, errUnavailable("notification")
	}
	return s.Notify, nil
}

// ruleVisible: an unscoped caller sees every rule, a scoped one those of
// areas within its scope (never station-wide ones).
func (c *call) ruleVisible(areaID string) (bool, error) {
	if !c.scoped() {
		return true, nil
	}
	if areaID == "" {
		return false, nil
	}
	return c.areaInScope(areaID)
}

func (s *Server) listNotifyRules(w http.ResponseWriter, r *http.Request, c *call) error {
	ns, err := s.notifyService()
	if err != nil {
		return err
	}
	all, err := ns.Rules(r.Context())
	if err != nil {
		return err
	}
	out := make([]*loa.NotifyRule, 0, len(all))
	for _, rule := range all {
		if ok, err := c.ruleVisible(rule.AreaID); err != nil {
			return err
		} else if ok {
			out = append(out, rule)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// visibleRule returns the rule at the path, not found outside the scope.
func (c *call) visibleRule(r *http.Request) (*loa.NotifyRule, error) {
	ns, err := c.s.notifyService()
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if err := loa.ValidateID("id", id); err != nil {
		return nil, err
	}
	rule, err := ns.Rule(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if ok, err := c.ruleVisible(rule.AreaID); err != nil {
		return nil, err
	} else if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "rule %q not found", id)
	}
	return rule, nil
}

func (s *Server) getNotifyRule(w http.ResponseWriter, r *http.Request, c *call) error {
	rule, err := c.visibleRule(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rule)
	return nil
}

// checkNotifyRule checks what the rule's own Validate cannot: its area
// exists within the caller's scope and the people of its chain exist.
func (c *call) checkNotifyRule(r *http.Request, rule *loa.NotifyRule) error {
	if err := rule.Validate(); err != nil {
		return err
	}
	if c.scoped() && rule.AreaID == "" {
		return loa.Errorf(loa.EFORBIDDEN, "area_id: a station-wide rule is outside your scope (%s)", c.tok.AreaID)
	}
	if rule.AreaID != "" {
		if err := checkAreaParam(c, rule.AreaID); err != nil {
			return loa.Errorf(loa.EINVALID, "area_id: %q is not an area you manage", rule.AreaID)
		}
	}
	if c.s.Users == nil || c.s.Areas == nil {
		return errUnavailable("user")
	}
	var tree loa.AreaTree
	for _, step := range rule.Chain {
		u, err := c.s.Users.User(r.Context(), step.Username)
		if loa.ErrorCode(err) == loa.ENOTFOUND {
			return loa.Errorf(loa.EINVALID, "chain.username: no user %q", step.Username)
		} else if err != nil {
			return err
		}
		// The people told must see all the rule covers.
		if u.AreaID == "" {
			continue
		}
		if tree == nil {
			areas, err := c.s.Areas.Areas(r.Context())
			if err != nil {
				return err
			}
			tree = loa.NewAreaTree(areas)
		}
		if rule.AreaID == "" || !tree.Within(rule.AreaID, u.AreaID) {
			return loa.Errorf(loa.EINVALID, "chain.username: %s's scope (%s) does not cover the rule's area", u.Username, u.AreaID)
		}
	}
	return nil
}

func (req *notifyRuleRequest) rule() *loa.NotifyRule {
	enabled := req.Enabled == nil || *req.Enabled
	return &loa.NotifyRule{Name: strings.TrimSpace(req.Name), AreaID: req.AreaID, Event: req.Event, AlarmKinds: req.AlarmKinds,
		MinSeverity: req.MinSeverity, AfterMinutes: req.AfterMinutes, BelowPercent: req.BelowPercent, Chain: req.Chain, Enabled: enabled}
}

func (s *Server) createNotifyRule(w http.ResponseWriter, r *http.Request, c *call) error {
	ns, err := s.notifyService()
	if err != nil {
		return err
	}
	var req notifyRuleRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	rule := req.rule()
	rule.CreatedBy = c.tok.ID
	if err := c.checkNotifyRule(r, rule); err != nil {
		return err
	}
	if err := ns.PutRule(r.Context(), rule); err != nil {
		return err
	}
	c.audit("notify.rule.create", rule.ID, ruleSummary(rule))
	writeJSON(w, http.StatusCreated, rule)
	return nil
}

func (s *Server) replaceNotifyRule(w http.ResponseWriter, r *http.Request, c *call) error {
	var req notifyRuleRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	old, err := c.visibleRule(r)
	if err != nil {
		return err
	}
	rule := req.rule()
	rule.ID, rule.CreatedBy = old.ID, old.CreatedBy
	if err := c.checkNotifyRule(r, rule); err != nil {
		return err
	}
	if err := s.Notify.PutRule(r.Context(), rule); err != nil {
		return err
	}
	c.audit("notify.rule.update", rule.ID, ruleSummary(rule))
	writeJSON(w, http.StatusOK, rule)
	return nil
}

func (s *Server) deleteNotifyRule(w http.ResponseWriter, r *http.Request, c *call) error {
	rule, err := c.visibleRule(r)
	if err != nil {
		return err
	}
	if err := s.Notify.DeleteRule(r.Context(), rule.ID); err != nil {
		return err
	}
	c.audit("notify.rule.delete", rule.ID, ruleSummary(rule))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ruleSummary is a rule in the audit log: event, area and chain.
func ruleSummary(r *loa.NotifyRule) string {
	var b strings.Builder
	b.WriteString(r.Event + " " + r.AreaID + ":")
	for _, s := range r.Chain {
		b.WriteString(" " + s.Username + "/" + s.Channel + "+" + strconv.Itoa(s.AfterMinutes) + "m")
	}
	if !r.Enabled {
		b.WriteString(" (disabled)")
	}
	return b.String()
}

// notifyLog answers GET /api/v1/notify/log?limit=: what was sent, what
// failed and what was acknowledged, newest first, in the caller's scope.
func (s *Server) notifyLog(w http.ResponseWriter, r *http.Request, c *call) error {
	ns, err := s.notifyService()
	if err != nil {
		return err
	}
	limit := defaultNotifyLogLimit
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxNotifyLogLimit {
			return loa.Errorf(loa.EINVALID, "limit: must be an integer within 1..%d", maxNotifyLogLimit)
		}
		limit = n
	}
	if c.scoped() {
		if _, err := c.areaList(); err != nil { // the scope's subtree, once
			return err
		}
	}
	out, err := ns.NotifyLog(r.Context(), limit, func(e *loa.NotifyLogEntry) bool {
		return !c.scoped() || e.AreaID != "" && c.tree.Within(e.AreaID, c.tok.AreaID)
	})
	if err != nil {
		return err
	}
	if out == nil {
		out = []loa.NotifyLogEntry{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// notifyAck answers POST /api/v1/notify/ack {token, note}: the console
// page an e-mail's or SMS's link opens calls it once the person signed
// in. The token names the escalation (signed by the station); the alarm
// it is about is acknowledged as the caller, who must see the alarm,
// which stops the escalation; an alert's escalation is acknowledged
// itself. Audited.
func (s *Server) notifyAck(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Token string `json:"token"`
		Note  string `json:"note"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	ns, err := s.notifyService()
	if err != nil {
		return err
	}
	if len(req.Token) > 200 {
		return loa.Errorf(loa.EINVALID, "token: not a link this station made")
	}
	note := strings.TrimSpace(req.Note)
	if len(note) > loa.MaxAlarmNote-40 || strings.ContainsAny(note, "\x00\r\n") {
		return loa.Errorf(loa.EINVALID, "note: at most %d bytes on one line", loa.MaxAlarmNote-40)
	}
	e, err := ns.AckLink(r.Context(), req.Token)
	if err != nil {
		return err
	}
	full := "qua liên kết thông báo"
	if note != "" {
		full += ": " + note
	}
	if e.AlarmID == "" { // an alert's delivery: the escalation itself is acknowledged
		if c.scoped() {
			if _, err := c.areaList(); err != nil {
				return err
			}
			if e.AreaID == "" || !c.tree.Within(e.AreaID, c.tok.AreaID) {
				return loa.Errorf(loa.ENOTFOUND, "token: not in your scope")
			}
		}
		if err := ns.AckEscalation(r.Context(), e.ID, c.tok.ID, full); err != nil {
			return err
		}
		c.audit("notify.ack", e.AlertID, "alert delivery: "+full)
		writeJSON(w, http.StatusOK, notifyAckAnswer{Escalation: e.ID, AlertID: e.AlertID})
		return nil
	}
	alarmID := e.AlarmID
	if s.Alarms == nil {
		return errUnavailable("alarm")
	}
	acker, ok := s.Alarms.(alarmAcker)
	if !ok {
		return errUnavailable("alarm acknowledgement")
	}
	list, err := s.Alarms.Alarms(r.Context(), loa.AlarmFilter{Active: true})
	if err != nil {
		return err
	}
	var found *loa.Alarm
	for i := range list {
		if list[i].ID == alarmID && alarmVisible(c, &list[i]) {
			found = &list[i]
			break
		}
	}
	if found == nil {
		return loa.Errorf(loa.ENOTFOUND, "token: the alarm is cleared, or not in your scope")
	}
	al, err := acker.AcknowledgeAlarm(r.Context(), alarmID, c.tok.ID, full)
	if err != nil {
		return err
	}
	c.audit("notify.ack", alarmID, al.Kind+" "+al.Device+": "+full)
	writeJSON(w, http.StatusOK, notifyAckAnswer{Escalation: e.ID, AlarmID: alarmID, Alarm: &al})
	return nil
}

// notifyAckAnswer is what a link acknowledged: an alarm (marked), or an
// alert's delivery notification.
type notifyAckAnswer struct {
	Escalation string     `json:"escalation"`
	AlarmID    string     `json:"alarm_id,omitempty"`
	AlertID    string     `json:"alert_id,omitempty"`
	Alarm      *loa.Alarm `json:"alarm,omitempty"`
}

// putMyContact answers PUT /api/v1/me/contact {email, phone}: a signed-in
// person sets where notifications reach them. Audited.
func (s *Server) putMyContact(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Email string `json:"email"`
		Phone string `json:"phone"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	email, phone := strings.TrimSpace(req.Email), strings.TrimSpace(req.Phone)
	if err := loa.ValidateEmail("email", email); err != nil {
		return err
	}
	if err := loa.ValidatePhone("phone", phone); err != nil {
		return err
	}
	if c.user == nil || s.Users == nil {
		return loa.Errorf(loa.EFORBIDDEN, "only a signed-in person has contact details; a token has none")
	}
	u, err := s.Users.UpdateUser(r.Context(), c.user.Username, func(u *loa.User) error {
		u.Email, u.Phone = email, phone
		return nil
	})
	if err != nil {
		return err
	}
	c.audit("user.contact", u.Username, contactDetail(u))
	writeJSON(w, http.StatusOK, u)
	return nil
}

func contactDetail(u *loa.User) string { return "email " + u.Email + ", phone " + u.Phone }
