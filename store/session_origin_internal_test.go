package store

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/loa-broadcast/loa"
)

// TestSessionOrigins_FromOldCreators opens a database written before
// sessions had an Origin: each session gets the origin its CreatedBy
// prefix named, and CreatedBy the user behind it.
func TestSessionOrigins_FromOldCreators(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The steps before the origins, whichever steps came after them.
	old := migrations[:slices.IndexFunc(migrations, func(m migration) bool { return m.name == "session origins" })]
	err = b.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx, path, old, slog.New(slog.DiscardHandler)); err != nil {
			return err
		}
		for k, v := range map[string]string{
			"s-alert":    `{"id":"s-alert","created_by":"alert:al-1","state":"ended"}`,
			"s-sched":    `{"id":"s-sched","created_by":"schedule:sang","state":"ended"}`,
			"s-fallback": `{"id":"s-fallback","created_by":"fallback:xa-a","state":"stopped"}`,
			"s-manual":   `{"id":"s-manual","created_by":"tok-op","state":"ended"}`,
		} {
			if err := tx.Bucket(bucketSessions).Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketAlerts).Put([]byte("al-1"), []byte(`{"id":"al-1","created_by":"tok-prov"}`)); err != nil {
			return err
		}
		return tx.Bucket(bucketSchedules).Put([]byte("sang"), []byte(`{"id":"sang","created_by":"tok-sched"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()

	db, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]struct {
		origin loa.Origin
		by     string
	}{
		"s-alert":    {loa.Origin{Kind: loa.OriginAlert, ID: "al-1"}, "tok-prov"},
		"s-sched":    {loa.Origin{Kind: loa.OriginSchedule, ID: "sang"}, "tok-sched"},
		"s-fallback": {loa.Origin{Kind: loa.OriginFallback, ID: "xa-a"}, ""},
		"s-manual":   {loa.Origin{Kind: loa.OriginManual}, "tok-op"},
	}
	for id, w := range want {
		s, err := db.Session(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Origin != w.origin || s.CreatedBy != w.by {
			t.Errorf("%s: origin %v, created_by %q; want %v, %q", id, s.Origin, s.CreatedBy, w.origin, w.by)
		}
	}
}
