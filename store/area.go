package store

import (
	"context"

	"github.com/loa-broadcast/loa"
	bolt "go.etcd.io/bbolt"
)

// CreateArea stores a new area under an existing parent of the right kind
// and sets a.CreatedAt. ECONFLICT if the id is taken.
func (db *DB) CreateArea(ctx context.Context, a *loa.Area) error {
	if err := a.Validate(); err != nil {
		return err
	}
	return db.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAreas).Get([]byte(a.ID)) != nil {
			return loa.Errorf(loa.ECONFLICT, "id: area %q already exists", a.ID)
		}
		if a.ParentID != "" {
			parent, err := area(tx, a.ParentID)
			if loa.ErrorCode(err) == loa.ENOTFOUND {
				return loa.Errorf(loa.ENOTFOUND, "parent_id: area %q not found", a.ParentID)
			} else if err != nil {
				return err
			}
			if err := a.ValidateParent(parent); err != nil {
				return err
			}
		}
		a.CreatedAt = db.now().UTC()
		return put(tx, bucketAreas, []byte(a.ID), a)
	})
}

// Area returns the area with id, ENOTFOUND if there is none.
func (db *DB) Area(ctx context.Context, id string) (*loa.Area, error) {
	var a *loa.Area
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		a, err = area(tx, id)
		return err
	})
	return a, err
}

// Areas returns every area, sorted by id.
func (db *DB) Areas(ctx context.Context) ([]*loa.Area, error) {
	return listAll[loa.Area](ctx, db, bucketAreas)
}

func area(tx *bolt.Tx, id string) (*loa.Area, error) {
	a := new(loa.Area)
	if found, err := get(tx, bucketAreas, []byte(id), a); err != nil {
		return nil, err
	} else if !found {
		return nil, loa.Errorf(loa.ENOTFOUND, "area %q not found", id)
	}
	return a, nil
}

// areaExists reports whether id names an area; field names the caller's
// input in the ENOTFOUND error.
func areaExists(tx *bolt.Tx, field, id string) error {
	if tx.Bucket(bucketAreas).Get([]byte(id)) == nil {
		return loa.Errorf(loa.ENOTFOUND, "%s: area %q not found", field, id)
	}
	return nil
}

// SetAreaTests marks an area for tests (or clears the mark) and returns
// it; ENOTFOUND if there is no such area.
func (db *DB) SetAreaTests(ctx context.Context, id string, tests bool) (*loa.Area, error) {
	var a *loa.Area
	err := db.update(ctx, func(tx *bolt.Tx) (err error) {
		if a, err = area(tx, id); err != nil {
			return err
		}
		a.Tests = tests
		return put(tx, bucketAreas, []byte(id), a)
	})
	return a, err
}
