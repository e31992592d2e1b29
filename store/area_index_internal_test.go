package store

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// migrationsBefore returns the migrations up to (not including) the step
// named name, so a test can write a database as an older build did.
func migrationsBefore(t *testing.T, name string) []migration {
	t.Helper()
	i := slices.IndexFunc(migrations, func(m migration) bool { return m.name == name })
	if i < 0 {
		t.Fatalf("no migration %q", name)
	}
	return migrations[:i]
}

// TestAreaIndex_BuiltForOldAreas opens a database whose areas were
// written before the children index: the migration indexes them, so a
// subtree is found, and later writes keep the index.
func TestAreaIndex_BuiltForOldAreas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx, path, migrationsBefore(t, "area children index"), slog.New(slog.DiscardHandler)); err != nil {
			return err
		}
		for _, a := range []*loa.Area{
			{ID: "hn", Name: "Hà Nội", Kind: loa.AreaProvince},
			{ID: "xa-a", ParentID: "hn", Name: "A", Kind: loa.AreaCommune},
			{ID: "xa-b", ParentID: "hn", Name: "B", Kind: loa.AreaCommune},
			{ID: "a-1", ParentID: "xa-a", Name: "1", Kind: loa.AreaCluster},
		} {
			if err := put(tx, bucketAreas, []byte(a.ID), a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()

	db, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	ids := func(root string) []string {
		sub, err := db.AreaSubtree(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range sub {
			out = append(out, a.ID)
		}
		return out
	}
	if got := ids("xa-a"); !slices.Equal(got, []string{"xa-a", "a-1"}) {
		t.Errorf("subtree of xa-a after migration: %v", got)
	}
	if err := db.CreateArea(ctx, &loa.Area{ID: "a-2", ParentID: "xa-a", Name: "2", Kind: loa.AreaCluster}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteArea(ctx, "a-1"); err != nil {
		t.Fatal(err)
	}
	if got := ids("xa-a"); !slices.Equal(got, []string{"xa-a", "a-2"}) {
		t.Errorf("subtree of xa-a after create and delete: %v", got)
	}
	if got := ids("hn"); !slices.Equal(got, []string{"hn", "xa-a", "xa-b", "a-2"}) {
		t.Errorf("subtree of hn: %v", got)
	}
	path2, err := db.AreaPath(ctx, "a-2")
	if err != nil || len(path2) != 3 || path2[0].ID != "a-2" || path2[2].ID != "hn" {
		t.Errorf("AreaPath(a-2) = %v, %v", path2, err)
	}
	if _, err := db.AreaSubtree(ctx, "nope"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("AreaSubtree(nope): %v, want not found", err)
	}
}

// TestCreateAreas_AllOrNone checks a batch with one bad area stores none.
func TestCreateAreas_AllOrNone(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "loa.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	err = db.CreateAreas(ctx, []*loa.Area{
		{ID: "hn", Name: "Hà Nội", Kind: loa.AreaProvince},
		{ID: "xa-a", ParentID: "hn", Name: "A", Kind: loa.AreaCommune},
		{ID: "a-1", ParentID: "nope", Name: "1", Kind: loa.AreaCluster},
	})
	if loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Fatalf("CreateAreas with an unknown parent: %v", err)
	}
	if all, _ := db.Areas(ctx); len(all) != 0 {
		t.Errorf("%d areas stored from a refused batch", len(all))
	}
	if _, err := db.AreaSubtree(ctx, "hn"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("index kept an area of a refused batch: %v", err)
	}
}
