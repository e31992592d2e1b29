package api

import (
	"cmp"
	"encoding/csv"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/loa-broadcast/loa"
)

// Bulletins: province staff (admin and province roles) publish a bulletin
// to communes in their scope; each commune finds it in its inbox and
// accepts it (play now, a schedule, a playlist slot) or declines it with
// a reason; the tracking follows each commune to aired from its
// receivers' own delivery lines. A scoped caller sees a bulletin only
// through the communes in its scope, and only their entries.

// bulletinRequest is the body of POST /api/v1/bulletins.
type bulletinRequest struct {
	Title      string    `json:"title"`
	Category   string    `json:"category"`
	Level      string    `json:"level"`
	MediaID    string    `json:"media_id"`
	Text       string    `json:"text"`
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
	MustAirBy  time.Time `json:"must_air_by"`
	Areas      []string  `json:"areas"`
}

// bulletinDecline is the body of POST /api/v1/bulletins/{id}/decline.
type bulletinDecline struct {
	AreaID string `json:"area_id"`
	Reason string `json:"reason"`
}

// bulletinTotals counts a bulletin's communes by state (as the caller
// sees them); missed counts those past an ưu tiên deadline undecided.
type bulletinTotals struct {
	Communes  int `json:"communes"`
	Received  int `json:"received"`
	Scheduled int `json:"scheduled"`
	Aired     int `json:"aired"`
	Declined  int `json:"declined"`
	Expired   int `json:"expired"`
	Missed    int `json:"missed"`
}

// bulletinView is a bulletin as the caller may see it, with its totals.
type bulletinView struct {
	*loa.Bulletin
	Totals bulletinTotals `json:"totals"`
}

func totalsOf(b *loa.Bulletin) bulletinTotals {
	t := bulletinTotals{Communes: len(b.Communes)}
	for _, c := range b.Communes {
		switch c.State {
		case loa.BulletinReceived:
			t.Received++
		case loa.BulletinScheduled:
			t.Scheduled++
		case loa.BulletinAired:
			t.Aired++
		case loa.BulletinDeclined:
			t.Declined++
		case loa.BulletinExpired:
			t.Expired++
		}
		if c.Missed && c.State == loa.BulletinReceived {
			t.Missed++
		}
	}
	return t
}

// bulletinView narrows b to the communes in the caller's scope; false if
// there is none.
func (c *call) bulletinView(b *loa.Bulletin) (bulletinView, bool, error) {
	if !c.scoped() {
		return bulletinView{b, totalsOf(b)}, true, nil
	}
	cp := *b
	cp.Communes = nil
	for _, e := range b.Communes {
		if ok, err := c.areaInScope(e.AreaID); err != nil {
			return bulletinView{}, false, err
		} else if ok {
			cp.Communes = append(cp.Communes, e)
		}
	}
	if len(cp.Communes) == 0 {
		return bulletinView{}, false, nil
	}
	return bulletinView{&cp, totalsOf(&cp)}, true, nil
}

func (s *Server) bulletin(c *call, id string) (bulletinView, error) {
	if s.Bulletins == nil {
		return bulletinView{}, errUnavailable("bulletin")
	}
	b, err := s.Bulletins.Bulletin(c.ctx, id)
	if err != nil {
		return bulletinView{}, err
	}
	v, ok, err := c.bulletinView(b)
	if err != nil {
		return bulletinView{}, err
	} else if !ok {
		return bulletinView{}, loa.Errorf(loa.ENOTFOUND, "bulletin %q not found", id)
	}
	return v, nil
}

var bulletinStates = []string{loa.BulletinReceived, loa.BulletinScheduled, loa.BulletinAired, loa.BulletinDeclined, loa.BulletinExpired}

// listBulletins answers the bulletins the caller sees, newest first.
func (s *Server) listBulletins(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.writeBulletins(w, c, "")
}

// bulletinInbox answers the bulletins waiting for a decision in the
// caller's communes (?state= another state of theirs), newest first.
func (s *Server) bulletinInbox(w http.ResponseWriter, r *http.Request, c *call) error {
	state := cmp.Or(r.URL.Query().Get("state"), loa.BulletinReceived)
	if !slices.Contains(bulletinStates, state) {
		return loa.Errorf(loa.EINVALID, "state: one of received, scheduled, aired, declined, expired, not %q", state)
	}
	return s.writeBulletins(w, c, state)
}

