package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// StoredLibrary is the stored-message service with the library's version.
type StoredLibrary interface {
	loa.StoredMessageService
	Version(ctx context.Context) (int64, error)
}

// storedList is the answer of GET /api/v1/stored-messages.
type storedList struct {
	// Version is the library's: a receiver whose tele.cache.version is
	// lower has not yet got the latest set.
	Version  int64                `json:"version"`
	Messages []*loa.StoredMessage `json:"messages"`
}

// storedRequest is the body of PUT /api/v1/stored-messages/{code}.
type storedRequest struct {
	Name     string `json:"name"`
	MediaID  string `json:"media_id"`
	Category string `json:"category"`
	AreaID   string `json:"area_id"` // default: the caller's scope (its root for an unscoped caller: required)
}

// storedVisible reports whether the caller sees m: its area is in the
// caller's scope, or above it (a province's message reaches a commune).
func (c *call) storedVisible(m *loa.StoredMessage) (bool, error) {
	if ok, err := c.areaInScope(m.AreaID); err != nil || ok {
		return ok, err
	}
	if err := c.loadPath(c.tok.AreaID); err != nil {
		return false, err
	}
	return c.tree.Within(c.tok.AreaID, m.AreaID), nil
}

func storedCode(r *http.Request) (int, error) {
	s := r.PathValue("code")
	n, err := strconv.Atoi(s)
	if err != nil || n < loa.MinStoredCode || n > loa.MaxStoredCode || strconv.Itoa(n) != s {
		return 0, loa.Errorf(loa.EINVALID, "code: %q is not a stored message code %d–%d", s[:min(len(s), 16)], loa.MinStoredCode, loa.MaxStoredCode)
	}
	return n, nil
}

func (s *Server) listStored(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Stored == nil {
		return errUnavailable("stored message")
	}
	all, err := s.Stored.StoredMessages(r.Context())
	if err != nil {
		return err
	}
	out := storedList{Messages: []*loa.StoredMessage{}}
	if out.Version, err = s.Stored.Version(r.Context()); err != nil {
		return err
	}
	for _, m := range all {
		if ok, err := c.storedVisible(m); err != nil {
			return err
		} else if ok {
			out.Messages = append(out.Messages, m)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// putStored creates or replaces a message in an area of the caller's
// scope; a message of an area outside it cannot be replaced.
func (s *Server) putStored(w http.ResponseWriter, r *http.Request, c *call) error {
	code, err := storedCode(r)
	if err != nil {
		return err
	}
	var req storedRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if s.Stored == nil {
		return errUnavailable("stored message")
	}
	if req.AreaID == "" {
		req.AreaID = c.tok.AreaID
	}
	if req.AreaID == "" {
		return loa.Errorf(loa.EINVALID, "area_id: required: the area whose receivers (and those below) hold the message")
	}
	if err := c.storedAreaAllowed(req.AreaID); err != nil {
		return err
	}
	if old, err := s.Stored.StoredMessage(r.Context(), code); err == nil {
		if err := c.storedAreaAllowed(old.AreaID); err != nil {
			return loa.Errorf(loa.EFORBIDDEN, "code %d belongs to area %s, outside your scope (%s)", code, old.AreaID, c.tok.AreaID)
		}
	} else if loa.ErrorCode(err) != loa.ENOTFOUND {
		return err
	}
	m := &loa.StoredMessage{Code: code, Name: strings.TrimSpace(req.Name), MediaID: req.MediaID, Category: strings.TrimSpace(req.Category),
		AreaID: req.AreaID, UpdatedBy: c.tok.ID}
	if err := s.Stored.PutStoredMessage(r.Context(), m); err != nil {
		return err
	}
	c.audit("stored.put", strconv.Itoa(code), m.Name+", media "+m.MediaID+", area "+m.AreaID)
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (c *call) storedAreaAllowed(id string) error {
	if err := loa.ValidateID("area_id", id); err != nil {
		return err
	}
	if ok, err := c.areaInScope(id); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.EFORBIDDEN, "area %q is outside your scope (%s)", id, c.tok.AreaID)
	}
	return nil
}

func (s *Server) deleteStored(w http.ResponseWriter, r *http.Request, c *call) error {
	code, err := storedCode(r)
	if err != nil {
		return err
	}
	if s.Stored == nil {
		return errUnavailable("stored message")
	}
	old, err := s.Stored.StoredMessage(r.Context(), code)
	if err != nil {
		return err
	}
	if ok, err := c.storedVisible(old); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "no stored message %d", code)
	}
	if err := c.storedAreaAllowed(old.AreaID); err != nil {
		return err
	}
	if err := s.Stored.DeleteStoredMessage(r.Context(), code); err != nil {
		return err
	}
	c.audit("stored.delete", strconv.Itoa(code), old.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// downloadCacheItem serves a library file to a receiver that
// authenticates as for firmware; Range resumes, the ETag is its SHA-256.
func (s *Server) downloadCacheItem(w http.ResponseWriter, r *http.Request) {
	id, pass, ok := r.BasicAuth()
	if !ok || s.Receivers == nil || loa.ValidateID("device", id) != nil || len(pass) > maxSecret {
		s.denyDevice(w, r)
		return
	}
	good, err := s.Receivers.CheckDeviceCredentials(r.Context(), id, pass)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !good {
		s.denyDevice(w, r)
		return
	}
	if s.Stored == nil {
		s.writeError(w, r, errUnavailable("stored message"))
		return
	}
	sha := r.PathValue("sha256")
	f, err := s.Stored.OpenCacheItem(r.Context(), sha)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer f.Close()
	if sw, ok := w.(*statusWriter); ok {
		sw.actor = "device:" + id
	}
	w.Header().Set("Content-Type", "audio/ogg")
	w.Header().Set("ETag", strconv.Quote(strings.ToLower(sha)))
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, strings.ToLower(sha)+".opus", time.Time{}, progressReader{f, http.NewResponseController(w), r.Context()})
}
