package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func hashOf(b string) string { return strings.Repeat(b, 32) }

func TestPutMedia(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()

	m := &loa.Media{ID: "m1", Name: "Bản tin sáng", Hash: hashOf("a1"), Size: 4096,
		Duration: 90 * time.Second, Frames: 4500, Source: "mp3", LoudnessDB: -18.5, CreatedBy: "op"}
	if err := db.PutMedia(ctx, m); err != nil {
		t.Fatal(err)
	}
	if m.CreatedAt.IsZero() {
		t.Fatal("CreatedAt not set")
	}
	got, err := db.Media(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if *got != *m {
		t.Errorf("Media = %+v, want %+v", got, m)
	}
	byHash, err := db.MediaByHash(ctx, hashOf("a1"))
	if err != nil || *byHash != *m {
		t.Errorf("MediaByHash = %+v, %v", byHash, err)
	}

	// An update keeps CreatedAt when none is given and moves the hash index.
	created := m.CreatedAt
	upd := &loa.Media{ID: "m1", Name: "Bản tin sáng (sửa)", Hash: hashOf("b2"), Size: 10}
	if err := db.PutMedia(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Media(ctx, "m1"); got.Name != "Bản tin sáng (sửa)" || !got.CreatedAt.Equal(created) {
		t.Errorf("after update Media = %+v, want CreatedAt %v", got, created)
	}
	if _, err := db.MediaByHash(ctx, hashOf("a1")); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("old hash still indexed: %v", err)
	}
	if got, err := db.MediaByHash(ctx, hashOf("b2")); err != nil || got.ID != "m1" {
		t.Errorf("MediaByHash(new) = %+v, %v", got, err)
	}
}

func TestPutMedia_Errors(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	if err := db.PutMedia(ctx, &loa.Media{ID: "m1", Hash: hashOf("a1")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		media loa.Media
		code  string
		field string
	}{
		{"no id", loa.Media{Hash: hashOf("c3")}, loa.EINVALID, "id"},
		{"id with slash", loa.Media{ID: "a/b", Hash: hashOf("c3")}, loa.EINVALID, "id"},
		{"no hash", loa.Media{ID: "m2"}, loa.EINVALID, "hash"},
		{"hash not hex", loa.Media{ID: "m2", Hash: "../../../../etc/passwd"}, loa.EINVALID, "hash"},
		{"negative size", loa.Media{ID: "m2", Hash: hashOf("c3"), Size: -1}, loa.EINVALID, "size"},
		{"same content as m1", loa.Media{ID: "m2", Hash: hashOf("a1")}, loa.ECONFLICT, "m1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.media
			err := db.PutMedia(ctx, &m)
			wantCode(t, err, tc.code)
			wantMessage(t, err, tc.field)
		})
	}
	if got, err := db.MediaByHash(ctx, hashOf("a1")); err != nil || got.ID != "m1" {
		t.Fatalf("hash index changed by a refused put: %+v, %v", got, err)
	}
}

func TestMedia_NotFound(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	_, err := db.Media(ctx, "nope")
	wantCode(t, err, loa.ENOTFOUND)
	_, err = db.MediaByHash(ctx, hashOf("ff"))
	wantCode(t, err, loa.ENOTFOUND)
}

func TestMediaList_NewestFirstAndCopied(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	// Inserted in id order; the clock makes each later one newer.
	for i, id := range []string{"a", "b", "c"} {
		if err := db.PutMedia(ctx, &loa.Media{ID: id, Name: id, Hash: hashOf("0" + string(rune('1'+i)))}); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := db.MediaList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].ID != "c" || ms[1].ID != "b" || ms[2].ID != "a" {
		t.Fatalf("MediaList order: %v", ms)
	}
	ms[0].Name = "changed"
	if m, _ := db.Media(ctx, "c"); m.Name != "c" {
		t.Fatalf("mutating a returned media changed the db: %q", m.Name)
	}
}
