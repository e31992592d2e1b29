package station

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// tempStore opens a real database in a temp dir with a commune "c" and
// the devices given.
func tempStore(t *testing.T, devices ...string) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "loa.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	for _, a := range []*loa.Area{
		{ID: "p", Name: "P", Kind: loa.AreaProvince},
		{ID: "c", ParentID: "p", Name: "C", Kind: loa.AreaCommune},
	} {
		if err := db.CreateArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range devices {
		if _, err := db.CreateDevice(ctx, &loa.Device{ID: id, AreaID: "c", Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// recordingBroker records each Disconnect with the device as the store
// has it at that moment: the change must be stored before the device is
// dropped, or its reconnect could pass with the old password.
type recordingBroker struct {
	db      *store.DB
	dropped []loa.Device
}

func (b *recordingBroker) Disconnect(id string) {
	d, err := b.db.Device(context.Background(), id)
	if err != nil {
		d = &loa.Device{ID: id}
	}
	b.dropped = append(b.dropped, *d)
}

func TestCredentialsRotateThenDisconnect(t *testing.T) {
	ctx := context.Background()
	db := tempStore(t, "rx-1")
	b := &recordingBroker{db: db}
	c := NewCredentialService(CredentialConfig{DB: db, Broker: b, Logger: quietLogger(t)})
	pw, enforced, err := c.RotateCredentials(ctx, "rx-1")
	if err != nil || pw == "" || !enforced {
		t.Fatalf("rotate: %q %v %v, want a password, enforced", pw, enforced, err)
	}
	if ok, _ := db.CheckDeviceCredentials(ctx, "rx-1", pw); !ok {
		t.Error("the rotated password does not work")
	}
	if len(b.dropped) != 1 || b.dropped[0].ID != "rx-1" || b.dropped[0].RotatedAt.IsZero() {
		t.Fatalf("dropped %+v, want rx-1 once, after the rotation was stored", b.dropped)
	}

	enforced, err = c.RevokeCredentials(ctx, "rx-1")
	if err != nil || !enforced {
		t.Fatalf("revoke: %v %v", enforced, err)
	}
	if ok, _ := db.CheckDeviceCredentials(ctx, "rx-1", pw); ok {
		t.Error("the password works after a revocation")
	}
	if len(b.dropped) != 2 || b.dropped[1].Credentials != loa.CredentialsRevoked {
		t.Errorf("dropped %+v, want rx-1 again, after the revocation was stored", b.dropped)
	}
}

// With an external broker the store changes and the answer says the
// broker did not act.
func TestCredentialsExternalBroker(t *testing.T) {
	ctx := context.Background()
	db := tempStore(t, "rx-1")
	c := NewCredentialService(CredentialConfig{DB: db})
	pw, enforced, err := c.RotateCredentials(ctx, "rx-1")
	if err != nil || enforced {
		t.Fatalf("rotate: %v %v, want not enforced", enforced, err)
	}
	if ok, _ := db.CheckDeviceCredentials(ctx, "rx-1", pw); !ok {
		t.Error("the rotated password does not work")
	}
	if enforced, err := c.RevokeCredentials(ctx, "rx-1"); err != nil || enforced {
		t.Fatalf("revoke: %v %v, want not enforced", enforced, err)
	}
}

// An unknown device is not found and nobody is disconnected.
func TestCredentialsUnknownDevice(t *testing.T) {
	ctx := context.Background()
	db := tempStore(t)
	b := &recordingBroker{db: db}
	c := NewCredentialService(CredentialConfig{DB: db, Broker: b})
	if _, _, err := c.RotateCredentials(ctx, "ghost"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("rotate ghost: %v, want ENOTFOUND", err)
	}
	if _, err := c.RevokeCredentials(ctx, "ghost"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("revoke ghost: %v, want ENOTFOUND", err)
	}
	if len(b.dropped) > 0 {
		t.Errorf("dropped %v for an unknown device", b.dropped)
	}
}
