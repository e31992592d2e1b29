package store_test

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
)

func TestCreateDevice(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)

	d := &loa.Device{ID: "rx-1", AreaID: "qn.tk.1", Name: "Loa chợ", Lat: 15.57, Lon: 108.47}
	pw, err := db.CreateDevice(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) != 32 {
		t.Errorf("password %q: want 32 hex chars (128 bits)", pw)
	}
	if d.CreatedAt.IsZero() {
		t.Error("CreatedAt not set on the argument")
	}
	got, err := db.Device(ctx, "rx-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.AreaID != "qn.tk.1" || got.Lat != 15.57 || got.Lon != 108.47 || !got.CreatedAt.Equal(d.CreatedAt) {
		t.Errorf("Device = %+v, want %+v", got, d)
	}

	pw2, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-2", AreaID: "qn.tk.1"})
	if err != nil {
		t.Fatal(err)
	}
	if pw2 == pw {
		t.Error("two devices got the same password")
	}
}

func TestCreateDevice_Errors(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	if _, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-1", AreaID: "qn.tk.1"}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		device loa.Device
		code   string
		field  string
	}{
		{"invalid id", loa.Device{ID: "RX 1", AreaID: "qn"}, loa.EINVALID, "id"},
		{"bad lat", loa.Device{ID: "rx-9", AreaID: "qn", Lat: 91}, loa.EINVALID, "lat"},
		{"missing area", loa.Device{ID: "rx-9", AreaID: "nowhere"}, loa.ENOTFOUND, "area_id"},
		{"duplicate", loa.Device{ID: "rx-1", AreaID: "qn"}, loa.ECONFLICT, "rx-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.device
			pw, err := db.CreateDevice(ctx, &d)
			wantCode(t, err, tc.code)
			wantMessage(t, err, tc.field)
			if pw != "" {
				t.Errorf("password %q returned with an error", pw)
			}
		})
	}
	if _, err := db.Device(ctx, "rx-9"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Fatalf("a failed CreateDevice stored the device: %v", err)
	}
	// The duplicate did not replace the original.
	if d, _ := db.Device(ctx, "rx-1"); d.AreaID != "qn.tk.1" {
		t.Fatalf("duplicate overwrote device: %+v", d)
	}
}

func TestDevice_NotFound(t *testing.T) {
	db := mustOpen(t)
	_, err := db.Device(context.Background(), "rx-404")
	wantCode(t, err, loa.ENOTFOUND)
}

func TestDevices_SortedAndCopied(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	for _, id := range []string{"rx-3", "rx-1", "rx-2"} {
		if _, err := db.CreateDevice(ctx, &loa.Device{ID: id, AreaID: "qn.tk.1", Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := db.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 || ds[0].ID != "rx-1" || ds[1].ID != "rx-2" || ds[2].ID != "rx-3" {
		t.Fatalf("Devices = %v", ds)
	}
	ds[0].Name = "changed"
	if d, _ := db.Device(ctx, "rx-1"); d.Name != "rx-1" {
		t.Fatalf("mutating a returned device changed the db: %q", d.Name)
	}
}

func TestDeviceCredentials(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	pw, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-1", AreaID: "qn.tk.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-2", AreaID: "qn.tk.1"}); err != nil {
		t.Fatal(err)
	}

	check := func(id, password string, want bool) {
		t.Helper()
		ok, err := db.CheckDeviceCredentials(ctx, id, password)
		if err != nil {
			t.Fatal(err)
		}
		if ok != want {
			t.Errorf("CheckDeviceCredentials(%q, %q) = %v, want %v", id, password, ok, want)
		}
	}
	check("rx-1", pw, true)
	check("rx-1", pw+"x", false)
	check("rx-1", "", false)
	check("rx-2", pw, false) // another device's password
	check("rx-404", pw, false)
	check("", "", false)

	pw2, err := db.ResetDeviceCredentials(ctx, "rx-1")
	if err != nil {
		t.Fatal(err)
	}
	if pw2 == pw || len(pw2) != 32 {
		t.Fatalf("reset password %q (old %q)", pw2, pw)
	}
	check("rx-1", pw, false)
	check("rx-1", pw2, true)

	_, err = db.ResetDeviceCredentials(ctx, "rx-404")
	wantCode(t, err, loa.ENOTFOUND)
}

func TestDecommissionDevice(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	pw, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-1", AreaID: "qn.tk.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-2", AreaID: "qn.tk.1"}); err != nil {
		t.Fatal(err)
	}

	d, err := db.DecommissionDevice(ctx, "rx-1")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Decommissioned() || d.Credentials != loa.CredentialsRevoked || d.RevokedAt.IsZero() {
		t.Errorf("decommissioned device = %+v", d)
	}
	if ok, err := db.CheckDeviceCredentials(ctx, "rx-1", pw); err != nil || ok {
		t.Errorf("old password still works: %v, %v", ok, err)
	}
	list, err := db.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "rx-2" {
		t.Errorf("Devices after decommission: %v, want only rx-2", list)
	}
	got, err := db.Device(ctx, "rx-1")
	if err != nil || !got.Decommissioned() {
		t.Errorf("Device(rx-1) = %+v, %v: the record must stay readable", got, err)
	}

	for name, err := range map[string]error{
		"again":  func() error { _, err := db.DecommissionDevice(ctx, "rx-1"); return err }(),
		"rotate": func() error { _, err := db.ResetDeviceCredentials(ctx, "rx-1"); return err }(),
		"reuse":  func() error { _, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-1", AreaID: "qn.tk.1"}); return err }(),
	} {
		if loa.ErrorCode(err) != loa.ECONFLICT {
			t.Errorf("%s: %v, want a conflict", name, err)
		}
	}
	if _, err := db.DecommissionDevice(ctx, "nope"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("unknown device: %v, want not found", err)
	}
}
