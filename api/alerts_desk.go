package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
)

// The alert desk's helpers: the receivers each area holds, a dry run of
// an alert (its validation and how many receivers would sound), and a
// spoken preview of its text.

// audienceCount is how many receivers an area holds (it and below), and
// how many of them are online now.
type audienceCount struct {
	Receivers int `json:"receivers"`
	Online    int `json:"online"`
}

// alertAudience is the answer of GET /alerts/audience and POST /alerts/check.
type alertAudience struct {
	Receivers int                      `json:"receivers"`
	Online    int                      `json:"online"`
	Areas     map[string]audienceCount `json:"areas"`
}

// audienceOf counts devices (ids) by area, each in its own area and every
// area above it that the caller may see.
func (s *Server) audienceOf(c *call, devices []*loa.Device) alertAudience {
	out := alertAudience{Areas: map[string]audienceCount{}}
	for _, d := range devices {
		online := false
		if s.Presence != nil {
			if st, ok := s.Presence.DeviceState(d.ID); ok {
				online = st.Online
			}
		}
		out.Receivers++
		if online {
			out.Online++
		}
		id := d.AreaID
		for depth := 0; id != "" && depth < 16; depth++ {
			if ok, _ := c.areaInScope(id); ok {
				n := out.Areas[id]
				n.Receivers++
				if online {
					n.Online++
				}
				out.Areas[id] = n
			}
			a := c.tree[id]
			if a == nil {
				break
			}
			id = a.ParentID
		}
	}
	return out
}

// testArea reports whether area id or one above it is marked for tests
// (station.testArea decides the same for the alert itself).
func testArea(tree loa.AreaTree, id string) bool {
	for depth := 0; id != "" && depth < 16; depth++ {
		a := tree[id]
		if a == nil {
			return false
		}
		if a.Tests {
			return true
		}
		id = a.ParentID
	}
	return false
}

// alertAudienceAll answers the receivers of every area in the caller's
// scope; ?test=true counts only those a test alert sounds on.
func (s *Server) alertAudienceAll(w http.ResponseWriter, r *http.Request, c *call) error {
	test := false
	if raw := r.URL.Query().Get("test"); raw != "" {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return loa.Errorf(loa.EINVALID, "test: must be true or false")
		}
		test = b
	}
	if s.Devices == nil {
		return errUnavailable("device")
	}
	if _, err := c.areaList(); err != nil {
		return err
	}
	all, err := s.Devices.Devices(r.Context())
	if err != nil {
		return err
	}
	var devs []*loa.Device
	for _, d := range all {
		if ok, err := c.areaInScope(d.AreaID); err != nil {
			return err
		} else if ok && (!test || testArea(c.tree, d.AreaID)) {
			devs = append(devs, d)
		}
	}
	writeJSON(w, http.StatusOK, s.audienceOf(c, devs))
	return nil
}

// checkAlert is a dry run of POST /alerts: the same checks, then how many
// receivers would sound, by area; nothing is sent. The console asks it
// before its confirmation, so errors show next to their fields first.
func (s *Server) checkAlert(w http.ResponseWriter, r *http.Request, c *call) error {
	a, err := parseAlertRequest(r.Body, s.now())
	if err != nil {
		return err
	}
	if err := c.canSendLevel(a.Level); err != nil {
		return err
	}
	if err := c.targetsAllowed(a.Targets); err != nil {
		return err
	}
	if a.Content.MediaID != "" {
		if s.Media == nil {
			return errUnavailable("media")
		}
		if _, err := s.Media.Media(r.Context(), a.Content.MediaID); loa.ErrorCode(err) == loa.ENOTFOUND {
			return loa.Errorf(loa.ENOTFOUND, "content.media_id: no media %q", a.Content.MediaID)
		} else if err != nil {
			return err
		}
	}
	if s.Devices == nil {
		return errUnavailable("device")
	}
	if _, err := c.areaList(); err != nil {
		return err
	}
	for _, id := range a.Targets.Areas {
		if err := c.loadPath(id); err != nil {
			return err
		}
	}
	all, err := s.Devices.Devices(r.Context())
	if err != nil {
		return err
	}
	ids, err := a.Targets.Resolve(c.tree, all)
	if err != nil {
		return err
	}
	byID := make(map[string]*loa.Device, len(all))
	for _, d := range all {
		byID[d.ID] = d
	}
	var devs []*loa.Device
	for _, id := range ids {
		if d := byID[id]; d != nil && (!a.Test || testArea(c.tree, d.AreaID)) {
			devs = append(devs, d)
		}
	}
	if len(devs) == 0 && a.Test {
		return loa.Errorf(loa.EINVALID, "targets: a test alert sounds only in areas marked for tests, and none of its targets is in one")
	} else if len(devs) == 0 {
		return loa.Errorf(loa.EINVALID, "targets: no receiver in the areas and devices named; the alert would reach nobody")
	}
	writeJSON(w, http.StatusOK, s.audienceOf(c, devs))
	return nil
}

