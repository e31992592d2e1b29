package store

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// PutDeviceStates writes a batch of hot device states in one transaction:
// the presence tracker keeps state in memory and flushes it every second or
// two, so thousands of receivers cost one fsync, not thousands.
func (db *DB) PutDeviceStates(ctx context.Context, states []loa.DeviceState) error {
	for i := range states {
		if err := validKey("id", states[i].ID); err != nil {
			return fmt.Errorf("states[%d]: %w", i, err)
		}
	}
	if len(states) == 0 {
		return ctx.Err()
	}
	return db.updateLocal(ctx, func(tx *wtx) error {
		for i := range states {
			data, err := json.Marshal(&states[i])
			if err != nil {
				return fmt.Errorf("encode device state %s: %w", states[i].ID, err)
			}
			if err := tx.put(bucketDeviceStates, []byte(states[i].ID), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeviceStates returns the last flushed state of every device, sorted by id.
func (db *DB) DeviceStates(ctx context.Context) ([]loa.DeviceState, error) {
	var out []loa.DeviceState
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeviceStates).ForEach(func(k, v []byte) error {
			var s loa.DeviceState
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucketDeviceStates, k, err)
			}
			out = append(out, s)
			return nil
		})
	})
	return out, err
}
