package station_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/station"
)

// approvalWorld: province xa with communes tk (needs approval, receiver
// tk-1) and bc (receiver bc-1), the draft service over the real store.
type approvalWorld struct {
	*world
	approvals *station.Approvals
	schedules *station.Schedules
	media     *station.Media
}

func newApprovalWorld(t *testing.T) *approvalWorld {
	t.Helper()
	ctx := context.Background()
	w := newWorld(t, "", newFleet("tk-1", "bc-1"))
	for _, a := range []*loa.Area{
		{ID: "tk", ParentID: "xa", Name: "Tân Kỳ", Kind: loa.AreaCommune, NeedsApproval: true},
		{ID: "bc", ParentID: "xa", Name: "Bắc Cạn", Kind: loa.AreaCommune},
	} {
		if err := w.db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"tk-1", "bc-1"} {
		if _, err := w.db.CreateDevice(ctx, &loa.Device{ID: d, AreaID: d[:2]}); err != nil {
			t.Fatal(err)
		}
	}
	m := station.NewMedia(w.db, media.Options{}, station.TranscodeLimits{}, discard)
	sch := station.NewSchedules(w.db, discard)
	return &approvalWorld{world: w, approvals: station.NewApprovals(w.db, m, sch, w.db, discard), schedules: sch, media: m}
}

