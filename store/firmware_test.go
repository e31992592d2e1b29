package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

func TestFirmwareImages(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	img := &loa.FirmwareImage{ID: "fw1", Version: "1.2.0", Size: 4096, SHA256: hashOf("ab"), Sig: "c2ln", Name: "rx.img", CreatedBy: "tok"}
	if err := db.PutFirmwareImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if img.CreatedAt.IsZero() {
		t.Fatal("CreatedAt not set")
	}
	got, err := db.FirmwareImage(ctx, "fw1")
	if err != nil || !reflect.DeepEqual(got, img) {
		t.Fatalf("FirmwareImage = %+v, %v; want %+v", got, err, img)
	}
	// Putting the same image again is idempotent.
	if err := db.PutFirmwareImage(ctx, img); err != nil {
		t.Fatalf("same image again: %v", err)
	}

	for name, bad := range map[string]loa.FirmwareImage{
		"same content, other id": {ID: "fw2", Version: "1.3", Size: 1, SHA256: hashOf("ab"), Sig: "x"},
		"same id, other content": {ID: "fw1", Version: "1.2.0", Size: 1, SHA256: hashOf("cd"), Sig: "x"},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, db.PutFirmwareImage(ctx, &bad), loa.ECONFLICT) })
	}
	for name, bad := range map[string]loa.FirmwareImage{
		"bad version": {ID: "fw3", Version: "1.x", Size: 1, SHA256: hashOf("ef"), Sig: "x"},
		"short hash":  {ID: "fw3", Version: "1", Size: 1, SHA256: "abcd", Sig: "x"},
		"upper hash":  {ID: "fw3", Version: "1", Size: 1, SHA256: strings.Repeat("AB", 32), Sig: "x"},
		"no size":     {ID: "fw3", Version: "1", SHA256: hashOf("ef"), Sig: "x"},
		"no sig":      {ID: "fw3", Version: "1", Size: 1, SHA256: hashOf("ef")},
		"slash id":    {ID: "a/b", Version: "1", Size: 1, SHA256: hashOf("ef"), Sig: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			wantCode(t, db.PutFirmwareImage(ctx, &bad), loa.EINVALID)
		})
	}
	if _, err := db.FirmwareImage(ctx, "fw3"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("a refused image was stored: %v", err)
	}

	newer := &loa.FirmwareImage{ID: "fw4", Version: "2", Size: 9, SHA256: hashOf("99"), Sig: "x", CreatedAt: img.CreatedAt.Add(time.Hour)}
	if err := db.PutFirmwareImage(ctx, newer); err != nil {
		t.Fatal(err)
	}
	list, err := db.FirmwareImages(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "fw4" || list[1].ID != "fw1" {
		t.Fatalf("FirmwareImages = %v, %v; want fw4, fw1", list, err)
	}
}

func TestFirmwarePath(t *testing.T) {
	db := mustOpen(t)
	dir, err := db.FirmwareDir()
	if err != nil {
		t.Fatal(err)
	}
	if p := db.FirmwarePath(hashOf("ab")); filepath.Dir(p) != dir || !strings.HasSuffix(p, ".img") {
		t.Errorf("FirmwarePath = %q, want a file in %s", p, dir)
	}
	for _, bad := range []string{"", "../../etc/passwd", hashOf("ab")[:63] + "/", strings.Repeat("A", 64), hashOf("ab")[:32]} {
		if p := db.FirmwarePath(bad); p != "" {
			t.Errorf("FirmwarePath(%q) = %q, want empty", bad, p)
		}
	}
}

// A rollout survives closing and reopening the database as written.
func TestRolloutPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db := mustOpenPath(t, path)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	r := &loa.Rollout{ID: "ro1", ImageID: "fw1", Version: "1.2.0", Targets: loa.Targets{Areas: []string{"p"}},
		Waves: []int{10, 100}, FailThreshold: 0.2, WaveTimeout: time.Minute, State: loa.RolloutRunning, Wave: 1,
		WaveStarted: now, Accepted: 1, CreatedAt: now, UpdatedAt: now,
		Devices: []loa.RolloutDevice{
			{Device: "d1", Wave: 0, State: loa.RolloutDeviceDone, Version: "1.2.0", UpdatedAt: now},
			{Device: "d2", Wave: 1, State: loa.RolloutDeviceFailed, Code: "rolled_back", Msg: "unhealthy", Version: "1.0.0", UpdatedAt: now},
		}}
	if err := db.PutRollout(ctx, r); err != nil {
		t.Fatal(err)
	}
	older := &loa.Rollout{ID: "ro0", ImageID: "fw1", State: loa.RolloutCompleted, CreatedAt: now.Add(-time.Hour)}
	if err := db.PutRollout(ctx, older); err != nil {
		t.Fatal(err)
	}
	wantCode(t, db.PutRollout(ctx, &loa.Rollout{ID: ""}), loa.EINVALID)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpenPath(t, path)
	got, err := db.Rollout(ctx, "ro1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("reopened rollout\n got %+v\nwant %+v", got, r)
	}
	list, err := db.Rollouts(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "ro1" {
		t.Fatalf("Rollouts = %v, %v; want ro1 first", list, err)
	}
	if _, err := db.Rollout(ctx, "nope"); loa.ErrorCode(err) != loa.ENOTFOUND {
		t.Errorf("missing rollout: %v, want not_found", err)
	}
}

// BenchmarkPutRollout5000 stores a province-sized rollout whole, as the
// rollout engine does (at most every SaveEvery while devices progress).
func BenchmarkPutRollout5000(b *testing.B) {
	db := mustOpen(b)
	now := time.Now().UTC()
	r := &loa.Rollout{ID: "ro1", ImageID: "fw1", Version: "1.2.0", Targets: loa.Targets{Areas: []string{"p"}},
		Waves: loa.DefaultWaves, FailThreshold: 0.1, WaveTimeout: time.Hour, State: loa.RolloutRunning, CreatedAt: now}
	for i := range 5000 {
		r.Devices = append(r.Devices, loa.RolloutDevice{Device: fmt.Sprintf("rx-%05d", i), Wave: i % 4,
			State: loa.RolloutDeviceDownloading, Version: "1.1.0", UpdatedAt: now})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := db.PutRollout(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
