package store_test

import (
	"context"
	"strings"
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

func TestDeleteArea(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	if _, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-1", AreaID: "qn.tk.1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateArea(ctx, &loa.Area{ID: "qn.tk.2", ParentID: "qn.tk", Name: "Thôn 2", Kind: loa.AreaCluster}); err != nil {
		t.Fatal(err)
	}
	tok := &loa.Token{Name: "thôn 2", Role: loa.RoleOperator, AreaID: "qn.tk.2"}
	if _, err := db.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	sched := &loa.Schedule{ID: "sang", Name: "Sáng", Rule: loa.Rule{Kind: loa.RuleDaily, Time: "06:00"},
		Content: loa.Content{MediaID: "m"}, Targets: loa.Targets{Areas: []string{"qn.tk.1"}}, Priority: 64}
	if err := db.PutSchedule(ctx, sched); err != nil {
		t.Fatal(err)
	}

	conflict := func(id string, words ...string) {
		t.Helper()
		err := db.DeleteArea(ctx, id)
		if loa.ErrorCode(err) != loa.ECONFLICT {
			t.Fatalf("DeleteArea(%s) = %v, want a conflict", id, err)
		}
		for _, w := range words {
			if !strings.Contains(loa.ErrorMessage(err), w) {
				t.Errorf("DeleteArea(%s): %q does not mention %q", id, loa.ErrorMessage(err), w)
			}
		}
	}
	conflict("qn", "child", "qn.tk")
	conflict("qn.tk.1", "devices", "rx-1")
	if _, err := db.DecommissionDevice(ctx, "rx-1"); err != nil {
		t.Fatal(err)
	}
	conflict("qn.tk.2", "1 tokens") // counts: a 409 names nothing of another scope
	conflict("qn.tk.1", "1 schedules")
	if err := db.DeleteSchedule(ctx, "sang"); err != nil {
		t.Fatal(err)
	}

	if err := db.DeleteArea(ctx, "qn.tk.1"); err != nil {
		t.Fatalf("DeleteArea of an emptied area: %v", err)
	}
	if _, err := db.Area(ctx, "qn.tk.1"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("Area after delete: %v, want not found", err)
	}
	if d, err := db.Device(ctx, "rx-1"); err != nil || d.AreaID != "qn.tk.1" {
		t.Errorf("decommissioned device after its area went: %+v, %v", d, err)
	}
	if err := db.DeleteArea(ctx, "qn.tk.1"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("second delete: %v, want not found", err)
	}
	conflict("qn.tk", "child", "qn.tk.2")
	// A revoked token no longer holds its scope.
	if _, err := db.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteArea(ctx, "qn.tk.2"); err != nil {
		t.Errorf("DeleteArea of the scope of a revoked token: %v", err)
	}
}
