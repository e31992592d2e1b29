package store_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestPutDeviceStates(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	in := []loa.DeviceState{
		{ID: "rx-2", Online: false, Boot: 1, LastSeen: at},
		{ID: "rx-1", Online: true, Boot: 7, OnlineSince: at, LastSeen: at.Add(time.Minute), Malformed: 2,
			Telemetry: &loa.Telemetry{At: at, RSSI: -71, Net: "lte", Volume: 80, TempC: 41.5, UptimeS: 3600,
				Firmware: "1.2.0", Session: "s1", Stream: &loa.StreamStats{Received: 1000, Lost: 3, JitterMs: 12.5}}},
	}
	if err := db.PutDeviceStates(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := db.DeviceStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []loa.DeviceState{in[1], in[0]} // sorted by id
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DeviceStates =\n%+v\nwant\n%+v", got, want)
	}

	// A later flush overwrites per device and keeps the others.
	if err := db.PutDeviceStates(ctx, []loa.DeviceState{{ID: "rx-2", Online: true, Boot: 2}}); err != nil {
		t.Fatal(err)
	}
	got, _ = db.DeviceStates(ctx)
	if len(got) != 2 || !got[1].Online || got[1].Boot != 2 || got[0].Boot != 7 {
		t.Fatalf("after second flush DeviceStates = %+v", got)
	}

	// Returned telemetry is a copy.
	got[0].Telemetry.Stream.Lost = 999
	again, _ := db.DeviceStates(ctx)
	if again[0].Telemetry.Stream.Lost != 3 {
		t.Fatal("mutating returned state changed the db")
	}

	if err := db.PutDeviceStates(ctx, nil); err != nil {
		t.Fatalf("empty flush: %v", err)
	}
}

func TestPutDeviceStates_InvalidWritesNothing(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	err := db.PutDeviceStates(ctx, []loa.DeviceState{{ID: "rx-1"}, {ID: ""}})
	wantCode(t, err, loa.EINVALID)
	wantMessage(t, err, "id")
	if got, _ := db.DeviceStates(ctx); len(got) != 0 {
		t.Fatalf("a refused batch stored %d states", len(got))
	}
}

// BenchmarkPutDeviceStates measures one flush of a province's worth of
// receivers; ns/op is the cost of one flush transaction (including fsync).
func BenchmarkPutDeviceStates(b *testing.B) {
	db := mustOpen(b)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	states := make([]loa.DeviceState, 5000)
	for i := range states {
		states[i] = loa.DeviceState{ID: fmt.Sprintf("rx-%05d", i), Online: true, Boot: 1, OnlineSince: at, LastSeen: at,
			Telemetry: &loa.Telemetry{At: at, RSSI: -80, Net: "lte", Volume: 70, TempC: 40, UptimeS: 1000, Firmware: "1.0.0",
				Stream: &loa.StreamStats{Received: 50000, Lost: 12, Played: 49990, JitterMs: 8}}}
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range states {
			states[i].LastSeen = states[i].LastSeen.Add(time.Second)
		}
		if err := db.PutDeviceStates(ctx, states); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(states)), "states/op")
}
