package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

func TestClaimEnrolOnce(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)
	code := protocol.NewClaimCode()
	hash := protocol.ClaimCodeHash(code)

	c := &loa.Claim{Hash: hash, CreatedBy: "tok-1"}
	if err := db.CreateClaim(ctx, c, &loa.Device{ID: "rx-1", AreaID: "qn.tk.1", Name: "Loa chợ"}); err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.DeviceID != "rx-1" || c.AreaID != "qn.tk.1" || c.CreatedAt.IsZero() {
		t.Fatalf("claim %+v", c)
	}
	d, err := db.Device(ctx, "rx-1")
	if err != nil || d.Credentials != loa.CredentialsPending {
		t.Fatalf("claimed device %+v, %v: want pending credentials", d, err)
	}
	if ok, _ := db.CheckDeviceCredentials(ctx, "rx-1", ""); ok {
		t.Fatal("a pending device accepts the empty password")
	}
	// The same code again, anywhere: refused, without saying where.
	err = db.CreateClaim(ctx, &loa.Claim{Hash: hash}, &loa.Device{ID: "rx-2", AreaID: "qn.tk"})
	if loa.ErrorCode(err) != loa.ECONFLICT || containsAny(loa.ErrorMessage(err), "rx-1", "qn.tk.1", c.ID) {
		t.Errorf("claiming a claimed code: %v, want a conflict naming nothing", err)
	}
	if _, err := db.Device(ctx, "rx-2"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("a refused claim registered its device: %v", err)
	}
	if _, _, err := db.EnrolClaim(ctx, protocol.ClaimCodeHash(protocol.NewClaimCode()), "x"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("enrolling an unclaimed code: %v, want not found", err)
	}

	// Many boxes with the same code at once: exactly one gets the device.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, gone := 0, 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, d, err := db.EnrolClaim(ctx, hash, "password-"+string(rune('a'+i)))
			mu.Lock()
			defer mu.Unlock()
			switch loa.ErrorCode(err) {
			case "":
				won++
				if d.ID != "rx-1" || d.Credentials != loa.CredentialsActive || d.EnrolledAt.IsZero() {
					t.Errorf("enrolled device %+v", d)
				}
			case loa.EGONE:
				gone++
			default:
				t.Errorf("enrol: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || gone != 7 {
		t.Fatalf("%d enrolments succeeded and %d were gone, want 1 and 7", won, gone)
	}
	got, err := db.Claim(ctx, c.ID)
	if err != nil || !got.Enrolled() {
		t.Fatalf("claim after enrolment %+v, %v", got, err)
	}
	ok := 0
	for i := range 8 {
		if m, _ := db.CheckDeviceCredentials(ctx, "rx-1", "password-"+string(rune('a'+i))); m {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d passwords work, want the winner's only", ok)
	}

	// Forgetting the used claim lets the code be claimed again (a reset box).
	if _, err := db.DeleteClaim(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if d, err := db.Device(ctx, "rx-1"); err != nil || d.Credentials != loa.CredentialsActive {
		t.Errorf("forgetting a used claim changed the device: %+v, %v", d, err)
	}
	if err := db.CreateClaim(ctx, &loa.Claim{Hash: hash}, &loa.Device{ID: "rx-3", AreaID: "qn.tk.1"}); err != nil {
		t.Errorf("claiming a forgotten code again: %v", err)
	}
}

func TestClaimCancelAndReplace(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	seedAreas(t, db)

	// Cancelling a new device's claim removes the device it registered.
	c := &loa.Claim{Hash: protocol.ClaimCodeHash(protocol.NewClaimCode())}
	if err := db.CreateClaim(ctx, c, &loa.Device{ID: "rx-new", AreaID: "qn.tk.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteClaim(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Device(ctx, "rx-new"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("the cancelled claim's device: %v, want not found", err)
	}
	if _, _, err := db.EnrolClaim(ctx, c.Hash, "x"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("enrolling a cancelled claim: %v, want not found", err)
	}

	// A swap revokes the old unit's password at once.
	oldPW, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-old", AreaID: "qn.tk", Name: "Loa đình"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClaim(ctx, &loa.Claim{DeviceID: "nobody", Replace: true, Hash: protocol.ClaimCodeHash(protocol.NewClaimCode())}, nil); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("swapping an unknown device: %v", err)
	}
	code := protocol.NewClaimCode()
	swap := &loa.Claim{DeviceID: "rx-old", Replace: true, Hash: protocol.ClaimCodeHash(code)}
	if err := db.CreateClaim(ctx, swap, nil); err != nil {
		t.Fatal(err)
	}
	if swap.AreaID != "qn.tk" {
		t.Errorf("swap claim area %q, want the device's", swap.AreaID)
	}
	if ok, _ := db.CheckDeviceCredentials(ctx, "rx-old", oldPW); ok {
		t.Error("the old unit's password still works after the swap was claimed")
	}
	if d, _ := db.Device(ctx, "rx-old"); d.Credentials != loa.CredentialsRevoked || d.RevokedAt.IsZero() {
		t.Errorf("swapped device %+v, want revoked", d)
	}
	second := &loa.Claim{DeviceID: "rx-old", Replace: true, Hash: protocol.ClaimCodeHash(protocol.NewClaimCode())}
	if err := db.CreateClaim(ctx, second, nil); loa.ErrorCode(err) != loa.ECONFLICT {
		t.Errorf("a second swap while one waits: %v, want conflict", err)
	}
	_, d, err := db.EnrolClaim(ctx, swap.Hash, "new-password")
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "rx-old" || d.AreaID != "qn.tk" || d.Name != "Loa đình" || d.Credentials != loa.CredentialsActive || d.RotatedAt.IsZero() {
		t.Errorf("the swapped device after enrolment %+v: want its identity, active, rotated", d)
	}
	if ok, _ := db.CheckDeviceCredentials(ctx, "rx-old", "new-password"); !ok {
		t.Error("the new unit's password does not work")
	}
	list, err := db.Claims(ctx)
	if err != nil || len(list) != 1 || list[0].ID != swap.ID || list[0].Hash != swap.Hash {
		t.Errorf("Claims = %+v, %v", list, err)
	}
}

// containsAny reports whether s mentions any of words.
func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
