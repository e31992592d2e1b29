package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// TestDeliveries: lines are one per session and device (a second write
// replaces the first), read back sorted by device and only for their
// session (s1 is not a prefix of s10's); bad keys store nothing; a database
// that never had a report (no bucket yet) reads none.
func TestDeliveries(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	if got, err := db.Deliveries(ctx, "s1"); err != nil || len(got) != 0 {
		t.Fatalf("before any report: %v, %v", got, err)
	}
	at := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	line := func(dev, state string) loa.ReceiverDelivery {
		return loa.ReceiverDelivery{Device: dev, State: state, QueuedAt: at, Played: 50}
	}
	if err := db.PutDeliveries(ctx, map[string][]loa.ReceiverDelivery{
		"s1":  {line("rx-2", loa.DeliveryQueued), line("rx-1", loa.DeliveryAcked)},
		"s10": {line("rx-1", loa.DeliveryFinished)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutDeliveries(ctx, map[string][]loa.ReceiverDelivery{"s1": {line("rx-2", loa.DeliveryStarted)}}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Deliveries(ctx, "s1")
	if err != nil || len(got) != 2 || got[0].Device != "rx-1" || got[1].Device != "rx-2" ||
		got[0].State != loa.DeliveryAcked || got[1].State != loa.DeliveryStarted || !got[1].QueuedAt.Equal(at) {
		t.Fatalf("s1: %+v (%v), want rx-1 acked, rx-2 started", got, err)
	}
	for _, bad := range []map[string][]loa.ReceiverDelivery{
		{"": {line("rx-1", loa.DeliveryQueued)}},
		{"s 1": {line("rx-1", loa.DeliveryQueued)}},
		{"s2": {line("rx-1", loa.DeliveryQueued), line("", loa.DeliveryQueued)}},
	} {
		if err := db.PutDeliveries(ctx, bad); loa.ErrorCode(err) != loa.EINVALID {
			t.Errorf("PutDeliveries(%v) = %v, want EINVALID", bad, err)
		}
	}
	if got, _ := db.Deliveries(ctx, "s2"); len(got) != 0 {
		t.Errorf("a refused batch stored %+v", got)
	}
}
