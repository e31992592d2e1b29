package store

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/loa-broadcast/loa"
	bolt "go.etcd.io/bbolt"
)

// PutSession inserts or updates a session. It is written before the session
// is acted on, so its record survives a crash mid-broadcast.
func (db *DB) PutSession(ctx context.Context, s *loa.Session) error {
	if err := validKey("id", s.ID); err != nil {
		return err
	}
	return db.update(ctx, func(tx *bolt.Tx) error {
		return put(tx, bucketSessions, []byte(s.ID), s)
	})
}

// Session returns the session with id, ENOTFOUND if there is none.
func (db *DB) Session(ctx context.Context, id string) (*loa.Session, error) {
	s := new(loa.Session)
	err := db.view(ctx, func(tx *bolt.Tx) error {
		found, err := get(tx, bucketSessions, []byte(id), s)
		if err == nil && !found {
			err = loa.Errorf(loa.ENOTFOUND, "session %q not found", id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Sessions returns every session, newest (by StartedAt) first.
func (db *DB) Sessions(ctx context.Context) ([]*loa.Session, error) {
	var ss []*loa.Session
	err := db.view(ctx, func(tx *bolt.Tx) (err error) {
		ss, err = list[loa.Session](tx, bucketSessions)
		return err
	})
	slices.SortStableFunc(ss, func(a, b *loa.Session) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), strings.Compare(b.ID, a.ID))
	})
	return ss, err
}
