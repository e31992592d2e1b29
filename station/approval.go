package station

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/scheduler"
	"github.com/loa-broadcast/loa/store"
)

// Approvals implements loa.DraftService: in an area that needs approval
// (loa.Area.NeedsApproval, on it or an ancestor) an operator's new or
// changed schedule, new playlist and upload wait as drafts; approving one
// applies it through the same services a direct change goes through
// (Schedules, the playlist store, the media record), so it is checked
// again as it is applied.
type Approvals struct {
	db        *store.DB
	media     *Media
	schedules loa.ScheduleService
	playlists loa.PlaylistService
	logger    *slog.Logger

	mu sync.Mutex // one decision at a time: a draft is applied once
}

var _ loa.DraftService = (*Approvals)(nil)

// NewApprovals returns the draft service of db, applying through media,
// schedules and playlists.
func NewApprovals(db *store.DB, media *Media, schedules loa.ScheduleService, playlists loa.PlaylistService, logger *slog.Logger) *Approvals {
	return &Approvals{db: db, media: media, schedules: schedules, playlists: playlists, logger: logger}
}

// Holds reports the areas targets touch (its areas and its devices'),
// and whether caller's change waits: only an operator's, and only when
// one of those areas or an ancestor needs approval. Admins, province and
// approvers are never held.
func (a *Approvals) Holds(ctx context.Context, caller *loa.Token, targets loa.Targets) ([]string, bool, error) {
	areas := slices.Clone(targets.Areas)
	if len(targets.Devices) > 0 {
		for _, id := range targets.Devices {
			d, err := a.db.Device(ctx, id)
			if loa.ErrorCode(err) == loa.ENOTFOUND {
				continue // the change itself names it
			} else if err != nil {
				return nil, false, err
			}
			areas = append(areas, d.AreaID)
		}
	}
	slices.Sort(areas)
	areas = slices.Compact(areas)
	if caller.Role != loa.RoleOperator || len(areas) == 0 {
		return areas, false, nil
	}
	all, err := a.db.Areas(ctx)
	if err != nil {
		return nil, false, err
	}
	tree := loa.NewAreaTree(all)
	for _, id := range areas {
		if tree.NeedsApproval(id) {
			return areas, true, nil
		}
	}
	return areas, false, nil
}

// Propose checks and keeps a pending draft of a schedule or a playlist.
// What can be checked before approval is: the rule, that its content and
// targets exist (a draft upload may be named: it is checked again when
// the draft is applied), that the id is free (or, for a replace, taken).
func (a *Approvals) Propose(ctx context.Context, d *loa.Draft) error {
	switch {
	case d.Kind == loa.DraftSchedule && d.Schedule != nil:
		if err := a.checkSchedule(ctx, d.Schedule, d.Op); err != nil {
			return err
		}
		d.Name = d.Schedule.Name
	case d.Kind == loa.DraftPlaylist && d.Playlist != nil:
		if err := a.checkPlaylist(ctx, d.Playlist); err != nil {
			return err
		}
		d.Op, d.Name = "create", d.Playlist.Name
	default:
		return loa.Errorf(loa.EINVALID, "kind: a schedule or playlist draft carries its change")
	}
	return a.keep(ctx, d)
}

func (a *Approvals) keep(ctx context.Context, d *loa.Draft) error {
	d.ID = "dr-" + newID()[:12]
	d.CreatedAt = time.Now().UTC()
	d.State = loa.DraftPending
	if err := a.db.PutDraft(ctx, d); err != nil {
		return err
	}
	a.logger.Info("change held for approval", "draft", d.ID, "kind", d.Kind, "by", d.CreatedBy, "areas", d.Areas)
	return nil
}

