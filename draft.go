package loa

import (
	"context"
	"io"
	"time"
)

// Kinds of change a Draft holds.
const (
	DraftSchedule = "schedule" // a new or changed schedule
	DraftPlaylist = "playlist" // a new playlist
	DraftMedia    = "media"    // an uploaded programme, stored as a MediaDraft
)

// States of a Draft.
const (
	DraftPending   = "pending"
	DraftApproved  = "approved"
	DraftRejected  = "rejected"
	DraftWithdrawn = "withdrawn" // by its proposer, before a decision
)

// Draft is an operator's change in an area that needs approval
// (Area.NeedsApproval), kept until an approver of the area decides. It
// holds the change exactly as proposed; approving applies it through the
// same services a direct change goes through.
type Draft struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`       // DraftSchedule, DraftPlaylist or DraftMedia
	Op        string    `json:"op"`         // "create", or "replace" (a schedule's change)
	Name      string    `json:"name"`       // what it is called, for lists
	Areas     []string  `json:"areas"`      // the areas it touches: who may approve it
	CreatedBy string    `json:"created_by"` // the proposer (token or user:<name>)
	CreatedAt time.Time `json:"created_at"` //
	Schedule  *Schedule `json:"schedule,omitempty"`
	Playlist  *Playlist `json:"playlist,omitempty"`
	MediaID   string    `json:"media_id,omitempty"` // the held upload (State MediaDraft)
	State     string    `json:"state"`
	DecidedBy string    `json:"decided_by,omitempty"` // the approver, or the proposer who withdrew it
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Note      string    `json:"note,omitempty"` // the approver's note (why it was rejected)
}

// MaxDraftNote bounds a decision's note.
const MaxDraftNote = 500

// DraftService holds operators' changes in areas that need approval and
// applies them once approved.
type DraftService interface {
	// Holds reports whether caller's change touching targets waits for
	// approval, and the areas it touches: an operator's (never an admin's,
	// province's or approver's) in an area needing approval.
	Holds(ctx context.Context, caller *Token, targets Targets) (areas []string, held bool, err error)
	// Propose stores a pending draft of a schedule or playlist (sets ID,
	// CreatedAt, State); it checks what Kind names, as far as it can
	// before approval.
	Propose(ctx context.Context, d *Draft) error
	// ProposeMedia imports an upload as a MediaDraft and keeps its draft.
	// Audio already in the library is answered as it is, with no draft.
	ProposeMedia(ctx context.Context, name string, r io.Reader, createdBy string, areas []string) (*Draft, *Media, error)
	Draft(ctx context.Context, id string) (*Draft, error)
	Drafts(ctx context.Context) ([]*Draft, error) // newest first
	// Approve applies a pending draft as proposed, recording by as its
	// approver; the draft stays pending when applying fails.
	Approve(ctx context.Context, id, by, note string) (*Draft, error)
	Reject(ctx context.Context, id, by, note string) (*Draft, error)
	Withdraw(ctx context.Context, id, by string) (*Draft, error)
}
