package store

import (
	"os"
	"path/filepath"
	"testing"
)

// A write the disk refuses (full, I/O error) removes the temp file at
// once, and Commit reports that error instead of storing a partial blob.
func TestBlobFailedWriteLeavesNothing(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "loa.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w, err := db.NewBlob(MediaBlob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("first half")); err != nil {
		t.Fatal(err)
	}
	w.f.Close() // the next write fails, as on a full disk
	if _, err := w.Write([]byte("second half")); err == nil {
		t.Fatal("Write to a closed file succeeded")
	}
	if entries, _ := os.ReadDir(db.MediaDir()); len(entries) != 0 {
		t.Errorf("a failed write left %v", entries)
	}
	if _, _, err := w.Commit(); err == nil {
		t.Error("Commit after a failed write succeeded")
	}
	if entries, _ := os.ReadDir(db.MediaDir()); len(entries) != 0 {
		t.Errorf("Commit after a failed write left %v", entries)
	}
	w.Abort()
}
