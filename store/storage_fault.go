package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/loa-broadcast/loa"
)

// errStorageFault marks the errors storageError classified: the disk
// refused a write.
var errStorageFault = errors.New("storage fault")

// storageError turns a failed write to the disk into the domain error a
// client can act on: ENOSPC is ENOSPACE (507), EIO and other device errors
// EUNAVAILABLE (503); both say the change was not saved. Other errors are
// returned as they are. bbolt formats some errors with %s (growing the
// file), so their text is matched too.
func storageError(err error) error {
	if err == nil || loa.ErrorCode(err) != loa.EINTERNAL {
		return err
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT),
		strings.Contains(err.Error(), syscall.ENOSPC.Error()):
		return fmt.Errorf("%w (%w: %w)", loa.Errorf(loa.ENOSPACE,
			"the station's disk is full: the change was not saved; free space on the data directory's filesystem"), errStorageFault, err)
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.EROFS),
		strings.Contains(err.Error(), syscall.EIO.Error()):
		return fmt.Errorf("%w (%w: %w)", loa.Errorf(loa.EUNAVAILABLE,
			"the station's storage failed to write (I/O error): the change was not saved"), errStorageFault, err)
	}
	return err
}

// writeHealth tracks loa.StorageHealth.
type writeHealth struct {
	mu       sync.Mutex
	err      string
	failedAt time.Time
}

// observe records the outcome of a write: a storage fault makes the store
// unhealthy, a success healthy again; other errors (a refused change) say
// nothing about the disk.
func (h *writeHealth) observe(err error, now func() time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.err, h.failedAt = "", time.Time{}
	case errors.Is(err, errStorageFault):
		h.err, h.failedAt = loa.ErrorMessage(err), now().UTC()
	}
}

// StorageHealth reports whether the last write that reached the disk
// succeeded.
func (db *DB) StorageHealth() loa.StorageHealth {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	return loa.StorageHealth{OK: db.health.err == "", Error: db.health.err, FailedAt: db.health.failedAt}
}

// blobFault classifies a failed blob write like a failed transaction and
// makes the store unhealthy if the disk refused it; a blob that is written
// says nothing until its record is.
func (db *DB) blobFault(err error) error {
	err = storageError(err)
	db.health.observe(err, db.now)
	return err
}

// ProbeWrite commits a small write, so a store made unhealthy by a
// failed write finds out, without waiting for a client's change, that
// the disk takes writes again.
func (db *DB) ProbeWrite(ctx context.Context) error {
	return db.updateLocal(ctx, func(tx *wtx) error {
		return tx.put(bucketMeta, []byte("write-probe"), []byte(db.now().UTC().Format(time.RFC3339Nano)))
	})
}
