package store

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/loa-broadcast/loa"
)

// PutSession inserts or updates a session. It is written before the session
// is acted on, so its record survives a crash mid-broadcast.
func (db *DB) PutSession(ctx context.Context, s *loa.Session) error {
	if err := validKey("id", s.ID); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
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

// MarkSessionSent records when a session's first packet left, once: in one
// transaction, so it neither loses nor undoes a concurrent write of the
// session (a stop, its end).
func (db *DB) MarkSessionSent(ctx context.Context, id string, at time.Time) error {
	if err := validKey("id", id); err != nil {
		return err
	}
	return db.update(ctx, func(tx *wtx) error {
		var s loa.Session
		found, err := get(tx, bucketSessions, []byte(id), &s)
		if err != nil || !found || !s.FirstSentAt.IsZero() {
			return err
		}
		s.FirstSentAt = at
		return put(tx, bucketSessions, []byte(id), &s)
	})
}
