package store_test

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestCreateArea(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)

	a, err := db.Area(ctx, "qn.tk")
	if err != nil {
		t.Fatal(err)
	}
	if a.ParentID != "qn" || a.Kind != loa.AreaCommune || a.Name != "Tam Kỳ" {
		t.Errorf("Area = %+v", a)
	}
	if a.CreatedAt.IsZero() {
		t.Error("CreatedAt not set")
	}
}

func TestCreateArea_Errors(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)

	for _, tc := range []struct {
		name  string
		area  loa.Area
		code  string
		field string
	}{
		{"invalid id", loa.Area{ID: "Bad ID", Name: "x", Kind: loa.AreaProvince}, loa.EINVALID, "id"},
		{"no name", loa.Area{ID: "x", Kind: loa.AreaProvince}, loa.EINVALID, "name"},
		{"duplicate", loa.Area{ID: "qn", Name: "again", Kind: loa.AreaProvince}, loa.ECONFLICT, "qn"},
		{"missing parent", loa.Area{ID: "dn.x", ParentID: "dn", Name: "x", Kind: loa.AreaCommune}, loa.ENOTFOUND, "parent_id"},
		{"wrong parent kind", loa.Area{ID: "k2", ParentID: "qn", Name: "x", Kind: loa.AreaCluster}, loa.EINVALID, "parent_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.area
			err := db.CreateArea(ctx, &a)
			wantCode(t, err, tc.code)
			wantMessage(t, err, tc.field)
		})
	}
	// The duplicate did not overwrite the original.
	if a, err := db.Area(ctx, "qn"); err != nil || a.Name != "Quảng Nam" {
		t.Fatalf("Area(qn) = %+v, %v", a, err)
	}
}

func TestArea_NotFound(t *testing.T) {
	db := mustOpen(t)
	_, err := db.Area(context.Background(), "nope")
	wantCode(t, err, loa.ENOTFOUND)
}

func TestAreas_SortedByID(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	for _, id := range []string{"c", "a", "b"} {
		if err := db.CreateArea(ctx, &loa.Area{ID: id, Name: id, Kind: loa.AreaProvince}); err != nil {
			t.Fatal(err)
		}
	}
	as, err := db.Areas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	if len(ids) != 3 || ids[0] != "a" || ids[1] != "b" || ids[2] != "c" {
		t.Fatalf("Areas ids = %v, want [a b c]", ids)
	}
}

func TestArea_ReturnsCopy(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)

	a, _ := db.Area(ctx, "qn")
	a.Name = "changed"
	as, _ := db.Areas(ctx)
	as[0].Name = "changed too"

	if got, _ := db.Area(ctx, "qn"); got.Name != "Quảng Nam" {
		t.Fatalf("mutating a returned area changed the db: %q", got.Name)
	}
}
