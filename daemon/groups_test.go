package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
	firmwaresim "github.com/loa-broadcast/loa/firmware-sim"
	"github.com/loa-broadcast/loa/loatest"
	"github.com/loa-broadcast/loa/protocol"
)

// waitDeviceOffline polls the API until the device shows offline.
func waitDeviceOffline(t *testing.T, c *api.Client, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var v api.DeviceView
		if err := c.JSON(ctx, "GET", "/api/v1/devices/"+id, nil, &v); err != nil {
			t.Fatal(err)
		}
		if v.State != nil && !v.State.Online {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s never showed offline: %+v", id, v.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A volume command to a commune of 8 receivers, 2 of them dead: the 6
// live ones apply it (and report it in telemetry), the 2 dead ones are
// marked offline without being sent anything. A speaker test to the
// commune fails on the receiver whose amplifier is off, with its result.
func TestSystemGroupCommands(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 16, tele: 200 * time.Millisecond}) // 8 in commune a, 8 in b
	ctx := context.Background()
	inA := s.byArea["a"]
	if len(inA) != 8 {
		t.Fatalf("%d receivers in commune a, want 8", len(inA))
	}
	dead := map[string]bool{inA[2].ID(): true, inA[5].ID(): true}
	for _, r := range inA {
		if dead[r.ID()] {
			r.Kill()
			waitDeviceOffline(t, s.api, r.ID())
		}
	}

	g, err := s.api.GroupCommand(ctx, "a", api.GroupCommandRequest{Op: "volume", Args: json.RawMessage(`{"level":35}`), Timeout: "20s"}, 0)
	if err != nil {
		t.Fatalf("group volume: %v", err)
	}
	if g.ID == "" || g.AreaID != "a" || g.Op != "volume" || len(g.Results) != 8 || g.CreatedBy == "" {
		t.Fatalf("created group command %+v", g)
	}
	for id := range dead {
		if r, _ := groupResult(g, id); r.State != loa.GroupOffline {
			t.Errorf("%s is dead but its result at creation is %+v, want offline at once", id, r)
		}
	}
	g, err = s.api.WaitGroupCommand(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (loa.GroupTotals{Done: 6, Offline: 2}); g.State != loa.GroupDone || g.Totals != want {
		t.Fatalf("settled group command: state %s totals %+v, want done %+v; results %+v", g.State, g.Totals, want, g.Results)
	}
	for _, r := range inA {
		res, ok := groupResult(g, r.ID())
		switch {
		case !ok:
			t.Errorf("%s has no result", r.ID())
		case dead[r.ID()]:
			if res.State != loa.GroupOffline || res.Command != "" {
				t.Errorf("%s: %+v, want offline and not sent", r.ID(), res)
			}
			if v := r.Volume(); v != firmwaresim.DefaultVolume {
				t.Errorf("dead %s changed volume to %d", r.ID(), v)
			}
		default:
			if res.State != loa.GroupDoneAck || res.AckedAt.Before(g.CreatedAt) {
				t.Errorf("%s: %+v, want done, acked after %v", r.ID(), res, g.CreatedAt)
			}
			if v := r.Volume(); v != 35 {
				t.Errorf("%s volume %d, want 35", r.ID(), v)
			}
		}
	}
	for _, r := range s.byArea["b"] {
		if v := r.Volume(); v != firmwaresim.DefaultVolume {
			t.Errorf("%s in commune b changed volume to %d", r.ID(), v)
		}
	}
	// The live receivers report the new volume in their telemetry.
	deadline := time.Now().Add(time.Minute)
	for _, r := range inA {
		if dead[r.ID()] {
			continue
		}
		for {
			var v api.DeviceView
			if err := s.api.JSON(ctx, "GET", "/api/v1/devices/"+r.ID(), nil, &v); err != nil {
				t.Fatal(err)
			}
			if v.State != nil && v.State.Telemetry != nil && v.State.Telemetry.Volume == 35 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never reported volume 35 in telemetry: %+v", r.ID(), v.State)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Settled, it is read back from the store, the same.
	if again, err := s.m.DB.GroupCommand(ctx, g.ID); err != nil || again.State != loa.GroupDone || again.Totals != g.Totals {
		t.Errorf("stored group command %+v, %v", again, err)
	}

	// Amplifier off on one receiver: a speaker test fails there, with the
	// measured level, and passes on the others.
	ampOff := inA[0]
	if err := s.api.JSON(ctx, "POST", "/api/v1/devices/"+ampOff.ID()+"/commands",
		map[string]any{"op": "amp", "args": map[string]bool{"on": false}}, nil); err != nil {
		t.Fatal(err)
	}
	g, err = s.api.GroupCommand(ctx, "a", api.GroupCommandRequest{Op: "test", Args: json.RawMessage(`{"duration_ms":200}`)}, time.Minute)
	if err != nil {
		t.Fatalf("group test: %v", err)
	}
	if want := (loa.GroupTotals{Done: 5, Failed: 1, Offline: 2}); g.State != loa.GroupDone || g.Totals != want {
		t.Fatalf("speaker test: state %s totals %+v, want done %+v; results %+v", g.State, g.Totals, want, g.Results)
	}
	for _, r := range inA {
		if dead[r.ID()] {
			continue
		}
		res, _ := groupResult(g, r.ID())
		tr, err := protocol.DecodeTestResult(res.Result)
		if err != nil {
			t.Errorf("%s: test result %s: %v", r.ID(), res.Result, err)
			continue
		}
		if r == ampOff {
			if res.State != loa.GroupFailed || tr.Passed || tr.LevelDB > protocol.TestPassLevelDBFS || res.Msg == "" {
				t.Errorf("amp off %s: %+v (%+v), want failed with a level below the pass level", r.ID(), res, tr)
			}
		} else if res.State != loa.GroupDoneAck || !tr.Passed {
			t.Errorf("%s: %+v (%+v), want done and passed", r.ID(), res, tr)
		}
	}
}

// Bad group commands are refused with the field named and send nothing;
// a technician sees and commands only its own commune.
func TestSystemGroupCommandBadInputAndScope(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 4})
	ctx := context.Background()
	for _, c := range []struct {
		name, path string
		body       any
		status     int
		field      string
	}{
		{"unknown op", "/api/v1/areas/a/commands", map[string]any{"op": "dance"}, 400, `"dance"`},
		{"play is for sessions", "/api/v1/areas/a/commands", map[string]any{"op": "play"}, 400, `"play"`},
		{"bad args", "/api/v1/areas/a/commands", map[string]any{"op": "volume", "args": map[string]int{"level": 101}}, 400, "args"},
		{"missing args", "/api/v1/areas/a/commands", map[string]any{"op": "mute"}, 400, "args"},
		{"bad timeout", "/api/v1/areas/a/commands", map[string]any{"op": "volume", "args": map[string]int{"level": 1}, "timeout": "soon"}, 400, "timeout"},
		{"huge timeout", "/api/v1/areas/a/commands", map[string]any{"op": "volume", "args": map[string]int{"level": 1}, "timeout": "1h"}, 400, "timeout"},
		{"bad wait", "/api/v1/areas/a/commands?wait=forever", map[string]any{"op": "volume", "args": map[string]int{"level": 1}}, 400, "wait"},
		{"unknown area", "/api/v1/areas/zz/commands", map[string]any{"op": "volume", "args": map[string]int{"level": 1}}, 404, "zz"},
		{"unknown field", "/api/v1/areas/a/commands", map[string]any{"op": "volume", "args": map[string]int{"level": 1}, "devices": []string{"x"}}, 400, "devices"},
	} {
		err := s.api.JSON(ctx, "POST", c.path, c.body, nil)
		ae, ok := err.(*api.ClientError)
		if !ok || ae.Status != c.status || !strings.Contains(ae.Message, c.field) {
			t.Errorf("%s: got %v, want HTTP %d naming %s", c.name, err, c.status, c.field)
		}
	}
	if err := s.api.JSON(ctx, "GET", "/api/v1/group-commands/nope", nil, nil); !isStatus(err, http.StatusNotFound) {
		t.Errorf("unknown group command: %v, want 404", err)
	}
	for _, r := range s.fleet.Receivers() {
		if v := r.Volume(); v != firmwaresim.DefaultVolume {
			t.Errorf("%s volume %d after refused commands", r.ID(), v)
		}
	}

	var tok struct {
		Secret string `json:"secret"`
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "tech b", "role": "technician", "area_id": "b"}, &tok); err != nil {
		t.Fatal(err)
	}
	techB := api.NewClient(s.m.URL(), tok.Secret)
	if _, err := techB.GroupCommand(ctx, "a", api.GroupCommandRequest{Op: "volume", Args: json.RawMessage(`{"level":1}`)}, 0); !isStatus(err, http.StatusNotFound) {
		t.Errorf("technician of b commanding commune a: %v, want 404", err)
	}
	if _, err := techB.GroupCommand(ctx, "p", api.GroupCommandRequest{Op: "volume", Args: json.RawMessage(`{"level":1}`)}, 0); !isStatus(err, http.StatusNotFound) {
		t.Errorf("technician of b commanding the province: %v, want 404", err)
	}
	own, err := techB.GroupCommand(ctx, "b", api.GroupCommandRequest{Op: "volume", Args: json.RawMessage(`{"level":60}`)}, time.Minute)
	if err != nil || own.State != loa.GroupDone || own.Totals.Done != 2 {
		t.Fatalf("technician of b commanding b: %+v, %v", own, err)
	}
	admin, err := s.api.GroupCommand(ctx, "a", api.GroupCommandRequest{Op: "volume", Args: json.RawMessage(`{"level":20}`)}, time.Minute)
	if err != nil || admin.Totals.Done != 2 {
		t.Fatalf("admin group command: %+v, %v", admin, err)
	}
	if _, err := techB.GetGroupCommand(ctx, admin.ID, 0); !isStatus(err, http.StatusNotFound) {
		t.Errorf("technician of b reading commune a's group command: %v, want 404", err)
	}
	for _, r := range s.byArea["a"] {
		if v := r.Volume(); v != 20 {
			t.Errorf("%s volume %d, want 20", r.ID(), v)
		}
	}
	var audit []loa.AuditRecord
	if err := s.api.JSON(ctx, "GET", "/api/v1/audit", nil, &audit); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range audit {
		if a.Action == "group.command" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d group.command audit records, want 2 (refused ones are not)", n)
	}
}

