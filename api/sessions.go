package api

import (
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

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

// mayStop checks the caller's authority over a session it can see: the
// authority of the session's origin. An alert's session stops only by
// cancelling the alert (for every role: the alert's report and its
// receivers then agree on why it ended); a schedule's by those who may
// change that schedule; a fallback by those who may change the area's
// fallback; anything else (a manual session) by its starter or a caller
// whose scope holds the starter's. The emergency band needs an admin or
// province token whatever the origin.
func (s *Server) mayStop(c *call, sess *loa.Session) error {
	o := sess.Origin
	if o.Kind == loa.OriginAlert {
		return loa.Errorf(loa.EFORBIDDEN, "session %s carries alert %s: cancel the alert to stop it (POST /api/v1/alerts/%s/cancel)", sess.ID, o.ID, o.ID)
	}
	if err := c.mayUseBand(sess.Priority); err != nil {
		return loa.Errorf(loa.EFORBIDDEN, "priority: session %s is in the emergency band; stopping it needs an admin or province token", sess.ID)
	}
	switch o.Kind {
	case loa.OriginSchedule:
		if s.Schedules == nil {
			return errUnavailable("schedule")
		}
		_, err := s.scheduleToChange(c, o.ID)
		switch code := loa.ErrorCode(err); {
		case err == nil:
			return nil
		case code == loa.ENOTFOUND:
			// Deleted since it fired (the session's own targets were
			// checked), or out of the caller's scope.
			if _, gone := s.Schedules.Schedule(c.ctx, o.ID); loa.ErrorCode(gone) == loa.ENOTFOUND {
				return nil
			}
			return loa.Errorf(loa.EFORBIDDEN, "session %s was started by a schedule you may not change; ask who manages it", sess.ID)
		case code == loa.EFORBIDDEN:
			return loa.Errorf(loa.EFORBIDDEN, "session %s was started by schedule %s, which you may not change: %s", sess.ID, o.ID, loa.ErrorMessage(err))
		default:
			return err
		}
	case loa.OriginFallback:
		if !c.tok.Can(loa.ActionSession) {
			return loa.Errorf(loa.EFORBIDDEN, "session %s is the fallback of area %s; changing it needs the session permission", sess.ID, o.ID)
		}
		if ok, err := c.areaInScope(o.ID); err != nil {
			return err
		} else if !ok {
			return loa.Errorf(loa.EFORBIDDEN, "session %s is the fallback of an area outside your scope", sess.ID)
		}
		return nil
	}
	if sess.CreatedBy == "" || sess.CreatedBy == c.tok.ID || !c.scoped() || s.Tokens == nil {
		return nil
	}
	starter, err := s.Tokens.Token(c.ctx, sess.CreatedBy)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if starter.AreaID != "" {
		if ok, err := c.areaInScope(starter.AreaID); err != nil || ok {
			return err
		}
	}
	return loa.Errorf(loa.EFORBIDDEN, "session %s was started from a wider scope than yours (%s); ask who started it", sess.ID, c.tok.AreaID)
}

// stopSession stops a session the caller may see and has the authority of
// its origin over, records who stopped it, and answers its new state.
func (s *Server) stopSession(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	sess, err := s.session(c, id)
	if err != nil {
		return err
	}
	if err := s.mayStop(c, sess); err != nil {
		return err
	}
	reason := "stopped by " + c.tok.ID
	if err := s.Sessions.StopSession(r.Context(), id, c.tok.ID, reason); err != nil {
		return err
	}
	c.audit("session.stop", id, "origin "+sess.Origin.String()+", priority "+strconv.Itoa(int(sess.Priority)))
	sess, err = s.Sessions.Session(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSession(sess))
	return nil
}

// parseDest reads a listener's address, IP:PORT ([addr]:port for IPv6).
func parseDest(field, raw string) (netip.AddrPort, error) {
	if raw == "" {
		return netip.AddrPort{}, loa.Errorf(loa.EINVALID, "%s: required, as IP:PORT (for IPv6, [addr]:port)", field)
	}
	dest, err := netip.ParseAddrPort(raw)
	if err != nil {
		return netip.AddrPort{}, loa.Errorf(loa.EINVALID, "%s: %s is not IP:PORT (for IPv6, [addr]:port)", field, strconv.Quote(raw))
	}
	if dest.Port() == 0 || dest.Addr().IsUnspecified() {
		return netip.AddrPort{}, loa.Errorf(loa.EINVALID, "%s: needs a concrete address and a non-zero port", field)
	}
	return netip.AddrPortFrom(dest.Addr().Unmap(), dest.Port()), nil
}

// mayListen checks the caller may send a session's stream to a listener:
// it may see the session and start one like it (the emergency band needs
// an admin or province token).
func (s *Server) mayListen(c *call, id string) (*loa.Session, error) {
	sess, err := s.session(c, id)
	if err != nil {
		return nil, err
	}
	if err := c.mayUseBand(sess.Priority); err != nil {
		return nil, loa.Errorf(loa.EFORBIDDEN, "priority: session %s is in the emergency band; listening to it needs an admin or province token", id)
	}
	return sess, nil
}

// destAllowed checks a listener's address is the caller's own (the
// request's source) or in the station's allow-list (Server.SDPAllow), so
// the controller cannot be made to stream at anyone else.
func (s *Server) destAllowed(r *http.Request, dest netip.AddrPort) error {
	if src, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && src.Addr().Unmap() == dest.Addr() {
		return nil
	}
	for _, p := range s.SDPAllow {
		if p.Contains(dest.Addr()) {
			return nil
		}
	}
	return loa.Errorf(loa.EFORBIDDEN, "dest: %s is neither your own address nor in the station's allow-list (loa serve -sdp-allow)", dest.Addr())
}

// sessionSDP adds ?dest=IP:PORT as a listener of the session for ?for=
// (default 1h) and answers the SDP that lets a third-party receiver there
// play it: SRTP under a key of its own (SDES), or plain RTP with ?plain=1,
// for admins only (anyone on the path could listen, or inject). Asking
// again renews the time and the key.
func (s *Server) sessionSDP(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	plain := false
	switch v := q.Get("plain"); v {
	case "", "0", "false":
	case "1", "true":
		if c.tok.Role != loa.RoleAdmin {
			return loa.Errorf(loa.EFORBIDDEN, "plain: plain RTP needs an admin token; leave it out for SRTP")
		}
		plain = true
	default:
		return loa.Errorf(loa.EINVALID, "plain: want 1 or 0, not %s", strconv.Quote(v))
	}
	dest, err := parseDest("dest", q.Get("dest"))
	if err != nil {
		return err
	}
	ttl := loa.DefaultListenerTime
	if raw := q.Get("for"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < time.Minute || d > loa.MaxListenerTime {
			return loa.Errorf(loa.EINVALID, "for: %s; want a duration within 1m..%v", strconv.Quote(raw), loa.MaxListenerTime)
		}
		ttl = d
	}
	if _, err := s.mayListen(c, id); err != nil {
		return err
	}
	if err := s.destAllowed(r, dest); err != nil {
		return err
	}
	sdp, err := s.Sessions.SessionSDP(r.Context(), id, loa.ListenerRequest{Dest: dest, For: ttl, By: c.tok.ID, Plain: plain})
	if err != nil {
		return err
	}
	detail := "dest " + dest.String() + " for " + ttl.String()
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

// removeListener stops the stream to a listener of the session.
func (s *Server) removeListener(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	dest, err := parseDest("dest", r.PathValue("dest"))
	if err != nil {
		return err
	}
	if _, err := s.mayListen(c, id); err != nil {
		return err
	}
	if err := s.Sessions.RemoveListener(r.Context(), id, dest); err != nil {
		return err
	}
	c.audit("session.listener.remove", id, "dest "+dest.String())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Delivery report page sizes.
const (
	defaultDeliveryLimit = 100
	maxDeliveryLimit     = 1000
)

// deliveryPage is GET /sessions/{id}/delivery: totals by state of the
// receivers the caller may see, and a page of their lines.
type deliveryPage struct {
	SessionID  string                 `json:"session_id"`
	Totals     loa.DeliveryTotals     `json:"totals"`
	Receivers  []loa.ReceiverDelivery `json:"receivers"`
	NextCursor string                 `json:"next_cursor,omitempty"` // the next page's ?cursor=
}

var deliveryStates = []string{loa.DeliveryQueued, loa.DeliveryAcked, loa.DeliveryStarted,
	loa.DeliveryFinished, loa.DeliveryStopped, loa.DeliveryFailed}

// sessionDelivery answers a session's delivery report, scoped as the
// session itself, and within it to the receivers in the caller's scope:
// ?state= filters the page (not the totals), ?limit= and ?cursor= (the
// last device of the previous page) page it, in device order.
func (s *Server) sessionDelivery(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && !slices.Contains(deliveryStates, state) {
		return loa.Errorf(loa.EINVALID, "state: must be one of %s", strings.Join(deliveryStates, ", "))
	}
	limit := defaultDeliveryLimit
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxDeliveryLimit {
			return loa.Errorf(loa.EINVALID, "limit: must be an integer within 1..%d", maxDeliveryLimit)
		}
		limit = n
	}
	cursor := q.Get("cursor")
	if cursor != "" {
		if err := loa.ValidateID("cursor", cursor); err != nil {
			return err
		}
	}
	sess, err := s.session(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if s.Deliveries == nil {
		return errUnavailable("delivery")
	}
	lines, err := s.Deliveries.SessionDelivery(r.Context(), sess.ID)
	if err != nil {
		return err
	}
	page := deliveryPage{SessionID: sess.ID, Receivers: []loa.ReceiverDelivery{}}
	for i := range lines {
		d := &lines[i]
		if c.scoped() {
			if ok, err := c.deviceInScope(d.Device); err != nil {
				return err
			} else if !ok {
				continue
			}
		}
		page.Totals.Add(d)
		if (state != "" && d.State != state) || d.Device <= cursor {
			continue
		}
		if len(page.Receivers) == limit {
			page.NextCursor = page.Receivers[limit-1].Device
			continue
		}
		page.Receivers = append(page.Receivers, *d)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
