package api

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// maxSDPBody bounds a WHIP offer or trickle fragment.
const maxSDPBody = 64 << 10

// startLive is the WHIP endpoint (RFC 9725): POST an SDP offer with the
// session's targets and priority in the query; the answer is the SDP, the
// session's resource in Location.
func (s *Server) startLive(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := wantType(r, "application/sdp"); err != nil {
		return err
	}
	q := r.URL.Query()
	req := loa.LiveRequest{Priority: loa.PriorityHigh, CreatedBy: c.tok.ID}
	for _, a := range splitList(q["areas"]) {
		req.Targets.Areas = append(req.Targets.Areas, a)
	}
	for _, d := range splitList(q["devices"]) {
		req.Targets.Devices = append(req.Targets.Devices, d)
	}
	if raw := q.Get("priority"); raw != "" {
		p, err := strconv.Atoi(raw)
		if err != nil || p < 0 || p > 255 {
			return loa.Errorf(loa.EINVALID, "priority: must be 0–255, not %s", strconv.Quote(raw))
		}
		req.Priority = loa.Priority(p)
	}
	if raw := q.Get("max_duration"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 || d > 24*time.Hour {
			return loa.Errorf(loa.EINVALID, "max_duration: %s; want a duration within 0..24h", strconv.Quote(raw))
		}
		req.MaxDuration = d
	}
	switch v := q.Get("record"); v {
	case "", "0", "false":
	case "1", "true":
		req.Record = true
	default:
		return loa.Errorf(loa.EINVALID, "record: want 1 or 0, not %s", strconv.Quote(v))
	}
	if req.Targets.Empty() {
		return loa.Errorf(loa.EINVALID, "areas, devices: name at least one area or device")
	}
	if err := c.mayUseBand(req.Priority); err != nil {
		return err
	}
	if err := c.targetsAllowed(req.Targets); err != nil {
		return err
	}
	if s.Live == nil {
		return loa.Errorf(loa.EUNAVAILABLE, "live microphones are off on this controller: start it with -live-bind (the one UDP port of every live connection, e.g. :5006)")
	}
	offer, err := readSDP(r)
	if err != nil {
		return err
	}
	req.Offer = offer
	sess, answer, err := s.Live.StartLive(r.Context(), req)
	if err != nil {
		return err
	}
	c.audit("live.start", sess.ID, "priority "+strconv.Itoa(int(sess.Priority))+", record "+strconv.FormatBool(req.Record))
	w.Header().Set("Location", "/api/v1/live/"+sess.ID)
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, err = io.WriteString(w, answer)
	return err
}

// trickleLive takes a client's trickled candidates (PATCH, RFC 8840).
func (s *Server) trickleLive(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := wantType(r, "application/trickle-ice-sdpfrag"); err != nil {
		return err
	}
	sess, err := s.liveSession(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if sess.CreatedBy != c.tok.ID {
		if err := s.mayStop(c, sess); err != nil {
			return err
		}
	}
	frag, err := readSDP(r)
	if err != nil {
		return err
	}
	if err := s.Live.TrickleLive(r.Context(), sess.ID, frag); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// endLive ends a live session (DELETE on its WHIP resource), with the
// authority of stopping it.
func (s *Server) endLive(w http.ResponseWriter, r *http.Request, c *call) error {
	sess, err := s.liveSession(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.mayStop(c, sess); err != nil {
		return err
	}
	if err := s.Live.EndLive(r.Context(), sess.ID, c.tok.ID); err != nil {
		return err
	}
	c.audit("live.end", sess.ID, "")
	if sess, err = s.Sessions.Session(r.Context(), sess.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSession(sess))
	return nil
}

// liveSession is a live session the caller can see.
func (s *Server) liveSession(c *call, id string) (*loa.Session, error) {
	if s.Live == nil {
		return nil, errUnavailable("live")
	}
	sess, err := s.session(c, id)
	if err != nil {
		return nil, err
	}
	if sess.Origin.Kind != loa.OriginLive {
		return nil, loa.Errorf(loa.ENOTFOUND, "session %q is not a live session", id)
	}
	return sess, nil
}

// wantType checks a request's Content-Type.
func wantType(r *http.Request, want string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want {
		return loa.Errorf(loa.EUNSUPPORTED, "Content-Type: want %s", want)
	}
	return nil
}

// readSDP reads an SDP body, bounded.
func readSDP(r *http.Request) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxSDPBody+1))
	if err != nil {
		return "", loa.Errorf(loa.EINVALID, "body: %v", err)
	}
	if len(b) > maxSDPBody {
		return "", loa.Errorf(loa.ETOOLARGE, "body: larger than %d bytes", maxSDPBody)
	}
	return string(b), nil
}

// splitList reads repeated and comma-separated query values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}
