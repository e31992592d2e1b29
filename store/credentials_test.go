package store_test

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
)

// Rotate replaces the password (the old one fails, the new one works) and
// records when; revoke leaves no password working and the device
// registered as revoked; rotating a revoked device makes it active again.
func TestRotateAndRevokeDeviceCredentials(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	check := func(id, pw string, want bool) {
		t.Helper()
		ok, err := db.CheckDeviceCredentials(ctx, id, pw)
		if err != nil || ok != want {
			t.Fatalf("CheckDeviceCredentials(%s, %q) = %v, %v; want %v", id, pw, ok, err, want)
		}
	}
	pw1, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-1", AreaID: "qn.tk.1"})
	if err != nil {
		t.Fatal(err)
	}
	pwOther, _ := db.CreateDevice(ctx, &loa.Device{ID: "rx-2", AreaID: "qn.tk.1"})
	d, _ := db.Device(ctx, "rx-1")
	if d.Credentials != loa.CredentialsActive || !d.RotatedAt.IsZero() || !d.RevokedAt.IsZero() {
		t.Fatalf("new device %+v, want active, never rotated", d)
	}

	pw2, err := db.ResetDeviceCredentials(ctx, "rx-1")
	if err != nil || pw2 == pw1 {
		t.Fatalf("rotate: %q, %v", pw2, err)
	}
	check("rx-1", pw1, false)
	check("rx-1", pw2, true)
	d, _ = db.Device(ctx, "rx-1")
	if d.Credentials != loa.CredentialsActive || !d.RotatedAt.After(d.CreatedAt) {
		t.Fatalf("rotated device %+v, want active with rotated_at after created_at", d)
	}

	rd, err := db.RevokeDeviceCredentials(ctx, "rx-1")
	if err != nil || rd.Credentials != loa.CredentialsRevoked || rd.RevokedAt.IsZero() {
		t.Fatalf("revoke: %+v, %v", rd, err)
	}
	check("rx-1", pw2, false)
	check("rx-1", "", false)
	check("rx-2", pwOther, true) // the neighbour is untouched
	list, _ := db.Devices(ctx)
	if len(list) != 2 || list[0].ID != "rx-1" || list[0].Credentials != loa.CredentialsRevoked || list[1].Credentials != loa.CredentialsActive {
		t.Fatalf("Devices after revoke: %+v %+v", list[0], list[1])
	}
	again, err := db.RevokeDeviceCredentials(ctx, "rx-1")
	if err != nil || !again.RevokedAt.Equal(rd.RevokedAt) {
		t.Fatalf("second revoke changed %+v → %+v (%v)", rd, again, err)
	}

	pw3, err := db.ResetDeviceCredentials(ctx, "rx-1")
	if err != nil {
		t.Fatal(err)
	}
	check("rx-1", pw3, true)
	if d, _ := db.Device(ctx, "rx-1"); d.Credentials != loa.CredentialsActive || !d.RevokedAt.IsZero() {
		t.Fatalf("re-issued device %+v, want active", d)
	}

	if _, err := db.RevokeDeviceCredentials(ctx, "rx-404"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("revoke unknown: %v", err)
	}
}
