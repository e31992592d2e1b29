package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/loa-broadcast/loa"
)

// Approval: in an area marked needs_approval (on it or an ancestor) an
// operator's new or changed schedule, new playlist and upload are held
// as drafts (202 {draft}) until an approver whose scope holds every area
// the draft touches approves (applied as proposed) or rejects it. Admins,
// province and approvers are never held; alerts never wait.

// areaApprovalRequest is the body of PUT /api/v1/areas/{id}/approval.
type areaApprovalRequest struct {
	NeedsApproval *bool `json:"needs_approval"`
}

// areaApprovalSetter is the store's capability to mark areas as needing
// approval.
type areaApprovalSetter interface {
	SetAreaApproval(ctx context.Context, id string, needs bool) (*loa.Area, error)
}

// setAreaApproval marks an area (and so its subtree) as needing approval
// for operators' changes, or clears the mark.
func (s *Server) setAreaApproval(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	var req areaApprovalRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if req.NeedsApproval == nil {
		return loa.Errorf(loa.EINVALID, "needs_approval: required, true or false")
	}
	if ok, err := c.areaInScope(id); err != nil {
		return err
	} else if !ok {
		return loa.Errorf(loa.ENOTFOUND, "area %q not found", id)
	}
	setter, ok := s.Areas.(areaApprovalSetter)
	if !ok {
		return errUnavailable("area approval")
	}
	a, err := setter.SetAreaApproval(r.Context(), id, *req.NeedsApproval)
	if err != nil {
		return err
	}
	c.audit("area.approval", id, strconv.FormatBool(*req.NeedsApproval))
	writeJSON(w, http.StatusOK, a)
	return nil
}

// scopeTargets are the areas a change without targets of its own (an
// upload, a playlist) is for: the caller's scope.
func (c *call) scopeTargets() loa.Targets {
	if !c.scoped() {
		return loa.Targets{}
	}
	return loa.Targets{Areas: []string{c.tok.AreaID}}
}

// holdChange keeps d (a schedule or playlist change touching t) as a
// pending draft and answers 202 {draft} when the caller's change waits
// for approval; false when it does not, and the caller applies it.
func (s *Server) holdChange(w http.ResponseWriter, c *call, d *loa.Draft, t loa.Targets) (bool, error) {
	if s.Drafts == nil {
		return false, nil
	}
	areas, held, err := s.Drafts.Holds(c.ctx, c.tok, t)
	if err != nil || !held {
		return false, err
	}
	d.Areas, d.CreatedBy = areas, c.tok.ID
	if err := s.Drafts.Propose(c.ctx, d); err != nil {
		return true, err
	}
	c.audit("draft.propose", d.ID, d.Kind+" "+d.Name)
	writeJSON(w, http.StatusAccepted, d)
	return true, nil
}

// heldUpload reports whether the caller's uploads wait for approval, and
// for which areas.
func (s *Server) heldUpload(c *call) ([]string, bool, error) {
	if s.Drafts == nil {
		return nil, false, nil
	}
	return s.Drafts.Holds(c.ctx, c.tok, c.scopeTargets())
}

// proposeMedia imports a held upload as a draft item: 202 {draft}, or 201
// with the media when the same audio is already in the library.
func (s *Server) proposeMedia(w http.ResponseWriter, c *call, name string, body io.Reader, areas []string) error {
	d, m, err := s.Drafts.ProposeMedia(c.ctx, name, body, c.tok.ID, areas)
	if err != nil {
		return err
	}
	if d == nil {
		writeJSON(w, http.StatusCreated, m)
		return nil
	}
	c.audit("draft.propose", d.ID, d.Kind+" "+d.Name)
	writeJSON(w, http.StatusAccepted, d)
	return nil
}