func isStatus(err error, status int) bool {
	ae, ok := err.(*api.ClientError)
	return ok && ae.Status == status
}

// A group command still running when the controller stops is written
// settled, its silent device timed out with the reason; one a crash left
// running is settled by the next start.
func TestSystemGroupCommandAcrossRestart(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	m1 := openMain(t, cfg)
	c := api.NewClient(m1.URL(), m1.AdminToken)
	for _, a := range []loa.Area{{ID: "p", Name: "P", Kind: loa.AreaProvince}, {ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune}} {
		if err := c.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	pw, err := c.CreateDevice(ctx, loa.Device{ID: "rx-silent", AreaID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	loatest.ConnectDevice(t, m1.MQTTURL(), loatest.DeviceConfig{ID: "rx-silent", Password: pw, ClientID: "rx-silent", Boot: 1, Conn: 1}) // online, never acks
	waitOnlineAPI(t, c, "rx-silent", true)
	g, err := c.GroupCommand(ctx, "a", api.GroupCommandRequest{Op: "volume", Args: json.RawMessage(`{"level":9}`), Timeout: "5m"}, 0)
	if err != nil || g.State != loa.GroupRunning || g.Totals.Pending != 1 {
		t.Fatalf("group command %+v, %v; want running with 1 pending", g, err)
	}
	crashed := &loa.GroupCommand{ID: "crashed", AreaID: "a", Op: "mute", State: loa.GroupRunning, CreatedAt: time.Now(),
		Results: []loa.GroupResult{{Device: "rx-silent", State: loa.GroupPending}}}
	crashed.Count()
	if err := m1.DB.PutGroupCommand(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := openMain(t, cfg)
	defer m2.Close()
	c2 := api.NewClient(m2.URL(), c.Token)
	for _, id := range []string{g.ID, "crashed"} {
		got, err := c2.GetGroupCommand(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		r := got.Results[0]
		if got.State != loa.GroupDone || got.Totals != (loa.GroupTotals{Timeout: 1}) || r.State != loa.GroupTimeout ||
			!strings.Contains(r.Msg, "controller stopped") || got.SettledAt.IsZero() {
			t.Errorf("%s after the restart: %+v, want done with rx-silent timed out by the stop", id, got)
		}
	}
}

// groupResult returns the result of device in g.
func groupResult(g *loa.GroupCommand, device string) (loa.GroupResult, bool) {
	i, ok := slices.BinarySearchFunc(g.Results, device, func(r loa.GroupResult, id string) int {
		return strings.Compare(r.Device, id)
	})
	if !ok {
		return loa.GroupResult{}, false
	}
	return g.Results[i], true
}
