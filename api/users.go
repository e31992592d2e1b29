package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/loa-broadcast/loa"
)

// userRequest is the body of POST /api/v1/users.
type userRequest struct {
	Username string `json:"username"`
	Name     string `json:"name"`
	Password string `json:"password"`
	Role     string `json:"role"`
	AreaID   string `json:"area_id"`
	Email    string `json:"email"`
	Phone    string `json:"phone"`
}

// userChange is the body of PUT /api/v1/users/{username}: the fields sent
// change, the others stay.
type userChange struct {
	Name   *string `json:"name"`
	Role   *string `json:"role"`
	AreaID *string `json:"area_id"`
	Email  *string `json:"email"`
	Phone  *string `json:"phone"`
}

// passwordRequest is the body of POST /api/v1/users/{username}/password.
type passwordRequest struct {
	Password string `json:"password"`
}

// userVisible reports whether the caller may see and manage u: an
// unscoped caller every user, a scoped one the users scoped within its
// own scope.
func (c *call) userVisible(u *loa.User) (bool, error) {
	if !c.scoped() {
		return true, nil
	}
	if u.AreaID == "" {
		return false, nil
	}
	return c.areaInScope(u.AreaID)
}

// checkUserScope refuses a scope the caller may not grant: outside its
// own, or none (everything) from a scoped caller.
func (c *call) checkUserScope(area string) error {
	if area != "" {
		if err := loa.ValidateID("area_id", area); err != nil {
			return err
		}
	}
	if !c.scoped() {
		return nil
	}
	ok, err := c.areaInScope(area)
	if err != nil {
		return err
	}
	if area == "" || !ok {
		return loa.Errorf(loa.EFORBIDDEN, "area_id: %q is outside your scope (%s)", area, c.tok.AreaID)
	}
	return nil
}

// visibleUser returns the user at the request's path, ENOTFOUND if the
// caller may not see it.
func (c *call) visibleUser(r *http.Request) (*loa.User, error) {
	if c.s.Users == nil {
		return nil, errUnavailable("user")
	}
	name := r.PathValue("username")
	u, err := c.s.Users.User(r.Context(), name)
	if err != nil {
		return nil, err
	}
	if ok, err := c.userVisible(u); err != nil {
		return nil, err
	} else if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "user %q not found", name)
	}
	return u, nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Users == nil {
		return errUnavailable("user")
	}
	all, err := s.Users.Users(r.Context())
	if err != nil {
		return err
	}
	if c.scoped() {
		if _, err := c.areaList(); err != nil { // one read of the subtree
			return err
		}
	}
	out := make([]*loa.User, 0, len(all))
	for _, u := range all {
		if ok, err := c.userVisible(u); err != nil {
			return err
		} else if ok {
			out = append(out, u)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := c.visibleUser(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// createUser adds a person who signs in, no wider than the caller's scope.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request, c *call) error {
	var req userRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if err := loa.ValidateUsername("username", req.Username); err != nil {
		return err
	}
	name := strings.TrimSpace(req.Name)
	if err := loa.ValidateName("name", name, false); err != nil {
		return err
	}
	if !loa.ValidRole(req.Role) {
		return loa.Errorf(loa.EINVALID, "role: must be one of %s, not %s", loa.RoleList(), strconv.Quote(req.Role))
	}
	if err := loa.ValidatePassword("password", req.Password, req.Username); err != nil {
		return err
	}
	if err := c.checkUserScope(req.AreaID); err != nil {
		return err
	}
	req.Email, req.Phone = strings.TrimSpace(req.Email), strings.TrimSpace(req.Phone)
	if err := loa.ValidateEmail("email", req.Email); err != nil {
		return err
	}
	if err := loa.ValidatePhone("phone", req.Phone); err != nil {
		return err
	}
	if s.Users == nil {
		return errUnavailable("user")
	}
	u := &loa.User{Username: req.Username, Name: name, Role: req.Role, AreaID: req.AreaID, CreatedBy: c.tok.ID,
		Email: req.Email, Phone: req.Phone}
	if err := s.Users.CreateUser(r.Context(), u, req.Password); err != nil {
		if loa.ErrorCode(err) == loa.ENOTFOUND { // the scope's area
			return loa.Errorf(loa.EINVALID, "%s", loa.ErrorMessage(err))
		}
		return err
	}
	c.audit("user.create", u.Username, u.Role+" "+u.AreaID)
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// updateUser changes a user's name, role or scope. The store refuses to
// leave the station without an enabled station-wide admin.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, c *call) error {
	var req userChange
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.Role != nil && !loa.ValidRole(*req.Role) {
		return loa.Errorf(loa.EINVALID, "role: must be one of %s, not %s", loa.RoleList(), strconv.Quote(*req.Role))
	}
	if req.AreaID != nil {
		if err := c.checkUserScope(*req.AreaID); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		v     *string
		check func(field, s string) error
		field string
	}{{req.Email, loa.ValidateEmail, "email"}, {req.Phone, loa.ValidatePhone, "phone"}} {
		if f.v == nil {
			continue
		}
		*f.v = strings.TrimSpace(*f.v)
		if err := f.check(f.field, *f.v); err != nil {
			return err
		}
	}
	u, err := c.visibleUser(r)
	if err != nil {
		return err
	}
	u, err = s.Users.UpdateUser(r.Context(), u.Username, func(u *loa.User) error {
		if req.Email != nil {
			u.Email = *req.Email
		}
		if req.Phone != nil {
			u.Phone = *req.Phone
		}
		if req.Name != nil {
			u.Name = strings.TrimSpace(*req.Name)
		}
		if req.Role != nil {
			u.Role = *req.Role
		}
		if req.AreaID != nil {
			u.AreaID = *req.AreaID
		}
		return nil
	})
	if loa.ErrorCode(err) == loa.ENOTFOUND && req.AreaID != nil && strings.Contains(loa.ErrorMessage(err), "area_id") {
		return loa.Errorf(loa.EINVALID, "%s", loa.ErrorMessage(err))
	} else if err != nil {
		return err
	}
	c.audit("user.update", u.Username, u.Role+" "+u.AreaID)
	writeJSON(w, http.StatusOK, u)
	return nil
}

// setUserDisabled disables a user (its sessions end at once) or enables
// it again.
func (s *Server) setUserDisabled(disabled bool) handler {
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		u, err := c.visibleUser(r)
		if err != nil {
			return err
		}
		u, err = s.Users.UpdateUser(r.Context(), u.Username, func(u *loa.User) error {
			u.Disabled = disabled
			return nil
		})
		if err != nil {
			return err
		}
		c.audit(action, u.Username, "")
		writeJSON(w, http.StatusOK, u)
		return nil
	}
}

// resetPassword sets a user's password; its sessions end.
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, c *call) error {
	var req passwordRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	u, err := c.visibleUser(r)
	if err != nil {
		return err
	}
	if err := s.Users.SetPassword(r.Context(), u.Username, req.Password); err != nil {
		return err
	}
	c.audit("user.password", u.Username, "reset; sessions ended")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
