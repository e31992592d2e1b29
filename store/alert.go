package store

import (
	"cmp"
	"context"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// capKey is the alerts_by_cap key of a CAP message: sender ‖ 0 ‖ identifier.
// Neither may contain a NUL byte, so the key is unambiguous.
func capKey(sender, identifier string) ([]byte, error) {
	if sender == "" || identifier == "" || strings.ContainsRune(sender, 0) || strings.ContainsRune(identifier, 0) {
		return nil, loa.Errorf(loa.EINVALID, "cap: sender and identifier are required and cannot contain NUL")
	}
	return []byte(sender + "\x00" + identifier), nil
}

// CreateAlert stores a new alert. An alert from CAP reserves its (sender,
// identifier) in the same transaction: a second alert with the same pair
// is ECONFLICT and stores nothing, so a message delivered twice sounds
// once. ECONFLICT also if the id is taken.
func (db *DB) CreateAlert(ctx context.Context, a *loa.Alert) error {
	if err := validKey("id", a.ID); err != nil {
		return err
	}
	var key []byte
	if a.CAP != nil {
		k, err := capKey(a.CAP.Sender, a.CAP.Identifier)
		if err != nil {
			return err
		}
		key = k
	}
	return db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketAlerts).Get([]byte(a.ID)) != nil {
			return loa.Errorf(loa.ECONFLICT, "alert %q already exists", a.ID)
		}
		if key != nil {
			idx := tx.Bucket(bucketAlertsByCAP)
			if prev := idx.Get(key); prev != nil {
				// No alert id: the caller may not be one who may see it.
				return loa.Errorf(loa.ECONFLICT, "cap: sender %q already sent identifier %q; a CAP message is taken once", a.CAP.Sender, a.CAP.Identifier)
			}
			if err := tx.put(bucketAlertsByCAP, key, []byte(a.ID)); err != nil {
				return err
			}
		}
		return put(tx, bucketAlerts, []byte(a.ID), a)
	})
}

// PutAlert updates an existing alert (its state and report); ENOTFOUND if
// there is none. Its CAP reservation does not change.
func (db *DB) PutAlert(ctx context.Context, a *loa.Alert) error {
	return db.update(ctx, func(tx *wtx) error {
		if tx.Bucket(bucketAlerts).Get([]byte(a.ID)) == nil {
			return loa.Errorf(loa.ENOTFOUND, "alert %q not found", a.ID)
		}
		return put(tx, bucketAlerts, []byte(a.ID), a)
	})
}

// Alert returns the alert with id, ENOTFOUND if there is none.
func (db *DB) Alert(ctx context.Context, id string) (*loa.Alert, error) {
	return getOne[loa.Alert](ctx, db, bucketAlerts, "alert", id)
}

// Alerts returns every alert, newest first.
func (db *DB) Alerts(ctx context.Context) ([]*loa.Alert, error) {
	as, err := listAll[loa.Alert](ctx, db, bucketAlerts)
	slices.SortStableFunc(as, func(a, b *loa.Alert) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	return as, err
}

// AlertByCAP returns the alert created from the CAP message of sender and
// identifier, ENOTFOUND if there is none (a Cancel referring to it then
// names an unknown message).
func (db *DB) AlertByCAP(ctx context.Context, sender, identifier string) (*loa.Alert, error) {
	key, err := capKey(sender, identifier)
	if err != nil {
		return nil, err
	}
	a := new(loa.Alert)
	err = db.view(ctx, func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketAlertsByCAP).Get(key)
		if id == nil {
			return loa.Errorf(loa.ENOTFOUND, "cap: no alert from sender %q with identifier %q", sender, identifier)
		}
		found, err := get(tx, bucketAlerts, id, a)
		if err == nil && !found {
			err = loa.Errorf(loa.ENOTFOUND, "cap: alert %s of sender %q, identifier %q is gone", id, sender, identifier)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}
