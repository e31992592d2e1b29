package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// BlobReplicator makes a committed blob durable beyond this node (a
// cluster's: daemon/cluster_blobs.go). Held returns once a quorum of the
// cluster's nodes holds the blob, so a record referencing it is never
// committed while only one disk has its bytes.
type BlobReplicator interface {
	Held(ctx context.Context, kind BlobKind, hash string) error
}

// BlobFetcher is a BlobReplicator that can also fetch a blob this node's
// records name but its disk lacks (a cluster node that has just come to
// lead before its catch-up pulled it): OpenBlob asks it before failing.
type BlobFetcher interface {
	FetchBlob(ctx context.Context, kind BlobKind, hash string) error
}

// fetchTimeout bounds an on-demand fetch in OpenBlob.
const fetchTimeout = 30 * time.Second

// fetchBlob fetches a missing blob through the replicator, if it can.
func (db *DB) fetchBlob(kind BlobKind, hash string) error {
	p := db.blobRepl.Load()
	if p == nil || *p == nil {
		return errors.New("no replicator")
	}
	f, ok := (*p).(BlobFetcher)
	if !ok {
		return errors.New("the replicator cannot fetch")
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	return f.FetchBlob(ctx, kind, hash)
}

// SetBlobReplicator makes every blob commit wait for r (nil: local only).
func (db *DB) SetBlobReplicator(r BlobReplicator) {
	db.blobRepl.Store(&r)
}

// replicateBlob runs the replicator, if any, for a blob just committed.
func (db *DB) replicateBlob(kind BlobKind, hash string) error {
	p := db.blobRepl.Load()
	if p == nil || *p == nil {
		return nil
	}
	if err := (*p).Held(context.Background(), kind, hash); err != nil {
		return fmt.Errorf("%s blob %s: %w", kind, hash, err)
	}
	return nil
}

// HasBlob says whether the blob of kind with content hash h is stored here.
func (db *DB) HasBlob(kind BlobKind, h string) bool {
	path, err := db.blobPath(kind, h)
	if err != nil {
		return false
	}
	_, err = os.Lstat(path)
	return err == nil
}

// PutBlob stores r as a blob of kind and checks it has content hash want,
// for a copy pulled from another node: a wrong or truncated copy is
// dropped. It does not run the replicator.
func (db *DB) PutBlob(kind BlobKind, want string, r io.Reader) error {
	if db.HasBlob(kind, want) {
		return nil
	}
	w, err := db.NewBlob(kind)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("%s blob %s: %w", kind, want, err)
	}
	if got, _ := w.Sum(); got != want {
		return fmt.Errorf("%s blob %s: the copy hashes to %s", kind, want, got)
	}
	w.local = true
	_, _, err = w.Commit()
	return err
}
