package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// A Replicator makes a store's changes go through a replicated log (the
// cluster package, on Raft). It is set on every node of a cluster; a
// single node has none and writes as before.
type Replicator interface {
	// Writable returns nil if this node may propose changes now (it
	// leads), else an EUNAVAILABLE error naming the leader.
	Writable() error
	// Replicate proposes the encoded write set ws and returns once it is
	// committed and applied to this node's store (DB.ApplyWriteSet), or
	// fails. If ctx ends first the change may still commit later.
	Replicate(ctx context.Context, ws []byte) error
}

type replication struct {
	r  atomic.Pointer[Replicator]
	mu sync.Mutex // serialises a leader's transaction with its apply
}

// SetReplicator makes every later change of the store go through r (nil:
// write locally again). The cluster package calls it.
func (db *DB) SetReplicator(r Replicator) {
	if r == nil {
		db.rep.r.Store(nil)
		return
	}
	db.rep.r.Store(&r)
}

func (db *DB) replicator() Replicator {
	if p := db.rep.r.Load(); p != nil {
		return *p
	}
	return nil
}

// localOnly tells whether a write to bucket/key stays on this node rather
// than going through the log. High-rate state that every node rebuilds
// from the devices themselves stays local, as issue 15 asks:
//   - device_states: the presence tracker flushes every receiver's live
//     state every second or two; a new leader relearns it from the
//     devices' own reports (retained MQTT state, heartbeats);
//   - health_hourly: telemetry aggregates, written as samples arrive;
//     each node aggregates what it receives and they are advisory;
//   - meta's schema version (every node migrates itself on open) and its
//     write probe (a check of this node's own disk).
//
// Delivery reports are replicated: their writes are already batched (a
// few seconds apart) and they must survive a failover.
func localOnly(bucket, key []byte) bool {
	switch string(bucket) {
	case string(bucketDeviceStates), string(bucketHealthHourly):
		return true
	case string(bucketMeta):
		return bytes.Equal(key, keySchemaVersion) || bytes.Equal(key, keyWriteProbe)
	}
	return false
}

var (
	keyWriteProbe = []byte("write-probe")
	// keyApplied is the index of the last log entry applied (meta bucket),
	// written in the entry's own transaction.
	keyApplied = []byte("raft_applied")
)

// updateLocal runs fn, which writes only local-only buckets and keys, in a
// write transaction of this node's own: on a follower too, and on a
// leader without waiting for its proposals. A write to a replicated bucket
// fails (a bug: it would fork the node from the cluster).
func (db *DB) updateLocal(ctx context.Context, fn func(tx *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.writeTxs.Add(1)
	err := storageError(db.bolt.Update(func(tx *bolt.Tx) error {
		return fn(&wtx{Tx: tx, refuse: errNotLocal})
	}))
	db.health.observe(err, db.now)
	return err
}

var errNotLocal = errors.New("store: a local-only write touched a replicated bucket")

// errProposed rolls back a leader's transaction whose write set is then
// proposed: the store changes when the entry is applied.
var errProposed = errors.New("store: write set proposed")

// updateReplicated runs fn recording its writes. On the leader, under a
// mutex, the transaction is rolled back and its write set proposed; the
// call returns once it is applied here, so the next writer sees it and
// no update is lost. A transaction that wrote only local-only buckets
// commits here at once. On a follower, fn's first write to a replicated
// bucket fails with the replicator's error (naming the leader) and
// nothing is changed.
func (db *DB) updateReplicated(ctx context.Context, rep Replicator, fn func(tx *wtx) error) error {
	refuse := rep.Writable()
	if refuse == nil {
		db.rep.mu.Lock()
		defer db.rep.mu.Unlock()
	}
	ws, local := new(writeSet), new(writeSet)
	err := storageError(db.bolt.Update(func(tx *bolt.Tx) error {
		if err := fn(&wtx{Tx: tx, ws: ws, local: local, refuse: refuse}); err != nil {
			return err
		}
		if ws.n == 0 {
			return nil // local-only or nothing: commit here
		}
		return errProposed
	}))
	if !errors.Is(err, errProposed) {
		db.health.observe(err, db.now)
		return err
	}
	if err := rep.Replicate(ctx, ws.bytes()); err != nil {
		return err
	}
	if local.n == 0 {
		return nil
	}
	// The local-only part of a mixed transaction: after the replicated
	// part, in a transaction of its own.
	err = db.ApplyWriteSet(0, local.bytes())
	db.health.observe(err, db.now)
	return err
}

// ApplyWriteSet applies one encoded write set in one transaction. index
// is the log index of its entry: it is recorded in the same transaction,
// and an entry at or below the recorded index is skipped, so replaying a
// log after a crash applies nothing twice. Index 0 applies without
// recording. A malformed write set is refused (EINVALID) and nothing of
// it is applied.
func (db *DB) ApplyWriteSet(index uint64, ws []byte) (err error) {
	ops, err := decodeWriteSet(ws)
	if err != nil {
		return err
	}
	defer func() { db.health.observe(err, db.now) }()
	return storageError(db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if index != 0 && appliedIndex(meta) >= index {
			return nil
		}
		if err := applyOps(tx, ops); err != nil {
			return err
		}
		if index == 0 {
			return nil
		}
		return meta.Put(keyApplied, binary.BigEndian.AppendUint64(nil, index))
	}))
}