// checkSchedule is Schedules.check, but a draft upload may be named.
func (a *Approvals) checkSchedule(ctx context.Context, sc *loa.Schedule, op string) error {
	if sc.Overrun == "" {
		sc.Overrun = loa.OverrunInterrupt
	}
	switch _, err := a.schedules.Schedule(ctx, sc.ID); {
	case op == "create" && err == nil:
		return loa.Errorf(loa.ECONFLICT, "id: schedule %q already exists", sc.ID)
	case op == "replace" && err != nil:
		return err
	case op != "create" && op != "replace":
		return loa.Errorf(loa.EINVALID, "op: create or replace, not %q", op)
	}
	if err := scheduler.Validate(sc); err != nil {
		return err
	}
	if err := a.contentExists(ctx, "content.", sc.Content); err != nil {
		return err
	}
	for date, r := range sc.Exceptions.Replace {
		if err := a.contentExists(ctx, "exceptions.replace."+date+".", r.Content); err != nil {
			return err
		}
	}
	cals, err := a.schedules.Calendars(ctx)
	if err != nil {
		return err
	}
	if err := scheduler.CheckCalendars(sc.Exceptions, cals); err != nil {
		return err
	}
	areas, err := a.db.Areas(ctx)
	if err != nil {
		return err
	}
	devices, err := a.db.Devices(ctx)
	if err != nil {
		return err
	}
	_, err = sc.Targets.Resolve(loa.NewAreaTree(areas), devices)
	return err
}

func (a *Approvals) contentExists(ctx context.Context, prefix string, c loa.Content) error {
	if c.MediaID != "" {
		if _, err := a.db.Media(ctx, c.MediaID); err != nil {
			return loa.Errorf(loa.ENOTFOUND, "%smedia_id: no media %q", prefix, c.MediaID)
		}
	}
	if c.PlaylistID != "" {
		if _, err := a.db.Playlist(ctx, c.PlaylistID); err != nil {
			return loa.Errorf(loa.ENOTFOUND, "%splaylist_id: no playlist %q", prefix, c.PlaylistID)
		}
	}
	return nil
}

func (a *Approvals) checkPlaylist(ctx context.Context, p *loa.Playlist) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if _, err := a.db.Playlist(ctx, p.ID); err == nil {
		return loa.Errorf(loa.ECONFLICT, "id: playlist %q already exists", p.ID)
	}
	for i, it := range p.Items {
		if _, err := a.db.Media(ctx, it.MediaID); err != nil {
			return loa.Errorf(loa.ENOTFOUND, "items[%d].media_id: no media %q", i, it.MediaID)
		}
	}
	return nil
}

// ProposeMedia imports an upload as a draft item: stored, listed with
// state "draft", refused by sessions, schedules, playlists, fallbacks and
// alerts (ENOTAPPROVED) until approved. Audio already in the library is
// answered as it is: nothing new to approve.
func (a *Approvals) ProposeMedia(ctx context.Context, name string, r io.Reader, createdBy string, areas []string) (*loa.Draft, *loa.Media, error) {
	m, err := a.media.importMedia(ctx, name, r, createdBy, false, loa.MediaDraft)
	if err != nil {
		return nil, nil, err
	}
	if m.State != loa.MediaDraft || m.CreatedBy != createdBy {
		return nil, m, nil
	}
	if ds, err := a.db.Drafts(ctx); err != nil {
		return nil, nil, err
	} else if i := slices.IndexFunc(ds, func(d *loa.Draft) bool { return d.MediaID == m.ID && d.State == loa.DraftPending }); i >= 0 {
		return ds[i], m, nil // the same upload again: it already waits
	}
	d := &loa.Draft{Kind: loa.DraftMedia, Op: "create", Name: m.Name, Areas: areas, CreatedBy: createdBy, MediaID: m.ID}
	if err := a.keep(ctx, d); err != nil {
		return nil, nil, err
	}
	return d, m, nil
}

func (a *Approvals) Draft(ctx context.Context, id string) (*loa.Draft, error) {
	return a.db.Draft(ctx, id)
}

func (a *Approvals) Drafts(ctx context.Context) ([]*loa.Draft, error) { return a.db.Drafts(ctx) }

