package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// DefaultAlertExpiry is how long an alert request that names no expiry
// stays valid for receivers that are offline when it is sent.
const DefaultAlertExpiry = time.Hour

// alertRequest is the body of POST /api/v1/alerts.
type alertRequest struct {
	Title     string           `json:"title"`
	Level     string           `json:"level"` // khan_cap | uu_tien
	Content   loa.AlertContent `json:"content"`
	Targets   loa.Targets      `json:"targets"`
	Repeats   int              `json:"repeats"`    // 1–10; 0 = 1
	Gap       string           `json:"gap"`        // silence between repeats, a Go duration ("5s"), ≤ 60s
	GapNs     *int64           `json:"gap_ns"`     // or nanoseconds, as answers also carry it
	Volume    int              `json:"volume"`     // khẩn cấp: receivers' volume while it plays, 1–100; 0 = 100
	ExpiresAt string           `json:"expires_at"` // RFC 3339
	ExpiresIn string           `json:"expires_in"` // or a Go duration from now; neither = DefaultAlertExpiry
	Test      bool             `json:"test"`       // sounds only in areas marked for tests
	// StoredCode: receivers holding this stored message play it from
	// their own storage; the others get content, or the message's media.
	StoredCode int `json:"stored_code"`
}

// parseAlertRequest decodes and validates an alert request at now. Every
// failure is EINVALID naming the field.
func parseAlertRequest(body io.Reader, now time.Time) (*loa.Alert, error) {
	var req alertRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	a := &loa.Alert{Title: strings.TrimSpace(req.Title), Level: req.Level, Content: req.Content, Targets: req.Targets,
		Repeats: req.Repeats, Volume: req.Volume, Test: req.Test, StoredCode: req.StoredCode}
	gap, _, err := durationIn("gap", "gap_ns", req.Gap, req.GapNs, "5s")
	if err != nil {
		return nil, err
	}
	a.Gap = gap
	switch {
	case req.ExpiresAt != "" && req.ExpiresIn != "":
		return nil, loa.Errorf(loa.EINVALID, "expires_at, expires_in: name at most one")
	case req.ExpiresAt != "":
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			return nil, loa.Errorf(loa.EINVALID, "expires_at: %s is not an RFC 3339 time like 2026-11-26T18:00:00+07:00", strconv.Quote(req.ExpiresAt))
		}
		a.ExpiresAt = t
	case req.ExpiresIn != "":
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil {
			return nil, loa.Errorf(loa.EINVALID, "expires_in: %s is not a duration like \"2h\"", strconv.Quote(req.ExpiresIn))
		}
		if d <= 0 {
			return nil, loa.Errorf(loa.EINVALID, "expires_in: must be positive")
		}
		a.ExpiresAt = now.Add(d)
	default:
		a.ExpiresAt = now.Add(DefaultAlertExpiry)
	}
	if err := a.Validate(now); err != nil {
		return nil, err
	}
	return a, nil
}

// alertView is an alert as the API answers it: with its report's totals,
// over all receivers and per area. A receiver counts in its own area and
// in every area above it, so a province sees its communes' totals.
type alertView struct {
	*loa.Alert
	Gap    string      `json:"gap"` // as requests send it; gap_ns as before
	Totals alertTotals `json:"totals"`
}

type alertTotals struct {
	All   loa.AlertTotals            `json:"all"`
	Areas map[string]loa.AlertTotals `json:"areas"`
}

func newAlertView(a *loa.Alert, tree loa.AreaTree) alertView {
	v := alertView{Alert: a, Gap: a.Gap.String(), Totals: alertTotals{Areas: map[string]loa.AlertTotals{}}}
	for i := range a.Report {
		d := &a.Report[i]
		v.Totals.All.Add(d)
		id := d.Area
		for depth := 0; id != "" && depth < 16; depth++ {
			t := v.Totals.Areas[id]
			t.Add(d)
			v.Totals.Areas[id] = t
			p := tree[id]
			if p == nil {
				break
			}
			id = p.ParentID
		}
	}
	return v
}

// canSendLevel checks the caller's authority for an alert of level:
// khẩn cấp needs an admin or province token; ưu tiên also allows commune
// operators (within their scope, checked with the targets).
func (c *call) canSendLevel(level string) error {
	if level == loa.AlertEmergency && c.tok.Role != loa.RoleAdmin && c.tok.Role != loa.RoleProvince {
		return loa.Errorf(loa.EFORBIDDEN, "level: khẩn cấp (emergency) alerts need an admin or province token; role %s may send ưu tiên (%s)", c.tok.Role, loa.AlertPriority)
	}
	return nil
}

// alert returns alert id if the caller may see it (all its targets in
// scope), else ENOTFOUND.
func (s *Server) alert(c *call, id string) (*loa.Alert, error) {
	if s.Alerts == nil {
		return nil, errUnavailable("alert")
	}
	a, err := s.Alerts.Alert(c.ctx, id)
	if err != nil {
		return nil, err
	}
	if out, err := c.targetsInScope(a.Targets); err != nil {
		return nil, err
	} else if out != "" {
		return nil, loa.Errorf(loa.ENOTFOUND, "alert %q not found", id)
	}
	return a, nil
}

