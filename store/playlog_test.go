package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// playLogTree is province p with commune a (cluster a1 under it) and
// commune b; device d-a1 lives in a1 and d-b in b.
func playLogTree() (loa.AreaTree, map[string]string) {
	tree := loa.NewAreaTree([]*loa.Area{
		{ID: "p", Name: "P", Kind: loa.AreaProvince},
		{ID: "a", ParentID: "p", Name: "A", Kind: loa.AreaCommune},
		{ID: "a1", ParentID: "a", Name: "A1", Kind: loa.AreaCluster},
		{ID: "b", ParentID: "p", Name: "B", Kind: loa.AreaCommune},
	})
	return tree, map[string]string{"d-a1": "a1", "d-b": "b"}
}

func details(es []loa.PlayLogEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Detail
	}
	return out
}

func wantDetails(t *testing.T, got []loa.PlayLogEntry, want ...string) {
	t.Helper()
	if g := details(got); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("entries = %v, want %v", g, want)
	}
}

func TestPlayLog_Filter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()
	tree, devArea := playLogTree()
	t0 := time.Date(2027, 1, 4, 6, 0, 0, 0, time.UTC)

	entries := []loa.PlayLogEntry{
		{At: t0, Event: loa.PlayStarted, Detail: "e0", ScheduleID: "sang", Occurrence: t0,
			Content: loa.Content{MediaID: "m1"}, Areas: []string{"a"}, Devices: []string{"d-a1"}, By: "schedule:sang"},
		{At: t0.Add(time.Minute), Event: loa.PlayStarted, Detail: "e1", Devices: []string{"d-b"}},
		{At: t0.Add(2 * time.Minute), Event: loa.PlayEnded, Detail: "e2", Areas: []string{"a1"}},
		{At: t0.Add(3 * time.Minute), Event: loa.PlayFailed, Detail: "e3", Areas: []string{"p"}, Devices: []string{"d-a1", "d-b"}},
		{At: t0.Add(4 * time.Minute), Event: loa.PlayMissed, Detail: "e4", Areas: []string{"b"}},
		{At: t0.Add(5 * time.Minute), Event: loa.PlaySkipped, Detail: "e5"}, // no targets
		{At: t0.Add(6 * time.Minute), Event: loa.PlayStopped, Detail: "e6", Devices: []string{"d-unknown"}},
	}
	if err := db.AppendPlayLog(ctx, entries[:3]...); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendPlayLog(ctx, entries[3:]...); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendPlayLog(ctx); err != nil {
		t.Fatalf("AppendPlayLog of nothing: %v", err)
	}
	db.Close()
	db = mustOpenPath(t, path)

	query := func(f loa.PlayLogFilter) []loa.PlayLogEntry {
		t.Helper()
		got, err := db.PlayLog(ctx, f, tree, devArea)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	all := query(loa.PlayLogFilter{})
	wantDetails(t, all, "e6", "e5", "e4", "e3", "e2", "e1", "e0")
	if e := all[6]; e.ScheduleID != "sang" || !e.Occurrence.Equal(t0) || e.Content.MediaID != "m1" || e.By != "schedule:sang" || !e.At.Equal(t0) {
		t.Errorf("e0 read back as %+v", e)
	}

	// [From, To)
	wantDetails(t, query(loa.PlayLogFilter{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}), "e2", "e1")
	wantDetails(t, query(loa.PlayLogFilter{From: t0.Add(5 * time.Minute)}), "e6", "e5")
	wantDetails(t, query(loa.PlayLogFilter{To: t0.Add(time.Minute)}), "e0")
	wantDetails(t, query(loa.PlayLogFilter{From: t0.Add(time.Minute), To: t0.Add(time.Minute)}))
	_, err := db.PlayLog(ctx, loa.PlayLogFilter{From: t0.Add(time.Minute), To: t0}, tree, devArea)
	wantCode(t, err, loa.EINVALID)

	// Device.
	wantDetails(t, query(loa.PlayLogFilter{Device: "d-a1"}), "e3", "e0")
	wantDetails(t, query(loa.PlayLogFilter{Device: "d-b"}), "e3", "e1")
	wantDetails(t, query(loa.PlayLogFilter{Device: "nope"}))

	// Area subtree: by target area or by a device's area.
	wantDetails(t, query(loa.PlayLogFilter{Area: "p"}), "e4", "e3", "e2", "e1", "e0")
	wantDetails(t, query(loa.PlayLogFilter{Area: "a"}), "e3", "e2", "e0")  // e3 via d-a1, not via p
	wantDetails(t, query(loa.PlayLogFilter{Area: "a1"}), "e3", "e2", "e0") // e0 via d-a1 (its area a is above a1)
	wantDetails(t, query(loa.PlayLogFilter{Area: "b"}), "e4", "e3", "e1")
	wantDetails(t, query(loa.PlayLogFilter{Area: "nowhere"}))

	// Combined filters, and the limit.
	wantDetails(t, query(loa.PlayLogFilter{Area: "a", Device: "d-b"}), "e3")
	wantDetails(t, query(loa.PlayLogFilter{Area: "p", From: t0.Add(time.Minute), To: t0.Add(4 * time.Minute)}), "e3", "e2", "e1")
	wantDetails(t, query(loa.PlayLogFilter{Limit: 2}), "e6", "e5")
	wantDetails(t, query(loa.PlayLogFilter{Area: "b", Limit: 2}), "e4", "e3")

	// Returned entries are copies.
	all[0].Devices[0] = "changed"
	if again := query(loa.PlayLogFilter{Limit: 1}); again[0].Devices[0] != "d-unknown" {
		t.Error("mutating a returned entry changed the db")
	}
}

