package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// bucketBulletins holds the province's bulletins with their per-commune
// tracking: id → Bulletin. Made on first write (no schema step), as the
// drafts' bucket is.
var bucketBulletins = []byte("bulletins")

// PutBulletin stores b (new or changed) under its id.
func (db *DB) PutBulletin(ctx context.Context, b *loa.Bulletin) error {
	if err := validKey("id", b.ID); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketBulletins); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketBulletins, err)
		}
		return put(tx, bucketBulletins, []byte(b.ID), b)
	})
}

// UpdateBulletin applies fn to bulletin id in one transaction and stores
// the result, unless fn fails; ENOTFOUND if there is none.
func (db *DB) UpdateBulletin(ctx context.Context, id string, fn func(b *loa.Bulletin) error) (*loa.Bulletin, error) {
	b := new(loa.Bulletin)
	err := db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketBulletins) == nil {
			return loa.Errorf(loa.ENOTFOUND, "bulletin %q not found", id)
		}
		if found, err := get(tx, bucketBulletins, []byte(id), b); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "bulletin %q not found", id)
		}
		if err := fn(b); err != nil {
			return err
		}
		return put(tx, bucketBulletins, []byte(id), b)
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Bulletin returns the bulletin with id, ENOTFOUND if there is none.
func (db *DB) Bulletin(ctx context.Context, id string) (*loa.Bulletin, error) {
	b := new(loa.Bulletin)
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketBulletins) != nil {
			if found, err := get(tx, bucketBulletins, []byte(id), b); err != nil || found {
				return err
			}
		}
		return loa.Errorf(loa.ENOTFOUND, "bulletin %q not found", id)
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Bulletins returns every bulletin, newest first.
func (db *DB) Bulletins(ctx context.Context) ([]*loa.Bulletin, error) {
	var out []*loa.Bulletin
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		if tx.Bucket(bucketBulletins) == nil {
			return nil
		}
		out, err = list[loa.Bulletin](tx, bucketBulletins)
		return err
	})
	slices.SortStableFunc(out, func(a, b *loa.Bulletin) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	return out, err
}
