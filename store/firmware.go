package store

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/loa-broadcast/loa"
)

// FirmwareDir returns the directory beside the database that holds
// firmware images, creating it if needed.
func (db *DB) FirmwareDir() (string, error) {
	dir := db.blobDir(FirmwareBlob)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create firmware directory: %w", err)
	}
	return dir, nil
}

// FirmwarePath returns the file an image with SHA-256 sha is stored in, or
// "" if sha is not a lowercase hex digest, so no hash names a path outside
// the firmware directory.
func (db *DB) FirmwarePath(sha string) string {
	path, err := db.blobPath(FirmwareBlob, sha)
	if err != nil {
		return ""
	}
	return path
}

// PutFirmwareImage records an image's metadata. CreatedAt is set if zero.
// ECONFLICT if the id is taken by another image or another image has the
// same content: an image is stored once.
func (db *DB) PutFirmwareImage(ctx context.Context, img *loa.FirmwareImage) error {
	if err := validKey("id", img.ID); err != nil {
		return err
	}
	if len(img.SHA256) != 64 || validHash(img.SHA256) != nil {
		return loa.Errorf(loa.EINVALID, "sha256: must be 64 lowercase hex digits")
	}
	if err := loa.ValidFirmwareVersion("version", img.Version); err != nil {
		return err
	}
	if img.Size <= 0 {
		return loa.Errorf(loa.EINVALID, "size: must be positive")
	}
	if img.Sig == "" || len(img.Name) > 200 {
		return loa.Errorf(loa.EINVALID, "sig: required; name: at most 200 bytes")
	}
	return db.update(ctx, func(tx *wtx) error {
		all, err := list[loa.FirmwareImage](tx, bucketFirmware)
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.ID != img.ID && o.SHA256 == img.SHA256 {
				return loa.Errorf(loa.ECONFLICT, "file: firmware image %q already has this content", o.ID)
			}
		}
		var old loa.FirmwareImage
		found, err := get(tx, bucketFirmware, []byte(img.ID), &old)
		if err != nil {
			return err
		}
		if found && old.SHA256 != img.SHA256 {
			return loa.Errorf(loa.ECONFLICT, "id: firmware image %q exists with other content", img.ID)
		}
		if img.CreatedAt.IsZero() {
			img.CreatedAt = db.now().UTC()
		}
		return put(tx, bucketFirmware, []byte(img.ID), img)
	})
}

// FirmwareImage returns the image with id, ENOTFOUND if there is none.
func (db *DB) FirmwareImage(ctx context.Context, id string) (*loa.FirmwareImage, error) {
	return getOne[loa.FirmwareImage](ctx, db, bucketFirmware, "firmware image", id)
}

// FirmwareImages returns every image, newest first.
func (db *DB) FirmwareImages(ctx context.Context) ([]*loa.FirmwareImage, error) {
	out, err := listAll[loa.FirmwareImage](ctx, db, bucketFirmware)
	slices.SortStableFunc(out, func(a, b *loa.FirmwareImage) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	return out, err
}

// PutRollout inserts or replaces a rollout. The engine calls it on every
// change, so a restarted controller continues where it stopped.
func (db *DB) PutRollout(ctx context.Context, r *loa.Rollout) error {
	if err := validKey("id", r.ID); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		return put(tx, bucketRollouts, []byte(r.ID), r)
	})
}

// Rollout returns the rollout with id, ENOTFOUND if there is none.
func (db *DB) Rollout(ctx context.Context, id string) (*loa.Rollout, error) {
	return getOne[loa.Rollout](ctx, db, bucketRollouts, "rollout", id)
}

// Rollouts returns every rollout, newest first.
func (db *DB) Rollouts(ctx context.Context) ([]*loa.Rollout, error) {
	out, err := listAll[loa.Rollout](ctx, db, bucketRollouts)
	slices.SortStableFunc(out, func(a, b *loa.Rollout) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	return out, err
}