// alertPreviewer speaks an alert's text as it would sound (station.Alerts).
type alertPreviewer interface {
	PreviewAlert(ctx context.Context, text string, tone bool) ([]byte, error)
}

// previewRequest is the body of POST /api/v1/alerts/preview.
type previewRequest struct {
	Text     string `json:"text"`
	Language string `json:"language"` // the speech engine's: "vi" (or none)
	Tone     bool   `json:"tone"`
}

// Spoken previews cost a speech synthesis and an encode each: a caller
// gets previewBurst of them within previewWindow, and at most
// previewParallel run at once on the station.
const (
	previewBurst    = 6
	previewWindow   = time.Minute
	previewParallel = 2
)

// previewLimiter counts each caller's recent previews.
type previewLimiter struct {
	mu     sync.Mutex
	recent map[string][]time.Time
	slots  chan struct{}
}

func newPreviewLimiter() *previewLimiter {
	return &previewLimiter{recent: map[string][]time.Time{}, slots: make(chan struct{}, previewParallel)}
}

// take admits one preview of caller at now, or says how long to wait.
func (l *previewLimiter) take(caller string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, ts := range l.recent { // forget callers gone quiet: the map stays small
		if len(ts) > 0 && now.Sub(ts[len(ts)-1]) >= previewWindow {
			delete(l.recent, k)
		}
	}
	ts := slices.DeleteFunc(l.recent[caller], func(t time.Time) bool { return now.Sub(t) >= previewWindow })
	if len(ts) >= previewBurst {
		l.recent[caller] = ts
		return previewWindow - now.Sub(ts[0])
	}
	l.recent[caller] = append(ts, now)
	return 0
}

// rateLimited is ERATELIMIT with the wait for Retry-After.
type rateLimited struct {
	err  *loa.Error
	wait time.Duration
}

func (e rateLimited) Error() string             { return e.err.Error() }
func (e rateLimited) Unwrap() error             { return e.err }
func (e rateLimited) RetryAfter() time.Duration { return e.wait }

// previewAlert answers the text spoken as an alert would speak it, as
// Ogg Opus for the browser's player.
func (s *Server) previewAlert(limiter *previewLimiter) handler {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		var req previewRequest
		if err := decodeJSON(r.Body, &req); err != nil {
			return err
		}
		if req.Language != "" && req.Language != "vi" {
			return loa.Errorf(loa.EINVALID, "language: the speech engine speaks vi, as alerts do")
		}
		if strings.TrimSpace(req.Text) == "" {
			return loa.Errorf(loa.EINVALID, "text: required")
		}
		if n := len([]rune(req.Text)); n > loa.MaxAlertText {
			return loa.Errorf(loa.EINVALID, "text: %d characters is more than the %d an alert may speak", n, loa.MaxAlertText)
		}
		p, ok := s.Alerts.(alertPreviewer)
		if !ok {
			return errUnavailable("speech preview")
		}
		if wait := limiter.take(c.tok.ID, time.Now()); wait > 0 {
			return rateLimited{loa.Errorf(loa.ERATELIMIT, "text: at most %d previews a minute; try again shortly", previewBurst), wait}
		}
		select {
		case limiter.slots <- struct{}{}:
			defer func() { <-limiter.slots }()
		case <-r.Context().Done():
			return r.Context().Err()
		}
		ogg, err := p.PreviewAlert(r.Context(), req.Text, req.Tone)
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", "audio/ogg")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(ogg)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(ogg)
		return nil
	}
}
