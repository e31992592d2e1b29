package store_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/store"
)

// makeDB writes a database with some content and returns its bytes.
func makeDB(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()
	for i := range 200 {
		a := area(i)
		a.Name = strings.Repeat("n", 200)
		if err := db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An empty, truncated or damaged database is refused with ErrCorrupt
// before bbolt maps it (a truncated map would fault with SIGBUS), and the
// file is left exactly as it was.
func TestOpenRefusesDamagedDatabase(t *testing.T) {
	good := makeDB(t)
	const page = 4096
	if len(good) < 8*page {
		t.Fatalf("test database only %d bytes", len(good))
	}
	// The pages in use end at the high-water mark of the newer meta page;
	// the file may run past it (bbolt grows it ahead).
	used := page * int(max(binary.LittleEndian.Uint64(good[16+40:]), binary.LittleEndian.Uint64(good[page+16+40:])))
	if used > len(good) || used < 6*page {
		t.Fatalf("used %d of %d bytes", used, len(good))
	}
	flip := func(off int) []byte {
		b := append([]byte(nil), good...)
		b[off] ^= 0x40
		return b
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"one byte", good[:1], "meta page 0"},
		{"one page", good[:page], "meta page 1"},
		{"two pages", good[:2*page], "truncated"},
		{"half", good[:used/2], "truncated"},
		{"all but the last page", good[:used-page], "truncated"},
		{"all but one byte", good[:used-1], "truncated"},
		{"meta 0 magic", flip(16), "meta page 0"},
		{"meta 0 txid", flip(16 + 48), "checksum"},
		{"meta 1 root", flip(page + 16 + 16), "meta page 1"},
		{"meta 1 checksum", flip(page + 16 + 56), "checksum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "loa.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(path, store.Options{Timeout: 100 * time.Millisecond})
			if err == nil {
				_ = db.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "backup") {
				t.Fatalf("err = %v, want ErrCorrupt naming %q and a way out", err, tc.want)
			}
			after, rerr := os.ReadFile(path)
			if rerr != nil || string(after) != string(tc.data) {
				t.Fatalf("the refused file was changed (%d bytes, was %d; %v)", len(after), len(tc.data), rerr)
			}
		})
	}
	// A sound file and a missing one open.
	path := filepath.Join(t.TempDir(), "loa.db")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	db := mustOpenPath(t, path)
	if a, err := db.Area(context.Background(), "a199"); err != nil || a.ID != "a199" {
		t.Fatalf("sound copy: %v %v", a, err)
	}
	mustOpenPath(t, filepath.Join(t.TempDir(), "new", "loa.db"))
}