func (s *Server) writeBulletins(w http.ResponseWriter, c *call, state string) error {
	if s.Bulletins == nil {
		return errUnavailable("bulletin")
	}
	list, err := s.Bulletins.Bulletins(c.ctx)
	if err != nil {
		return err
	}
	out := []bulletinView{}
	for _, b := range list {
		v, ok, err := c.bulletinView(b)
		if err != nil {
			return err
		}
		if !ok || state != "" && !slices.ContainsFunc(v.Communes, func(e loa.BulletinCommune) bool { return e.State == state }) {
			continue
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getBulletin(w http.ResponseWriter, r *http.Request, c *call) error {
	v, err := s.bulletin(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// publishBulletin: admins and province staff, to communes in their scope.
func (s *Server) publishBulletin(w http.ResponseWriter, r *http.Request, c *call) error {
	if c.tok.Role != loa.RoleAdmin && c.tok.Role != loa.RoleProvince {
		return loa.Errorf(loa.EFORBIDDEN, "role: only province staff and admins publish bulletins")
	}
	var req bulletinRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if s.Bulletins == nil {
		return errUnavailable("bulletin")
	}
	b := &loa.Bulletin{Title: req.Title, Category: req.Category, Level: req.Level, MediaID: req.MediaID, Text: req.Text,
		ValidFrom: req.ValidFrom.UTC(), ValidUntil: req.ValidUntil.UTC(), MustAirBy: req.MustAirBy.UTC(), Areas: req.Areas, CreatedBy: c.tok.ID}
	if b.ValidFrom.IsZero() {
		b.ValidFrom = s.now().UTC()
	}
	if req.MustAirBy.IsZero() {
		b.MustAirBy = time.Time{}
	}
	if err := b.Validate(); err != nil {
		return err
	}
	for _, a := range b.Areas {
		if ok, err := c.areaInScope(a); err != nil {
			return err
		} else if !ok {
			return loa.Errorf(loa.EFORBIDDEN, "areas: %q is outside your area", a)
		}
	}
	if err := s.Bulletins.Publish(c.ctx, b); err != nil {
		return err
	}
	c.audit("bulletin.publish", b.ID, b.Level+" "+b.Title)
	writeJSON(w, http.StatusCreated, bulletinView{b, totalsOf(b)})
	return nil
}

// communeAllowed refuses an area outside the caller's scope.
func (c *call) communeAllowed(area string) error {
	if err := loa.ValidateID("area_id", area); err != nil {
		return err
	}
	if ok, err := c.areaInScope(area); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.EFORBIDDEN, "area_id: %q is outside your area", area)
	}
	return nil
}

func (s *Server) acceptBulletin(w http.ResponseWriter, r *http.Request, c *call) error {
	var req loa.BulletinAcceptance
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if err := c.communeAllowed(req.AreaID); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.bulletin(c, id); err != nil {
		return err
	}
	req.By = c.tok.ID
	b, err := s.Bulletins.Accept(c.ctx, id, req)
	if err != nil {
		return err
	}
	c.audit("bulletin.accept", id, req.AreaID+" "+req.How)
	return s.writeView(w, c, b)
}

func (s *Server) declineBulletin(w http.ResponseWriter, r *http.Request, c *call) error {
	var req bulletinDecline
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if err := c.communeAllowed(req.AreaID); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.bulletin(c, id); err != nil {
		return err
	}
	b, err := s.Bulletins.Decline(c.ctx, id, req.AreaID, c.tok.ID, req.Reason)
	if err != nil {
		return err
	}
	c.audit("bulletin.decline", id, req.AreaID+": "+req.Reason)
	return s.writeView(w, c, b)
}

func (s *Server) writeView(w http.ResponseWriter, c *call, b *loa.Bulletin) error {
	v, _, err := c.bulletinView(b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// bulletinTracking answers a bulletin's per-commune tracking with the
// communes' names; ?format=csv as a spreadsheet.
func (s *Server) bulletinTracking(w http.ResponseWriter, r *http.Request, c *call) error {
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		return loa.Errorf(loa.EINVALID, "format: json or csv, not %q", format)
	}
	v, err := s.bulletin(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	areas, err := c.s.Areas.Areas(c.ctx)
	if err != nil {
		return err
	}
	tree := loa.NewAreaTree(areas)
	name := func(id string) string {
		if a := tree[id]; a != nil {
			return a.Name
		}
		return id
	}
	if format == "csv" {
		return writeTrackingCSV(w, v, name)
	}
	type line struct {
		loa.BulletinCommune
		AreaName string `json:"area_name"`
	}
	out := struct {
		ID        string         `json:"id"`
		Title     string         `json:"title"`
		Level     string         `json:"level"`
		MustAirBy time.Time      `json:"must_air_by,omitzero"`
		Totals    bulletinTotals `json:"totals"`
		Communes  []line         `json:"communes"`
	}{ID: v.ID, Title: v.Title, Level: v.Level, MustAirBy: v.MustAirBy, Totals: v.Totals, Communes: []line{}}
	for _, e := range v.Communes {
		out.Communes = append(out.Communes, line{e, name(e.AreaID)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// bulletinStateWords are the tracking states as the export names them
// (the console's glossary says the same, web/i18n/vi.json).
var bulletinStateWords = map[string]string{
	loa.BulletinReceived:  "đã nhận",
	loa.BulletinScheduled: "đã lên lịch",
	loa.BulletinAired:     "đã phát (thiết bị xác nhận)",
	loa.BulletinDeclined:  "từ chối",
	loa.BulletinExpired:   "hết hạn",
}

var trackingCSVHeader = []string{
	"Mã xã (Area)", "Xã (Commune)", "Trạng thái (State)", "Quá hạn (Missed)", "Cách nhận (How)",
	"Nhận lúc (Accepted)", "Phát lúc (Aired)", "Số thiết bị phát (Receivers)", "Lý do từ chối (Reason)", "Người xử lý (By)",
}

// writeTrackingCSV writes one line per commune, UTF-8 with a byte order
// mark, times dd/MM/yyyy HH:mm:ss in the station's zone.
func writeTrackingCSV(w http.ResponseWriter, v bulletinView, name func(string) string) error {
	zone, err := time.LoadLocation(loa.DefaultZone)
	if err != nil {
		return err
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(zone).Format("02/01/2006 15:04:05")
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="ban-tin-`+v.ID+`.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("\uFEFF"))
	out := csv.NewWriter(w)
	out.UseCRLF = true
	_ = out.Write(trackingCSVHeader)
	for _, e := range v.Communes {
		missed := ""
		if e.Missed {
			missed = "có"
		}
		receivers := ""
		if e.Receivers > 0 {
			receivers = strconv.Itoa(e.Receivers)
		}
		_ = out.Write([]string{e.AreaID, name(e.AreaID), cmp.Or(bulletinStateWords[e.State], e.State), missed, e.How,
			when(e.AcceptedAt), when(e.AiredAt), receivers, e.Reason, e.By})
	}
	out.Flush()
	return out.Error()
}
