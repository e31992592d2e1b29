package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

// fakeCommands answers every device command as done at once.
type fakeCommands struct {
	mu     sync.Mutex
	sent   map[string]loa.CommandResult
	refuse error // when set, every command is refused with it
}

func (f *fakeCommands) Command(_ context.Context, device, op string, _ json.RawMessage) (loa.CommandResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return loa.CommandResult{Device: device, Op: op}, f.refuse
	}
	res := loa.CommandResult{ID: "c-" + device, Device: device, Op: op, State: "done", SentAt: testNow, DoneAt: testNow}
	f.sent[res.ID] = res
	return res, nil
}

func (f *fakeCommands) CommandResult(id string) (loa.CommandResult, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res, ok := f.sent[id]
	return res, ok
}

// fakeGroups settles a group command at once: every device done.
type fakeGroups struct {
	mu  sync.Mutex
	all map[string]*loa.GroupCommand
}

func (f *fakeGroups) StartGroupCommand(_ context.Context, g *loa.GroupCommand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g.ID, g.State, g.CreatedAt, g.SettledAt = "g-1", loa.GroupDone, testNow, testNow
	g.Results = []loa.GroupResult{{Device: "dev-a1", Command: "c-dev-a1", State: loa.GroupDoneAck, AckedAt: testNow}}
	g.Totals.Done = 1
	c := *g
	f.all[g.ID] = &c
	return nil
}

func (f *fakeGroups) GroupCommand(_ context.Context, id string) (*loa.GroupCommand, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g, ok := f.all[id]; ok {
		c := *g
		return &c, nil
	}
	return nil, loa.Errorf(loa.ENOTFOUND, "group command %q not found", id)
}

func (f *fakeGroups) WaitGroupCommand(ctx context.Context, id string) (*loa.GroupCommand, error) {
	return f.GroupCommand(ctx, id)
}

// fakeFallbacks keeps fallbacks in the store.
type fakeFallbacks struct{ e *env }

func (f fakeFallbacks) SetFallback(ctx context.Context, fb *loa.Fallback) error {
	if fb.Priority == 0 {
		fb.Priority = 16
	}
	return f.e.db.PutFallback(ctx, fb)
}
func (f fakeFallbacks) ClearFallback(ctx context.Context, area string) error {
	return f.e.db.DeleteFallback(ctx, area)
}
func (f fakeFallbacks) Fallbacks(ctx context.Context) ([]*loa.Fallback, error) {
	return f.e.db.Fallbacks(ctx)
}

// TestSpecOfTheOtherRoutes sends a good request to each route the other
// tests leave to the whole-daemon tests, so the spec's bodies for them
// are checked against what the handlers write.
func TestSpecOfTheOtherRoutes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.db.PutMedia(ctx, &loa.Media{ID: "m-1", Name: "Nhạc", Hash: strings.Repeat("cd", 32), Size: 10}); err != nil {
		t.Fatal(err)
	}
	cmds := &fakeCommands{sent: map[string]loa.CommandResult{}}
	s := &api.Server{Areas: e.db, Devices: e.db, Tokens: e.db, Audit: e.db, Playlists: e.db,
		Alerts: &fakeAlerts{db: e.db}, Commands: cmds,
		Groups: &fakeGroups{all: map[string]*loa.GroupCommand{}}, Fallbacks: fakeFallbacks{e},
		Now: func() time.Time { return testNow }}
	e.srv.Close()
	e.srv = httptest.NewServer(api.ValidateWithSpec(t, s.Handler()))
	t.Cleanup(e.srv.Close)

	// Alerts: send, list, read, follow, cancel; gap reads back as sent.
	r := e.do("POST", "/api/v1/alerts", e.province, map[string]any{"title": "Bão số 3", "level": "khan_cap",
		"content": map[string]any{"text": "Bão đổ bộ lúc 18 giờ", "tone": true}, "targets": map[string]any{"devices": []string{"dev-a1"}},
		"repeats": 2, "gap": "5s", "expires_in": "2h"})
	want(t, r, http.StatusCreated)
	var a struct {
		ID    string `json:"id"`
		Gap   string `json:"gap"`
		GapNs int64  `json:"gap_ns"`
	}
	r.json(t, &a)
	if a.Gap != "5s" || a.GapNs != 5e9 {
		t.Errorf("alert gap %q, %d ns; want 5s", a.Gap, a.GapNs)
	}
	want(t, e.do("GET", "/api/v1/alerts", e.province, nil), http.StatusOK)
	want(t, e.do("GET", "/api/v1/alerts/"+a.ID, e.province, nil), http.StatusOK)
	r = e.do("GET", "/api/v1/alerts/"+a.ID+"/events?access_token="+e.province, "", nil)
	want(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), "event: report") {
		t.Errorf("alert events %s", r.body)
	}
	want(t, e.do("POST", "/api/v1/alerts/"+a.ID+"/cancel", e.province, map[string]any{"reason": "tập dượt"}), http.StatusOK)

	// Device and group commands; the group timeout reads back as sent.
	want(t, e.do("POST", "/api/v1/devices/dev-a1/commands", e.techA, map[string]any{"op": "volume", "args": map[string]any{"level": 70}}), http.StatusOK)
	want(t, e.do("GET", "/api/v1/commands/c-dev-a1", e.techA, nil), http.StatusOK)
	// The controller's broker link down: 503, with when to try again.
	cmds.mu.Lock()
	cmds.refuse = busy{loa.Errorf(loa.EUNAVAILABLE, "device dev-a1: volume not sent: the controller is not connected to the mqtt broker")}
	cmds.mu.Unlock()
	r = e.do("POST", "/api/v1/devices/dev-a1/commands", e.techA, map[string]any{"op": "volume", "args": map[string]any{"level": 70}})
	wantError(t, r, http.StatusServiceUnavailable, loa.EUNAVAILABLE, "broker")
	if got := r.header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After %q, want 30", got)
	}
	cmds.mu.Lock()
	cmds.refuse = nil
	cmds.mu.Unlock()
	r = e.do("POST", "/api/v1/areas/xa-a/commands?wait=1s", e.techA, map[string]any{"op": "test", "timeout": "20s"})
	want(t, r, http.StatusOK)
	var g struct {
		Timeout   string `json:"timeout"`
		TimeoutMs int64  `json:"timeout_ms"`
	}
	r.json(t, &g)
	if g.Timeout != "20s" || g.TimeoutMs != 20000 {
		t.Errorf("group timeout %q, %d ms; want 20s", g.Timeout, g.TimeoutMs)
	}
	want(t, e.do("GET", "/api/v1/group-commands/g-1", e.techA, nil), http.StatusOK)

	// Fallbacks, test marks and playlists.
	want(t, e.do("PUT", "/api/v1/areas/a-1/fallback", e.opA, map[string]any{"media_id": "m-1", "priority": 8}), http.StatusOK)
	want(t, e.do("GET", "/api/v1/fallbacks", e.opA, nil), http.StatusOK)
	want(t, e.do("DELETE", "/api/v1/areas/a-1/fallback", e.opA, nil), http.StatusNoContent)
	want(t, e.do("PUT", "/api/v1/areas/a-1/tests", e.admin, map[string]any{"tests": true}), http.StatusOK)
	want(t, e.do("POST", "/api/v1/playlists", e.opA, map[string]any{"id": "p", "name": "P", "items": []map[string]any{{"media_id": "m-1"}}}), http.StatusCreated)
	want(t, e.do("GET", "/api/v1/playlists", e.opA, nil), http.StatusOK)
}
