package api

import (
	"fmt"
	"net/http"

	"github.com/loa-broadcast/loa"
)

// playlistRequest is the body of POST /api/v1/playlists.
type playlistRequest struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Items []struct {
		MediaID string `json:"media_id"`
		Gap     string `json:"gap"`    // a Go duration, "2s"; "" = none
		GapNs   *int64 `json:"gap_ns"` // or nanoseconds, as answers also carry it
	} `json:"items"`
}

// playlistView is a playlist as the API answers it: each item's gap both
// as the Go duration requests send and, as before, in nanoseconds.
type playlistView struct {
	*loa.Playlist
	Items []playlistItemView `json:"items"`
}

type playlistItemView struct {
	loa.PlaylistItem
	Gap string `json:"gap,omitempty"`
}

func viewPlaylist(p *loa.Playlist) playlistView {
	v := playlistView{Playlist: p, Items: make([]playlistItemView, len(p.Items))}
	for i, it := range p.Items {
		v.Items[i] = playlistItemView{PlaylistItem: it, Gap: durationOut(it.Gap)}
	}
	return v
}

func (s *Server) createPlaylist(w http.ResponseWriter, r *http.Request, c *call) error {
	var req playlistRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	p := &loa.Playlist{ID: req.ID, Name: req.Name, CreatedBy: c.tok.ID}
	for i, it := range req.Items {
		gap, _, err := durationIn(fmt.Sprintf("items[%d].gap", i), fmt.Sprintf("items[%d].gap_ns", i), it.Gap, it.GapNs, "2s")
		if err != nil {
			return err
		}
		p.Items = append(p.Items, loa.PlaylistItem{MediaID: it.MediaID, Gap: gap})
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if s.Playlists == nil {
		return errUnavailable("playlist")
	}
	if held, err := s.holdChange(w, c, &loa.Draft{Kind: loa.DraftPlaylist, Playlist: p}, c.scopeTargets()); held || err != nil {
		return err
	}
	if err := s.Playlists.CreatePlaylist(r.Context(), p); err != nil {
		return err
	}
	c.audit("playlist.create", p.ID, "")
	writeJSON(w, http.StatusCreated, viewPlaylist(p))
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
	out := make([]playlistView, len(list))
	for i, p := range list {
		out[i] = viewPlaylist(p)
	}
	writeJSON(w, http.StatusOK, out)
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
	writeJSON(w, http.StatusOK, viewPlaylist(p))
	return nil
}
