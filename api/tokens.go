package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/loa-broadcast/loa"
)

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	AreaID string `json:"area_id"`
}

// tokenCreated is the answer to POST /api/v1/tokens. The secret is shown
// this once; only its hash is stored.
type tokenCreated struct {
	Token  *loa.Token `json:"token"`
	Secret string     `json:"secret"`
}

// me answers the caller's own token (never its secret).
func (s *Server) me(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, c.tok)
	return nil
}

// createToken issues a token no wider than the caller's own scope.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, c *call) error {
	var req tokenRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	name := strings.TrimSpace(req.Name)
	if err := loa.ValidateName("name", name, true); err != nil {
		return err
	}
	if !loa.ValidRole(req.Role) {
		return loa.Errorf(loa.EINVALID, "role: must be admin, province, operator or technician, not %s", strconv.Quote(req.Role))
	}
	if req.AreaID != "" {
		if err := loa.ValidateID("area_id", req.AreaID); err != nil {
			return err
		}
	}
	if c.scoped() {
		ok, err := c.areaInScope(req.AreaID)
		if err != nil {
			return err
		}
		if req.AreaID == "" || !ok {
			return loa.Errorf(loa.EFORBIDDEN, "area_id: %q is outside your scope (%s)", req.AreaID, c.tok.AreaID)
		}
	}
	if req.AreaID != "" {
		if s.Areas == nil {
			return errUnavailable("area")
		}
		if _, err := s.Areas.Area(r.Context(), req.AreaID); err != nil {
			if loa.ErrorCode(err) == loa.ENOTFOUND {
				return loa.Errorf(loa.EINVALID, "area_id: area %q not found", req.AreaID)
			}
			return err
		}
	}
	if s.Tokens == nil {
		return errUnavailable("token")
	}
	t := &loa.Token{Name: name, Role: req.Role, AreaID: req.AreaID}
	secret, err := s.Tokens.CreateToken(r.Context(), t)
	if err != nil {
		return err
	}
	c.audit("token.create", t.ID, t.Role+" "+t.AreaID)
	writeJSON(w, http.StatusCreated, tokenCreated{Token: t, Secret: secret})
	return nil
}
