package api

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/cap"
)

// CAPIngester acts on CAP messages for a caller (station.CAP): it maps,
// de-duplicates, resolves, sends and cancels, checking each step against
// the caller's authority and recording it in the audit log through them.
type CAPIngester interface {
	IngestCAP(ctx context.Context, msg *cap.Message, by loa.Caller) (loa.CAPResult, error)
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
	data, err := readBody(r.Body, cap.MaxSize)
	if err != nil {
		return err
	}
	msg, err := cap.Parse(data)
	if err != nil {
		return err
	}
	if s.National != nil {
		return s.postNationalCAP(w, msg, c)
	}
	if s.CAP == nil {
		return errUnavailable("CAP")
	}
	res, err := s.CAP.IngestCAP(c.ctx, msg, capCaller{c})
	if err != nil {
		return err
	}
	if res.Silent != "" {
		writeJSON(w, http.StatusAccepted, capSilent{Identifier: msg.Identifier, Sender: msg.Sender,
			Status: msg.Status, MsgType: msg.MsgType, Reason: res.Silent})
		return nil
	}
	v, err := c.view(res.Alert)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Cancel {
		status = http.StatusOK
	}
	writeJSON(w, status, v)
	return nil
}

// capCaller is the caller of a request as CAP ingest checks it.
type capCaller struct{ c *call }

func (cc capCaller) ID() string                                 { return cc.c.tok.ID }
func (cc capCaller) AreaInScope(id string) (bool, error)        { return cc.c.areaInScope(id) }
func (cc capCaller) TargetsVisible(t loa.Targets) (bool, error) { return cc.c.targetsVisible(t) }
func (cc capCaller) Audit(action, object, detail string)        { cc.c.audit(action, object, detail) }

func (cc capCaller) MaySendCAPAs(sender string) error {
	if !cc.c.tok.MaySendCAPAs(sender) {
		return loa.Errorf(loa.EFORBIDDEN, "sender: %q is not among the CAP senders of your token (%s); an admin grants them (cap_senders)",
			sender, strings.Join(cc.c.tok.CAPSenders, " "))
	}
	return nil
}

func (cc capCaller) MaySend(a *loa.Alert) error {
	if err := cc.c.canSendLevel(a.Level); err != nil {
		return err
	}
	return cc.c.targetsAllowed(a.Targets)
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
