package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// TestDrafts: a station that never held a change has no drafts bucket
// and answers empty; drafts are kept, changed in place, listed newest
// first and survive a reopen; an approved upload is usable, a draft one
// is refused by playlists and fallbacks naming the field.
func TestDrafts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()
	if ds, err := db.Drafts(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("drafts of a new station: %v, %v", ds, err)
	}
	wantCode(t, func() error { _, err := db.Draft(ctx, "dr-1"); return err }(), loa.ENOTFOUND)

	now := time.Now().UTC()
	for i, id := range []string{"dr-1", "dr-2"} {
		d := &loa.Draft{ID: id, Kind: loa.DraftMedia, Op: "create", Name: id, Areas: []string{"tk"}, CreatedBy: "user:op",
			CreatedAt: now.Add(time.Duration(i) * time.Second), MediaID: "m1", State: loa.DraftPending}
		if err := db.PutDraft(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	d, err := db.Draft(ctx, "dr-1")
	if err != nil {
		t.Fatal(err)
	}
	d.State, d.DecidedBy = loa.DraftRejected, "user:ld"
	if err := db.PutDraft(ctx, d); err != nil {
		t.Fatal(err)
	}
	wantCode(t, db.PutDraft(ctx, &loa.Draft{ID: ""}), loa.EINVALID)

	if err := db.CreateArea(ctx, &loa.Area{ID: "tk", Name: "Tịnh Kỳ", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	if a, err := db.SetAreaApproval(ctx, "tk", true); err != nil || !a.NeedsApproval {
		t.Fatalf("marked: %+v, %v", a, err)
	}
	if err := db.PutMedia(ctx, &loa.Media{ID: "m1", Name: "m1", Hash: hashOf("a1"), Frames: 50, State: loa.MediaDraft}); err != nil {
		t.Fatal(err)
	}
	err = db.CreatePlaylist(ctx, &loa.Playlist{ID: "p", Name: "p", Items: []loa.PlaylistItem{{MediaID: "m1"}}})
	wantCode(t, err, loa.ENOTAPPROVED)
	wantMessage(t, err, "items[0].media_id")
	wantCode(t, db.PutFallback(ctx, &loa.Fallback{AreaID: "tk", Content: loa.Content{MediaID: "m1"}}), loa.ENOTAPPROVED)
	if m, err := db.ApproveMedia(ctx, "m1", "user:ld"); err != nil || m.State != "" || m.ApprovedBy != "user:ld" {
		t.Fatalf("approved media: %+v, %v", m, err)
	}
	if err := db.CreatePlaylist(ctx, &loa.Playlist{ID: "p", Name: "p", Items: []loa.PlaylistItem{{MediaID: "m1"}}}); err != nil {
		t.Errorf("a playlist of approved media: %v", err)
	}

	db.Close()
	db = mustOpenPath(t, path)
	ds, err := db.Drafts(ctx)
	if err != nil || len(ds) != 2 || ds[0].ID != "dr-2" || ds[1].State != loa.DraftRejected || ds[1].DecidedBy != "user:ld" {
		t.Errorf("after a reopen: %+v, %v", ds, err)
	}
	if a, err := db.Area(ctx, "tk"); err != nil || !a.NeedsApproval {
		t.Errorf("area after a reopen: %+v, %v", a, err)
	}
}