// SetAppliedIndex records index as applied without changing anything
// else, for log entries that carry no write set.
func (db *DB) SetAppliedIndex(index uint64) error {
	return storageError(db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if appliedIndex(meta) >= index {
			return nil
		}
		return meta.Put(keyApplied, binary.BigEndian.AppendUint64(nil, index))
	}))
}

// AppliedIndex returns the index of the last log entry applied, 0 if none.
func (db *DB) AppliedIndex() (uint64, error) {
	var i uint64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		i = appliedIndex(tx.Bucket(bucketMeta))
		return nil
	})
	return i, err
}

func appliedIndex(meta *bolt.Bucket) uint64 {
	if v := meta.Get(keyApplied); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// snapshotTempPrefix names a snapshot being restored beside the db; Open
// removes any a crash left.
const snapshotTempPrefix = ".snapshot-"

func (db *DB) removeSnapshotTemps(path string) {
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), snapshotTempPrefix+"*"))
	for _, f := range leftovers {
		if err := os.Remove(f); err != nil {
			db.log.Warn("cannot remove a leftover snapshot", "file", f, "err", err)
		}
	}
}

// RestoreSnapshot replaces the replicated contents of the store with those
// of snap, a whole database as Backup writes it, in one transaction:
// readers see the old or the new state, never a mix. Local-only buckets
// and keys keep this node's values.
func (db *DB) RestoreSnapshot(snap io.Reader) (err error) {
	f, err := os.CreateTemp(filepath.Dir(db.Path()), snapshotTempPrefix+"*")
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := io.Copy(f, snap); err != nil {
		_ = f.Close()
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	src, err := bolt.Open(f.Name(), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("restore snapshot: open: %w", err)
	}
	defer func() { _ = src.Close() }()
	err = src.View(func(stx *bolt.Tx) error {
		return db.bolt.Update(func(tx *bolt.Tx) error { return restoreBuckets(tx, stx) })
	})
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", storageError(err))
	}
	return nil
}

// restoreBuckets makes tx's replicated buckets and keys those of src.
func restoreBuckets(tx, src *bolt.Tx) error {
	// Drop what the snapshot does not have or will replace.
	var drop [][]byte
	err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if !bytes.Equal(name, bucketMeta) && !localOnly(name, nil) {
			drop = append(drop, bytes.Clone(name))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range drop {
		if err := tx.DeleteBucket(name); err != nil {
			return fmt.Errorf("drop bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	var old [][]byte
	if err := meta.ForEach(func(k, _ []byte) error {
		if !localOnly(bucketMeta, k) {
			old = append(old, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range old {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	return src.ForEach(func(name []byte, sb *bolt.Bucket) error {
		if localOnly(name, nil) {
			return nil
		}
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
		if err := b.SetSequence(sb.Sequence()); err != nil {
			return err
		}
		return sb.ForEach(func(k, v []byte) error {
			if v == nil {
				return fmt.Errorf("bucket %s: nested bucket %q not supported", name, k)
			}
			if localOnly(name, k) {
				return nil
			}
			return b.Put(k, v)
		})
	})
}

// EachRecord calls fn for every replicated record of the store in order,
// to compare nodes: for each bucket first with a nil key and the bucket's
// sequence as 8 big-endian bytes, then with each key and value. Local-only
// buckets and keys and the applied index are left out. fn must not keep
// the slices.
func (db *DB) EachRecord(ctx context.Context, fn func(bucket, key, value []byte) error) error {
	return db.view(ctx, func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if localOnly(name, nil) {
				return nil
			}
			if err := fn(name, nil, binary.BigEndian.AppendUint64(nil, b.Sequence())); err != nil {
				return err
			}
			return b.ForEach(func(k, v []byte) error {
				if localOnly(name, k) || (bytes.Equal(name, bucketMeta) && bytes.Equal(k, keyApplied)) {
					return nil
				}
				return fn(name, k, v)
			})
		})
	})
}

// NotLeaderError is the error a follower gives for a change: it names
// the leader the change should go to.
func NotLeaderError(leaderID, leaderAddr string) error {
	if leaderID == "" {
		return loa.Errorf(loa.EUNAVAILABLE,
			"this node is not the cluster's leader and no leader is known (no quorum?): the change was not made; retry shortly")
	}
	return loa.Errorf(loa.EUNAVAILABLE,
		"this node is not the cluster's leader: send changes to the leader, node %s at %s; the change was not made",
		leaderID, leaderAddr)
}

// SeedWriteSet returns a write set that recreates every replicated record
// of the store (buckets, sequences, keys), or nil if it holds none: the
// first entry of a cluster bootstrapped from a station that already has
// records, so that nodes replaying the log from its start get them too.
func (db *DB) SeedWriteSet(ctx context.Context) ([]byte, error) {
	ws := new(writeSet)
	records := 0
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if localOnly(name, nil) {
				return nil
			}
			ws.op(opCreateBucket, name, nil, nil)
			if s := b.Sequence(); s != 0 {
				ws.seq(name, s)
			}
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return fmt.Errorf("seed: bucket %s: nested bucket %q not supported", name, k)
				}
				if localOnly(name, k) || (bytes.Equal(name, bucketMeta) && bytes.Equal(k, keyApplied)) {
					return nil
				}
				records++
				ws.op(opPut, name, k, v)
				return nil
			})
		})
	})
	if err != nil || records == 0 {
		return nil, err
	}
	return ws.bytes(), nil
}
