package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/loa-broadcast/loa"
	bolt "go.etcd.io/bbolt"
)

// Audit appends r to the audit log, stamping At if it is zero. Keys are a
// big-endian sequence, so cursor order is insertion order.
func (db *DB) Audit(ctx context.Context, r loa.AuditRecord) error {
	if r.Action == "" {
		return loa.Errorf(loa.EINVALID, "action: required")
	}
	if r.At.IsZero() {
		r.At = db.now().UTC()
	}
	return db.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return put(tx, bucketAudit, binary.BigEndian.AppendUint64(nil, seq), &r)
	})
}

// AuditLog returns up to limit records, newest first; limit <= 0 means all.
func (db *DB) AuditLog(ctx context.Context, limit int) ([]loa.AuditRecord, error) {
	return db.AuditLogWhere(ctx, limit, nil)
}

// AuditLogWhere returns up to limit records keep accepts (nil: all),
// newest first; limit <= 0 means all. keep runs inside the read
// transaction, so it must not use the store.
func (db *DB) AuditLogWhere(ctx context.Context, limit int, keep func(*loa.AuditRecord) bool) ([]loa.AuditRecord, error) {
	var out []loa.AuditRecord
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var r loa.AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode %s/%x: %w", bucketAudit, k, err)
			}
			if keep != nil && !keep(&r) {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
