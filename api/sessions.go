package api

import (
	"io"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/loa-broadcast/loa"
)

// DefaultPriority is the priority of a session request that names none:
// the normal band (thông thường).
const DefaultPriority loa.Priority = 64

// sessionRequest is the body of POST /api/v1/sessions.
type sessionRequest struct {
	MediaID     string      `json:"media_id"`
	PlaylistID  string      `json:"playlist_id"` // instead of media_id
	Targets     loa.Targets `json:"targets"`
	Priority    *int        `json:"priority"`        // 0–255; nil = DefaultPriority
	MaxDuration string      `json:"max_duration"`    // a Go duration, "30m"; "" = the service default
	MaxDurNs    *int64      `json:"max_duration_ns"` // or nanoseconds, as answers also carry it
}

// sessionView is a session as the API answers it: max_duration both as
// the Go duration requests send and, as before, in nanoseconds.
type sessionView struct {
	*loa.Session
	MaxDuration string `json:"max_duration"`
}

func viewSession(s *loa.Session) sessionView {
	return sessionView{Session: s, MaxDuration: s.MaxDuration.String()}
}

// parseSessionRequest decodes and validates a session request body. Every
// failure is EINVALID naming the field.
func parseSessionRequest(body io.Reader) (*loa.Session, error) {
	var req sessionRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	sess := &loa.Session{MediaID: req.MediaID, PlaylistID: req.PlaylistID, Targets: req.Targets, Priority: DefaultPriority}
	if req.Priority != nil {
		if *req.Priority < 0 || *req.Priority > 255 {
			return nil, loa.Errorf(loa.EINVALID, "priority: must be 0–255, not %d", *req.Priority)
		}
		sess.Priority = loa.Priority(*req.Priority)
	}
	if d, given, err := durationIn("max_duration", "max_duration_ns", req.MaxDuration, req.MaxDurNs, "30m"); err != nil {
		return nil, err
	} else if given {
		if d <= 0 {
			return nil, loa.Errorf(loa.EINVALID, "max_duration: must be positive")
		}
		sess.MaxDuration = d
	}
	if err := sess.Validate(); err != nil {
		return nil, err
	}
	return sess, nil
}

// sessionInScope reports whether every target of sess is within the
// caller's scope.
func (c *call) sessionInScope(sess *loa.Session) (bool, error) {
	out, err := c.targetsInScope(sess.Targets)
	return out == "" && err == nil, err
}

// session returns session id if the caller may see it, else ENOTFOUND.
func (s *Server) session(c *call, id string) (*loa.Session, error) {
	if s.Sessions == nil {
		return nil, errUnavailable("session")
	}
	sess, err := s.Sessions.Session(c.ctx, id)
	if err != nil {
		return nil, err
	}
	if ok, err := c.sessionInScope(sess); err != nil {
		return nil, err
	} else if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "session %q not found", id)
	}
	return sess, nil
}

// listSessions answers the sessions whose targets all lie within the
// caller's scope.
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Sessions == nil {
		return errUnavailable("session")
	}
	list, err := s.Sessions.Sessions(r.Context())
	if err != nil {
		return err
	}
	out := make([]sessionView, 0, len(list))
	for _, sess := range list {
		ok, err := c.sessionInScope(sess)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, viewSession(sess))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, c *call) error {
	sess, err := s.session(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSession(sess))
	return nil
}

// startSession starts a session whose every target is within the caller's
// scope. Only admin and province tokens may use the emergency band.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, c *call) error {
	sess, err := parseSessionRequest(r.Body)
	if err != nil {
		return err
	}
	if sess.Priority.Emergency() && c.tok.Role != loa.RoleAdmin && c.tok.Role != loa.RoleProvince {
		return loa.Errorf(loa.EFORBIDDEN, "priority: the emergency band (%d–255) needs an admin or province token", loa.PriorityEmergency)
	}
	if err := c.targetsAllowed(sess.Targets); err != nil {
		return err
	}
	if s.Sessions == nil {
		return errUnavailable("session")
	}
	sess.CreatedBy = c.tok.ID
	if err := s.Sessions.StartSession(r.Context(), sess); err != nil {
		return err
	}
	content := "media " + sess.MediaID
	if sess.PlaylistID != "" {
		content = "playlist " + sess.PlaylistID
	}
	c.audit("session.start", sess.ID, content+", priority "+strconv.Itoa(int(sess.Priority)))
	writeJSON(w, http.StatusCreated, viewSession(sess))
	return nil
}

// stopSession stops a session the caller may see and answers its new state.
func (s *Server) stopSession(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	if _, err := s.session(c, id); err != nil {
		return err
	}
	reason := "stopped by " + c.tok.ID
	if err := s.Sessions.StopSession(r.Context(), id, reason); err != nil {
		return err
	}
	c.audit("session.stop", id, "")
	sess, err := s.Sessions.Session(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSession(sess))
	return nil
}

// sessionSDP adds ?dest=IP:PORT as a static receiver of the session and
// answers the SDP that lets a third-party receiver there play it: SRTP
// under a key of its own (SDES), or plain RTP with ?plain=1, for admins
// only (anyone on the path could listen, or inject).
func (s *Server) sessionSDP(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	plain := false
	switch v := r.URL.Query().Get("plain"); v {
	case "", "0", "false":
	case "1", "true":
		if c.tok.Role != loa.RoleAdmin {
			return loa.Errorf(loa.EFORBIDDEN, "plain: plain RTP needs an admin token; leave it out for SRTP")
		}
		plain = true
	default:
		return loa.Errorf(loa.EINVALID, "plain: want 1 or 0, not %s", strconv.Quote(v))
	}
	raw := r.URL.Query().Get("dest")
	if raw == "" {
		return loa.Errorf(loa.EINVALID, "dest: required, as IP:PORT (for IPv6, [addr]:port)")
	}
	dest, err := netip.ParseAddrPort(raw)
	if err != nil {
		return loa.Errorf(loa.EINVALID, "dest: %s is not IP:PORT (for IPv6, [addr]:port)", strconv.Quote(raw))
	}
	if dest.Port() == 0 || dest.Addr().IsUnspecified() {
		return loa.Errorf(loa.EINVALID, "dest: needs a concrete address and a non-zero port")
	}
	if _, err := s.session(c, id); err != nil {
		return err
	}
	sdp, err := s.Sessions.SessionSDP(r.Context(), id, dest, plain)
	if err != nil {
		return err
	}
	detail := "dest " + dest.String()
	if plain {
		detail += ", plain RTP"
	}
	c.audit("session.sdp", id, detail)
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, sdp)
	return nil
}