func wavOf(t *testing.T, seconds float64, freqShift int) []byte {
	t.Helper()
	pcm := media.AttentionTone(48000)[:int(48000*seconds)]
	for i := range pcm { // a different audio for each upload: uploads are kept once by content
		pcm[i] += int16(freqShift * (i % 7))
	}
	var b bytes.Buffer
	if err := media.EncodeWAV(&b, pcm, 48000, 1); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestApprovalHolds: only an operator's change is held, and only when
// an area it touches (by area or by receiver) or an ancestor needs
// approval.
func TestApprovalHolds(t *testing.T) {
	ctx := context.Background()
	w := newApprovalWorld(t)
	cases := []struct {
		role    string
		targets loa.Targets
		held    bool
	}{
		{loa.RoleOperator, loa.Targets{Areas: []string{"tk"}}, true},
		{loa.RoleOperator, loa.Targets{Devices: []string{"tk-1"}}, true},
		{loa.RoleOperator, loa.Targets{Areas: []string{"bc"}, Devices: []string{"tk-1"}}, true},
		{loa.RoleOperator, loa.Targets{Areas: []string{"bc"}}, false},
		{loa.RoleOperator, loa.Targets{}, false},
		{loa.RoleAdmin, loa.Targets{Areas: []string{"tk"}}, false},
		{loa.RoleProvince, loa.Targets{Areas: []string{"tk"}}, false},
		{loa.RoleApprover, loa.Targets{Areas: []string{"tk"}}, false},
	}
	for _, c := range cases {
		areas, held, err := w.approvals.Holds(ctx, &loa.Token{ID: "t", Role: c.role}, c.targets)
		if err != nil {
			t.Fatal(err)
		}
		if held != c.held {
			t.Errorf("%s → %+v: held %v, want %v (areas %v)", c.role, c.targets, held, c.held, areas)
		}
	}
	// A mark on the province holds every commune below it.
	if _, err := w.db.SetAreaApproval(ctx, "xa", true); err != nil {
		t.Fatal(err)
	}
	if _, held, _ := w.approvals.Holds(ctx, &loa.Token{Role: loa.RoleOperator}, loa.Targets{Areas: []string{"bc"}}); !held {
		t.Error("bc under a province that needs approval: not held")
	}
}

// TestApprovalMediaDraft: a held upload is stored but nothing may play,
// schedule or list it until approved; then it plays, and the session's
// started line names the approver.
func TestApprovalMediaDraft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w := newApprovalWorld(t)
		d, m, err := w.approvals.ProposeMedia(ctx, "Bản tin", bytes.NewReader(wavOf(t, 1, 1)), "user:op", []string{"tk"})
		if err != nil {
			t.Fatal(err)
		}
		if d == nil || d.State != loa.DraftPending || d.Kind != loa.DraftMedia || d.MediaID != m.ID || m.State != loa.MediaDraft {
			t.Fatalf("draft %+v, media %+v: want a pending media draft of a draft item", d, m)
		}
		targets := loa.Targets{Areas: []string{"tk"}}
		if err := w.sessions.StartSession(ctx, &loa.Session{MediaID: m.ID, Targets: targets, Priority: 50}); loa.ErrorCode(err) != loa.ENOTAPPROVED {
			t.Errorf("playing a draft: %v, want %s", err, loa.ENOTAPPROVED)
		}
		sc := &loa.Schedule{ID: "s1", Name: "Sáng", Rule: loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}, Content: loa.Content{MediaID: m.ID}, Targets: targets, Priority: 50, Enabled: true}
		if err := w.schedules.CreateSchedule(ctx, sc); loa.ErrorCode(err) != loa.ENOTAPPROVED {
			t.Errorf("scheduling a draft: %v, want %s", err, loa.ENOTAPPROVED)
		}
		if err := w.db.CreatePlaylist(ctx, &loa.Playlist{ID: "p1", Name: "P", Items: []loa.PlaylistItem{{MediaID: m.ID}}}); loa.ErrorCode(err) != loa.ENOTAPPROVED {
			t.Errorf("a playlist of a draft: %v, want %s", err, loa.ENOTAPPROVED)
		}
		if err := w.db.PutFallback(ctx, &loa.Fallback{AreaID: "tk", Content: loa.Content{MediaID: m.ID}}); loa.ErrorCode(err) != loa.ENOTAPPROVED {
			t.Errorf("a fallback of a draft: %v, want %s", err, loa.ENOTAPPROVED)
		}
		// The same upload again waits in the same draft.
		if again, _, err := w.approvals.ProposeMedia(ctx, "Bản tin", bytes.NewReader(wavOf(t, 1, 1)), "user:op", []string{"tk"}); err != nil || again == nil || again.ID != d.ID {
			t.Errorf("the same upload again: %+v, %v; want draft %s", again, err, d.ID)
		}

		got, err := w.approvals.Approve(ctx, d.ID, "user:ld", "")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != loa.DraftApproved || got.DecidedBy != "user:ld" || got.DecidedAt.IsZero() {
			t.Errorf("approved draft: %+v", got)
		}
		if m, _ = w.db.Media(ctx, m.ID); m.State != "" || m.ApprovedBy != "user:ld" {
			t.Errorf("approved media: state %q approved by %q", m.State, m.ApprovedBy)
		}
		s := &loa.Session{MediaID: m.ID, Targets: targets, Priority: 50, CreatedBy: "user:op"}
		if err := w.sessions.StartSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		log, err := w.db.PlayLog(ctx, loa.PlayLogFilter{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range log {
			if e.SessionID == s.ID && e.Event == loa.PlayStarted {
				found = strings.Contains(e.Detail, "approved by user:ld")
				if !found {
					t.Errorf("started line %q names no approval", e.Detail)
				}
			}
		}
		if !found {
			t.Error("no started line naming the approval")
		}
		if _, err := w.approvals.Reject(ctx, d.ID, "user:ld", ""); loa.ErrorCode(err) != loa.ECONFLICT {
			t.Errorf("deciding twice: %v, want conflict", err)
		}
	})
}

