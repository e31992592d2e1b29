package store_test

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
)

// The library keeps one message per code with its media's file, and its
// version increases with every change; bad input changes nothing.
func TestStoredMessages(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	list, v, err := db.StoredMessages(ctx)
	if err != nil || len(list) != 0 || v != 0 {
		t.Fatalf("empty library: %v %d %v", list, v, err)
	}
	seedAreas(t, db)
	areas, _ := db.Areas(ctx)
	p1 := areas[0].ID
	if err := db.PutMedia(ctx, &loa.Media{ID: "m1", Name: "bão", Hash: hashOf("b1"), Size: 100, Frames: 50}); err != nil {
		t.Fatal(err)
	}
	m := &loa.StoredMessage{Code: 12, Name: "Bão", MediaID: "m1", AreaID: p1, Category: "storm"}
	v1, err := db.PutStoredMessage(ctx, m)
	if err != nil || v1 != 1 || m.SHA256 != hashOf("b1") || m.Size != 100 || m.Frames != 50 {
		t.Fatalf("put: v%d %+v %v", v1, m, err)
	}
	for name, bad := range map[string]*loa.StoredMessage{
		"no media": {Code: 13, Name: "x", MediaID: "nope", AreaID: p1},
		"no area":  {Code: 13, Name: "x", MediaID: "m1", AreaID: "nope"},
		"bad code": {Code: 1000, Name: "x", MediaID: "m1", AreaID: p1},
		"no name":  {Code: 13, MediaID: "m1", AreaID: p1},
	} {
		if _, err := db.PutStoredMessage(ctx, bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	got, err := db.StoredMessage(ctx, 12)
	if err != nil || got.Name != "Bão" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := db.StoredMessage(ctx, 13); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("missing code: %v", err)
	}
	v2, err := db.DeleteStoredMessage(ctx, 12)
	if err != nil || v2 != 2 {
		t.Fatalf("delete: v%d %v", v2, err)
	}
	if _, err := db.DeleteStoredMessage(ctx, 12); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("delete again: %v", err)
	}
	if list, v, _ := db.StoredMessages(ctx); len(list) != 0 || v != 2 {
		t.Errorf("after delete: %d messages, version %d", len(list), v)
	}
}
