package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	"github.com/loa-broadcast/loa/media"
	"github.com/loa-broadcast/loa/station"
)

// withDrafts serves e's API with the real draft service (and the real
// media import behind it), and adds approvers of xa-a and xa-b.
func (e *env) withDrafts() (apA, apB string) {
	e.t.Helper()
	s := *e.server
	logger := slog.New(slog.DiscardHandler)
	s.Drafts = station.NewApprovals(e.db, station.NewMedia(e.db, media.Options{}, station.TranscodeLimits{}, logger), e.sched, e.db, logger)
	srv := httptest.NewServer(api.ValidateWithSpec(e.t, s.Handler()))
	e.t.Cleanup(srv.Close)
	e.srv, e.server = srv, &s
	token := func(name, area string) string {
		tok := &loa.Token{Name: name, Role: loa.RoleApprover, AreaID: area}
		secret, err := e.db.CreateToken(context.Background(), tok)
		if err != nil {
			e.t.Fatal(err)
		}
		e.tokens[secret] = tok
		return secret
	}
	return token("lãnh đạo xã A", "xa-a"), token("lãnh đạo xã B", "xa-b")
}

func toneWAV(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := media.EncodeWAV(&b, media.AttentionTone(48000)[:24000], 48000, 1); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func (e *env) draftIDs(secret string) []string {
	e.t.Helper()
	r := e.do("GET", "/api/v1/drafts?state=pending", secret, nil)
	want(e.t, r, http.StatusOK)
	var list []loa.Draft
	r.json(e.t, &list)
	ids := []string{}
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestDraftsHeldByRoleAndScope: in xa-a, marked as needing approval, an
// operator's schedule, upload and playlist are held (202 {draft}); an
// admin's and another commune's operator's are not. Only an approver
// whose scope holds the draft sees and decides it; approving applies it
// as proposed and audits who approved what; rejecting and withdrawing
// change nothing.
func TestDraftsHeldByRoleAndScope(t *testing.T) {
	e := newEnv(t)
	apA, apB := e.withDrafts()

	wantError(t, e.do("PUT", "/api/v1/areas/xa-a/approval", e.opA, map[string]any{"needs_approval": false}), http.StatusForbidden, "forbidden")
	wantError(t, e.do("PUT", "/api/v1/areas/xa-a/approval", e.admin, map[string]any{}), http.StatusBadRequest, "invalid", "needs_approval")
	r := e.do("PUT", "/api/v1/areas/xa-a/approval", e.admin, map[string]any{"needs_approval": true})
	want(t, r, http.StatusOK)
	var area loa.Area
	if r.json(t, &area); !area.NeedsApproval {
		t.Fatalf("marked area: %s", r.body)
	}

	// The operator's schedule in a-1 (below xa-a) waits.
	r = e.do("POST", "/api/v1/schedules", e.opA, scheduleBody("sang", "a-1"))
	want(t, r, http.StatusAccepted)
	var sd loa.Draft
	r.json(t, &sd)
	if sd.Kind != loa.DraftSchedule || sd.State != loa.DraftPending || !slices.Equal(sd.Areas, []string{"a-1"}) || sd.CreatedBy != e.tokens[e.opA].ID {
		t.Errorf("held schedule: %s", r.body)
	}
	if ids := e.scheduleIDs(e.admin); len(ids) != 0 {
		t.Errorf("a held schedule is stored: %v", ids)
	}
	// Not held: another commune's operator, an admin.
	_, r = e.createSchedule(e.opB, scheduleBody("chieu", "b-1"))
	want(t, r, http.StatusCreated)
	_, r = e.createSchedule(e.admin, scheduleBody("toi", "a-1"))
	want(t, r, http.StatusCreated)

	// The operator's upload is stored as a draft that nothing may use.
	r = e.upload(e.opA, map[string]string{"name": "Bản tin xã"}, "tin.wav", toneWAV(t))
	want(t, r, http.StatusAccepted)
	var md loa.Draft
	r.json(t, &md)
	var m loa.Media
	if m = mediaOf(t, e, md.MediaID); md.Kind != loa.DraftMedia || m.State != loa.MediaDraft {
		t.Errorf("held upload: draft %+v, media %+v", md, m)
	}
	body := scheduleBody("dung-ban-nhap", "b-1")
	body["content"] = map[string]any{"media_id": md.MediaID}
	wantError(t, e.do("POST", "/api/v1/schedules", e.admin, body), http.StatusConflict, "not_approved", "waits for an approver")

	// A playlist, then withdrawn by its proposer.
	r = e.do("POST", "/api/v1/playlists", e.opA, map[string]any{"id": "pl-1", "name": "Sáng", "items": []map[string]any{{"media_id": "m-1"}}})
	want(t, r, http.StatusAccepted)
	var pd loa.Draft
	r.json(t, &pd)

	// Who sees what.
	all := []string{md.ID, pd.ID, sd.ID}
	slices.Sort(all)
	if got := e.draftIDs(apA); !slices.Equal(got, all) {
		t.Errorf("approver of xa-a sees %v, want %v", got, all)
	}
	if got := e.draftIDs(e.opA); !slices.Equal(got, all) {
		t.Errorf("their proposer sees %v, want %v", got, all)
	}
	for name, secret := range map[string]string{"approver of xa-b": apB, "operator of xa-b": e.opB, "province scoped to xa-a (no approve)": e.provA} {
		if got := e.draftIDs(secret); len(got) != 0 {
			t.Errorf("%s sees %v", name, got)
		}
	}
	wantError(t, e.do("POST", "/api/v1/drafts/"+sd.ID+"/approve", apB, nil), http.StatusNotFound, "not_found")
	wantError(t, e.do("POST", "/api/v1/drafts/"+sd.ID+"/approve", e.opA, nil), http.StatusForbidden, "forbidden")
	wantError(t, e.do("POST", "/api/v1/drafts/"+pd.ID+"/withdraw", apA, nil), http.StatusForbidden, "forbidden")

	want(t, e.do("POST", "/api/v1/drafts/"+pd.ID+"/withdraw", e.opA, nil), http.StatusOK)
	wantError(t, e.do("POST", "/api/v1/drafts/"+pd.ID+"/approve", apA, nil), http.StatusConflict, "conflict", "withdrawn")
	if _, err := e.db.Playlist(context.Background(), "pl-1"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("withdrawn playlist stored: %v", err)
	}

	// Rejected: the upload stays a draft.
	r = e.do("POST", "/api/v1/drafts/"+md.ID+"/reject", apA, map[string]any{"note": "Âm lượng quá nhỏ"})
	want(t, r, http.StatusOK)
	var got loa.Draft
	if r.json(t, &got); got.State != loa.DraftRejected || got.Note != "Âm lượng quá nhỏ" || got.DecidedBy != e.tokens[apA].ID {
		t.Errorf("rejected: %s", r.body)
	}
	if m = mediaOf(t, e, md.MediaID); m.State != loa.MediaDraft {
		t.Errorf("a rejected upload became usable: %+v", m)
	}

	// Approved: the schedule is created as proposed, naming its approver.
	r = e.do("POST", "/api/v1/drafts/"+sd.ID+"/approve", apA, nil)
	want(t, r, http.StatusOK)
	r = e.do("GET", "/api/v1/schedules/sang", e.opA, nil)
	want(t, r, http.StatusOK)
	var sc loa.Schedule
	if r.json(t, &sc); sc.ApprovedBy != e.tokens[apA].ID || sc.CreatedBy != e.tokens[e.opA].ID || sc.Rule.Time != "06:00" {
		t.Errorf("approved schedule: %s", r.body)
	}
	audit := e.auditActions()
	for _, a := range []string{"area.approval xa-a", "draft.propose " + sd.ID, "draft.approve " + sd.ID, "schedule.create sang",
		"draft.reject " + md.ID, "draft.withdraw " + pd.ID} {
		if !slices.Contains(audit, a) {
			t.Errorf("audit lacks %q: %v", a, audit)
		}
	}
	if got := e.draftIDs(apA); len(got) != 0 {
		t.Errorf("pending after the decisions: %v", got)
	}
}

func mediaOf(t *testing.T, e *env, id string) loa.Media {
	t.Helper()
	m, err := e.db.Media(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return *m
}

// TestDraftsEventTopic: the drafts topic brings an approver the drafts it
// may decide as they come, and removes them once decided; another
// commune's approver hears nothing of them.
func TestDraftsEventTopic(t *testing.T) {
	e := newEnv(t)
	e.server.EventInterval = 10 * time.Millisecond
	apA, apB := e.withDrafts()
	want(t, e.do("PUT", "/api/v1/areas/xa-a/approval", e.admin, map[string]any{"needs_approval": true}), http.StatusOK)
	readA, readB := openEvents(t, e, apA, "drafts"), openEvents(t, e, apB, "drafts")
	for _, read := range []func() consoleEvent{readA, readB} {
		if ev := read(); ev.topic != "drafts" || !ev.Reset || len(ev.Changed) != 0 {
			t.Fatalf("first drafts event: %+v", ev)
		}
	}
	r := e.do("POST", "/api/v1/schedules", e.opA, scheduleBody("sang", "a-1"))
	want(t, r, http.StatusAccepted)
	var d loa.Draft
	r.json(t, &d)
	if ev := readA(); !slices.Equal(ev.ids(t), []string{d.ID}) || ev.Reset {
		t.Fatalf("drafts change: %+v, want %s", ev, d.ID)
	}
	want(t, e.do("POST", "/api/v1/drafts/"+d.ID+"/approve", apA, nil), http.StatusOK)
	if ev := readA(); !slices.Equal(ev.Removed, []string{d.ID}) {
		t.Fatalf("after approval: %+v, want %s removed", ev, d.ID)
	}
	// B's stream went on with nothing: a held change of B's own commune is
	// the next thing it hears.
	want(t, e.do("PUT", "/api/v1/areas/xa-b/approval", e.admin, map[string]any{"needs_approval": true}), http.StatusOK)
	r = e.do("POST", "/api/v1/schedules", e.opB, scheduleBody("chieu", "b-1"))
	want(t, r, http.StatusAccepted)
	var db loa.Draft
	r.json(t, &db)
	if ev := readB(); !slices.Equal(ev.ids(t), []string{db.ID}) {
		t.Fatalf("B's first change: %+v, want only %s", ev, db.ID)
	}
}
