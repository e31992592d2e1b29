package loa

import (
	"context"
	"sync"
)

// AuditJournal makes a request's changes and their audit record commit
// together. The API attaches one to a changing request's context; the
// store writes Base as a provisional audit record in the same transaction
// as the request's first change, so no change is ever committed without a
// record, and the API's detailed record (AuditService.Audit with the same
// context) then replaces the provisional one. If that second write fails
// (the disk filled in between), the provisional record still says who
// changed what through which route.
type AuditJournal struct {
	Base AuditRecord // actor, scope, action "METHOD /route", object the path

	mu     sync.Mutex
	key    []byte // the provisional record's key once committed; nil when none is pending
	closed bool   // the request has ended: work it left running writes no record
}

type auditJournalKey struct{}

// WithAuditJournal returns ctx carrying j.
func WithAuditJournal(ctx context.Context, j *AuditJournal) context.Context {
	return context.WithValue(ctx, auditJournalKey{}, j)
}

// AuditJournalFrom returns the journal ctx carries, or nil.
func AuditJournalFrom(ctx context.Context) *AuditJournal {
	j, _ := ctx.Value(auditJournalKey{}).(*AuditJournal)
	return j
}

// Pending returns the key of the provisional record awaiting its detailed
// replacement, or nil.
func (j *AuditJournal) Pending() []byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.key
}

// Wants reports whether a change made now should write the provisional
// record: the request is still running and none is pending.
func (j *AuditJournal) Wants() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.closed && j.key == nil
}

// Close ends the journal when its request has been answered: work the
// request started that outlives it (a context.WithoutCancel) is not the
// request's change.
func (j *AuditJournal) Close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
}

// SetPending records the key of a committed provisional record (nil once
// it has been replaced).
func (j *AuditJournal) SetPending(key []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.key = key
}