func TestPlayLog_AppendStampsAndValidates(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	tree, devArea := playLogTree()

	in := []loa.PlayLogEntry{{Event: loa.PlayStarted, Detail: "x"}, {Event: loa.PlayEnded, Detail: "y"}}
	if err := db.AppendPlayLog(ctx, in...); err != nil {
		t.Fatal(err)
	}
	if !in[0].At.IsZero() {
		t.Error("AppendPlayLog stamped the caller's slice")
	}
	got, err := db.PlayLog(ctx, loa.PlayLogFilter{}, tree, devArea)
	if err != nil {
		t.Fatal(err)
	}
	wantDetails(t, got, "y", "x")
	for _, e := range got {
		if e.At.IsZero() {
			t.Errorf("entry %s not stamped", e.Detail)
		}
	}

	// A bad entry refuses the whole batch.
	err = db.AppendPlayLog(ctx, loa.PlayLogEntry{Event: loa.PlayStarted, Detail: "z"}, loa.PlayLogEntry{Detail: "no event"})
	wantCode(t, err, loa.EINVALID)
	wantMessage(t, err, "entries[1].event")
	if got, _ := db.PlayLog(ctx, loa.PlayLogFilter{}, tree, devArea); len(got) != 2 {
		t.Fatalf("after a refused batch, %d entries; want 2", len(got))
	}
}

func TestPlayLog_Limits(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	at := time.Date(2027, 1, 4, 6, 0, 0, 0, time.UTC)
	const n = store.MaxPlayLogLimit + 5
	batch := make([]loa.PlayLogEntry, 0, n)
	for i := range n {
		batch = append(batch, loa.PlayLogEntry{At: at, Event: loa.PlayStarted, Detail: fmt.Sprint(i)})
	}
	if err := db.AppendPlayLog(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, want int }{
		{0, store.DefaultPlayLogLimit},
		{-1, store.DefaultPlayLogLimit},
		{7, 7},
		{store.MaxPlayLogLimit + 100, store.MaxPlayLogLimit},
	} {
		got, err := db.PlayLog(ctx, loa.PlayLogFilter{Limit: tc.limit}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Errorf("Limit %d: %d entries, want %d", tc.limit, len(got), tc.want)
			continue
		}
		// Same At on all: newest first is by sequence (more than 255 entries,
		// so a one-byte key would misorder).
		if got[0].Detail != fmt.Sprint(n-1) || got[len(got)-1].Detail != fmt.Sprint(n-len(got)) {
			t.Errorf("Limit %d: first %s, last %s", tc.limit, got[0].Detail, got[len(got)-1].Detail)
		}
	}
}
