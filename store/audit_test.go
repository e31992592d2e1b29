package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestAuditLog_NewestFirst(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	// Same explicit timestamp on all, so only the sequence can order them.
	at := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	for i := range 300 { // more than 255, so a single-byte key would misorder
		if err := db.Audit(ctx, loa.AuditRecord{At: at, Actor: "admin", Action: "test", Object: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}

	all, err := db.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 300 {
		t.Fatalf("AuditLog(0) returned %d, want all 300", len(all))
	}
	for i, r := range all {
		if want := fmt.Sprint(299 - i); r.Object != want {
			t.Fatalf("record %d is %q, want %q", i, r.Object, want)
		}
	}

	last, err := db.AuditLog(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 2 || last[0].Object != "299" || last[1].Object != "298" || !last[0].At.Equal(at) {
		t.Fatalf("AuditLog(2) = %+v", last)
	}
}

func TestAudit_StampsTime(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	if err := db.Audit(ctx, loa.AuditRecord{Actor: "system", Action: "startup"}); err != nil {
		t.Fatal(err)
	}
	log, err := db.AuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].At.IsZero() || log[0].Actor != "system" {
		t.Fatalf("AuditLog = %+v", log)
	}
}

func TestAudit_Errors(t *testing.T) {
	db := mustOpen(t)
	err := db.Audit(context.Background(), loa.AuditRecord{Actor: "x"})
	wantCode(t, err, loa.EINVALID)
	wantMessage(t, err, "action")
}

// TestAudit_Concurrent writes from many goroutines: every record lands
// once, and the race detector sees the shared DB used concurrently.
func TestAudit_Concurrent(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	const writers, each = 8, 20
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				if err := db.Audit(ctx, loa.AuditRecord{Actor: fmt.Sprint(w), Action: "test", Object: fmt.Sprint(i)}); err != nil {
					errs <- err
					return
				}
				if _, err := db.AuditLog(ctx, 5); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	log, err := db.AuditLog(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range log {
		seen[r.Actor+"/"+r.Object] = true
	}
	if len(log) != writers*each || len(seen) != writers*each {
		t.Fatalf("AuditLog has %d records (%d distinct), want %d", len(log), len(seen), writers*each)
	}
}
