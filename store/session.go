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
	return getOne[loa.Session](ctx, db, bucketSessions, "session", id)
}

// Sessions returns every session, newest (by StartedAt) first.
func (db *DB) Sessions(ctx context.Context) ([]*loa.Session, error) {
	ss, err := listAll[loa.Session](ctx, db, bucketSessions)
	slices.SortStableFunc(ss, func(a, b *loa.Session) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), strings.Compare(b.ID, a.ID))
	})
	return ss, err
}
