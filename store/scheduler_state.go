package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// The scheduler's restart safety: how far it has handled fire times, and
// which occurrences it has started, so a restart neither replays nor
// double-starts a programme.

var keySchedulerHandled = []byte("handled")

// StartedRetention is how long MarkStarted remembers a key, measured from
// the time it was recorded to the time passed to a later MarkStarted.
const StartedRetention = 30 * 24 * time.Hour

// startedPruneBatch bounds the keys one MarkStarted call prunes, so a
// backlog (after a long shutdown) is cleared over several calls.
const startedPruneBatch = 1000

// MaxStartedKey is the longest key MarkStarted accepts, in bytes.
const MaxStartedKey = 1024

// SchedulerHandled returns the time saved by PutSchedulerHandled, in UTC,
// or the zero time if none was ever saved.
func (db *DB) SchedulerHandled(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := db.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSchedulerState).Get(keySchedulerHandled)
		if v == nil {
			return nil
		}
		if err := t.UnmarshalText(v); err != nil { // parsing copies
			return fmt.Errorf("decode %s/%s: %w", bucketSchedulerState, keySchedulerHandled, err)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// PutSchedulerHandled saves t (to the nanosecond) as the time up to which
// the scheduler has handled its fire times.
func (db *DB) PutSchedulerHandled(ctx context.Context, t time.Time) error {
	text, err := t.UTC().MarshalText()
	if err != nil {
		return loa.Errorf(loa.EINVALID, "handled time: %v", err)
	}
	return db.update(ctx, func(tx *wtx) error {
		return tx.put(bucketSchedulerState, keySchedulerHandled, text)
	})
}

// MarkStarted records the occurrence key as started at at, in one
// transaction: already is false if this call recorded it, true (and the
// key's record left as it was) if it had been recorded before. bbolt runs
// one writer at a time, so of concurrent calls for one key exactly one
// returns false; and since the record is committed before MarkStarted
// returns, a caller that starts the occurrence only after already=false
// never starts it twice, even across a crash.
//
// A zero at means now. Each call also forgets up to 1000 keys recorded
// more than StartedRetention before at, through a time-ordered index, so
// the cost does not grow with the history.
func (db *DB) MarkStarted(ctx context.Context, key string, at time.Time) (already bool, err error) {
	if key == "" || len(key) > MaxStartedKey {
		return false, loa.Errorf(loa.EINVALID, "occurrence key: required, at most %d bytes", MaxStartedKey)
	}
	if at.IsZero() {
		at = db.now()
	}
	err = db.update(ctx, func(tx *wtx) error {
		started := tx.Bucket(bucketStarted)
		if started.Get([]byte(key)) != nil {
			already = true
		} else {
			stamp := startedStamp(at)
			if err := tx.put(bucketStarted, []byte(key), stamp); err != nil {
				return err
			}
			index := append(append(make([]byte, 0, len(stamp)+len(key)), stamp...), key...)
			if err := tx.put(bucketStartedByTime, index, nil); err != nil {
				return err
			}
		}
		return pruneStarted(tx, startedStamp(at.Add(-StartedRetention)), startedPruneBatch)
	})
	if err != nil {
		return false, err
	}
	return already, nil
}

// startedStamp is t as 8 big-endian bytes of Unix nanoseconds, clamped to
// [0, MaxInt64], so byte order is time order.
func startedStamp(t time.Time) []byte {
	ns := t.UnixNano()
	if ns < 0 || t.Year() < 1970 {
		ns = 0
	} else if t.Year() > 2262 {
		ns = 1<<63 - 1
	}
	return binary.BigEndian.AppendUint64(nil, uint64(ns))
}

// pruneStarted deletes at most max keys recorded before cutoff.
func pruneStarted(tx *wtx, cutoff []byte, max int) error {
	byTime := tx.Bucket(bucketStartedByTime)
	var old [][]byte
	c := byTime.Cursor()
	for k, _ := c.First(); k != nil && len(old) < max && len(k) >= 8 && bytes.Compare(k[:8], cutoff) < 0; k, _ = c.Next() {
		old = append(old, bytes.Clone(k)) // deleting under a live cursor skips keys; collect first
	}
	started := tx.Bucket(bucketStarted)
	for _, k := range old {
		if err := tx.del(bucketStartedByTime, k); err != nil {
			return err
		}
		// Delete the key only if this index entry is its record.
		if v := started.Get(k[8:]); v != nil && bytes.Equal(v, k[:8]) {
			if err := tx.del(bucketStarted, k[8:]); err != nil {
				return err
			}
		}
	}
	return nil
}
