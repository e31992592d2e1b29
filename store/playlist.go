package store

import (
	"context"
	"fmt"

	"github.com/loa-broadcast/loa"
)

var _ loa.PlaylistService = (*DB)(nil)

// CreatePlaylist stores a new playlist whose media all exist (ENOTFOUND
// names the item) and are not drafts (ENOTAPPROVED). ECONFLICT if the id is taken. Sets CreatedAt.
func (db *DB) CreatePlaylist(ctx context.Context, p *loa.Playlist) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketPlaylists).Get([]byte(p.ID)) != nil {
			return loa.Errorf(loa.ECONFLICT, "playlist %q already exists", p.ID)
		}
		for i, it := range p.Items {
			if _, err := usableMedia(tx, fmt.Sprintf("items[%d].media_id", i), it.MediaID); err != nil {
				return err
			}
		}
		p.CreatedAt = db.now().UTC()
		return put(tx, bucketPlaylists, []byte(p.ID), p)
	})
}

// Playlist returns the playlist with id, ENOTFOUND if there is none.
func (db *DB) Playlist(ctx context.Context, id string) (*loa.Playlist, error) {
	return getOne[loa.Playlist](ctx, db, bucketPlaylists, "playlist", id)
}

// Playlists returns every playlist, by id.
func (db *DB) Playlists(ctx context.Context) ([]*loa.Playlist, error) {
	return listAll[loa.Playlist](ctx, db, bucketPlaylists)
}
