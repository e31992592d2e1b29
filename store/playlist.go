package store

import (
	"context"

	"github.com/loa-broadcast/loa"
	bolt "go.etcd.io/bbolt"
)

var _ loa.PlaylistService = (*DB)(nil)

// CreatePlaylist stores a new playlist whose media all exist (ENOTFOUND
// names the item). ECONFLICT if the id is taken. Sets CreatedAt.
func (db *DB) CreatePlaylist(ctx context.Context, p *loa.Playlist) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return db.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketPlaylists).Get([]byte(p.ID)) != nil {
			return loa.Errorf(loa.ECONFLICT, "playlist %q already exists", p.ID)
		}
		for i, it := range p.Items {
			if _, err := media(tx, it.MediaID); err != nil {
				return loa.Errorf(loa.ENOTFOUND, "items[%d].media_id: no media %q", i, it.MediaID)
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
