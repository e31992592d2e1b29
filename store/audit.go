package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// Audit appends r to the audit log, stamping At if it is zero. Keys are a
// big-endian sequence, so cursor order is insertion order. If ctx carries
// an audit journal whose provisional record (written with the request's
// change) is pending, r replaces it instead.
func (db *DB) Audit(ctx context.Context, r loa.AuditRecord) error {
	if r.Action == "" {
		return loa.Errorf(loa.EINVALID, "action: required")
	}
	if r.At.IsZero() {
		r.At = db.now().UTC()
	}
	j := loa.AuditJournalFrom(ctx)
	var key []byte
	if j != nil {
		key = j.Pending()
	}
	err := db.updateAudited(ctx, func(tx *wtx) error {
		if key != nil {
			return put(tx, bucketAudit, key, &r)
		}
		_, err := appendAudit(tx, r, db.now)
		return err
	}, true)
	if err == nil && key != nil {
		j.SetPending(nil)
	}
	return err
}

// appendAudit writes r under the next sequence key and returns the key.
func appendAudit(tx *wtx, r loa.AuditRecord, now func() time.Time) ([]byte, error) {
	if r.At.IsZero() {
		r.At = now().UTC()
	}
	seq, err := tx.nextSeq(bucketAudit)
	if err != nil {
		return nil, err
	}
	key := binary.BigEndian.AppendUint64(nil, seq)
	return key, put(tx, bucketAudit, key, &r)
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
