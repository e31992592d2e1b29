package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// PutAlarms writes alarms (new or updated) in one transaction. Alarm ids
// are generated in raise order, so keys sort oldest first.
func (db *DB) PutAlarms(ctx context.Context, alarms []loa.Alarm) error {
	for i := range alarms {
		if err := validKey("id", alarms[i].ID); err != nil {
			return fmt.Errorf("alarms[%d]: %w", i, err)
		}
		if !loa.ValidAlarmKind(alarms[i].Kind) {
			return loa.Errorf(loa.EINVALID, "alarms[%d].kind: unknown kind %q", i, alarms[i].Kind)
		}
	}
	if len(alarms) == 0 {
		return ctx.Err()
	}
	return db.update(ctx, func(tx *wtx) error {
		for i := range alarms {
			if err := put(tx, bucketAlarms, []byte(alarms[i].ID), &alarms[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Alarms returns the alarms matching f, newest first.
func (db *DB) Alarms(ctx context.Context, f loa.AlarmFilter) ([]loa.Alarm, error) {
	var out []loa.Alarm
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAlarms).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var a loa.Alarm
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucketAlarms, k, err)
			}
			if (f.Active && !a.Active()) || (f.Kind != "" && a.Kind != f.Kind) || (f.Device != "" && a.Device != f.Device) {
				continue
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// PruneAlarms deletes alarms cleared before cutoff; active alarms stay
// however old they are. It returns how many it deleted.
func (db *DB) PruneAlarms(ctx context.Context, cutoff time.Time) (int, error) {
	return db.deleteWhere(ctx, bucketAlarms, func(k, v []byte) (bool, error) {
		var a loa.Alarm
		if err := json.Unmarshal(v, &a); err != nil {
			return false, fmt.Errorf("decode %s/%s: %w", bucketAlarms, k, err)
		}
		return !a.Active() && a.ClearedAt.Before(cutoff), nil
	})
}
