package store_test

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestFallbacks(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	areas, _ := db.Areas(ctx)
	area := areas[0].ID
	if err := db.PutMedia(ctx, &loa.Media{ID: "m1", Name: "nhạc", Hash: hashOf("a1")}); err != nil {
		t.Fatal(err)
	}
	f := &loa.Fallback{AreaID: area, Content: loa.Content{MediaID: "m1"}, Priority: 10}
	if err := db.PutFallback(ctx, f); err != nil {
		t.Fatal(err)
	}
	wantCode(t, db.PutFallback(ctx, &loa.Fallback{AreaID: "nowhere", Content: loa.Content{MediaID: "m1"}}), loa.ENOTFOUND)
	wantCode(t, db.PutFallback(ctx, &loa.Fallback{AreaID: area, Content: loa.Content{MediaID: "nope"}}), loa.ENOTFOUND)
	wantCode(t, db.PutFallback(ctx, &loa.Fallback{AreaID: area, Content: loa.Content{MediaID: "m1"}, Priority: 64}), loa.EINVALID)
	all, err := db.Fallbacks(ctx)
	if err != nil || len(all) != 1 || *all[0] != *f {
		t.Fatalf("Fallbacks = %v, %v", all, err)
	}
	if err := db.DeleteFallback(ctx, area); err != nil {
		t.Fatal(err)
	}
	wantCode(t, db.DeleteFallback(ctx, area), loa.ENOTFOUND)
	if all, _ := db.Fallbacks(ctx); len(all) != 0 {
		t.Errorf("fallback still there after delete: %v", all)
	}
}
