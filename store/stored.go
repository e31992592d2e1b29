package store

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// bucketStored holds the library of stored alert messages: code as 3
// decimal digits → StoredMessage; its version is in meta under
// stored_version. It is made on its first write, so older databases need
// no migration.
var bucketStored = []byte("stored_messages")

// storedKey orders the library by code.
func storedKey(code int) []byte { return []byte(fmt.Sprintf("%03d", code)) }

var keyStoredVersion = []byte("stored_version")

// PutStoredMessage creates or replaces the message of m.Code, filling in
// its media's file (SHA-256, size, frames), and returns the library's new
// version. The media and area must exist (ENOTFOUND naming the field).
func (db *DB) PutStoredMessage(ctx context.Context, m *loa.StoredMessage) (int64, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	var version int64
	err := db.update(ctx, func(tx *wtx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketStored); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketStored, err)
		}
		if tx.Bucket(bucketAreas).Get([]byte(m.AreaID)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "area_id: no area %q", m.AreaID)
		}
		var media loa.Media
		if found, err := get(tx, bucketMedia, []byte(m.MediaID), &media); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "media_id: no media %q", m.MediaID)
		}
		m.SHA256, m.Size, m.Frames = media.Hash, media.Size, media.Frames
		if err := put(tx, bucketStored, storedKey(m.Code), m); err != nil {
			return err
		}
		var err error
		version, err = bumpStoredVersion(tx)
		return err
	})
	return version, err
}

// DeleteStoredMessage removes a message (ENOTFOUND if none) and returns
// the library's new version.
func (db *DB) DeleteStoredMessage(ctx context.Context, code int) (int64, error) {
	var version int64
	err := db.update(ctx, func(tx *wtx) error {
		b := tx.Bucket(bucketStored)
		if b == nil || b.Get(storedKey(code)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "no stored message %d", code)
		}
		if err := tx.del(bucketStored, storedKey(code)); err != nil {
			return err
		}
		var err error
		version, err = bumpStoredVersion(tx)
		return err
	})
	return version, err
}

// StoredMessage returns the message of code, or ENOTFOUND.
func (db *DB) StoredMessage(ctx context.Context, code int) (*loa.StoredMessage, error) {
	var m loa.StoredMessage
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketStored) == nil {
			return loa.Errorf(loa.ENOTFOUND, "no stored message %d", code)
		}
		if found, err := get(tx, bucketStored, storedKey(code), &m); err != nil {
			return err
		} else if !found {
			return loa.Errorf(loa.ENOTFOUND, "no stored message %d", code)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// StoredMessages returns the library by code, and its version: it
// increases with every change, and is the version of the cache manifests
// built from it.
func (db *DB) StoredMessages(ctx context.Context) ([]*loa.StoredMessage, int64, error) {
	var version int64
	var out []*loa.StoredMessage
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyStoredVersion); len(v) == 8 {
			version = int64(binary.BigEndian.Uint64(v))
		}
		if tx.Bucket(bucketStored) == nil {
			return nil
		}
		var err error
		out, err = list[loa.StoredMessage](tx, bucketStored)
		return err
	})
	return out, version, err
}

// BumpStoredVersion increases the version of the receivers' cache sets
// without a library change (another source of items changed) and returns
// it.
func (db *DB) BumpStoredVersion(ctx context.Context) (int64, error) {
	var version int64
	err := db.update(ctx, func(tx *wtx) error {
		var err error
		version, err = bumpStoredVersion(tx)
		return err
	})
	return version, err
}

func bumpStoredVersion(tx *wtx) (int64, error) {
	meta := tx.Bucket(bucketMeta)
	var v uint64
	if b := meta.Get(keyStoredVersion); len(b) == 8 {
		v = binary.BigEndian.Uint64(b)
	}
	v++
	return int64(v), tx.put(bucketMeta, keyStoredVersion, binary.BigEndian.AppendUint64(nil, v))
}
