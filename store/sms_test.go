package store_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/loa-broadcast/loa"
)

// The SMS sequence number increases on every call and survives a reopen:
// receivers refuse a trigger not above the highest they accepted.
func TestNextSMSSeqIncreasesAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	for want := uint32(1); want <= 3; want++ {
		if got, err := db.NextSMSSeq(ctx); err != nil || got != want {
			t.Fatalf("seq %d, %v; want %d", got, err, want)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpenPath(t, path)
	if got, err := db.NextSMSSeq(ctx); err != nil || got != 4 {
		t.Fatalf("after reopen: seq %d, %v; want 4", got, err)
	}
}

func TestDeviceMSISDNAndReplyKey(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	seedAreas(t, db)
	d := &loa.Device{ID: "rx-1", AreaID: "qn.tk.1", Name: "Loa 1", MSISDN: "+84912345678"}
	pw, err := db.CreateDevice(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Device(ctx, "rx-1"); got.MSISDN != "+84912345678" {
		t.Fatalf("msisdn %q", got.MSISDN)
	}
	sum, err := db.DevicePasswordHash(ctx, "rx-1")
	if err != nil || sum != sha256.Sum256([]byte(pw)) {
		t.Fatalf("password hash: %x, %v", sum, err)
	}
	for _, bad := range []string{"0912345678", "+84 912", "+8491234567890123", "+84abc45678"} {
		_, err := db.SetDeviceMSISDN(ctx, "rx-1", bad)
		wantCode(t, err, loa.EINVALID)
	}
	if got, _ := db.Device(ctx, "rx-1"); got.MSISDN != "+84912345678" {
		t.Fatalf("a refused number changed it: %q", got.MSISDN)
	}
	if got, err := db.SetDeviceMSISDN(ctx, "rx-1", ""); err != nil || got.MSISDN != "" {
		t.Fatalf("removed: %+v, %v", got, err)
	}
	_, err = db.SetDeviceMSISDN(ctx, "nope", "+84912345678")
	wantCode(t, err, loa.ENOTFOUND)
	if _, err := db.DecommissionDevice(ctx, "rx-1"); err != nil {
		t.Fatal(err)
	}
	_, err = db.DevicePasswordHash(ctx, "rx-1")
	wantCode(t, err, loa.ENOTFOUND)
}
