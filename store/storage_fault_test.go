package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

func openWithFaults(t *testing.T, path string) (*store.DB, *store.WriteFaults) {
	t.Helper()
	f := new(store.WriteFaults)
	db, err := store.Open(path, store.Options{Now: newClock().Now, Timeout: 100 * time.Millisecond, Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, f
}

func area(i int) *loa.Area {
	return &loa.Area{ID: fmt.Sprintf("a%d", i), Name: fmt.Sprintf("Area %d", i), Kind: loa.AreaProvince}
}

// A change the disk refuses fails as ENOSPACE with a clear message, is not
// there afterwards, and the store is unhealthy until a write succeeds.
func TestWriteFaultDiskFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db, faults := openWithFaults(t, path)
	ctx := context.Background()
	if err := db.CreateArea(ctx, area(0)); err != nil {
		t.Fatal(err)
	}
	if h := db.StorageHealth(); !h.OK {
		t.Fatalf("health before = %+v", h)
	}
	if err := faults.Arm(); err != nil {
		t.Fatal(err)
	}
	// Enough data that pages are written however the freelist falls.
	for i := 1; i <= 3; i++ {
		err := db.CreateArea(ctx, area(i))
		wantCode(t, err, loa.ENOSPACE)
		wantMessage(t, err, "disk is full", "not saved")
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("err %v does not wrap ENOSPC", err)
		}
	}
	h := db.StorageHealth()
	if h.OK || !strings.Contains(h.Error, "disk is full") || h.FailedAt.IsZero() {
		t.Fatalf("health while full = %+v", h)
	}
	// Reads still work and see none of the refused changes.
	for i := 1; i <= 3; i++ {
		if _, err := db.Area(ctx, area(i).ID); loa.ErrorCode(err) != loa.ENOTFOUND {
			t.Fatalf("area %d after a refused write: err %v", i, err)
		}
	}
	if err := faults.Disarm(); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateArea(ctx, area(4)); err != nil {
		t.Fatal(err)
	}
	if h := db.StorageHealth(); !h.OK {
		t.Fatalf("health after a write succeeded = %+v", h)
	}
	// What was committed survives a reopen, and the file is sound.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := mustOpenPath(t, path)
	areas, err := db2.Areas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range areas {
		ids = append(ids, a.ID)
	}
	if got := strings.Join(ids, ","); got != "a0,a4" {
		t.Fatalf("areas after reopen = %s, want a0,a4", got)
	}
}

// A change made for a request carrying an audit journal commits its
// provisional audit record in the same transaction; the detailed record
// replaces it; a refused change leaves neither.
func TestAuditJournalCommitsWithTheChange(t *testing.T) {
	db, faults := openWithFaults(t, filepath.Join(t.TempDir(), "loa.db"))
	base := loa.AuditRecord{Actor: "tok-1", Action: "POST /api/v1/areas", Object: "/api/v1/areas"}

	// Change, then the detailed record: one record, the detailed one.
	j := &loa.AuditJournal{Base: base}
	ctx := loa.WithAuditJournal(context.Background(), j)
	if err := db.CreateArea(ctx, area(1)); err != nil {
		t.Fatal(err)
	}
	if j.Pending() == nil {
		t.Fatal("no provisional record pending after the change")
	}
	if err := db.Audit(ctx, loa.AuditRecord{Actor: "tok-1", Action: "area.create", Object: "a1"}); err != nil {
		t.Fatal(err)
	}
	recs, err := db.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Action != "area.create" {
		t.Fatalf("audit log = %+v, want the one detailed record", recs)
	}

	// The disk fills between the change and its detailed record: the
	// provisional record still stands for the change.
	j = &loa.AuditJournal{Base: base}
	ctx = loa.WithAuditJournal(context.Background(), j)
	if err := db.CreateArea(ctx, area(2)); err != nil {
		t.Fatal(err)
	}
	if err := faults.Arm(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, db.Audit(ctx, loa.AuditRecord{Actor: "tok-1", Action: "area.create", Object: "a2"}), loa.ENOSPACE)
	// A change refused for lack of space leaves no audit record.
	j3 := &loa.AuditJournal{Base: base}
	wantCode(t, db.CreateArea(loa.WithAuditJournal(context.Background(), j3), area(3)), loa.ENOSPACE)
	if j3.Pending() != nil {
		t.Fatal("a refused change left a provisional record pending")
	}
	if err := faults.Disarm(); err != nil {
		t.Fatal(err)
	}
	recs, err = db.AuditLog(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Action != "POST /api/v1/areas" || recs[0].Actor != "tok-1" || recs[1].Action != "area.create" {
		t.Fatalf("audit log = %+v, want the provisional record of a2 and the detailed one of a1", recs)
	}
	// Work a request leaves running after it is answered writes no record.
	j4 := &loa.AuditJournal{Base: base}
	j4.Close()
	if err := db.CreateArea(loa.WithAuditJournal(context.Background(), j4), area(4)); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.AuditLog(context.Background(), 0); len(got) != 2 {
		t.Fatalf("audit records after a closed journal's change = %d, want 2", len(got))
	}
	areas, err := db.Areas(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(areas) != 3 {
		t.Fatalf("areas = %d, want 3 (a1, a2, a4; a3 refused)", len(areas))
	}
}

// A data dir on a tmpfs that fills up: the real ENOSPC, not an injected one.
func TestWriteFaultTmpfsFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; the injected fault (TestWriteFaultDiskFull) covers ENOSPC")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "loa-test", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the injected fault covers ENOSPC", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "loa.db")
	db, err := store.Open(path, store.Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.CreateArea(ctx, area(0)); err != nil {
		t.Fatal(err)
	}
	// Fill the filesystem beside the database.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	_ = filler.Close()
	// Big values need new pages, which the disk refuses.
	var refused error
	for i := 1; i <= 50 && refused == nil; i++ {
		a := area(i)
		a.Name = strings.Repeat("x", 100) + a.Name
		a.Code = strings.Repeat("c", 64)
		refused = db.CreateArea(ctx, a)
	}
	wantCode(t, refused, loa.ENOSPACE)
	if db.StorageHealth().OK {
		t.Fatal("store healthy after ENOSPC")
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateArea(ctx, area(99)); err != nil {
		t.Fatal(err)
	}
	if !db.StorageHealth().OK {
		t.Fatal("store unhealthy after a successful write")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := mustOpenPath(t, path)
	if _, err := db2.Area(ctx, "a99"); err != nil {
		t.Fatal(err)
	}
}
