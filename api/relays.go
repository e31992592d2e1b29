package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/loa-broadcast/loa"
)

// relayRequest is the body of POST /api/v1/relays and PUT /relays/{id}.
type relayRequest struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	URLs            []string `json:"urls"`
	FallbackMediaID string   `json:"fallback_media_id"`
	SilenceDB       float64  `json:"silence_db"`
	SilenceS        int      `json:"silence_s"`
	DurationS       int      `json:"duration_s"`
}

func (req relayRequest) relay(id, by string) *loa.Relay {
	return &loa.Relay{ID: id, Name: req.Name, URLs: req.URLs, FallbackMediaID: req.FallbackMediaID,
		SilenceDB: req.SilenceDB, SilenceS: req.SilenceS, DurationS: req.DurationS, CreatedBy: by}
}

// relayView is a relay with what it plays now (one state per playing
// session of it): the list's items and the relays topic's.
type relayView struct {
	*loa.Relay
	Playing []loa.RelayState `json:"playing"`
}

func (s *Server) relayViews(c *call) ([]string, map[string]any, error) {
	if s.Relays == nil {
		return nil, nil, errUnavailable("relay")
	}
	list, err := s.Relays.Relays(c.ctx)
	if err != nil {
		return nil, nil, err
	}
	states := map[string][]loa.RelayState{}
	for _, st := range s.Relays.RelayStates() {
		states[st.RelayID] = append(states[st.RelayID], st)
	}
	ids := make([]string, 0, len(list))
	items := make(map[string]any, len(list))
	for _, r := range list {
		v := relayView{Relay: r, Playing: states[r.ID]}
		if v.Playing == nil {
			v.Playing = []loa.RelayState{}
		}
		ids = append(ids, r.ID)
		items[r.ID] = v
	}
	return ids, items, nil
}

func (s *Server) listRelays(w http.ResponseWriter, r *http.Request, c *call) error {
	ids, items, err := s.relayViews(c)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, items[id])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getRelay(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Relays == nil {
		return errUnavailable("relay")
	}
	id := r.PathValue("id")
	if err := loa.ValidateID("id", id); err != nil {
		return err
	}
	_, items, err := s.relayViews(c)
	if err != nil {
		return err
	}
	v, ok := items[id]
	if !ok {
		return loa.Errorf(loa.ENOTFOUND, "relay %q not found", id)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) createRelay(w http.ResponseWriter, r *http.Request, c *call) error {
	var req relayRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	rel := req.relay(req.ID, c.tok.ID)
	if err := rel.Validate(); err != nil {
		return err
	}
	if s.Relays == nil {
		return errUnavailable("relay")
	}
	if err := s.Relays.CreateRelay(r.Context(), rel); err != nil {
		return err
	}
	c.audit("relay.create", rel.ID, rel.Name)
	writeJSON(w, http.StatusCreated, relayView{Relay: rel, Playing: []loa.RelayState{}})
	return nil
}

func (s *Server) updateRelay(w http.ResponseWriter, r *http.Request, c *call) error {
	var req relayRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if req.ID != "" && req.ID != id {
		return loa.Errorf(loa.EINVALID, "id: %q differs from the path's %q", req.ID, id)
	}
	rel := req.relay(id, c.tok.ID)
	if err := rel.Validate(); err != nil {
		return err
	}
	if s.Relays == nil {
		return errUnavailable("relay")
	}
	if err := s.Relays.UpdateRelay(r.Context(), rel); err != nil {
		return err
	}
	c.audit("relay.update", rel.ID, rel.Name)
	writeJSON(w, http.StatusOK, relayView{Relay: rel, Playing: []loa.RelayState{}})
	return nil
}

func (s *Server) deleteRelay(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	if err := loa.ValidateID("id", id); err != nil {
		return err
	}
	if s.Relays == nil {
		return errUnavailable("relay")
	}
	if err := s.Relays.DeleteRelay(r.Context(), id); err != nil {
		return err
	}
	c.audit("relay.delete", id, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// relayPlayRequest is the body of POST /api/v1/relays/{id}/play.
type relayPlayRequest struct {
	Targets   loa.Targets `json:"targets"`
	Priority  *int        `json:"priority"`
	DurationS int         `json:"duration_s"` // 0: the relay's own, else loa.DefaultStreamMaxDuration
}

func (s *Server) playRelay(w http.ResponseWriter, r *http.Request, c *call) error {
	var req relayPlayRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := loa.ValidateID("id", id); err != nil {
		return err
	}
	sess := &loa.Session{Targets: req.Targets, Priority: DefaultPriority, CreatedBy: c.tok.ID}
	if req.Priority != nil {
		if *req.Priority < 0 || *req.Priority > 255 {
			return loa.Errorf(loa.EINVALID, "priority: must be 0–255, not %d", *req.Priority)
		}
		sess.Priority = loa.Priority(*req.Priority)
	}
	if req.DurationS < 0 || req.DurationS > 24*3600 {
		return loa.Errorf(loa.EINVALID, "duration_s: must be within 0..86400 seconds")
	}
	sess.MaxDuration = time.Duration(req.DurationS) * time.Second
	if err := sess.ValidateStream(); err != nil {
		return err
	}
	if sess.Priority.Emergency() && c.tok.Role != loa.RoleAdmin && c.tok.Role != loa.RoleProvince {
		return loa.Errorf(loa.EFORBIDDEN, "priority: the emergency band (%d–255) needs an admin or province token", loa.PriorityEmergency)
	}
	if err := c.targetsAllowed(sess.Targets); err != nil {
		return err
	}
	if s.Relays == nil {
		return errUnavailable("relay")
	}
	if err := s.Relays.PlayRelay(r.Context(), id, sess); err != nil {
		return err
	}
	c.audit("relay.play", sess.ID, "relay "+id+", priority "+strconv.Itoa(int(sess.Priority)))
	writeJSON(w, http.StatusCreated, viewSession(sess))
	return nil
}
