package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestMarkStarted_PruneBatch checks a backlog of expired keys is pruned at
// most startedPruneBatch per call, from both the keys and the time index.
func TestMarkStarted_PruneBatch(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "loa.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	const old = startedPruneBatch + 500
	for i := range old {
		if _, err := db.MarkStarted(ctx, fmt.Sprintf("old-%04d", i), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	counts := func() (keys, index int) {
		_ = db.bolt.View(func(tx *bolt.Tx) error {
			keys = tx.Bucket(bucketStarted).Stats().KeyN
			index = tx.Bucket(bucketStartedByTime).Stats().KeyN
			return nil
		})
		return keys, index
	}
	if k, i := counts(); k != old || i != old {
		t.Fatalf("before pruning: %d keys, %d index entries; want %d", k, i, old)
	}

	later := t0.Add(StartedRetention + 24*time.Hour)
	if _, err := db.MarkStarted(ctx, "new-1", later); err != nil {
		t.Fatal(err)
	}
	if k, i := counts(); k != old-startedPruneBatch+1 || i != k {
		t.Fatalf("after one call: %d keys, %d index entries; want %d", k, i, old-startedPruneBatch+1)
	}
	// The oldest went first.
	if already, _ := db.MarkStarted(ctx, fmt.Sprintf("old-%04d", startedPruneBatch), later); !already {
		t.Fatalf("old-%04d pruned before older keys", startedPruneBatch)
	}
	if k, i := counts(); k != 1 || i != 1 {
		t.Fatalf("after two calls: %d keys, %d index entries; want only new-1", k, i)
	}
}