func (c *call) view(a *loa.Alert) (alertView, error) {
	if _, err := c.areaList(); err != nil {
		return alertView{}, err
	}
	return newAlertView(a, c.tree), nil
}

// sendAlert sends an alert whose every target is in the caller's scope.
func (s *Server) sendAlert(w http.ResponseWriter, r *http.Request, c *call) error {
	a, err := parseAlertRequest(r.Body, s.now())
	if err != nil {
		return err
	}
	if err := c.canSendLevel(a.Level); err != nil {
		return err
	}
	if err := c.targetsAllowed(a.Targets); err != nil {
		return err
	}
	if s.Alerts == nil {
		return errUnavailable("alert")
	}
	a.CreatedBy = c.tok.ID
	if err := s.Alerts.SendAlert(r.Context(), a); err != nil {
		return err
	}
	content := "media " + a.Content.MediaID
	if a.Content.MediaID == "" {
		content = fmt.Sprintf("speech, %d characters", len([]rune(a.Content.Text)))
	}
	c.audit("alert.send", a.ID, fmt.Sprintf("%s %q: %s, %d receivers, %d repeats, expires %s, targets %s",
		a.Level, a.Title, content, len(a.Report), a.Repeats, a.ExpiresAt.UTC().Format(time.RFC3339), a.Targets.String()))
	v, err := c.view(a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// listAlerts answers the alerts whose targets all lie in the caller's scope.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Alerts == nil {
		return errUnavailable("alert")
	}
	list, err := s.Alerts.Alerts(r.Context())
	if err != nil {
		return err
	}
	out := make([]alertView, 0, len(list))
	for _, a := range list {
		if o, err := c.targetsInScope(a.Targets); err != nil {
			return err
		} else if o != "" {
			continue
		}
		v, err := c.view(a)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getAlert answers one alert with its delivery report and totals.
func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, c *call) error {
	a, err := s.alert(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := c.view(a)
	if err != nil {
		return err
	}
	c.audit("alert.report", a.ID, "state "+a.State)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// cancelRequest is the optional body of POST /api/v1/alerts/{id}/cancel.
type cancelRequest struct {
	Reason string `json:"reason"`
}

// cancelAlert stops an alert everywhere. Cancelling needs the authority
// sending it needed.
func (s *Server) cancelAlert(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	var req cancelRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r.Body, &req); err != nil {
			return err
		}
	}
	if len(req.Reason) > 500 {
		return loa.Errorf(loa.EINVALID, "reason: at most 500 bytes")
	}
	a, err := s.alert(c, id)
	if err != nil {
		return err
	}
	if err := c.canSendLevel(a.Level); err != nil {
		return err
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		reason = "cancelled by " + c.tok.ID
	}
	if err := s.Alerts.CancelAlert(r.Context(), id, reason); err != nil {
		return err
	}
	c.audit("alert.cancel", id, reason)
	if a, err = s.Alerts.Alert(r.Context(), id); err != nil {
		return err
	}
	v, err := c.view(a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// alertEvents streams an alert's report as server-sent events: a
// "report" event (the alert view) now and on every change, coalesced,
// until the alert has ended; then the stream closes.
func (s *Server) alertEvents(w http.ResponseWriter, r *http.Request, c *call) error {
	a, err := s.alert(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := c.areaList(); err != nil {
		return err
	}
	c.audit("alert.report", a.ID, "live report")
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	latest := make(chan *loa.Alert, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Alerts.WatchAlert(ctx, a.ID, func(a *loa.Alert) {
			select { // keep only the newest snapshot if the client is slow
			case <-latest:
			default:
			}
			latest <- a
		})
	}()
	sse := startSSE(w)
	ping := time.NewTicker(sseKeepAlive)
	defer ping.Stop()
	for {
		select {
		case a := <-latest:
			if err := sse.send("report", newAlertView(a, c.tree)); err != nil {
				return nil // the client left
			}
		case err := <-done:
			select {
			case a := <-latest:
				_ = sse.send("report", newAlertView(a, c.tree))
			default:
			}
			if err != nil {
				s.logger().Warn("alert watch ended", "alert", a.ID, "err", err)
			}
			return nil
		case <-ping.C:
			if err := sse.ping(); err != nil {
				return nil
			}
		case <-r.Context().Done():
			return nil
		}
	}
}

// areaTestsRequest is the body of PUT /api/v1/areas/{id}/tests.
type areaTestsRequest struct {
	Tests *bool `json:"tests"`
}

// areaTestsSetter is the store's capability to mark areas for tests.
type areaTestsSetter interface {
	SetAreaTests(ctx context.Context, id string, tests bool) (*loa.Area, error)
}

// setAreaTests marks an area (and so its descendants) for test alerts, or
// clears the mark.
func (s *Server) setAreaTests(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	var req areaTestsRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.Tests == nil {
		return loa.Errorf(loa.EINVALID, "tests: required, true or false")
	}
	if ok, err := c.areaInScope(id); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "area %q not found", id)
	}
	setter, ok := s.Areas.(areaTestsSetter)
	if !ok {
		return errUnavailable("area tests")
	}
	a, err := setter.SetAreaTests(r.Context(), id, *req.Tests)
	if err != nil {
		return err
	}
	c.audit("area.tests", id, strconv.FormatBool(*req.Tests))
	writeJSON(w, http.StatusOK, a)
	return nil
}
