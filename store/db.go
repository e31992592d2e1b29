// Package store persists Loa's domain types in a bbolt database. Values are
// JSON-encoded domain structs keyed by id; secrets are stored only as SHA-256
// hashes. Audio and firmware files live beside the database as blobs named
// by content hash (blob.go); the database holds their metadata.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/loa-broadcast/loa"
)

// Compile-time checks that DB provides the persistence services.
var (
	_ loa.AreaService   = (*DB)(nil)
	_ loa.DeviceService = (*DB)(nil)
	_ loa.TokenService  = (*DB)(nil)
	_ loa.AuditService  = (*DB)(nil)
)

// DefaultTimeout is how long Open waits for the file lock when Options.Timeout is zero.
const DefaultTimeout = time.Second

// Options configure Open. The zero value is usable.
type Options struct {
	Timeout time.Duration    // how long to wait for the file lock; default 1s
	Now     func() time.Time // clock for CreatedAt stamps; default time.Now
	Logger  *slog.Logger     // default discards
	// Faults, when set, lets a test make the database's writes fail
	// (WriteFaults.Arm). Not for production.
	Faults *WriteFaults
}

// DB is an open Loa database. It is safe for concurrent use.
type DB struct {
	bolt     *bolt.DB
	mediaDir string
	now      func() time.Time
	log      *slog.Logger
	writeTxs atomic.Uint64 // write transactions run by update, for benchmarks
	health   writeHealth
	faults   *WriteFaults
	blobRepl atomic.Pointer[BlobReplicator] // nil: blobs stay on this node
	rep      replication
}

// Open opens or creates the database at path, creating its directory and
// the media directory beside it, and migrates the schema to the version
// this build knows. A database held by another process (or another open
// handle) fails with EUNAVAILABLE after opt.Timeout; a database written by
// a newer build fails with EUNSUPPORTED.
func Open(path string, opt Options) (*DB, error) {
	if path == "" {
		return nil, loa.Errorf(loa.EINVALID, "db path: required")
	}
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	db := &DB{now: opt.Now, log: opt.Logger}
	if db.now == nil {
		db.now = time.Now
	}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	db.mediaDir = filepath.Join(dir, "media")
	if err := os.MkdirAll(db.mediaDir, 0o750); err != nil {
		return nil, fmt.Errorf("create media directory: %w", err)
	}

	if err := checkFile(path); err != nil {
		return nil, err
	}
	bopt := &bolt.Options{Timeout: timeout}
	if opt.Faults != nil {
		// The injector swaps the descriptor for /dev/full, which can be
		// neither truncated nor mapped: the file grows by its writes and
		// the map is made big enough never to be remade.
		db.faults = opt.Faults
		bopt.OpenFile, bopt.NoGrowSync, bopt.InitialMmapSize = opt.Faults.openFile, true, 256<<20
	}
	b, err := bolt.Open(path, 0o600, bopt)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (%w)", loa.Errorf(loa.EUNAVAILABLE,
			"database %s is in use by another process (is another loa running?); "+
				"stop it or use a different database path", path), err)
	} else if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.bolt = b

	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		return migrate(tx, path, migrations, db.log)
	}); err != nil {
		_ = db.bolt.Close()
		return nil, err
	}
	db.removeBlobTemps()
	db.removeSnapshotTemps(path)
	return db, nil
}

// Close closes the database; it waits for open transactions to finish.
func (db *DB) Close() error {
	err := db.bolt.Close()
	if db.faults != nil {
		db.faults.close()
	}
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// Path returns the database file's path as given to Open.
func (db *DB) Path() string { return db.bolt.Path() }

// MediaDir returns the directory that holds the media files.
func (db *DB) MediaDir() string { return db.mediaDir }

// MediaPath returns the file a media item with content hash hash is stored
// in, or "" if hash is not a valid lowercase hex digest, so a hash can never
// name a path outside MediaDir.
func (db *DB) MediaPath(hash string) string {
	path, err := db.blobPath(MediaBlob, hash)
	if err != nil {
		return ""
	}
	return path
}

// Backup writes a consistent copy of the whole database to w and returns
// the number of bytes written. Writers are not blocked while it runs.
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// view and update run fn in a transaction after checking ctx: bbolt itself
// cannot be interrupted, so a cancelled request does not start one.
func (db *DB) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.View(fn)
}

