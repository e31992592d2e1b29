package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/loa-broadcast/loa"
)

// TestRelays: a relay is created once, replaced keeping who made it,
// names fallback media that exists (which then cannot be deleted), and is
// deleted only while no schedule plays it.
func TestRelays(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	if list, err := db.Relays(ctx); err != nil || len(list) != 0 {
		t.Fatalf("no relays yet: %v %v", list, err)
	}
	r := &loa.Relay{ID: "vov1", Name: "VOV1", URLs: []string{"http://h/vov1.mp3"}, CreatedBy: "tok-a"}
	if err := db.PutRelay(ctx, r, false); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("update of a missing relay: %v", err)
	}
	if err := db.PutRelay(ctx, r, true); err != nil {
		t.Fatal(err)
	}
	if err := db.PutRelay(ctx, r, true); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("second create: %v", err)
	}
	r2 := &loa.Relay{ID: "vov1", Name: "VOV1 mới", URLs: []string{"http://h/a", "rtmp://h/b"}, FallbackMediaID: "nope", CreatedBy: "tok-b"}
	if err := db.PutRelay(ctx, r2, false); loa.ErrorCode(err) != loa.ENOTFOUND || !strings.HasPrefix(loa.ErrorMessage(err), "fallback_media_id:") {
		t.Errorf("missing fallback media: %v", err)
	}
	m := &loa.Media{ID: "m1", Name: "nhạc", Hash: hashOf("a1")}
	if err := db.PutMedia(ctx, m); err != nil {
		t.Fatal(err)
	}
	r2.FallbackMediaID = m.ID
	if err := db.PutRelay(ctx, r2, false); err != nil {
		t.Fatal(err)
	}
	got, err := db.Relay(ctx, "vov1")
	if err != nil || got.Name != "VOV1 mới" || len(got.URLs) != 2 || got.CreatedBy != "tok-a" || got.CreatedAt.IsZero() {
		t.Errorf("relay %+v %v", got, err)
	}
	if uses, err := db.MediaUses(ctx, m.ID); err != nil || len(uses) != 1 || uses[0].Kind != loa.UseRelay {
		t.Errorf("fallback media uses: %+v %v", uses, err)
	}
	sc := &loa.Schedule{ID: "s1", Name: "VOV sáng", Rule: loa.Rule{Kind: "daily", Time: "06:00"}, Content: loa.Content{RelayID: "vov1"},
		Targets: loa.Targets{Devices: []string{"d1"}}, Overrun: loa.OverrunInterrupt}
	if err := db.CreateSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRelay(ctx, "vov1"); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("delete of a scheduled relay: %v", err)
	}
	if err := db.DeleteSchedule(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRelay(ctx, "vov1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Relay(ctx, "vov1"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("deleted relay: %v", err)
	}
}
