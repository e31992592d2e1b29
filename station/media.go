package station

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/store"
)

// Media implements loa.MediaService: transcode an upload into a store
// blob (named by its content hash once committed), then record it. A
// failed upload leaves nothing behind. Transcoding runs in a bounded pool
// (TranscodeLimits).
type Media struct {
	db     *store.DB
	logger *slog.Logger
	opts   media.Options
	pool   *transcodePool
	// blobs orders an import's commit of a file with a delete's removal
	// of the same content's file (media_edit.go).
	blobs sync.Mutex
}

var _ loa.MediaService = (*Media)(nil)

// NewMedia returns the media import of db, encoding with opts, with at
// most limits' transcodes running and waiting.
func NewMedia(db *store.DB, opts media.Options, limits TranscodeLimits, logger *slog.Logger) *Media {
	return &Media{db: db, opts: opts, logger: logger, pool: newTranscodePool(limits)}
}

// ImportMedia imports an upload: refused at once (EUNAVAILABLE, with a
// RetryAfter) when the pool's queue is full, else received in full, then
// transcoded when a worker is free.
func (s *Media) ImportMedia(ctx context.Context, name string, r io.Reader, createdBy string) (*loa.Media, error) {
	return s.importMedia(ctx, name, r, createdBy, false, "")
}

// Urgent returns the import for alerts' embedded audio: it has a worker
// of its own, so an emergency never waits behind, or is refused for,
// music uploads.
func (s *Media) Urgent() loa.MediaService { return urgentMedia{s} }

type urgentMedia struct{ m *Media }

func (u urgentMedia) ImportMedia(ctx context.Context, name string, r io.Reader, createdBy string) (*loa.Media, error) {
	return u.m.importMedia(ctx, name, r, createdBy, true, "")
}

func (u urgentMedia) Media(ctx context.Context, id string) (*loa.Media, error) {
	return u.m.Media(ctx, id)
}

func (u urgentMedia) MediaList(ctx context.Context) ([]*loa.Media, error) { return u.m.MediaList(ctx) }

// importMedia imports an upload as a new item in state (loa.MediaDraft
// for a held one); audio already in the library is answered as it is.
func (s *Media) importMedia(ctx context.Context, name string, r io.Reader, createdBy string, urgent bool, state string) (*loa.Media, error) {
	name = strings.TrimSpace(name)
	if err := loa.ValidateName("name", name, true); err != nil {
		return nil, err
	}
	if !urgent {
		leave, err := s.pool.admit()
		if err != nil {
			s.logger.Warn("upload refused: the transcode queue is full", "name", name)
			return nil, err
		}
		defer leave()
	}
	up, err := media.Spool(ctx, r, s.opts.MaxBytes)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	done, err := s.pool.work(ctx, urgent)
	if err != nil {
		return nil, err
	}
	defer done()

	w, err := s.db.NewBlob(store.MediaBlob)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	defer w.Abort() // a no-op once committed
	start := time.Now()
	info, err := media.Transcode(ctx, up, w, s.opts)
	if err != nil {
		return nil, err
	}
	sum, _ := w.Sum()
	s.blobs.Lock()
	defer s.blobs.Unlock()
	if m, err := s.db.MediaByHash(ctx, sum); err == nil {
		return m, nil // the same audio is already in the library
	}
	hash, size, err := w.Commit()
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	m := &loa.Media{
		ID: hash[:16], Name: name, Hash: hash, Size: size,
		Duration: info.Duration, Frames: info.Frames, Source: info.Format, Decoder: info.Decoder,
		LoudnessDB: info.LoudnessLUFS, CreatedAt: time.Now(), CreatedBy: createdBy, State: state,
	}
	if err := s.db.PutMedia(ctx, m); err != nil {
		s.db.RemoveBlob(store.MediaBlob, hash)
		return nil, err
	}
	s.logger.Info("media imported", "media", m.ID, "name", name, "format", info.Format, "decoder", info.Decoder,
		"duration", info.Duration, "gain_db", info.GainDB, "took", time.Since(start).Round(time.Millisecond))
	return m, nil
}

func (s *Media) Media(ctx context.Context, id string) (*loa.Media, error) {
	return s.db.Media(ctx, id)
}

func (s *Media) MediaList(ctx context.Context) ([]*loa.Media, error) {
	return s.db.MediaList(ctx)
}
