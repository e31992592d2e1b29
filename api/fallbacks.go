package api

import (
	"net/http"

	"github.com/loa-broadcast/loa"
)

// fallbackRequest is the body of PUT /api/v1/areas/{id}/fallback.
type fallbackRequest struct {
	MediaID    string `json:"media_id"`
	PlaylistID string `json:"playlist_id"`
	Priority   *int   `json:"priority"` // background band 0–31; nil = the default
}

func (s *Server) areaForFallback(r *http.Request, c *call) (string, error) {
	id := r.PathValue("id")
	if err := loa.ValidateID("id", id); err != nil {
		return "", err
	}
	if ok, err := c.areaInScope(id); err != nil {
		return "", err
	} else if !ok {
		return "", loa.Errorf(loa.EFORBIDDEN, "area %q is outside your scope (%s)", id, c.tok.AreaID)
	}
	if s.Fallbacks == nil {
		return "", errUnavailable("fallback")
	}
	return id, nil
}

func (s *Server) putFallback(w http.ResponseWriter, r *http.Request, c *call) error {
	var req fallbackRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	area, err := s.areaForFallback(r, c)
	if err != nil {
		return err
	}
	f := &loa.Fallback{AreaID: area, Content: loa.Content{MediaID: req.MediaID, PlaylistID: req.PlaylistID}}
	if req.Priority != nil {
		if *req.Priority < 0 || *req.Priority >= int(loa.PriorityNormal) {
			return loa.Errorf(loa.EINVALID, "priority: a fallback plays in the background band, 0–%d", loa.PriorityNormal-1)
		}
		f.Priority = loa.Priority(*req.Priority)
	}
	if err := s.Fallbacks.SetFallback(r.Context(), f); err != nil {
		return err
	}
	c.audit("fallback.set", area, f.Content.MediaID+f.Content.PlaylistID)
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (s *Server) deleteFallback(w http.ResponseWriter, r *http.Request, c *call) error {
	area, err := s.areaForFallback(r, c)
	if err != nil {
		return err
	}
	if err := s.Fallbacks.ClearFallback(r.Context(), area); err != nil {
		return err
	}
	c.audit("fallback.clear", area, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listFallbacks(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Fallbacks == nil {
		return errUnavailable("fallback")
	}
	all, err := s.Fallbacks.Fallbacks(r.Context())
	if err != nil {
		return err
	}
	out := []*loa.Fallback{}
	for _, f := range all {
		if ok, err := c.areaInScope(f.AreaID); err != nil {
			return err
		} else if ok {
			out = append(out, f)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
