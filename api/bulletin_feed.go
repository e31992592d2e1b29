package api

import (
	"crypto/ed25519"
	"mime"
	"net/http"
	"strings"

	"github.com/loa-broadcast/loa"
)

// The bulletin feed (docs/bulletin-feed.md): a subscribing controller,
// with a token of role feed scoped to the communes it stands for, reads
// their bulletins as an envelope signed with the station key, fetches
// the audio by SHA-256 and reports their tracking back.

// feedItems are the bulletins' entries in the caller's scope that a
// subscriber still has to know of (not expired), with the media of each.
func (s *Server) feedItems(c *call) ([]loa.FeedBulletin, map[string]*loa.Media, error) {
	if s.Bulletins == nil || s.Media == nil {
		return nil, nil, errUnavailable("bulletin feed")
	}
	list, err := s.Bulletins.Bulletins(c.ctx)
	if err != nil {
		return nil, nil, err
	}
	byHash := map[string]*loa.Media{}
	out := []loa.FeedBulletin{}
	for _, b := range list {
		if b.Source != "" {
			continue // imported here: this station does not republish it
		}
		v, ok, err := c.bulletinView(b)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			continue
		}
		m, err := s.Media.Media(c.ctx, b.MediaID)
		if err != nil {
			continue // deleted: nothing to send
		}
		for _, e := range v.Communes {
			if e.State == loa.BulletinExpired {
				continue
			}
			byHash[m.Hash] = m
			out = append(out, loa.FeedBulletin{ID: b.ID, AreaID: e.AreaID, Title: b.Title, Category: b.Category, Level: b.Level,
				Text: b.Text, MediaSHA256: m.Hash, MediaSize: m.Size, ValidFrom: b.ValidFrom, ValidUntil: b.ValidUntil,
				MustAirBy: b.MustAirBy, CreatedAt: b.CreatedAt, State: e.State})
		}
	}
	return out, byHash, nil
}

// feedBulletins answers the signed envelope of the caller's communes'
// bulletins.
func (s *Server) feedBulletins(w http.ResponseWriter, r *http.Request, c *call) error {
	if len(s.FeedKey) != ed25519.PrivateKeySize {
		return errUnavailable("bulletin feed (no station key)")
	}
	items, _, err := s.feedItems(c)
	if err != nil {
		return err
	}
	env, err := loa.SignFeed(s.FeedKey, loa.FeedPayload{Publisher: s.stationName(), GeneratedAt: s.now().UTC(), Bulletins: items})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, env)
	return nil
}

// feedMedia serves the Ogg Opus file of a bulletin in the caller's feed
// by its SHA-256; any other hash is not found.
func (s *Server) feedMedia(w http.ResponseWriter, r *http.Request, c *call) error {
	sum := strings.ToLower(r.PathValue("sha256"))
	_, byHash, err := s.feedItems(c)
	if err != nil {
		return err
	}
	m := byHash[sum]
	op, ok := s.Media.(mediaOpener)
	if m == nil || !ok {
		return loa.Errorf(loa.ENOTFOUND, "no bulletin audio %q in your feed", sum)
	}
	m, f, err := op.OpenMedia(c.ctx, m.ID)
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "audio/ogg")
	h.Set("ETag", `"`+m.Hash+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": m.Hash + ".ogg"}))
	http.ServeContent(w, r, "", m.CreatedAt, f)
	return nil
}

// feedReport takes a subscriber's report of one of its communes.
func (s *Server) feedReport(w http.ResponseWriter, r *http.Request, c *call) error {
	var req loa.FeedReport
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if err := c.communeAllowed(req.AreaID); err != nil {
		return err
	}
	if req.State != loa.BulletinScheduled && req.State != loa.BulletinAired && req.State != loa.BulletinDeclined {
		return loa.Errorf(loa.EINVALID, "state: scheduled, aired or declined, not %q", req.State)
	}
	if len(req.Reason) > loa.MaxBulletinReason || len(req.By) > 200 {
		return loa.Errorf(loa.EINVALID, "reason: at most %d bytes", loa.MaxBulletinReason)
	}
	id := r.PathValue("id")
	if _, err := s.bulletin(c, id); err != nil {
		return err
	}
	req.By = c.tok.ID + ":" + req.By
	b, err := s.Bulletins.Report(c.ctx, id, req)
	if err != nil {
		return err
	}
	c.audit("bulletin.report", id, req.AreaID+" "+req.State)
	return s.writeView(w, c, b)
}

// stationName is the station's name as /me tells it.
func (s *Server) stationName() string {
	if s.StationName == "" {
		return DefaultStationName
	}
	return s.StationName
}
