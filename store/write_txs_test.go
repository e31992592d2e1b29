package store_test

import (
	"context"
	"testing"

	"github.com/loa-broadcast/loa"
)

// WriteTxs counts write transactions: one per batch of device states, none
// for reads or for input rejected before a transaction starts.
func TestWriteTxs(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	before := db.WriteTxs()
	states := []loa.DeviceState{{ID: "rx-1", Online: true}, {ID: "rx-2"}, {ID: "rx-3"}}
	if err := db.PutDeviceStates(ctx, states); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeviceStates(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.PutDeviceStates(ctx, []loa.DeviceState{{ID: "bad id/"}}); err == nil {
		t.Fatal("invalid id accepted")
	}
	if got := db.WriteTxs() - before; got != 1 {
		t.Fatalf("WriteTxs grew by %d, want 1 (one batch, one read, one rejected batch)", got)
	}
}
