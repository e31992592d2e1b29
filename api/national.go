package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/cap"
)

// NationalService is the national controller's role (station.National):
// the provinces it pushes to and the alerts it pushed.
type NationalService interface {
	Identity() loa.NationalIdentity
	Provinces(ctx context.Context) ([]*loa.Province, error)
	Province(ctx context.Context, id string) (*loa.Province, error)
	PutProvince(ctx context.Context, p *loa.Province, create bool) error
	DeleteProvince(ctx context.Context, id string) error
	SendNational(ctx context.Context, req loa.NationalRequest, by string) (*loa.NationalAlert, error)
	// IngestNationalCAP maps msg and, if may allows the alert, pushes it.
	IngestNationalCAP(ctx context.Context, msg *cap.Message, by string, may func(*loa.NationalAlert) error) (a *loa.NationalAlert, silent string, err error)
	// CancelNational cancels a national alert, if may allows it.
	CancelNational(ctx context.Context, id, reason, by string, may func(*loa.NationalAlert) error) (*loa.NationalAlert, error)
	NationalAlerts(ctx context.Context) ([]*loa.NationalAlert, error)
	NationalAlert(ctx context.Context, id string) (*loa.NationalAlert, error)
}

// provinceRequest is the body of POST and PUT /api/v1/national/provinces.
type provinceRequest struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Code  string `json:"code"`
	URL   string `json:"url"`
	CAPEM string `json:"ca_pem"`
}

// nationalRequest is the body of POST /api/v1/national/alerts.
type nationalRequest struct {
	Title     string   `json:"title"`
	Level     string   `json:"level"`
	Text      string   `json:"text"`
	Test      bool     `json:"test"`
	ExpiresAt string   `json:"expires_at"` // RFC 3339
	Provinces []string `json:"provinces"`  // empty: every province
}

func (s *Server) national() (NationalService, error) {
	if s.National == nil {
		return nil, loa.Errorf(loa.EUNAVAILABLE, "this controller is not a national controller (start it with -national)")
	}
	return s.National, nil
}

// nationalAdmin checks that the caller speaks for the whole country: a
// station-wide admin (provinces carry the trust of every push).
func (c *call) nationalAdmin() error {
	if c.tok.Role != loa.RoleAdmin || c.scoped() {
		return loa.Errorf(loa.EFORBIDDEN, "only a station-wide admin manages the provinces of a national controller")
	}
	return nil
}

func (s *Server) nationalIdentity(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := s.national()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n.Identity())
	return nil
}

func (s *Server) listProvinces(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := s.national()
	if err != nil {
		return err
	}
	ps, err := n.Provinces(c.ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ps)
	return nil
}

// putProvince adds (create) or changes a province.
func (s *Server) putProvince(create bool) handler {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		n, err := s.national()
		if err != nil {
			return err
		}
		if err := c.nationalAdmin(); err != nil {
			return err
		}
		var req provinceRequest
		if err := decodeJSON(r.Body, &req); err != nil {
			return err
		}
		p := &loa.Province{ID: req.ID, Name: strings.TrimSpace(req.Name), Code: strings.TrimSpace(req.Code),
			URL: strings.TrimSpace(req.URL), CAPEM: req.CAPEM, CreatedBy: c.tok.ID}
		if !create {
			p.ID = r.PathValue("id")
		}
		if err := n.PutProvince(c.ctx, p, create); err != nil {
			return err
		}
		action, status := "province.update", http.StatusOK
		if create {
			action, status = "province.create", http.StatusCreated
		}
		c.audit(action, p.ID, p.Name+" "+p.Code+" "+p.URL)
		writeJSON(w, status, p)
		return nil
	}
}

