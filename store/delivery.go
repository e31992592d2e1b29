package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// bucketDeliveries holds sessions' delivery reports: session id ‖ 0 ‖
// device id → ReceiverDelivery, one record per session and receiver. It is
// made on its first write, so older databases need no migration.
var bucketDeliveries = []byte("deliveries")

func deliveryKey(session, device string) ([]byte, error) {
	if err := validKey("session", session); err != nil {
		return nil, err
	}
	if device == "" || strings.ContainsRune(device, 0) || strings.ContainsRune(session, 0) {
		return nil, loa.Errorf(loa.EINVALID, "delivery: device %q: required, without NUL", device)
	}
	return []byte(session + "\x00" + device), nil
}

// PutDeliveries writes receivers' delivery lines of sessions, every line
// in one transaction (the report's writes are batched).
func (db *DB) PutDeliveries(ctx context.Context, lines map[string][]loa.ReceiverDelivery) error {
	type rec struct {
		key []byte
		d   *loa.ReceiverDelivery
	}
	var recs []rec
	for sess, ds := range lines {
		for i := range ds {
			k, err := deliveryKey(sess, ds[i].Device)
			if err != nil {
				return err
			}
			recs = append(recs, rec{k, &ds[i]})
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return db.update(ctx, func(tx *wtx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketDeliveries); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketDeliveries, err)
		}
		for _, r := range recs {
			if err := put(tx, bucketDeliveries, r.key, r.d); err != nil {
				return err
			}
		}
		return nil
	})
}

// Deliveries returns session's delivery lines, sorted by device; none if
// none were written.
func (db *DB) Deliveries(ctx context.Context, session string) ([]loa.ReceiverDelivery, error) {
	if err := validKey("session", session); err != nil {
		return nil, err
	}
	var out []loa.ReceiverDelivery
	prefix := []byte(session + "\x00")
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
			var d loa.ReceiverDelivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode %s/%q: %w", bucketDeliveries, k, err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}
