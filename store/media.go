package store

import (
	"cmp"
	"context"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// PutMedia inserts or updates the metadata of a media item and indexes it
// by content hash. CreatedAt is set if zero. ECONFLICT if another item
// already has the same hash: content is stored once, under one id.
func (db *DB) PutMedia(ctx context.Context, m *loa.Media) error {
	if err := validKey("id", m.ID); err != nil {
		return err
	}
	if err := validHash(m.Hash); err != nil {
		return err
	}
	if len(m.Name) > 200 {
		return loa.Errorf(loa.EINVALID, "name: at most 200 bytes")
	}
	if m.Size < 0 || m.Duration < 0 || m.Frames < 0 {
		return loa.Errorf(loa.EINVALID, "size, duration, frames: must not be negative")
	}
	return db.update(ctx, func(tx *wtx) error {
		idx := tx.Bucket(bucketMediaByHash)
		if owner := idx.Get([]byte(m.Hash)); owner != nil && string(owner) != m.ID {
			return loa.Errorf(loa.ECONFLICT, "hash: media %q already has this content", owner)
		}
		var old loa.Media
		found, err := get(tx, bucketMedia, []byte(m.ID), &old)
		if err != nil {
			return err
		}
		if found && old.Hash != m.Hash {
			if err := tx.del(bucketMediaByHash, []byte(old.Hash)); err != nil {
				return err
			}
		}
		if m.CreatedAt.IsZero() {
			if found {
				m.CreatedAt = old.CreatedAt
			} else {
				m.CreatedAt = db.now().UTC()
			}
		}
		if err := put(tx, bucketMedia, []byte(m.ID), m); err != nil {
			return err
		}
		return tx.put(bucketMediaByHash, []byte(m.Hash), []byte(m.ID))
	})
}

// Media returns the media item with id, ENOTFOUND if there is none.
func (db *DB) Media(ctx context.Context, id string) (*loa.Media, error) {
	var m *loa.Media
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		m, err = media(tx, id)
		return err
	})
	return m, err
}

// MediaByHash returns the media item whose file has content hash hash,
// ENOTFOUND if there is none.
func (db *DB) MediaByHash(ctx context.Context, hash string) (*loa.Media, error) {
	var m *loa.Media
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		id := tx.Bucket(bucketMediaByHash).Get([]byte(hash))
		if id == nil {
			return loa.Errorf(loa.ENOTFOUND, "no media with hash %q", hash)
		}
		m, err = media(tx, string(id))
		return err
	})
	return m, err
}

// MediaList returns every media item, newest first.
func (db *DB) MediaList(ctx context.Context) ([]*loa.Media, error) {
	ms, err := listAll[loa.Media](ctx, db, bucketMedia)
	slices.SortStableFunc(ms, func(a, b *loa.Media) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	return ms, err
}

func media(tx rtx, id string) (*loa.Media, error) {
	m := new(loa.Media)
	if found, err := get(tx, bucketMedia, []byte(id), m); err != nil {
		return nil, err
	} else if !found {
		return nil, loa.Errorf(loa.ENOTFOUND, "media %q not found", id)
	}
	return m, nil
}

// validHash accepts a lowercase hex digest, which is also a safe file name.
func validHash(h string) error {
	if len(h) < 16 || len(h) > 128 {
		return loa.Errorf(loa.EINVALID, "hash: must be 16–128 lowercase hex digits")
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return loa.Errorf(loa.EINVALID, "hash: %q is not lowercase hex", h)
		}
	}
	return nil
}

// validKey accepts a generated identifier (media, session, token): 1–128
// printable ASCII bytes without '/', safe as a bbolt key and in a URL path.
func validKey(field, id string) error {
	if id == "" || len(id) > 128 {
		return loa.Errorf(loa.EINVALID, "%s: required, 1–128 characters", field)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return loa.Errorf(loa.EINVALID, "%s: %q has a space, control, non-ASCII or '/' character", field, id)
		}
	}
	return nil
}