func (s *Server) deleteProvince(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := s.national()
	if err != nil {
		return err
	}
	if err := c.nationalAdmin(); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := n.DeleteProvince(c.ctx, id); err != nil {
		return err
	}
	c.audit("province.delete", id, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// sendNational pushes an alert to the provinces it names (all by default).
func (s *Server) sendNational(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := s.national()
	if err != nil {
		return err
	}
	var req nationalRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if c.scoped() {
		return loa.Errorf(loa.EFORBIDDEN, "a national alert needs a station-wide token; yours is scoped to %s", c.tok.AreaID)
	}
	if err := c.canSendLevel(req.Level); err != nil {
		return err
	}
	expires, err := time.Parse(time.RFC3339, req.ExpiresAt)
	if err != nil {
		return loa.Errorf(loa.EINVALID, "expires_at: %q is not an RFC 3339 time like 2027-01-01T00:00:00+07:00", req.ExpiresAt)
	}
	a, err := n.SendNational(c.ctx, loa.NationalRequest{Title: strings.TrimSpace(req.Title), Level: req.Level,
		Text: strings.TrimSpace(req.Text), Test: req.Test, ExpiresAt: expires, Provinces: req.Provinces}, c.tok.ID)
	if err != nil {
		return err
	}
	c.audit("national.send", a.ID, a.Level+" "+a.Title+" to "+provinceList(a))
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func provinceList(a *loa.NationalAlert) string {
	ids := make([]string, len(a.Provinces))
	for i, p := range a.Provinces {
		ids[i] = p.Province
	}
	return strings.Join(ids, " ")
}

// postNationalCAP is POST /alerts/cap on a national controller: the
// message of the national warning source is pushed to the provinces its
// geocodes name, under the national sender.
func (s *Server) postNationalCAP(w http.ResponseWriter, msg *cap.Message, c *call) error {
	if c.scoped() {
		return loa.Errorf(loa.EFORBIDDEN, "a national alert needs a station-wide token; yours is scoped to %s", c.tok.AreaID)
	}
	if err := (capCaller{c}).MaySendCAPAs(msg.Sender); err != nil {
		return err
	}
	a, silent, err := s.National.IngestNationalCAP(c.ctx, msg, c.tok.ID, func(a *loa.NationalAlert) error {
		return c.canSendLevel(a.Level) // the level comes from the message
	})
	if err != nil {
		return err
	}
	if silent != "" {
		c.audit("alert.cap", msg.Sender+","+msg.Identifier, msg.Status+"/"+msg.MsgType+": not pushed")
		writeJSON(w, http.StatusAccepted, capSilent{Identifier: msg.Identifier, Sender: msg.Sender,
			Status: msg.Status, MsgType: msg.MsgType, Reason: silent})
		return nil
	}
	if msg.MsgType == "Cancel" {
		c.audit("national.cancel", a.ID, a.CancelReason)
		writeJSON(w, http.StatusOK, a)
		return nil
	}
	c.audit("national.send", a.ID, "CAP "+a.Source+": "+a.Level+" "+a.Title+" to "+provinceList(a))
	writeJSON(w, http.StatusCreated, a)
	return nil
}

// cancelNational cancels a national alert: each province that took it is
// sent a CAP Cancel.
func (s *Server) cancelNational(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := s.national()
	if err != nil {
		return err
	}
	var req cancelRequest // as for an alert: an optional reason
	if r.ContentLength != 0 {
		if err := decodeJSON(r.Body, &req); err != nil {
			return err
		}
	}
	if c.scoped() {
		return loa.Errorf(loa.EFORBIDDEN, "a national alert needs a station-wide token; yours is scoped to %s", c.tok.AreaID)
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		reason = "cancelled by " + c.tok.ID
	}
	a, err := n.CancelNational(c.ctx, r.PathValue("id"), reason, c.tok.ID, func(a *loa.NationalAlert) error {
		return c.canSendLevel(a.Level)
	})
	if err != nil {
		return err
	}
	c.audit("national.cancel", a.ID, a.CancelReason)
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) listNational(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := s.national()
	if err != nil {
		return err
	}
	all, err := n.NationalAlerts(c.ctx)
	if err != nil {
		return err
	}
	// Newest first: ids sort by creation time.
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	writeJSON(w, http.StatusOK, all)
	return nil
}

func (s *Server) getNational(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := s.national()
	if err != nil {
		return err
	}
	a, err := n.NationalAlert(c.ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
