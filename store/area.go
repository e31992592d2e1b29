package store

import (
	"context"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// CreateArea stores a new area under an existing parent of the right kind
// and sets a.CreatedAt. ECONFLICT if the id is taken.
func (db *DB) CreateArea(ctx context.Context, a *loa.Area) error {
	return db.CreateAreas(ctx, []*loa.Area{a})
}

// CreateAreas stores new areas in one transaction, as CreateArea would
// one by one (parents before their children): all of them, or none if
// one is refused. Loading a province's tree of thousands of areas takes
// one write.
func (db *DB) CreateAreas(ctx context.Context, areas []*loa.Area) error {
	for _, a := range areas {
		if err := a.Validate(); err != nil {
			if len(areas) > 1 {
				return loa.Errorf(loa.ErrorCode(err), "area %q: %s", a.ID, loa.ErrorMessage(err))
			}
			return err
		}
	}
	return db.update(ctx, func(tx *wtx) error {
		for _, a := range areas {
			if err := createArea(tx, a, db.now().UTC()); err != nil {
				return err
			}
		}
		return nil
	})
}

// createArea stores a new area a under its parent, indexed.
func createArea(tx *wtx, a *loa.Area, now time.Time) error {
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
	a.CreatedAt = now
	if err := tx.put(bucketAreaChildren, childKey(a.ParentID, a.ID), nil); err != nil {
		return err
	}
	return put(tx, bucketAreas, []byte(a.ID), a)
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

func area(tx rtx, id string) (*loa.Area, error) {
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
func areaExists(tx rtx, field, id string) error {
	if tx.Bucket(bucketAreas).Get([]byte(id)) == nil {
		return loa.Errorf(loa.ENOTFOUND, "%s: area %q not found", field, id)
	}
	return nil
}

// SetAreaTests marks an area for tests (or clears the mark) and returns
// it; ENOTFOUND if there is no such area.
func (db *DB) SetAreaTests(ctx context.Context, id string, tests bool) (*loa.Area, error) {
	var a *loa.Area
	err := db.update(ctx, func(tx *wtx) (err error) {
		if a, err = area(tx, id); err != nil {
			return err
		}
		a.Tests = tests
		return put(tx, bucketAreas, []byte(id), a)
	})
	return a, err
}

// DeleteArea removes an area nothing depends on. ENOTFOUND if there is no
// such area; ECONFLICT, naming what is in the way, while it has child
// areas, devices in service, tokens scoped to it, a fallback, or
// schedules targeting it. Decommissioned devices do not hold it: their
// records (and history) keep the id of the area they were in.
func (db *DB) DeleteArea(ctx context.Context, id string) error {
	return db.update(ctx, func(tx *wtx) error {
		a, err := area(tx, id)
		if err != nil {
			return err
		}
		if children := childIDs(tx, id); len(children) > 0 {
			return loa.Errorf(loa.ECONFLICT, "area %q has %d child areas (%s); delete them first", id, len(children), firstFew(children))
		}
		devices, err := list[loa.Device](tx, bucketDevices)
		if err != nil {
			return err
		}
		var inService []string
		for _, d := range devices {
			if d.AreaID == id && !d.Decommissioned() {
				inService = append(inService, d.ID)
			}
		}
		if len(inService) > 0 {
			return loa.Errorf(loa.ECONFLICT, "area %q has %d devices (%s); decommission or move them first", id, len(inService), firstFew(inService))
		}
		tokens, err := list[tokenRecord](tx, bucketTokens)
		if err != nil {
			return err
		}
		// Counts, not ids: a 409 names nothing of another scope (a
		// schedule may target areas beyond the caller's).
		scoped := 0
		for _, t := range tokens {
			if t.AreaID == id && t.RevokedAt.IsZero() {
				scoped++
			}
		}
		if scoped > 0 {
			return loa.Errorf(loa.ECONFLICT, "area %q is the scope of %d tokens; revoke them first", id, scoped)
		}
		users, err := list[userRecord](tx, bucketUsers)
		if err != nil {
			return err
		}
		for _, u := range users {
			if u.AreaID == id && !u.Disabled {
				scoped++
			}
		}
		if scoped > 0 {
			return loa.Errorf(loa.ECONFLICT, "area %q is the scope of %d users; disable them or change their scope first", id, scoped)
		}
		if tx.Bucket(bucketFallbacks).Get([]byte(id)) != nil {
			return loa.Errorf(loa.ECONFLICT, "area %q has a fallback programme; clear it first", id)
		}
		schedules, err := list[loa.Schedule](tx, bucketSchedules)
		if err != nil {
			return err
		}
		targeting := 0
		for _, s := range schedules {
			if slices.Contains(s.Targets.Areas, id) {
				targeting++
			}
		}
		if targeting > 0 {
			return loa.Errorf(loa.ECONFLICT, "area %q is a target of %d schedules; change or delete them first", id, targeting)
		}
		if err := tx.del(bucketAreaChildren, childKey(a.ParentID, id)); err != nil {
			return err
		}
		return tx.del(bucketAreas, []byte(id))
	})
}

// firstFew lists up to three ids, for error messages.
func firstFew(ids []string) string {
	if len(ids) > 3 {
		return strings.Join(ids[:3], ", ") + ", …"
	}
	return strings.Join(ids, ", ")
}
