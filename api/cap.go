package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/cap"
)

// CAPAlertFinder finds the alert a CAP message created, by the message's
// sender and identifier; ENOTFOUND when there is none. The store keeps
// that index (and reserves it atomically when the alert is created, so a
// duplicate that races past the check here is still refused).
type CAPAlertFinder interface {
	AlertByCAP(ctx context.Context, sender, identifier string) (*loa.Alert, error)
}

// DefaultCAPSender is the sender of exported CAP messages when
// Server.CAPSender is empty.
const DefaultCAPSender = "loa"

// capSilent is the answer to a valid CAP message that sounds nowhere.
type capSilent struct {
	Identifier string `json:"identifier"`
	Sender     string `json:"sender"`
	Status     string `json:"status"`
	MsgType    string `json:"msg_type"`
	Sounded    bool   `json:"sounded"`
	Reason     string `json:"reason"`
}

// postCAP takes a CAP 1.2 message. Alert and Update send an alert (201)
// under the same authority rules as POST /api/v1/alerts; Cancel cancels
// the alerts its references name (200, 404 if none is known); System,
// Draft, Ack and Error are checked and answered 202 without sounding.
// Any bad input is a 4xx and sends nothing.
func (s *Server) postCAP(w http.ResponseWriter, r *http.Request, c *call) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/cap+xml" && mt != "application/xml" && mt != "text/xml") {
		return loa.Errorf(loa.EUNSUPPORTED, "Content-Type: %q; send the CAP message as application/cap+xml", ct)
	}
	if r.ContentLength > cap.MaxSize {
		return loa.Errorf(loa.ETOOLARGE, "body: a CAP message may be at most %s", sizeString(cap.MaxSize))
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, cap.MaxSize+1))
	if err != nil {
		return loa.Errorf(loa.EINVALID, "body: %v", err)
	}
	msg, err := cap.Parse(data)
	if err != nil {
		return err
	}
	if s.Alerts == nil {
		return errUnavailable("alert")
	}
	if s.CAPAlerts == nil {
		return errUnavailable("CAP index")
	}
	areas, err := c.areaList()
	if err != nil {
		return err
	}
	devices, err := s.capDevices(c)
	if err != nil {
		return err
	}
	mp, err := cap.Map(msg, areas, devices, s.now(), cap.Options{})
	if err != nil {
		return err
	}
	switch {
	case mp.Silent != "":
		c.audit("alert.cap", msg.Sender+","+msg.Identifier, msg.Status+"/"+msg.MsgType+": not sounded")
		writeJSON(w, http.StatusAccepted, capSilent{Identifier: msg.Identifier, Sender: msg.Sender,
			Status: msg.Status, MsgType: msg.MsgType, Reason: mp.Silent})
		return nil
	case mp.Cancel != nil:
		return s.capCancel(w, c, msg, mp.Cancel)
	}

	if prev, err := s.CAPAlerts.AlertByCAP(c.ctx, msg.Sender, msg.Identifier); err == nil {
		return loa.Errorf(loa.ECONFLICT, "identifier: sender %q already sent %q (alert %s); a CAP message is taken once", msg.Sender, msg.Identifier, prev.ID)
	} else if loa.ErrorCode(err) != loa.ENOTFOUND {
		return err
	}
	a := mp.Alert
	if err := c.canSendLevel(a.Level); err != nil {
		return err
	}
	if err := c.targetsAllowed(a.Targets); err != nil {
		return err
	}
	// Every check the alert service does not repeat is done: only now is
	// embedded audio imported, so refused messages leave no media behind.
	probe := *a
	if mp.Audio != nil {
		probe.Content.MediaID = "pending-import"
	}
	if err := probe.Validate(s.now()); err != nil {
		return err
	}
	if mp.Audio != nil {
		if s.Media == nil {
			return errUnavailable("media")
		}
		m, err := s.Media.ImportMedia(c.ctx, capMediaName(msg, mp.Audio), bytes.NewReader(mp.Audio.Data), c.tok.ID)
		if code := loa.ErrorCode(err); code != "" && code != loa.EINTERNAL {
			return loa.Errorf(code, "info.resource (%s): %s", mp.Audio.MimeType, loa.ErrorMessage(err))
		} else if err != nil {
			return fmt.Errorf("info.resource: import: %w", err)
		}
		a.Content.MediaID = m.ID
		c.audit("media.upload", m.ID, m.Name)
	}
	a.CreatedBy = c.tok.ID
	if err := s.Alerts.SendAlert(c.ctx, a); err != nil {
		return err
	}
	c.audit("alert.send", a.ID, fmt.Sprintf("CAP %s %s,%s: %s %q, %d receivers, targets %s",
		msg.MsgType, msg.Sender, msg.Identifier, a.Level, a.Title, len(a.Report), targetsString(a.Targets)))
	// The update is out; what it replaces stops. A reference that is
	// unknown here, or not the caller's to cancel, is left alone.
	for _, ref := range mp.Supersedes {
		if _, err := s.capCancelOne(c, ref, fmt.Sprintf("superseded by CAP update %s,%s", msg.Sender, msg.Identifier)); err != nil {
			s.logger().Warn("CAP update: superseded alert not cancelled", "reference", ref.String(), "update", a.ID, "err", err)
		}
	}
	v, err := c.view(a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// capDevices lists the devices a CAP polygon or circle may reach: those
// in the caller's scope. A warning polygon drawn across a province border
// reaches a scoped caller's own receivers, not a 403.
func (s *Server) capDevices(c *call) ([]*loa.Device, error) {
	if s.Devices == nil {
		return nil, errUnavailable("device")
	}
	all, err := s.Devices.Devices(c.ctx)
	if err != nil {
		return nil, err
	}
	if !c.scoped() {
		return all, nil
	}
	out := all[:0:0]
	for _, d := range all {
		if ok, err := c.areaInScope(d.AreaID); err != nil {
			return nil, err
		} else if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// capCancel cancels every alert the references name that the caller may
// see, and answers the first. An alert that has already ended is left as
// it is (a repeated Cancel is not an error).
func (s *Server) capCancel(w http.ResponseWriter, c *call, msg *cap.Message, refs []cap.Reference) error {
	reason := fmt.Sprintf("CAP Cancel %s,%s", msg.Sender, msg.Identifier)
	if msg.Note != "" {
		reason += ": " + truncate(msg.Note, 300)
	}
	var first *loa.Alert
	for _, ref := range refs {
		a, err := s.capCancelOne(c, ref, reason)
		if err != nil {
			return err
		}
		if first == nil {
			first = a
		}
	}
	if first == nil {
		names := make([]string, len(refs))
		for i, r := range refs {
			names[i] = r.String()
		}
		return loa.Errorf(loa.ENOTFOUND, "references: no alert came from %s", strings.Join(names, " "))
	}
	v, err := c.view(first)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// capCancelOne cancels the alert of ref: nil, nil when there is none the
// caller may see.
func (s *Server) capCancelOne(c *call, ref cap.Reference, reason string) (*loa.Alert, error) {
	a, err := s.CAPAlerts.AlertByCAP(c.ctx, ref.Sender, ref.Identifier)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if out, err := c.targetsInScope(a.Targets); err != nil {
		return nil, err
	} else if out != "" {
		return nil, nil
	}
	if err := c.canSendLevel(a.Level); err != nil {
		return nil, err
	}
	if !a.Final() {
		if err := s.Alerts.CancelAlert(c.ctx, a.ID, reason); err != nil && loa.ErrorCode(err) != loa.ECONFLICT {
			return nil, err
		}
		c.audit("alert.cancel", a.ID, reason)
	}
	return s.Alerts.Alert(c.ctx, a.ID)
}

// capMediaName names the media item an embedded audio resource becomes.
func capMediaName(msg *cap.Message, au *cap.Audio) string {
	return truncate("CAP "+msg.Identifier+": "+au.Name, maxMediaName)
}

// truncate cuts s to at most n bytes at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// getAlertCAP answers an alert as a CAP 1.2 message: the message it came
// from, or one generated for it (cap.Export).
func (s *Server) getAlertCAP(w http.ResponseWriter, r *http.Request, c *call) error {
	a, err := s.alert(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	areas, err := c.areaList()
	if err != nil {
		return err
	}
	var devices []*loa.Device
	if len(a.Targets.Devices) > 0 && s.Devices != nil {
		if devices, err = s.Devices.Devices(c.ctx); err != nil {
			return err
		}
	}
	sender := s.CAPSender
	if sender == "" {
		sender = DefaultCAPSender
	}
	out, err := cap.Export(a, sender, areas, devices)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/cap+xml; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", a.ID+".cap.xml"))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) // a client that left is not an error of ours
	return nil
}

// capFormat serves ?format=cap on an alert route as the CAP export and
// anything else with next.
func (s *Server) capFormat(next handler) handler {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		switch f := r.URL.Query().Get("format"); f {
		case "":
			return next(w, r, c)
		case "cap":
			return s.getAlertCAP(w, r, c)
		default:
			return loa.Errorf(loa.EINVALID, "format: %q; the only other format is cap", f)
		}
	}
}
