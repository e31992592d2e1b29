package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestPlaylists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()
	for i, id := range []string{"m1", "m2"} {
		if err := db.PutMedia(ctx, &loa.Media{ID: id, Name: id, Hash: hashOf([]string{"a1", "b2"}[i]), Frames: 50}); err != nil {
			t.Fatal(err)
		}
	}
	p := &loa.Playlist{ID: "sang", Name: "Chương trình sáng", Items: []loa.PlaylistItem{
		{MediaID: "m1", Gap: 2 * time.Second}, {MediaID: "m2"}}}
	if err := db.CreatePlaylist(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.CreatedAt.IsZero() {
		t.Error("CreatedAt not set")
	}
	wantCode(t, db.CreatePlaylist(ctx, &loa.Playlist{ID: "sang", Name: "again", Items: p.Items}), loa.ECONFLICT)
	err := db.CreatePlaylist(ctx, &loa.Playlist{ID: "x", Name: "x", Items: []loa.PlaylistItem{{MediaID: "m1"}, {MediaID: "nope"}}})
	wantCode(t, err, loa.ENOTFOUND)
	wantMessage(t, err, "items[1].media_id")
	wantCode(t, db.CreatePlaylist(ctx, &loa.Playlist{ID: "y", Name: "y"}), loa.EINVALID)
	wantCode(t, db.CreatePlaylist(ctx, &loa.Playlist{ID: "z", Name: "z", Items: []loa.PlaylistItem{{MediaID: "m1", Gap: -1}}}), loa.EINVALID)
	if _, err := db.Playlist(ctx, "x"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("a refused playlist was stored: %v", err)
	}

	// Survives a reopen; returned values are copies.
	db.Close()
	db = mustOpenPath(t, path)
	got, err := db.Playlist(ctx, "sang")
	if err != nil || len(got.Items) != 2 || got.Items[0].Gap != 2*time.Second || got.Name != p.Name {
		t.Fatalf("Playlist = %+v, %v", got, err)
	}
	got.Items[0].MediaID = "changed"
	again, _ := db.Playlist(ctx, "sang")
	if again.Items[0].MediaID != "m1" {
		t.Error("mutating a returned playlist changed the db")
	}
	all, err := db.Playlists(ctx)
	if err != nil || len(all) != 1 || all[0].ID != "sang" {
		t.Errorf("Playlists = %v, %v", all, err)
	}
}
