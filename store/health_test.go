package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// Hourly aggregates survive a restart, a second write of the same hour
// (a restart within the hour) merges, and pruning removes only hours older
// than the cutoff.
func TestHealthHoursSurviveRestartMergeAndPrune(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "loa.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	old := now.Add(-loa.HealthRetention - 24*time.Hour)
	recent := now.Add(-loa.HealthRetention + 24*time.Hour)
	hours := []loa.HealthHour{
		{Device: "rx-1", Hour: old, Samples: 3, RSSIMin: -90, RSSIAvg: -85, RSSIMax: -80, TempMaxC: 40, VolumeLast: 70},
		{Device: "rx-1", Hour: recent, Samples: 2, RSSIMin: -80, RSSIAvg: -75, RSSIMax: -70, TempMaxC: 41, VolumeLast: 60, Received: 100, Lost: 5, JitterMaxMs: 9, OnlineSeconds: 1200},
		{Device: "rx-1", Hour: now.Add(-time.Hour), Samples: 1, RSSIMin: -60, RSSIAvg: -60, RSSIMax: -60},
		{Device: "rx-10", Hour: recent, Samples: 1, RSSIMin: -99, RSSIAvg: -99, RSSIMax: -99},
	}
	if err := db.PutHealthHours(ctx, hours); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpenPath(t, path)
	got, err := db.HealthHours(ctx, "rx-1", now.Add(-loa.HealthRetention-10*24*time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[0].Hour.Equal(old) || !got[1].Hour.Equal(recent) || got[1].Lost != 5 {
		t.Fatalf("after restart rx-1 has %+v, want its 3 hours in order (and not rx-10's)", got)
	}

	// The same hour again: counts add, extremes widen, the average weighs samples.
	more := loa.HealthHour{Device: "rx-1", Hour: recent.Add(17 * time.Minute), Samples: 2, RSSIMin: -95, RSSIAvg: -85, RSSIMax: -72,
		TempMaxC: 44, VolumeLast: 90, Received: 50, Lost: 1, JitterMaxMs: 4, OnlineSeconds: 1200}
	if err := db.PutHealthHours(ctx, []loa.HealthHour{more}); err != nil {
		t.Fatal(err)
	}
	got, _ = db.HealthHours(ctx, "rx-1", recent, recent.Add(time.Hour))
	if len(got) != 1 {
		t.Fatalf("one hour asked, got %+v", got)
	}
	h := got[0]
	if h.Samples != 4 || h.RSSIMin != -95 || h.RSSIMax != -70 || h.RSSIAvg != -80 || h.TempMaxC != 44 ||
		h.VolumeLast != 90 || h.Received != 150 || h.Lost != 6 || h.JitterMaxMs != 9 || h.OnlineSeconds != 2400 {
		t.Errorf("merged hour = %+v", h)
	}

	n, err := db.PruneHealth(ctx, now.Add(-loa.HealthRetention))
	if err != nil || n != 1 {
		t.Fatalf("prune deleted %d (%v), want the one hour older than the retention", n, err)
	}
	got, _ = db.HealthHours(ctx, "rx-1", time.Time{}, now)
	if len(got) != 2 || got[0].Hour.Before(now.Add(-loa.HealthRetention)) {
		t.Errorf("after pruning rx-1 has %+v", got)
	}
	if got, _ := db.HealthHours(ctx, "rx-10", time.Time{}, now); len(got) != 1 {
		t.Errorf("pruning removed a recent hour of another device: %+v", got)
	}
}

func TestHealthHoursBadInputChangesNothing(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	err := db.PutHealthHours(ctx, []loa.HealthHour{{Device: "ok", Hour: now, Samples: 1}, {Device: "Bad/ID", Hour: now}})
	wantCode(t, err, loa.EINVALID)
	if got, _ := db.HealthHours(ctx, "ok", time.Time{}, now.Add(time.Hour)); len(got) != 0 {
		t.Errorf("a refused batch stored %+v", got)
	}
	_, err = db.HealthHours(ctx, "", now, now)
	wantCode(t, err, loa.EINVALID)
}

func TestAlarmsFilterNewestFirstAndPrune(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	in := []loa.Alarm{
		{ID: "0001", Device: "rx-1", Area: "a1", Kind: loa.AlarmOffline, RaisedAt: t0, ClearedAt: t0.Add(time.Hour)},
		{ID: "0002", Device: "rx-2", Area: "b1", Kind: loa.AlarmTemperature, RaisedAt: t0.Add(time.Minute)},
		{ID: "0003", Device: "rx-1", Area: "a1", Kind: loa.AlarmTemperature, RaisedAt: t0.Add(2 * time.Minute)},
	}
	if err := db.PutAlarms(ctx, in); err != nil {
		t.Fatal(err)
	}
	all, err := db.Alarms(ctx, loa.AlarmFilter{})
	if err != nil || len(all) != 3 || all[0].ID != "0003" || all[2].ID != "0001" {
		t.Fatalf("all alarms = %+v %v, want 3 newest first", all, err)
	}
	act, _ := db.Alarms(ctx, loa.AlarmFilter{Active: true})
	if len(act) != 2 {
		t.Errorf("active = %+v", act)
	}
	if got, _ := db.Alarms(ctx, loa.AlarmFilter{Kind: loa.AlarmTemperature, Device: "rx-1"}); len(got) != 1 || got[0].ID != "0003" {
		t.Errorf("kind+device filter = %+v", got)
	}
	// Clearing is an update of the same record.
	in[1].ClearedAt = t0.Add(3 * time.Hour)
	if err := db.PutAlarms(ctx, in[1:2]); err != nil {
		t.Fatal(err)
	}
	if act, _ := db.Alarms(ctx, loa.AlarmFilter{Active: true}); len(act) != 1 || act[0].ID != "0003" {
		t.Errorf("after clearing 0002, active = %+v", act)
	}
	wantCode(t, db.PutAlarms(ctx, []loa.Alarm{{ID: "0009", Kind: "bogus"}}), loa.EINVALID)

	n, err := db.PruneAlarms(ctx, t0.Add(2*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("prune = %d %v, want 1 (0001 cleared before the cutoff; 0002 after; 0003 active)", n, err)
	}
	if all, _ := db.Alarms(ctx, loa.AlarmFilter{}); len(all) != 2 {
		t.Errorf("after prune: %+v", all)
	}
}
