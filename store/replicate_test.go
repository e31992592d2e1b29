package store_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// logReplicator stands for the Raft log in a single process: Replicate
// appends the write set to its log and applies it to the store, as the
// cluster package's FSM does once the entry commits.
type logReplicator struct {
	db     *store.DB
	refuse error
	mu     sync.Mutex
	log    [][]byte
}

func (l *logReplicator) Writable() error { return l.refuse }

func (l *logReplicator) Replicate(_ context.Context, ws []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, bytes.Clone(ws))
	return l.db.ApplyWriteSet(uint64(len(l.log)), ws)
}

// dump returns every replicated record of db as "bucket/key=value" lines.
func dump(t testing.TB, db *store.DB) []string {
	t.Helper()
	var out []string
	err := db.EachRecord(context.Background(), func(b, k, v []byte) error {
		out = append(out, fmt.Sprintf("%s/%x=%x", b, k, v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameRecords(t *testing.T, a, b []string) {
	t.Helper()
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			t.Fatalf("record %d differs:\n  %s\n  %s", i, x, y)
		}
	}
}

// writeSamples changes the store through its ordinary methods, in ways
// that choose ids, secrets and sequence numbers.
func writeSamples(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	seedAreas(t, db)
	if _, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-1", Name: "Loa chợ", AreaID: "qn.tk.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateToken(ctx, &loa.Token{Name: "op", Role: loa.RoleOperator, AreaID: "qn.tk"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Audit(ctx, loa.AuditRecord{Action: "area.create"}); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendPlayLog(ctx, loa.PlayLogEntry{ScheduleID: "s", Event: loa.PlayStarted, At: time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MarkStarted(ctx, "s@2026-03-01T06:00", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteArea(ctx, "qn.tk.1"); loa.ErrorCode(err) != loa.ECONFLICT && err != nil {
		t.Fatal(err)
	}
}

// A replicated store proposes its writes, applies them from the log, and
// the log replayed on a fresh store gives the same records.
func TestReplicatedWritesReplay(t *testing.T) {
	leader := mustOpen(t)
	rep := &logReplicator{db: leader}
	leader.SetReplicator(rep)
	writeSamples(t, leader)
	if _, err := leader.CreateDevice(context.Background(), &loa.Device{ID: "rx-1", Name: "again", AreaID: "qn.tk.1"}); err == nil {
		t.Fatal("a second rx-1: no error (did the first reach the store?)")
	}
	if len(rep.log) < 6 {
		t.Fatalf("%d entries proposed, want one per write", len(rep.log))
	}
	// Local-only state is written here and not proposed.
	proposed := len(rep.log)
	ctx := context.Background()
	if err := leader.PutDeviceStates(ctx, []loa.DeviceState{{ID: "rx-1", Online: true}}); err != nil {
		t.Fatal(err)
	}
	if err := leader.ProbeWrite(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rep.log) != proposed {
		t.Fatalf("local-only writes proposed %d entries", len(rep.log)-proposed)
	}
	applied, err := leader.AppliedIndex()
	if err != nil || applied != uint64(len(rep.log)) {
		t.Fatalf("applied index %d (%v), want %d", applied, err, len(rep.log))
	}

	// The same writes on a store with no replicator give the same records
	// but for what the leader chose (secrets, times).
	a, b := mustOpen(t), mustOpen(t)
	for i, ws := range rep.log {
		for _, db := range []*store.DB{a, b} {
			if err := db.ApplyWriteSet(uint64(i+1), ws); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Applying an entry again (a restart replaying its log) changes nothing.
	if err := a.ApplyWriteSet(1, rep.log[0]); err != nil {
		t.Fatal(err)
	}
	want := dump(t, leader)
	sameRecords(t, want, dump(t, a))
	sameRecords(t, want, dump(t, b))
	if d, _ := a.Device(ctx, "rx-1"); d == nil || d.Name != "Loa chợ" {
		t.Fatalf("replayed device: %+v", d)
	}
}

// A follower refuses a change with the replicator's error and changes
// nothing, but keeps writing its local-only state.
func TestReplicatedFollowerRefuses(t *testing.T) {
	db := mustOpen(t)
	seedAreas(t, db)
	before := dump(t, db)
	rep := &logReplicator{db: db, refuse: store.NotLeaderError("n1", "10.0.0.1:7000")}
	db.SetReplicator(rep)
	ctx := context.Background()
	_, err := db.CreateDevice(ctx, &loa.Device{ID: "rx-9", Name: "x", AreaID: "qn.tk"})
	wantCode(t, err, loa.EUNAVAILABLE)
	wantMessage(t, err, "n1", "10.0.0.1:7000")
	sameRecords(t, before, dump(t, db))
	if len(rep.log) != 0 {
		t.Fatalf("a follower proposed %d entries", len(rep.log))
	}
	if err := db.PutDeviceStates(ctx, []loa.DeviceState{{ID: "rx-1", Online: true}}); err != nil {
		t.Fatalf("local-only write on a follower: %v", err)
	}
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatalf("write probe on a follower: %v", err)
	}
	if s, err := db.DeviceStates(ctx); err != nil || len(s) != 1 {
		t.Fatalf("device states %v, %v", s, err)
	}
	sameRecords(t, before, dump(t, db))
}

// A snapshot of one store restored into another makes their replicated
// records equal and keeps the target's local-only state.
func TestRestoreSnapshot(t *testing.T) {
	src := mustOpen(t)
	src.SetReplicator(&logReplicator{db: src})
	writeSamples(t, src)
	var snap bytes.Buffer
	if _, err := src.Backup(&snap); err != nil {
		t.Fatal(err)
	}
	dst := mustOpen(t)
	ctx := context.Background()
	if err := dst.CreateArea(ctx, &loa.Area{ID: "gone", Name: "Gone", Kind: loa.AreaProvince}); err != nil {
		t.Fatal(err)
	}
	if err := dst.PutDeviceStates(ctx, []loa.DeviceState{{ID: "rx-7", Online: true}}); err != nil {
		t.Fatal(err)
	}
	if err := dst.RestoreSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, dump(t, src), dump(t, dst))
	if s, _ := dst.DeviceStates(ctx); len(s) != 1 || s[0].ID != "rx-7" {
		t.Fatalf("local device states after restore: %+v", s)
	}
	si, _ := src.AppliedIndex()
	if di, _ := dst.AppliedIndex(); di != si || di == 0 {
		t.Fatalf("applied index %d after restore, want %d", di, si)
	}
}

// FuzzApplyWriteSet: a bad entry is refused with a clear error and changes
// nothing; a good one applies.
func FuzzApplyWriteSet(f *testing.F) {
	src, err := store.Open(f.TempDir()+"/src.db", store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	rep := &logReplicator{db: src}
	src.SetReplicator(rep)
	ctx := context.Background()
	_ = src.CreateArea(ctx, &loa.Area{ID: "qn", Name: "Quảng Nam", Kind: loa.AreaProvince})
	_, _ = src.CreateToken(ctx, &loa.Token{Name: "op", Role: loa.RoleOperator, AreaID: "qn"})
	_ = src.Close()
	for _, ws := range rep.log {
		f.Add(ws)
		f.Add(ws[:len(ws)/2])
	}
	f.Add([]byte{1, 1, 0})
	f.Add([]byte{2})
	f.Add([]byte{1, 9, 5, 'a', 'r', 'e', 'a', 's'})
	f.Add([]byte{1, 1, 5, 'a', 'r', 'e', 'a', 's', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})

	db, err := store.Open(f.TempDir()+"/loa.db", store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = db.Close() })
	var index uint64
	f.Fuzz(func(t *testing.T, ws []byte) {
		before := dump(t, db)
		index++
		err := db.ApplyWriteSet(index, ws)
		if err == nil {
			return
		}
		if loa.ErrorCode(err) == "" || loa.ErrorMessage(err) == "" {
			t.Fatalf("unclear error: %v", err)
		}
		sameRecords(t, before, dump(t, db))
	})
}

// A seed write set recreates a store's records on an empty one.
func TestSeedWriteSet(t *testing.T) {
	ctx := context.Background()
	empty := mustOpen(t)
	if ws, err := empty.SeedWriteSet(ctx); err != nil || ws != nil {
		t.Fatalf("seed of an empty store: %d bytes, %v", len(ws), err)
	}
	src := mustOpen(t)
	writeSamples(t, src)
	ws, err := src.SeedWriteSet(ctx)
	if err != nil || ws == nil {
		t.Fatalf("seed: %v", err)
	}
	if err := empty.ApplyWriteSet(1, ws); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, dump(t, src), dump(t, empty))
}
