package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// Play log limits.
const (
	DefaultPlayLogLimit = 1000
	MaxPlayLogLimit     = 10000
)

// AppendPlayLog appends entries to the play log in one transaction,
// stamping At (now, UTC) on those whose At is zero. Every entry needs an
// Event (EINVALID otherwise, and nothing is written). Keys are a
// big-endian sequence, so cursor order is append order.
func (db *DB) AppendPlayLog(ctx context.Context, entries ...loa.PlayLogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i, e := range entries {
		if e.Event == "" {
			return loa.Errorf(loa.EINVALID, "entries[%d].event: required", i)
		}
	}
	now := db.now().UTC()
	return db.update(ctx, func(tx *wtx) error {
		for _, e := range entries { // e is a copy: the caller's slice is not stamped
			if e.At.IsZero() {
				e.At = now
			}
			seq, err := tx.nextSeq(bucketPlayLog)
			if err != nil {
				return err
			}
			if err := put(tx, bucketPlayLog, binary.BigEndian.AppendUint64(nil, seq), &e); err != nil {
				return err
			}
		}
		return nil
	})
}

// PlayLog returns play log entries matching f, newest (last appended)
// first, at most f.Limit (default 1000, at most 10000):
//   - From, To: From <= At < To, each bound ignored if zero; To before From
//     is EINVALID.
//   - Device: the entry's Devices include it.
//   - Event: the entry's Event is it.
//   - Offset: that many matching entries (newest first) are skipped.
//   - Area: one of the entry's Areas lies within f.Area (tree.Within), or
//     one of its Devices does, by its area in deviceArea (device id → area id).
//
// The log is scanned backwards from its end until Limit entries match, so
// a filter that matches few entries reads the whole log.
func (db *DB) PlayLog(ctx context.Context, f loa.PlayLogFilter, tree loa.AreaTree, deviceArea map[string]string) ([]loa.PlayLogEntry, error) {
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return nil, loa.Errorf(loa.EINVALID, "to: before from")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultPlayLogLimit
	}
	limit = min(limit, MaxPlayLogLimit)

	var out []loa.PlayLogEntry
	skip := max(0, f.Offset)
	err := db.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPlayLog).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var e loa.PlayLogEntry // decoding copies out of bbolt's memory
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode %s/%x: %w", bucketPlayLog, k, err)
			}
			if !playLogMatches(&e, &f, tree, deviceArea) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func playLogMatches(e *loa.PlayLogEntry, f *loa.PlayLogFilter, tree loa.AreaTree, deviceArea map[string]string) bool {
	if !f.From.IsZero() && e.At.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && !e.At.Before(f.To) {
		return false
	}
	if f.Device != "" && !slices.Contains(e.Devices, f.Device) {
		return false
	}
	if f.Event != "" && e.Event != f.Event {
		return false
	}
	if f.Area == "" {
		return true
	}
	for _, a := range e.Areas {
		if tree.Within(a, f.Area) {
			return true
		}
	}
	for _, d := range e.Devices {
		if a, ok := deviceArea[d]; ok && tree.Within(a, f.Area) {
			return true
		}
	}
	return false
}
