package api

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/loa-broadcast/loa"
)

// maxMediaName bounds the "name" form field.
const maxMediaName = 200

func (s *Server) listMedia(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Media == nil {
		return errUnavailable("media")
	}
	list, err := s.Media.MediaList(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []*loa.Media{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) getMedia(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Media == nil {
		return errUnavailable("media")
	}
	m, err := s.Media.Media(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// uploadMedia streams the "file" part of a multipart/form-data body into
// MediaService.ImportMedia, never holding the whole file in memory. An
// optional "name" field names the media; it must come before "file"
// (browsers send fields in form order). Without it the file name is used.
// Audio already in the library (the same encoded content) answers 200
// with the existing item and its name, 201 only for a new one.
func (s *Server) uploadMedia(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.Media == nil {
		return errUnavailable("media")
	}
	areas, held, err := s.heldUpload(c)
	if err != nil {
		return err
	}
	start := time.Now() // the importer's clock: an item created before this is not this upload's
	return readUpload(w, r, uploadForm{limit: s.maxUpload(), fields: []string{"name"}, maxField: maxMediaName, expect: `a "file" field`},
		func(fields map[string]string, part *multipart.Part) error {
			name := fields["name"]
			if name == "" {
				name = strings.TrimSpace(part.FileName())
			}
			if name == "" {
				return loa.Errorf(loa.EINVALID, `name: required; send a "name" field or a file name`)
			}
			if err := loa.ValidateName("name", name, true); err != nil {
				return err
			}
			if held {
				return s.proposeMedia(w, c, name, part, areas)
			}
			m, err := s.Media.ImportMedia(r.Context(), name, part, c.tok.ID)
			if err != nil {
				return err
			}
			if !m.CreatedAt.IsZero() && m.CreatedAt.Before(start) {
				// The same audio was already in the library: the
				// existing item, under its own name, not a new one.
				writeJSON(w, http.StatusOK, m)
				return nil
			}
			c.audit("media.upload", m.ID, m.Name)
			writeJSON(w, http.StatusCreated, m)
			return nil
		})
}

func tooLarge(limit int64) error {
	return loa.Errorf(loa.ETOOLARGE, "body: an upload may be at most %s", sizeString(limit))
}

// sizeString renders a byte count for people.
func sizeString(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// limitedBody notes when the http.MaxBytesReader under it hits its limit,
// or reading the request fails, whatever the media importer then makes of
// the read error. The importer may read from another goroutine.
type limitedBody struct {
	r         io.ReadCloser
	overLimit atomic.Bool
	err       atomic.Pointer[error]
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			b.overLimit.Store(true)
		}
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// readErr returns the first error reading the request body, if any.
func (b *limitedBody) readErr() error {
	if p := b.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *limitedBody) Close() error { return b.r.Close() }
