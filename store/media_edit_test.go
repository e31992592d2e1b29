package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestRenameAndDeleteMedia(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	for _, m := range []*loa.Media{{ID: "m1", Name: "Bản tin", Hash: hashOf("a1")}, {ID: "m2", Name: "Nhạc", Hash: hashOf("b2")}} {
		if err := db.PutMedia(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreatePlaylist(ctx, &loa.Playlist{ID: "chieu", Name: "Bản tin chiều", Items: []loa.PlaylistItem{{MediaID: "m1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateArea(ctx, &loa.Area{ID: "bc", Name: "Quảng Ngãi", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutFallback(ctx, &loa.Fallback{AreaID: "bc", Content: loa.Content{MediaID: "m1"}, Priority: 10}); err != nil {
		t.Fatal(err)
	}

	if m, err := db.RenameMedia(ctx, "m2", "Nhạc hiệu"); err != nil || m.Name != "Nhạc hiệu" {
		t.Fatalf("rename: %+v, %v", m, err)
	}
	if got, _ := db.Media(ctx, "m2"); got.Name != "Nhạc hiệu" {
		t.Errorf("after rename %+v", got)
	}
	if _, err := db.RenameMedia(ctx, "m9", "x"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("rename of a missing item: %v", err)
	}

	_, err := db.DeleteMedia(ctx, "m1")
	var inUse *loa.InUseError
	if !errors.As(err, &inUse) || loa.ErrorCode(err) != loa.EINUSE || len(inUse.Uses) != 2 ||
		inUse.Uses[0] != (loa.MediaUse{Kind: loa.UsePlaylist, ID: "chieu", Name: "Bản tin chiều"}) || inUse.Uses[1] != (loa.MediaUse{Kind: loa.UseFallback, ID: "bc"}) {
		t.Fatalf("delete of a used item: %v %+v", err, inUse)
	}
	if _, err := db.Media(ctx, "m1"); err != nil {
		t.Errorf("a refused delete removed it: %v", err)
	}
	if m, err := db.DeleteMedia(ctx, "m2"); err != nil || m.ID != "m2" {
		t.Fatalf("delete: %+v, %v", m, err)
	}
	if _, err := db.Media(ctx, "m2"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("after delete: %v", err)
	}
	if _, err := db.MediaByHash(ctx, hashOf("b2")); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("hash still indexed after delete: %v", err)
	}
}
