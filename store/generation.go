package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"time"
)

var keyGeneration = []byte("generation")

// NextGeneration increments the controller's generation, kept in the meta
// bucket, and returns the new value (1 on a new database). The daemon
// calls it once per start: it is the gen of the fence SRTP keys are
// derived with, so two starts never encrypt under the same key.
func (db *DB) NextGeneration(ctx context.Context) (uint64, error) {
	var gen uint64
	err := db.update(ctx, func(tx *wtx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyGeneration); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("meta generation is %d bytes, want 8", len(v))
			}
			gen = binary.BigEndian.Uint64(v)
		}
		gen++
		return tx.put(bucketMeta, keyGeneration, binary.BigEndian.AppendUint64(nil, gen))
	})
	if err != nil {
		return 0, fmt.Errorf("store: next generation: %w", err)
	}
	return gen, nil
}

// raiseRestoredGeneration lifts a restored station's generation above any
// its receivers can have seen since the backup was taken: receivers
// refuse a lower fence, and the station kept counting after the backup.
// Starts count up by one from a small number, so the clock's seconds are
// above any count, and a later restore's are above this one's.
func raiseRestoredGeneration(ctx context.Context, dir string, now time.Time) error {
	db, err := Open(filepath.Join(dir, DBFileName), Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	floor := uint64(max(now.Unix(), 1))
	return db.update(ctx, func(tx *wtx) error {
		if v := tx.Bucket(bucketMeta).Get(keyGeneration); len(v) == 8 && binary.BigEndian.Uint64(v) >= floor {
			return nil
		}
		return tx.put(bucketMeta, keyGeneration, binary.BigEndian.AppendUint64(nil, floor))
	})
}