// pending returns draft id while it waits, else ECONFLICT saying how it
// was decided. The caller holds mu.
func (a *Approvals) pending(ctx context.Context, id string) (*loa.Draft, error) {
	d, err := a.db.Draft(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.State != loa.DraftPending {
		return nil, loa.Errorf(loa.ECONFLICT, "draft %q is %s already", id, d.State)
	}
	return d, nil
}

// Approve applies draft id as proposed, with by as its approver, then
// records the decision. A change that cannot be applied (a schedule
// naming an upload still waiting, an id taken meanwhile) leaves the
// draft pending and says why.
func (a *Approvals) Approve(ctx context.Context, id, by, note string) (*loa.Draft, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, err := a.pending(ctx, id)
	if err != nil {
		return nil, err
	}
	switch d.Kind {
	case loa.DraftSchedule:
		sc := *d.Schedule
		sc.ApprovedBy = by
		if d.Op == "replace" {
			err = a.schedules.UpdateSchedule(ctx, &sc)
		} else {
			err = a.schedules.CreateSchedule(ctx, &sc)
		}
		d.Schedule = &sc
	case loa.DraftPlaylist:
		p := *d.Playlist
		p.ApprovedBy = by
		err = a.playlists.CreatePlaylist(ctx, &p)
		d.Playlist = &p
	case loa.DraftMedia:
		_, err = a.db.ApproveMedia(ctx, d.MediaID, by)
	default:
		err = loa.Errorf(loa.EINVALID, "kind: unknown draft kind %q", d.Kind)
	}
	if err != nil {
		return nil, err
	}
	return a.decide(ctx, d, loa.DraftApproved, by, note)
}

// Reject closes draft id unapplied. A rejected upload stays a draft:
// stored, never playable.
func (a *Approvals) Reject(ctx context.Context, id, by, note string) (*loa.Draft, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, err := a.pending(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.decide(ctx, d, loa.DraftRejected, by, note)
}

// Withdraw closes draft id unapplied at its proposer's wish.
func (a *Approvals) Withdraw(ctx context.Context, id, by string) (*loa.Draft, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, err := a.pending(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.decide(ctx, d, loa.DraftWithdrawn, by, "")
}

func (a *Approvals) decide(ctx context.Context, d *loa.Draft, state, by, note string) (*loa.Draft, error) {
	d.State, d.DecidedBy, d.DecidedAt, d.Note = state, by, time.Now().UTC(), note
	if err := a.db.PutDraft(ctx, d); err != nil {
		return nil, err
	}
	a.logger.Info("draft decided", "draft", d.ID, "kind", d.Kind, "state", state, "by", by)
	return d, nil
}

// notApproved refuses content that waits for an approver.
func notApproved(field, mediaID string) error {
	return loa.Errorf(loa.ENOTAPPROVED, "%s: media %q waits for an approver", field, mediaID)
}

// approvalNote names who approved what a session plays: its schedule,
// its playlist, its media items. "" when nothing of it was held. It is
// the detail of the session's started line in the play log.
func approvalNote(ctx context.Context, db *store.DB, sess *loa.Session) string {
	var by []string
	add := func(who string) {
		if who != "" && !slices.Contains(by, who) {
			by = append(by, who)
		}
	}
	if sess.Origin.Kind == loa.OriginSchedule && sess.Origin.ID != "" {
		if sc, err := db.Schedule(ctx, sess.Origin.ID); err == nil {
			add(sc.ApprovedBy)
		}
	}
	ids := []string{sess.MediaID}
	if sess.PlaylistID != "" {
		if p, err := db.Playlist(ctx, sess.PlaylistID); err == nil {
			add(p.ApprovedBy)
			ids = ids[:0]
			for _, it := range p.Items {
				ids = append(ids, it.MediaID)
			}
		}
	}
	for _, id := range ids {
		if id == "" {
			continue
		}
		if m, err := db.Media(ctx, id); err == nil {
			add(m.ApprovedBy)
		}
	}
	if len(by) == 0 {
		return ""
	}
	return fmt.Sprintf("approved by %s", strings.Join(by, ", "))
}
