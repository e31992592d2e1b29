package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// bucketRelays holds relays of external streams: id → Relay. It is made
// on its first write, so older databases need no migration.
var bucketRelays = []byte("relays")

// PutRelay creates (create) or replaces a relay: ECONFLICT if create and
// the id is taken, ENOTFOUND if not and it is missing; its fallback media
// must exist (ENOTFOUND naming the field). Sets CreatedAt on create.
func (db *DB) PutRelay(ctx context.Context, r *loa.Relay, create bool) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketRelays); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketRelays, err)
		}
		var old loa.Relay
		found, err := get(tx, bucketRelays, []byte(r.ID), &old)
		if err != nil {
			return err
		}
		switch {
		case create && found:
			return loa.Errorf(loa.ECONFLICT, "relay %q already exists", r.ID)
		case !create && !found:
			return loa.Errorf(loa.ENOTFOUND, "no relay %q", r.ID)
		case create:
			r.CreatedAt = db.now().UTC()
		default:
			r.CreatedAt, r.CreatedBy = old.CreatedAt, old.CreatedBy
		}
		if r.FallbackMediaID != "" && tx.Bucket(bucketMedia).Get([]byte(r.FallbackMediaID)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "fallback_media_id: no media %q", r.FallbackMediaID)
		}
		return put(tx, bucketRelays, []byte(r.ID), r)
	})
}

// Relay returns the relay with id, ENOTFOUND if there is none.
func (db *DB) Relay(ctx context.Context, id string) (*loa.Relay, error) {
	var r loa.Relay
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRelays) != nil {
			if found, err := get(tx, bucketRelays, []byte(id), &r); err != nil || found {
				return err
			}
		}
		return loa.Errorf(loa.ENOTFOUND, "no relay %q", id)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Relays returns every relay, by id.
func (db *DB) Relays(ctx context.Context) ([]*loa.Relay, error) {
	out := []*loa.Relay{}
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRelays) == nil {
			return nil
		}
		var err error
		out, err = list[loa.Relay](tx, bucketRelays)
		return err
	})
	return out, err
}

// DeleteRelay removes a relay: ENOTFOUND if missing, ECONFLICT while a
// schedule plays it.
func (db *DB) DeleteRelay(ctx context.Context, id string) error {
	return db.update(ctx, func(tx *wtx) error {
		b := tx.Bucket(bucketRelays)
		if b == nil || b.Get([]byte(id)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "no relay %q", id)
		}
		scheds, err := list[loa.Schedule](tx, bucketSchedules)
		if err != nil {
			return err
		}
		for _, s := range scheds {
			if s.Content.RelayID == id {
				return loa.Errorf(loa.ECONFLICT, "relay %q is played by schedule %q", id, s.ID)
			}
		}
		return tx.del(bucketRelays, []byte(id))
	})
}
