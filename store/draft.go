package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// bucketDrafts holds operators' changes waiting for approval: id → Draft.
// It is made on first write, so a station that never held a change has
// none (and no schema step was needed).
var bucketDrafts = []byte("drafts")

// PutDraft stores d (new or changed) under its id.
func (db *DB) PutDraft(ctx context.Context, d *loa.Draft) error {
	if err := validKey("id", d.ID); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketDrafts); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketDrafts, err)
		}
		return put(tx, bucketDrafts, []byte(d.ID), d)
	})
}

// Draft returns the draft with id, ENOTFOUND if there is none.
func (db *DB) Draft(ctx context.Context, id string) (*loa.Draft, error) {
	d := new(loa.Draft)
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketDrafts) != nil {
			if found, err := get(tx, bucketDrafts, []byte(id), d); err != nil || found {
				return err
			}
		}
		return loa.Errorf(loa.ENOTFOUND, "draft %q not found", id)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Drafts returns every draft, newest first.
func (db *DB) Drafts(ctx context.Context) ([]*loa.Draft, error) {
	var out []*loa.Draft
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		if tx.Bucket(bucketDrafts) == nil {
			return nil
		}
		out, err = list[loa.Draft](tx, bucketDrafts)
		return err
	})
	slices.SortStableFunc(out, func(a, b *loa.Draft) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	return out, err
}

// SetAreaApproval marks an area (and so its descendants) as needing
// approval for operators' changes, or clears the mark, and returns it.
func (db *DB) SetAreaApproval(ctx context.Context, id string, needs bool) (*loa.Area, error) {
	var a *loa.Area
	err := db.update(ctx, func(tx *wtx) (err error) {
		if a, err = area(tx, id); err != nil {
			return err
		}
		a.NeedsApproval = needs
		return put(tx, bucketAreas, []byte(id), a)
	})
	return a, err
}

// ApproveMedia makes a draft upload usable, naming its approver.
// ENOTFOUND if there is no such media; an item that is not a draft is
// returned unchanged.
func (db *DB) ApproveMedia(ctx context.Context, id, by string) (*loa.Media, error) {
	var m *loa.Media
	err := db.update(ctx, func(tx *wtx) (err error) {
		if m, err = media(tx, id); err != nil {
			return err
		}
		if m.State != loa.MediaDraft {
			return nil
		}
		m.State, m.ApprovedBy = "", by
		return put(tx, bucketMedia, []byte(id), m)
	})
	return m, err
}

// usableMedia returns media id unless it is missing (ENOTFOUND naming
// field) or a draft waiting for approval (ENOTAPPROVED naming field).
func usableMedia(tx rtx, field, id string) (*loa.Media, error) {
	m, err := media(tx, id)
	if loa.ErrorCode(err) == loa.ENOTFOUND {
		return nil, loa.Errorf(loa.ENOTFOUND, "%s: no media %q", field, id)
	} else if err != nil {
		return nil, err
	}
	if m.State == loa.MediaDraft {
		return nil, loa.Errorf(loa.ENOTAPPROVED, "%s: media %q waits for an approver", field, id)
	}
	return m, nil
}
