package api

import (
	"context"
	"net/http"

	"github.com/loa-broadcast/loa"
)

// areaRequest is the body of POST /api/v1/areas.
type areaRequest struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Code     string `json:"code"`
	Tests    bool   `json:"tests"` // marked for tests: test alerts sound here
	// NeedsApproval: operators' changes here wait for an approver (drafts.go).
	NeedsApproval bool `json:"needs_approval"`
}

// listAreas answers the areas within the caller's scope (the scope area
// and its descendants, not its ancestors).
func (s *Server) listAreas(w http.ResponseWriter, r *http.Request, c *call) error {
	areas, err := c.areaList()
	if err != nil {
		return err
	}
	out := make([]*loa.Area, 0, len(areas))
	for _, a := range areas {
		if c.tree.Within(a.ID, c.tok.AreaID) {
			out = append(out, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getArea(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	if s.Areas == nil {
		return errUnavailable("area")
	}
	if ok, err := c.areaInScope(id); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "area %q not found", id)
	}
	a, err := s.Areas.Area(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// createArea stores a new area. A scoped caller may only add areas under
// a parent within its scope.
func (s *Server) createArea(w http.ResponseWriter, r *http.Request, c *call) error {
	var req areaRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	a := &loa.Area{ID: req.ID, ParentID: req.ParentID, Name: req.Name, Kind: req.Kind, Code: req.Code, Tests: req.Tests, NeedsApproval: req.NeedsApproval}
	if err := a.Validate(); err != nil {
		return err
	}
	if len(a.Code) > 64 {
		return loa.Errorf(loa.EINVALID, "code: at most 64 bytes")
	}
	if c.scoped() {
		ok, err := c.areaInScope(a.ParentID)
		if err != nil {
			return err
		}
		if a.ParentID == "" || !ok {
			return loa.Errorf(loa.EFORBIDDEN, "parent_id: %q is outside your scope (%s)", a.ParentID, c.tok.AreaID)
		}
	}
	if s.Areas == nil {
		return errUnavailable("area")
	}
	if err := s.Areas.CreateArea(r.Context(), a); err != nil {
		return err
	}
	c.audit("area.create", a.ID, a.Kind+" "+a.Name)
	writeJSON(w, http.StatusCreated, a)
	return nil
}

// areaDeleter is the store's capability to delete an area nothing
// depends on (ECONFLICT naming what does).
type areaDeleter interface {
	DeleteArea(ctx context.Context, id string) error
}

// deleteArea deletes an area in the caller's scope that has no child
// areas, no devices in service, no scoped tokens, no fallback and no
// schedules targeting it; 409 naming the first such kind of dependant
// otherwise (tokens and schedules by count: they may be of another scope).
func (s *Server) deleteArea(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	if err := loa.ValidateID("id", id); err != nil {
		return err
	}
	if s.Areas == nil {
		return errUnavailable("area")
	}
	if ok, err := c.areaInScope(id); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "area %q not found", id)
	}
	del, ok := s.Areas.(areaDeleter)
	if !ok {
		return errUnavailable("area deletion")
	}
	a, err := s.Areas.Area(r.Context(), id)
	if err != nil {
		return err
	}
	if err := del.DeleteArea(r.Context(), id); err != nil {
		return err
	}
	c.audit("area.delete", id, a.Kind+" "+a.Name)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
