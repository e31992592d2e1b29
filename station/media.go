package station

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/store"
)

// Media implements loa.MediaService: transcode an upload to a temp file
// beside the library, then move it to its content-hash name and record it.
// A failed upload leaves nothing behind.
type Media struct {
	db     *store.DB
	logger *slog.Logger
	opts   media.Options
}

var _ loa.MediaService = (*Media)(nil)

// NewMedia returns the media import of db, encoding with opts.
func NewMedia(db *store.DB, opts media.Options, logger *slog.Logger) *Media {
	return &Media{db: db, opts: opts, logger: logger}
}

func (s *Media) ImportMedia(ctx context.Context, name string, r io.Reader, createdBy string) (*loa.Media, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return nil, loa.Errorf(loa.EINVALID, "name: required, at most 200 bytes")
	}
	tmp, err := os.CreateTemp(s.db.MediaDir(), ".upload-*")
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	defer tmp.Close()

	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	start := time.Now()
	info, err := media.Transcode(ctx, r, cw, s.opts)
	if err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if m, err := s.db.MediaByHash(ctx, hash); err == nil {
		return m, nil // the same audio is already in the library
	}
	if err := os.Rename(tmp.Name(), s.db.MediaPath(hash)); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	m := &loa.Media{
		ID: hash[:16], Name: name, Hash: hash, Size: cw.n,
		Duration: info.Duration, Frames: info.Frames, Source: info.Format,
		LoudnessDB: info.LoudnessLUFS, CreatedAt: time.Now(), CreatedBy: createdBy,
	}
	if err := s.db.PutMedia(ctx, m); err != nil {
		os.Remove(s.db.MediaPath(hash))
		return nil, err
	}
	s.logger.Info("media imported", "media", m.ID, "name", name, "format", info.Format,
		"duration", info.Duration, "gain_db", info.GainDB, "took", time.Since(start).Round(time.Millisecond))
	return m, nil
}

func (s *Media) Media(ctx context.Context, id string) (*loa.Media, error) {
	return s.db.Media(ctx, id)
}

func (s *Media) MediaList(ctx context.Context) ([]*loa.Media, error) {
	return s.db.MediaList(ctx)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
