package station

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/store"
)

// Media implements loa.MediaService: transcode an upload into a store
// blob (named by its content hash once committed), then record it. A
// failed upload leaves nothing behind.
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
	if err := loa.ValidateName("name", name, true); err != nil {
		return nil, err
	}
	w, err := s.db.NewBlob(store.MediaBlob)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	defer w.Abort() // a no-op once committed
	start := time.Now()
	info, err := media.Transcode(ctx, r, w, s.opts)
	if err != nil {
		return nil, err
	}
	sum, _ := w.Sum()
	if m, err := s.db.MediaByHash(ctx, sum); err == nil {
		return m, nil // the same audio is already in the library
	}
	hash, size, err := w.Commit()
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	m := &loa.Media{
		ID: hash[:16], Name: name, Hash: hash, Size: size,
		Duration: info.Duration, Frames: info.Frames, Source: info.Format,
		LoudnessDB: info.LoudnessLUFS, CreatedAt: time.Now(), CreatedBy: createdBy,
	}
	if err := s.db.PutMedia(ctx, m); err != nil {
		s.db.RemoveBlob(store.MediaBlob, hash)
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