func (db *DB) update(ctx context.Context, fn func(tx *wtx) error) error {
	return db.updateAudited(ctx, fn, false)
}

// updateAudited runs fn in a write transaction. Unless fn writes the audit
// record itself (audited), a change made for a request that carries an
// audit journal writes the journal's provisional record in the same
// transaction (see loa.AuditJournal). A write the disk refuses becomes
// ENOSPACE or EUNAVAILABLE and makes the store unhealthy until a write
// succeeds. With a replicator set, the change goes through it
// (updateReplicated).
func (db *DB) updateAudited(ctx context.Context, fn func(tx *wtx) error, audited bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.writeTxs.Add(1)
	j := loa.AuditJournalFrom(ctx)
	var provisional []byte
	run := func(tx *wtx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if j == nil || audited || !j.Wants() {
			return nil
		}
		var err error
		if provisional, err = appendAudit(tx, j.Base, db.now); err != nil {
			return err
		}
		// Pending already: writers are serial, so a concurrent change of
		// the same request sees it and writes no second record.
		j.SetPending(provisional)
		return nil
	}
	var err error
	if rep := db.replicator(); rep != nil {
		err = db.updateReplicated(ctx, rep, run)
	} else {
		err = storageError(db.bolt.Update(func(tx *bolt.Tx) error {
			return run(&wtx{Tx: tx})
		}))
		db.health.observe(err, db.now)
	}
	if err != nil && provisional != nil {
		j.SetPending(nil) // not committed
	}
	return err
}

// WriteTxs returns how many write transactions the database has run since
// Open (migrations aside): each costs an fsync, so their rate is the
// store's load.
func (db *DB) WriteTxs() uint64 { return db.writeTxs.Load() }

// get decodes the value at key in bucket into v; found is false if absent.
// Decoding copies, so nothing returned aliases bbolt's memory.
func get(tx rtx, bucket, key []byte, v any) (found bool, err error) {
	data := tx.Bucket(bucket).Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

// put encodes v as JSON and stores it at key in bucket.
// Given a bare *bolt.Tx (a migration, local on every node) it writes
// directly; store code that changes records holds a *wtx.
func put(tx rtx, bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	if w, ok := tx.(*wtx); ok {
		return w.put(bucket, key, data)
	}
	return tx.Bucket(bucket).Put(key, data)
}

// getOne reads the value at id in bucket in a transaction of its own;
// ENOTFOUND names it "what" if there is none.
func getOne[T any](ctx context.Context, db *DB, bucket []byte, what, id string) (*T, error) {
	v := new(T)
	err := db.view(ctx, func(tx *bolt.Tx) error {
		found, err := get(tx, bucket, []byte(id), v)
		if err == nil && !found {
			err = loa.Errorf(loa.ENOTFOUND, "%s %q not found", what, id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// listAll decodes every value in bucket, in key order, in a transaction of
// its own.
func listAll[T any](ctx context.Context, db *DB, bucket []byte) (out []*T, err error) {
	err = db.view(ctx, func(tx *bolt.Tx) error {
		out, err = list[T](tx, bucket)
		return err
	})
	return out, err
}

// deleteWhere deletes, in one transaction, the values of bucket that drop
// picks, and returns how many it deleted.
func (db *DB) deleteWhere(ctx context.Context, bucket []byte, drop func(k, v []byte) (bool, error)) (n int, err error) {
	update := db.update
	if localOnly(bucket, nil) {
		update = db.updateLocal
	}
	err = update(ctx, func(tx *wtx) error {
		b := tx.Bucket(bucket)
		var old [][]byte
		err := b.ForEach(func(k, v []byte) error {
			ok, err := drop(k, v)
			if ok {
				old = append(old, bytes.Clone(k))
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := tx.del(bucket, k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}

// list decodes every value in bucket, in key order.
func list[T any](tx rtx, bucket []byte) ([]*T, error) {
	var out []*T
	err := tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		t := new(T)
		if err := json.Unmarshal(v, t); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
		}
		out = append(out, t)
		return nil
	})
	return out, err
}
