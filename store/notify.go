package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// Notifications (notify.go in the root): rules, escalations in progress
// and the log of what was sent. The buckets are made on first write, like
// drafts, so no schema step was needed.
var (
	bucketNotifyRules       = []byte("notify_rules")       // id → NotifyRule
	bucketNotifyEscalations = []byte("notify_escalations") // id → NotifyEscalation
	bucketNotifyLog         = []byte("notify_log")         // big-endian sequence → NotifyLogEntry
)

// MaxNotifyLog is how many log entries are kept; older ones are dropped.
const MaxNotifyLog = 10000

func ensureBucket(tx *wtx, name []byte) error {
	if _, err := tx.CreateBucketIfNotExists(name); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// PutNotifyRule stores r under its id.
func (db *DB) PutNotifyRule(ctx context.Context, r *loa.NotifyRule) error {
	if err := validKey("id", r.ID); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		if err := ensureBucket(tx, bucketNotifyRules); err != nil {
			return err
		}
		return put(tx, bucketNotifyRules, []byte(r.ID), r)
	})
}

// NotifyRule returns rule id, ENOTFOUND if there is none.
func (db *DB) NotifyRule(ctx context.Context, id string) (*loa.NotifyRule, error) {
	r := new(loa.NotifyRule)
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketNotifyRules) != nil {
			if found, err := get(tx, bucketNotifyRules, []byte(id), r); err != nil || found {
				return err
			}
		}
		return loa.Errorf(loa.ENOTFOUND, "rule %q not found", id)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// NotifyRules returns every rule, by id.
func (db *DB) NotifyRules(ctx context.Context) ([]*loa.NotifyRule, error) {
	var out []*loa.NotifyRule
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		if tx.Bucket(bucketNotifyRules) == nil {
			return nil
		}
		out, err = list[loa.NotifyRule](tx, bucketNotifyRules)
		return err
	})
	return out, err
}

// DeleteNotifyRule removes rule id; ENOTFOUND if there is none. Its
// escalations end at the notifier's next round.
func (db *DB) DeleteNotifyRule(ctx context.Context, id string) error {
	return db.update(ctx, func(tx *wtx) error {
		b := tx.Bucket(bucketNotifyRules)
		if b == nil || b.Get([]byte(id)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "rule %q not found", id)
		}
		return tx.del(bucketNotifyRules, []byte(id))
	})
}

// NotifyEscalations returns the escalations in progress, by id.
func (db *DB) NotifyEscalations(ctx context.Context) ([]*loa.NotifyEscalation, error) {
	var out []*loa.NotifyEscalation
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		if tx.Bucket(bucketNotifyEscalations) == nil {
			return nil
		}
		out, err = list[loa.NotifyEscalation](tx, bucketNotifyEscalations)
		return err
	})
	return out, err
}

// NotifyEscalation returns escalation id, ENOTFOUND if it ended or never was.
func (db *DB) NotifyEscalation(ctx context.Context, id string) (*loa.NotifyEscalation, error) {
	e := new(loa.NotifyEscalation)
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketNotifyEscalations) != nil {
			if found, err := get(tx, bucketNotifyEscalations, []byte(id), e); err != nil || found {
				return err
			}
		}
		return loa.Errorf(loa.ENOTFOUND, "escalation %q not found", id)
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// StartNotifyEscalation stores e unless one with its id exists; created
// says which.
func (db *DB) StartNotifyEscalation(ctx context.Context, e *loa.NotifyEscalation) (created bool, err error) {
	if err := validKey("id", e.ID); err != nil {
		return false, err
	}
	err = db.update(ctx, func(tx *wtx) error {
		if err := ensureBucket(tx, bucketNotifyEscalations); err != nil {
			return err
		}
		if tx.Bucket(bucketNotifyEscalations).Get([]byte(e.ID)) != nil {
			return nil
		}
		created = true
		return put(tx, bucketNotifyEscalations, []byte(e.ID), e)
	})
	return created, err
}

// ClaimNotifyStep moves escalation id from step to step+1 at `at`, before
// the step is sent: ok is false (and nothing changes) when the escalation
// ended or is past step already, so no step is ever sent twice, even
// across a restart between the claim and the send.
func (db *DB) ClaimNotifyStep(ctx context.Context, id string, step int, at time.Time) (ok bool, err error) {
	err = db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketNotifyEscalations) == nil {
			return nil
		}
		e := new(loa.NotifyEscalation)
		if found, err := get(tx, bucketNotifyEscalations, []byte(id), e); err != nil || !found {
			return err
		}
		if e.Next != step {
			return nil
		}
		e.Next, e.LastAt = step+1, at
		ok = true
		return put(tx, bucketNotifyEscalations, []byte(id), e)
	})
	return ok, err
}

// EndNotifyEscalation deletes escalation id; found says whether it was there.
func (db *DB) EndNotifyEscalation(ctx context.Context, id string) (found bool, err error) {
	err = db.update(ctx, func(tx *wtx) error {
		b := tx.Bucket(bucketNotifyEscalations)
		if b == nil || b.Get([]byte(id)) == nil {
			return nil
		}
		found = true
		return tx.del(bucketNotifyEscalations, []byte(id))
	})
	return found, err
}

// AppendNotifyLog adds e to the log (its ID is set from the sequence),
// dropping the oldest beyond MaxNotifyLog.
func (db *DB) AppendNotifyLog(ctx context.Context, e *loa.NotifyLogEntry) error {
	return db.update(ctx, func(tx *wtx) error {
		if err := ensureBucket(tx, bucketNotifyLog); err != nil {
			return err
		}
		b := tx.Bucket(bucketNotifyLog)
		seq, err := tx.nextSeq(bucketNotifyLog)
		if err != nil {
			return err
		}
		e.ID = strconv.FormatUint(seq, 10)
		if err := put(tx, bucketNotifyLog, binary.BigEndian.AppendUint64(nil, seq), e); err != nil {
			return err
		}
		if seq > MaxNotifyLog {
			c := b.Cursor()
			limit := binary.BigEndian.AppendUint64(nil, seq-MaxNotifyLog)
			for k, _ := c.First(); k != nil && bytes.Compare(k, limit) <= 0; k, _ = c.First() {
				if err := tx.del(bucketNotifyLog, k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// NotifyLog returns up to limit entries keep accepts, newest first.
func (db *DB) NotifyLog(ctx context.Context, limit int, keep func(*loa.NotifyLogEntry) bool) ([]loa.NotifyLogEntry, error) {
	var out []loa.NotifyLogEntry
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNotifyLog)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var e loa.NotifyLogEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s/%x: %w", bucketNotifyLog, k, err)
			}
			if keep == nil || keep(&e) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}
