package store_test

import (
	"context"
	"path/filepath"
	"testing"
)

// The generation increases on every call and survives a reopen, so each
// start of a controller derives its SRTP keys with a fence of its own.
func TestNextGenerationIncreasesAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	for want := uint64(1); want <= 3; want++ {
		got, err := db.NextGeneration(ctx)
		if err != nil || got != want {
			t.Fatalf("generation %d, %v; want %d", got, err, want)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpenPath(t, path)
	if got, err := db.NextGeneration(ctx); err != nil || got != 4 {
		t.Fatalf("after reopen: generation %d, %v; want 4", got, err)
	}
}
