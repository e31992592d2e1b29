package store

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestMigrate_RunsOnlyMissingSteps drives migrate with a fake two-step
// history: a database at version 1 gets only step 2, and a failing step
// leaves the version where it was.
func TestMigrate_RunsOnlyMissingSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	log := slog.New(slog.DiscardHandler)

	var ran []string
	step := func(name string, fail bool) migration {
		return migration{name, func(tx *bolt.Tx) error {
			ran = append(ran, name)
			if fail {
				return errors.New("boom")
			}
			_, err := tx.CreateBucketIfNotExists([]byte(name))
			return err
		}}
	}
	version := func() uint64 {
		var v uint64
		_ = b.View(func(tx *bolt.Tx) error {
			if raw := tx.Bucket(bucketMeta).Get(keySchemaVersion); raw != nil {
				v = binary.BigEndian.Uint64(raw)
			}
			return nil
		})
		return v
	}
	run := func(steps ...migration) error {
		return b.Update(func(tx *bolt.Tx) error { return migrate(tx, path, steps, log) })
	}

	if err := run(step("one", false)); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != 1 {
		t.Fatalf("version = %d, want 1", v)
	}

	ran = nil
	if err := run(step("one", false), step("two", true)); err == nil {
		t.Fatal("failing step: no error")
	}
	if v := version(); v != 1 {
		t.Fatalf("version after failed step = %d, want 1", v)
	}

	ran = nil
	if err := run(step("one", false), step("two", false)); err != nil {
		t.Fatal(err)
	}
	if len(ran) != 1 || ran[0] != "two" {
		t.Fatalf("ran %v, want only [two]", ran)
	}
	if v := version(); v != 2 {
		t.Fatalf("version = %d, want 2", v)
	}
	_ = b.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("two")) == nil {
			t.Error("step two's bucket missing")
		}
		return nil
	})
}
