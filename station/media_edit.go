package station

import (
	"context"
	"io"
	"strings"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// RenameMedia gives media id a new name.
func (s *Media) RenameMedia(ctx context.Context, id, name string) (*loa.Media, error) {
	name = strings.TrimSpace(name)
	if err := loa.ValidateName("name", name, true); err != nil {
		return nil, err
	}
	return s.db.RenameMedia(ctx, id, name)
}

// DeleteMedia removes media id and its file when nothing plays it
// (an *loa.InUseError naming what does otherwise). A session that opened
// the file before keeps reading it: the name goes, the open file stays.
func (s *Media) DeleteMedia(ctx context.Context, id string) (*loa.Media, error) {
	s.blobs.Lock()
	defer s.blobs.Unlock()
	m, err := s.db.DeleteMedia(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.db.RemoveBlob(store.MediaBlob, m.Hash); err != nil {
		// The record is gone: a leftover file costs space, not correctness.
		s.logger.Warn("media file not removed", "media", id, "err", err)
	}
	s.logger.Info("media deleted", "media", id, "name", m.Name)
	return m, nil
}

// OpenMedia opens media id's stored Ogg Opus file, for listening in the
// console.
func (s *Media) OpenMedia(ctx context.Context, id string) (*loa.Media, io.ReadSeekCloser, error) {
	m, err := s.db.Media(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	f, err := s.db.OpenBlob(store.MediaBlob, m.Hash)
	if err != nil {
		return nil, nil, err
	}
	return m, f, nil
}
