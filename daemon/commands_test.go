package daemon

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/api"
)

func TestSystemVolumeCommand(t *testing.T) {
	s := startSystem(t, systemOpts{receivers: 2}) // rx-000 in commune a, rx-001 in b
	ctx := context.Background()
	var res loa.CommandResult
	err := s.api.JSON(ctx, "POST", "/api/v1/devices/rx-000/commands",
		map[string]any{"op": "volume", "args": map[string]int{"level": 40}}, &res)
	if err != nil {
		t.Fatalf("volume: %v", err)
	}
	if res.State != "done" || res.ID == "" {
		t.Errorf("result %+v, want done with an id", res)
	}
	if v := s.byArea["a"][0].Volume(); v != 40 {
		t.Errorf("receiver volume %d after the command, want 40", v)
	}
	var again loa.CommandResult
	if err := s.api.JSON(ctx, "GET", "/api/v1/commands/"+res.ID, nil, &again); err != nil || again.State != "done" {
		t.Errorf("result lookup: %+v %v", again, err)
	}

	// A technician of commune b sees neither rx-000 nor its command.
	var tok struct {
		Secret string `json:"secret"`
	}
	if err := s.api.JSON(ctx, "POST", "/api/v1/tokens", map[string]string{"name": "tech b", "role": "technician", "area_id": "b"}, &tok); err != nil {
		t.Fatal(err)
	}
	techB := api.NewClient(s.m.URL(), tok.Secret)
	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"other commune's device", "POST", "/api/v1/devices/rx-000/commands", map[string]any{"op": "volume", "args": map[string]int{"level": 0}}, 404},
		{"other commune's command", "GET", "/api/v1/commands/" + res.ID, nil, 404},
	} {
		err := techB.JSON(ctx, c.method, c.path, c.body, nil)
		if ae, ok := err.(*api.ClientError); !ok || ae.Status != c.status {
			t.Errorf("%s: got %v, want HTTP %d", c.name, err, c.status)
		}
	}
	if v := s.byArea["a"][0].Volume(); v != 40 {
		t.Errorf("an out-of-scope command changed the volume to %d", v)
	}
	if err := techB.JSON(ctx, "POST", "/api/v1/devices/rx-001/commands", map[string]any{"op": "volume", "args": map[string]int{"level": 55}}, nil); err != nil {
		t.Errorf("own commune's device: %v", err)
	}

	for _, c := range []struct {
		name string
		body any
		want int
	}{
		{"level out of range", map[string]any{"op": "volume", "args": map[string]int{"level": 101}}, 400},
		{"play is for sessions", map[string]any{"op": "play", "args": map[string]string{}}, 400},
		{"unknown op", map[string]any{"op": "dance"}, 400},
	} {
		err := s.api.JSON(ctx, "POST", "/api/v1/devices/rx-000/commands", c.body, nil)
		if ae, ok := err.(*api.ClientError); !ok || ae.Status != c.want {
			t.Errorf("%s: got %v, want HTTP %d", c.name, err, c.want)
		}
	}
	err = s.api.JSON(ctx, "POST", "/api/v1/devices/nobody/commands", map[string]any{"op": "volume", "args": map[string]int{"level": 1}}, nil)
	if ae, ok := err.(*api.ClientError); !ok || ae.Status != 404 {
		t.Errorf("unknown device: got %v, want 404", err)
	}
}
