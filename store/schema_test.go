package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// writeSchemaVersion makes a bare bbolt file whose meta bucket says version v.
func writeSchemaVersion(t *testing.T, path string, v uint64) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		return meta.Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readSchemaVersion(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var v uint64
	err = b.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			t.Fatal("no meta bucket")
		}
		v = binary.BigEndian.Uint64(meta.Get([]byte("schema_version")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpen_NewDatabaseAtCurrentVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if got, want := readSchemaVersion(t, path), uint64(store.SchemaVersion()); got != want || want < 1 {
		t.Fatalf("schema version = %d, want %d (>= 1)", got, want)
	}
}

func TestOpen_MigratesOlderDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	writeSchemaVersion(t, path, 0) // a database from before any bucket existed

	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The migrated buckets are usable.
	ctx := context.Background()
	if err := db.CreateArea(ctx, &loa.Area{ID: "qn", Name: "Quảng Nam", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	if err := db.Audit(ctx, loa.AuditRecord{Action: "x"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	if got, want := readSchemaVersion(t, path), uint64(store.SchemaVersion()); got != want {
		t.Fatalf("schema version after migration = %d, want %d", got, want)
	}
	// Reopening at the current version changes nothing.
	db = mustOpenPath(t, path)
	if _, err := db.Area(ctx, "qn"); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_RefusesNewerDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	newer := uint64(store.SchemaVersion() + 1)
	writeSchemaVersion(t, path, newer)

	db, err := store.Open(path, store.Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		db.Close()
		t.Fatal("Open of a database from a newer build succeeded")
	}
	wantCode(t, err, loa.EUNSUPPORTED)
	wantMessage(t, err, path, fmt.Sprintf("schema version %d", newer), "newer loa")

	// The refused database is left untouched and unlocked.
	if got := readSchemaVersion(t, path); got != newer {
		t.Fatalf("schema version = %d after refused Open, want %d", got, newer)
	}
}

// TestOpen_MigratesVersion2 takes a database as version 2 left it (every
// bucket but those step 3 adds, with data in them) to the current version:
// the data is kept and the new buckets work.
func TestOpen_MigratesVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loa.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pw, secret := populate(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Roll the file back to version 2.
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"schedules", "calendars", "scheduler_state", "started", "started_by_time", "play_log"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return fmt.Errorf("delete bucket %s: %w", name, err)
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, 2))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}

	db = mustOpenPath(t, path)
	if got := readSchemaVersionOpen(t, db); got < 3 {
		t.Fatalf("schema version after migration = %d, want >= 3", got)
	}
	checkPopulated(t, db, pw, secret)
	ctx := context.Background()
	if err := db.CreateSchedule(ctx, &loa.Schedule{ID: "sang"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutCalendar(ctx, loa.Calendar{Name: "Tết 2027"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSchedulerHandled(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MarkStarted(ctx, "sang@x", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendPlayLog(ctx, loa.PlayLogEntry{Event: loa.PlayStarted}); err != nil {
		t.Fatal(err)
	}
}

// readSchemaVersionOpen reads the version through a backup of an open db.
func readSchemaVersionOpen(t *testing.T, db *store.DB) uint64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "copy.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Backup(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return readSchemaVersion(t, path)
}
