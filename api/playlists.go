package api

import (
	"net/http"
	"time"

	"github.com/loa-broadcast/loa"
)

// playlistRequest is the body of POST /api/v1/playlists.
type playlistRequest struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Items []struct {
		MediaID string `json:"media_id"`
		Gap     string `json:"gap"` // a Go duration, "2s"; "" = none
	} `json:"items"`
}

func (s *Server) createPlaylist(w http.ResponseWriter, r *http.Request, c *call) error {
	var req playlistRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	p := &loa.Playlist{ID: req.ID, Name: req.Name, CreatedBy: c.tok.ID}
	for i, it := range req.Items {
		var gap time.Duration
		if it.Gap != "" {
			d, err := time.ParseDuration(it.Gap)
			if err != nil {
				return loa.Errorf(loa.EINVALID, "items[%d].gap: %q is not a duration like \"2s\"", i, it.Gap)
			}
			gap = d
		}
		p.Items = append(p.Items, loa.PlaylistItem{MediaID: it.MediaID, Gap: gap})
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if s.Playlists == nil {
		return errUnavailable("playlist")
	}
	if err := s.Playlists.CreatePlaylist(r.Context(), p); err != nil {
		return err
	}
	c.audit("playlist.create", p.ID, "")
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) listPlaylists(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Playlists == nil {
		return errUnavailable("playlist")
	}
	list, err := s.Playlists.Playlists(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []*loa.Playlist{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) getPlaylist(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Playlists == nil {
		return errUnavailable("playlist")
	}
	p, err := s.Playlists.Playlist(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}
