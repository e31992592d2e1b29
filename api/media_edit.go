package api

import (
	"context"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/loa-broadcast/loa"
)

// mediaEditor renames and deletes media items (station.Media).
type mediaEditor interface {
	RenameMedia(ctx context.Context, id, name string) (*loa.Media, error)
	DeleteMedia(ctx context.Context, id string) (*loa.Media, error)
}

// mediaOpener opens a media item's stored Ogg Opus file (station.Media).
type mediaOpener interface {
	OpenMedia(ctx context.Context, id string) (*loa.Media, io.ReadSeekCloser, error)
}

// mediaAudio serves a media item's stored file, Ogg Opus as it was
// encoded at upload, for the console's audio player: Range requests
// (browsers seek with them), and an ETag of its content hash.
func (s *Server) mediaAudio(w http.ResponseWriter, r *http.Request, c *call) error {
	op, ok := s.Media.(mediaOpener)
	if !ok {
		return errUnavailable("media audio")
	}
	m, f, err := op.OpenMedia(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "audio/ogg")
	h.Set("ETag", `"`+m.Hash+`"`)
	h.Set("Cache-Control", "private, max-age=86400") // the file under a hash never changes
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": m.Name + ".ogg"}))
	http.ServeContent(w, r, "", m.CreatedAt, f)
	return nil
}

// mediaRename is the body of PATCH /api/v1/media/{id}.
type mediaRename struct {
	Name string `json:"name"`
}

func (s *Server) renameMedia(w http.ResponseWriter, r *http.Request, c *call) error {
	var req mediaRename
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if err := loa.ValidateName("name", req.Name, true); err != nil {
		return err
	}
	ed, ok := s.Media.(mediaEditor)
	if !ok {
		return errUnavailable("media")
	}
	m, err := ed.RenameMedia(r.Context(), r.PathValue("id"), req.Name)
	if err != nil {
		return err
	}
	c.audit("media.rename", m.ID, m.Name)
	writeJSON(w, http.StatusOK, m)
	return nil
}

// deleteMedia deletes a media item nothing uses: 409 in_use with
// "used_by" naming what does.
func (s *Server) deleteMedia(w http.ResponseWriter, r *http.Request, c *call) error {
	ed, ok := s.Media.(mediaEditor)
	if !ok {
		return errUnavailable("media")
	}
	m, err := ed.DeleteMedia(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	c.audit("media.delete", m.ID, m.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
