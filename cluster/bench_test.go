package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// BenchmarkWrite is one store write's latency (CreateArea, one after
// another): on a single node, and on the leader of three over loopback
// (propose, commit on a quorum, apply).
func BenchmarkWrite(b *testing.B) {
	run := func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		b.ResetTimer()
		for i := range b.N {
			if err := db.CreateArea(ctx, &loa.Area{ID: fmt.Sprintf("a%d", i), Name: "Xã", Kind: loa.AreaProvince}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("single", func(b *testing.B) {
		db, err := store.Open(filepath.Join(b.TempDir(), "loa.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run(b, db)
	})
	b.Run("three-nodes", func(b *testing.B) {
		c := newCluster(b)
		run(b, c.leader(b).db)
	})
}
