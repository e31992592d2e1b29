package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// healthKey is device id ‖ 0 ‖ big-endian unix hour: a device's hours are
// contiguous and in time order, and the 0 keeps "a" from matching "ab".
func healthKey(device string, hour time.Time) []byte {
	k := make([]byte, 0, len(device)+9)
	k = append(k, device...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(max(hour.Unix(), 0)/3600)) // nothing is older than 1970
}

// healthKeyHour returns the hour a health key names.
func healthKeyHour(k []byte) (time.Time, bool) {
	if len(k) < 10 || k[len(k)-9] != 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint64(k[len(k)-8:]))*3600, 0).UTC(), true
}

// PutHealthHours writes hourly aggregates in one transaction. An hour
// already stored for the device (written before a restart within the
// hour) is merged with the new one, not replaced.
func (db *DB) PutHealthHours(ctx context.Context, hours []loa.HealthHour) error {
	for i := range hours {
		if err := loa.ValidateID("device", hours[i].Device); err != nil {
			return fmt.Errorf("hours[%d]: %w", i, err)
		}
		if hours[i].Hour.IsZero() {
			return loa.Errorf(loa.EINVALID, "hours[%d].hour: required", i)
		}
	}
	if len(hours) == 0 {
		return ctx.Err()
	}
	return db.updateLocal(ctx, func(tx *wtx) error {
		for _, h := range hours {
			h.Hour = h.Hour.UTC().Truncate(time.Hour)
			key := healthKey(h.Device, h.Hour)
			var old loa.HealthHour
			found, err := get(tx, bucketHealthHourly, key, &old)
			if err != nil {
				return err
			}
			if found {
				old.Merge(h)
				h = old
			}
			if err := put(tx, bucketHealthHourly, key, &h); err != nil {
				return err
			}
		}
		return nil
	})
}

// HealthHours returns the device's stored aggregates whose hour starts
// within [from, to), oldest first.
func (db *DB) HealthHours(ctx context.Context, device string, from, to time.Time) ([]loa.HealthHour, error) {
	if err := loa.ValidateID("device", device); err != nil {
		return nil, err
	}
	var out []loa.HealthHour
	// from rounds up: an hour that started before from is not within.
	start := from.UTC().Truncate(time.Hour)
	if start.Before(from) {
		start = start.Add(time.Hour)
	}
	lo, hi := healthKey(device, start), healthKey(device, to.UTC())
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHealthHourly).Cursor()
		for k, v := c.Seek(lo); k != nil && bytes.Compare(k, hi) < 0; k, v = c.Next() {
			var h loa.HealthHour
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("decode %s/%q: %w", bucketHealthHourly, k, err)
			}
			if !h.Hour.Before(to) {
				break
			}
			out = append(out, h)
		}
		return nil
	})
	return out, err
}

// PruneHealth deletes every aggregate whose hour started before cutoff and
// returns how many it deleted.
func (db *DB) PruneHealth(ctx context.Context, cutoff time.Time) (int, error) {
	return db.deleteWhere(ctx, bucketHealthHourly, func(k, _ []byte) (bool, error) {
		h, ok := healthKeyHour(k)
		return !ok || h.Before(cutoff), nil
	})
}