// TestApprovalPlaylistAndSchedule: a held playlist and schedule change
// nothing until approved; approving a playlist of an upload still
// waiting fails and keeps the draft; approval applies them as proposed
// (with the approver named); reject and withdraw change nothing.
func TestApprovalPlaylistAndSchedule(t *testing.T) {
	ctx := context.Background()
	w := newApprovalWorld(t)
	dm, m, err := w.approvals.ProposeMedia(ctx, "Nhạc", bytes.NewReader(wavOf(t, 0.5, 2)), "user:op", []string{"tk"})
	if err != nil {
		t.Fatal(err)
	}
	dp := &loa.Draft{Kind: loa.DraftPlaylist, Areas: []string{"tk"}, CreatedBy: "user:op",
		Playlist: &loa.Playlist{ID: "p1", Name: "Buổi sáng", Items: []loa.PlaylistItem{{MediaID: m.ID}}, CreatedBy: "user:op"}}
	if err := w.approvals.Propose(ctx, dp); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.Playlist(ctx, "p1"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("held playlist stored: %v", err)
	}
	if _, err := w.approvals.Approve(ctx, dp.ID, "user:ld", ""); loa.ErrorCode(err) != loa.ENOTAPPROVED {
		t.Errorf("approving a playlist of a waiting upload: %v, want %s", err, loa.ENOTAPPROVED)
	}
	if d, _ := w.approvals.Draft(ctx, dp.ID); d.State != loa.DraftPending {
		t.Errorf("after a failed approval: %s, want pending", d.State)
	}
	if _, err := w.approvals.Approve(ctx, dm.ID, "user:ld", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.approvals.Approve(ctx, dp.ID, "user:ld", "ok"); err != nil {
		t.Fatal(err)
	}
	if p, err := w.db.Playlist(ctx, "p1"); err != nil || p.ApprovedBy != "user:ld" || p.CreatedBy != "user:op" || len(p.Items) != 1 {
		t.Errorf("approved playlist: %+v, %v", p, err)
	}

	sc := &loa.Schedule{ID: "s1", Name: "Sáng", Rule: loa.Rule{Kind: loa.RuleDaily, Time: "06:00"}, Content: loa.Content{PlaylistID: "p1"},
		Targets: loa.Targets{Areas: []string{"tk"}}, Priority: 50, Enabled: true, CreatedBy: "user:op"}
	bad := &loa.Draft{Kind: loa.DraftSchedule, Op: "create", Areas: []string{"tk"}, CreatedBy: "user:op",
		Schedule: &loa.Schedule{ID: "s0", Name: "x", Rule: loa.Rule{Kind: "sometimes"}, Content: sc.Content, Targets: sc.Targets}}
	if err := w.approvals.Propose(ctx, bad); loa.ErrorCode(err) != loa.EINVALID {
		t.Errorf("a bad rule proposed: %v, want invalid", err)
	}
	clone := func(sc *loa.Schedule) *loa.Schedule { c := *sc; return &c }
	rejected := &loa.Draft{Kind: loa.DraftSchedule, Op: "create", Areas: []string{"tk"}, CreatedBy: "user:op", Schedule: clone(sc)}
	withdrawn := &loa.Draft{Kind: loa.DraftSchedule, Op: "create", Areas: []string{"tk"}, CreatedBy: "user:op", Schedule: clone(sc)}
	approved := &loa.Draft{Kind: loa.DraftSchedule, Op: "create", Areas: []string{"tk"}, CreatedBy: "user:op", Schedule: clone(sc)}
	for _, d := range []*loa.Draft{rejected, withdrawn, approved} {
		if err := w.approvals.Propose(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := w.approvals.Reject(ctx, rejected.ID, "user:ld", "sai giờ"); err != nil || d.State != loa.DraftRejected || d.Note != "sai giờ" {
		t.Errorf("rejected: %+v, %v", d, err)
	}
	if d, err := w.approvals.Withdraw(ctx, withdrawn.ID, "user:op"); err != nil || d.State != loa.DraftWithdrawn {
		t.Errorf("withdrawn: %+v, %v", d, err)
	}
	if _, err := w.schedules.Schedule(ctx, "s1"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("rejected and withdrawn schedules stored: %v", err)
	}
	if _, err := w.approvals.Approve(ctx, approved.ID, "user:ld", ""); err != nil {
		t.Fatal(err)
	}
	if got, err := w.schedules.Schedule(ctx, "s1"); err != nil || got.ApprovedBy != "user:ld" || got.CreatedBy != "user:op" || got.Rule.Time != "06:00" {
		t.Errorf("approved schedule: %+v, %v", got, err)
	}
	// A change of it, held and approved, replaces it.
	changed := *sc
	changed.Rule.Time = "17:00"
	rep := &loa.Draft{Kind: loa.DraftSchedule, Op: "replace", Areas: []string{"tk"}, CreatedBy: "user:op", Schedule: &changed}
	if err := w.approvals.Propose(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.schedules.Schedule(ctx, "s1"); got.Rule.Time != "06:00" {
		t.Errorf("a held change applied at once: %s", got.Rule.Time)
	}
	if _, err := w.approvals.Approve(ctx, rep.ID, "user:ld", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.schedules.Schedule(ctx, "s1"); got.Rule.Time != "17:00" {
		t.Errorf("approved change: %s, want 17:00", got.Rule.Time)
	}
	all, err := w.approvals.Drafts(ctx)
	if err != nil || len(all) != 6 {
		t.Errorf("drafts: %d, %v; want 6 (the bad one not kept)", len(all), err)
	}
}
