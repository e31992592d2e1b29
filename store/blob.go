package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/loa-broadcast/loa"
)

// BlobKind names a family of content-addressed files kept beside the
// database: one directory each, files named by the SHA-256 of their bytes.
type BlobKind string

const (
	MediaBlob    BlobKind = "media"    // Ogg Opus, media/<sha256>.opus
	FirmwareBlob BlobKind = "firmware" // receiver images, firmware/<sha256>.img
)

// blobTempPrefix names a blob still being written. Nothing else in a blob
// directory starts with it, so Open removes whatever a crash left.
const blobTempPrefix = ".upload-"

var blobKinds = []BlobKind{MediaBlob, FirmwareBlob}

func (k BlobKind) ext() (string, error) {
	switch k {
	case MediaBlob:
		return ".opus", nil
	case FirmwareBlob:
		return ".img", nil
	}
	return "", loa.Errorf(loa.EINVALID, "blob kind %q: unknown", string(k))
}

func (db *DB) blobDir(kind BlobKind) string {
	return filepath.Join(filepath.Dir(db.Path()), string(kind))
}

// blobPath returns the file of the blob with content hash h. Any lowercase
// hex digest is a safe file name; firmware images are SHA-256 only.
func (db *DB) blobPath(kind BlobKind, h string) (string, error) {
	ext, err := kind.ext()
	if err != nil {
		return "", err
	}
	if err := validHash(h); err != nil {
		return "", err
	}
	if kind == FirmwareBlob && len(h) != 2*sha256.Size {
		return "", loa.Errorf(loa.EINVALID, "hash: a firmware image is named by its SHA-256, 64 hex digits")
	}
	return filepath.Join(db.blobDir(kind), h+ext), nil
}

// BlobWriter receives a blob's bytes into a temp file beside its final
// place, hashing them as they come. Commit moves the file to its content
// name; Abort (or a failed write) removes it. Not safe for concurrent use.
type BlobWriter struct {
	db   *DB
	kind BlobKind
	f    *os.File
	h    hash.Hash
	n    int64
	err  error // why the writer is finished, once it is
	// local: a copy pulled from another node, not replicated again.
	local bool
}

var errBlobFinished = errors.New("blob already committed or aborted")

// NewBlob starts a blob of kind. The caller must Commit or Abort it;
// `defer w.Abort()` is safe, as Abort after Commit does nothing.
func (db *DB) NewBlob(kind BlobKind) (*BlobWriter, error) {
	if _, err := kind.ext(); err != nil {
		return nil, err
	}
	dir := db.blobDir(kind)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%s blob: %w", kind, err)
	}
	f, err := os.CreateTemp(dir, blobTempPrefix+"*")
	if err != nil {
		return nil, db.blobFault(fmt.Errorf("%s blob: %w", kind, err))
	}
	return &BlobWriter{db: db, kind: kind, f: f, h: sha256.New()}, nil
}

// Write stores p and adds it to the hash. A failed write removes the temp
// file at once; Commit then returns the same error.
func (w *BlobWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		w.discard(w.db.blobFault(fmt.Errorf("%s blob: %w", w.kind, err)))
		return n, w.err
	}
	return n, nil
}

// Sum returns the content hash (lowercase hex SHA-256) and size of what
// was written so far: enough to check a signature, or look the content up,
// before deciding to Commit.
func (w *BlobWriter) Sum() (hash string, size int64) {
	return hex.EncodeToString(w.h.Sum(nil)), w.n
}

// Commit makes the blob durable under its content hash and returns the
// hash and size: the file is synced, renamed, and its directory synced. If
// a blob with the same hash exists, that file is kept and the new copy
// dropped. On any error nothing of this blob is left behind.
func (w *BlobWriter) Commit() (hash string, size int64, err error) {
	if w.err != nil {
		return "", 0, w.err
	}
	hash, size = w.Sum()
	path, err := w.db.blobPath(w.kind, hash)
	if err != nil {
		w.discard(err)
		return "", 0, err
	}
	if err := w.f.Sync(); err != nil {
		w.discard(w.db.blobFault(fmt.Errorf("%s blob: %w", w.kind, err)))
		return "", 0, w.err
	}
	if err := w.f.Close(); err != nil {
		w.discard(w.db.blobFault(fmt.Errorf("%s blob: %w", w.kind, err)))
		return "", 0, w.err
	}
	tmp := w.f.Name()
	renamed := false
	if _, err := os.Lstat(path); err == nil {
		os.Remove(tmp) // the same content is already stored
	} else if err := os.Rename(tmp, path); err != nil {
		w.discard(fmt.Errorf("%s blob: %w", w.kind, err))
		return "", 0, w.err
	} else {
		renamed = true
	}
	w.err = errBlobFinished
	// The rename is durable only once the directory entry is.
	if err := syncDir(filepath.Dir(path)); err != nil {
		if renamed {
			os.Remove(path)
		}
		return "", 0, fmt.Errorf("%s blob %s: %w", w.kind, hash, err)
	}
	if !w.local {
		// Kept here even if the cluster cannot take it: the same bytes
		// uploaded again are then only sent to the other nodes.
		if err := w.db.replicateBlob(w.kind, hash); err != nil {
			return "", 0, err
		}
	}
	return hash, size, nil
}

// Abort drops the blob and removes its temp file. It does nothing after
// Commit or a previous Abort.
func (w *BlobWriter) Abort() {
	if w.err == nil {
		w.discard(errBlobFinished)
	}
}

// discard closes and removes the temp file and finishes the writer with err.
func (w *BlobWriter) discard(err error) {
	w.err = err
	w.f.Close() // may already be closed
	if rerr := os.Remove(w.f.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		w.db.log.Warn("cannot remove a blob's temp file; the next start removes it", "file", w.f.Name(), "err", rerr)
	}
}

// OpenBlob opens the stored blob of kind with content hash h for reading:
// ENOTFOUND if there is none, EINVALID for a malformed hash.
func (db *DB) OpenBlob(kind BlobKind, h string) (io.ReadSeekCloser, error) {
	path, err := db.blobPath(kind, h)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if ferr := db.fetchBlob(kind, h); ferr == nil {
			f, err = os.Open(path)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%w)", loa.Errorf(loa.ENOTFOUND, "%s blob %s: no such file", kind, h), err)
	} else if err != nil {
		return nil, fmt.Errorf("%s blob %s: %w", kind, h, err)
	}
	return f, nil
}

// RemoveBlob deletes the blob of kind with content hash h, for a caller
// whose record of it could not be written. A missing blob is no error.
func (db *DB) RemoveBlob(kind BlobKind, h string) error {
	path, err := db.blobPath(kind, h)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s blob %s: %w", kind, h, err)
	}
	return nil
}

// removeBlobTemps deletes the temp files of uploads a crash interrupted.
// Open calls it while holding the database's lock, so no other process is
// writing blobs. A failure is logged: it costs disk space, not correctness.
func (db *DB) removeBlobTemps() {
	for _, kind := range blobKinds {
		dir := db.blobDir(kind)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			db.log.Warn("cannot list a blob directory for leftover uploads", "dir", dir, "err", err)
			continue
		}
		removed := 0
		for _, e := range entries {
			if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), blobTempPrefix) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				db.log.Warn("cannot remove a leftover upload", "file", filepath.Join(dir, e.Name()), "err", err)
				continue
			}
			removed++
		}
		if removed > 0 {
			db.log.Info("removed the temp files of interrupted uploads", "dir", dir, "count", removed)
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