// draftDecidable reports whether the caller may approve or reject d: it
// has the approve permission and its scope holds every area d touches.
func (c *call) draftDecidable(d *loa.Draft) (bool, error) {
	if !c.tok.Can(loa.ActionApprove) {
		return false, nil
	}
	if !c.scoped() {
		return true, nil
	}
	if len(d.Areas) == 0 {
		return false, nil
	}
	for _, a := range d.Areas {
		if ok, err := c.areaInScope(a); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// draftVisible: an approver sees the drafts it may decide; anyone sees
// their own.
func (c *call) draftVisible(d *loa.Draft) (bool, error) {
	if d.CreatedBy == c.tok.ID {
		return true, nil
	}
	return c.draftDecidable(d)
}

// draft returns draft id if the caller may see it, else ENOTFOUND.
func (s *Server) draft(c *call, id string) (*loa.Draft, error) {
	if s.Drafts == nil {
		return nil, errUnavailable("draft")
	}
	d, err := s.Drafts.Draft(c.ctx, id)
	if err != nil {
		return nil, err
	}
	if ok, err := c.draftVisible(d); err != nil {
		return nil, err
	} else if !ok {
		return nil, loa.Errorf(loa.ENOTFOUND, "draft %q not found", id)
	}
	return d, nil
}

var draftStates = []string{loa.DraftPending, loa.DraftApproved, loa.DraftRejected, loa.DraftWithdrawn}

// listDrafts answers the drafts the caller may see, newest first;
// ?state= narrows them.
func (s *Server) listDrafts(w http.ResponseWriter, r *http.Request, c *call) error {
	state := r.URL.Query().Get("state")
	if state != "" && !slices.Contains(draftStates, state) {
		return loa.Errorf(loa.EINVALID, "state: one of %s, not %q", strings.Join(draftStates, ", "), state)
	}
	if s.Drafts == nil {
		return errUnavailable("draft")
	}
	list, err := s.Drafts.Drafts(r.Context())
	if err != nil {
		return err
	}
	out := []*loa.Draft{}
	for _, d := range list {
		if state != "" && d.State != state {
			continue
		}
		if ok, err := c.draftVisible(d); err != nil {
			return err
		} else if ok {
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getDraft(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.draft(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// draftDecision is the optional body of approve and reject.
type draftDecision struct {
	Note string `json:"note"`
}

func readDecision(r *http.Request) (string, error) {
	b, err := readBody(r.Body, maxJSONBody)
	if err != nil {
		return "", err
	}
	var req draftDecision
	if len(bytes.TrimSpace(b)) > 0 {
		if err := decodeJSON(bytes.NewReader(b), &req); err != nil {
			return "", err
		}
	}
	note := strings.TrimSpace(req.Note)
	if len(note) > loa.MaxDraftNote {
		return "", loa.Errorf(loa.EINVALID, "note: at most %d bytes", loa.MaxDraftNote)
	}
	return note, nil
}

// decideDraft returns the handler of POST /api/v1/drafts/{id}/approve or
// /reject: the caller needs the approve permission (the route's) and a
// scope holding every area of the draft; a draft it cannot decide is not
// found. Approving applies the change as proposed and audits both.
func (s *Server) decideDraft(approve bool) handler {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		note, err := readDecision(r)
		if err != nil {
			return err
		}
		d, err := s.draft(c, r.PathValue("id"))
		if err != nil {
			return err
		}
		if ok, err := c.draftDecidable(d); err != nil {
			return err
		} else if !ok {
			return loa.Errorf(loa.EFORBIDDEN, "draft %q touches areas outside your scope (%s)", d.ID, c.tok.AreaID)
		}
		what := d.Kind + " " + d.Name + " proposed by " + d.CreatedBy
		if !approve {
			if d, err = s.Drafts.Reject(c.ctx, d.ID, c.tok.ID, note); err != nil {
				return err
			}
			c.audit("draft.reject", d.ID, what)
			writeJSON(w, http.StatusOK, d)
			return nil
		}
		if d, err = s.Drafts.Approve(c.ctx, d.ID, c.tok.ID, note); err != nil {
			return err
		}
		c.audit("draft.approve", d.ID, what)
		switch {
		case d.Schedule != nil:
			c.audit("schedule."+map[string]string{"create": "create", "replace": "update"}[d.Op], d.Schedule.ID, scheduleDetail(d.Schedule)+"; approved draft "+d.ID)
		case d.Playlist != nil:
			c.audit("playlist.create", d.Playlist.ID, "approved draft "+d.ID)
		case d.MediaID != "":
			c.audit("media.approve", d.MediaID, "approved draft "+d.ID)
		}
		writeJSON(w, http.StatusOK, d)
		return nil
	}
}

// withdrawDraft closes the caller's own pending draft unapplied.
func (s *Server) withdrawDraft(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.draft(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if d.CreatedBy != c.tok.ID {
		return loa.Errorf(loa.EFORBIDDEN, "draft %q is not yours to withdraw", d.ID)
	}
	if d, err = s.Drafts.Withdraw(c.ctx, d.ID, c.tok.ID); err != nil {
		return err
	}
	c.audit("draft.withdraw", d.ID, d.Kind+" "+d.Name)
	writeJSON(w, http.StatusOK, d)
	return nil
}
