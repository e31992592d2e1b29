package store

import (
	"context"

	"github.com/loa-broadcast/loa"
)

// PutFallback sets an area's background programme; the area and content
// must exist (ENOTFOUND naming the field).
func (db *DB) PutFallback(ctx context.Context, f *loa.Fallback) error {
	if err := f.Validate(); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketAreas).Get([]byte(f.AreaID)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "area_id: no area %q", f.AreaID)
		}
		if id := f.Content.MediaID; id != "" {
			if _, err := usableMedia(tx, "content.media_id", id); err != nil {
				return err
			}
		}
		if id := f.Content.PlaylistID; id != "" && tx.Bucket(bucketPlaylists).Get([]byte(id)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "content.playlist_id: no playlist %q", id)
		}
		return put(tx, bucketFallbacks, []byte(f.AreaID), f)
	})
}

// DeleteFallback clears an area's background programme; ENOTFOUND if none.
func (db *DB) DeleteFallback(ctx context.Context, areaID string) error {
	return db.update(ctx, func(tx *wtx) error {
		b := tx.Bucket(bucketFallbacks)
		if b.Get([]byte(areaID)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "area %q has no fallback", areaID)
		}
		return tx.del(bucketFallbacks, []byte(areaID))
	})
}

// Fallbacks returns every area's background programme, by area id.
func (db *DB) Fallbacks(ctx context.Context) ([]*loa.Fallback, error) {
	return listAll[loa.Fallback](ctx, db, bucketFallbacks)
}
