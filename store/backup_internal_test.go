package store

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// A backup whose database is whole but wrong inside — a record that does
// not decode, an index naming a missing record — is refused by restore.
func TestRestoreChecksRecordsAndIndexes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		spoil func(tx *bolt.Tx) error
		want  string
	}{
		{"a record that does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketAreas).Put([]byte("x"), []byte(`{"id":`))
		}, "record areas/x"},
		{"a record of the wrong shape", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketDevices).Put([]byte("d"), []byte(`{"id":7}`))
		}, "record devices/d"},
		{"an index naming a missing record", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketTokensByHash).Put([]byte("abc"), []byte("gone"))
		}, `names tokens "gone"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(filepath.Join(t.TempDir(), "loa.db"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.CreateArea(ctx, &loa.Area{ID: "p", Name: "P", Kind: loa.AreaProvince}); err != nil {
				t.Fatal(err)
			}
			var good bytes.Buffer
			if _, err := db.WriteBackup(ctx, &good, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := Restore(ctx, bytes.NewReader(good.Bytes()), filepath.Join(t.TempDir(), "ok")); err != nil {
				t.Fatalf("the unspoilt backup: %v", err)
			}
			if err := db.bolt.Update(tc.spoil); err != nil {
				t.Fatal(err)
			}
			var spoilt bytes.Buffer
			if _, err := db.WriteBackup(ctx, &spoilt, nil); err != nil {
				t.Fatal(err)
			}
			_, err = Restore(ctx, bytes.NewReader(spoilt.Bytes()), filepath.Join(t.TempDir(), "new"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore: %v; want an error naming %q", err, tc.want)
			}
		})
	}
}
