package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// fsm applies committed entries to the node's store. Every command entry
// is a store write set (store.DB.ApplyWriteSet); the store records the
// entry's index in the same transaction, so a restart that replays the
// log skips what it already holds.
type fsm struct {
	db       *store.DB
	dir      string // for snapshot temporaries
	log      *slog.Logger
	restores atomic.Uint64
	stuck    atomic.Bool   // an entry is waiting for the disk
	closing  chan struct{} // closed before raft shuts down
}

// Apply applies one committed entry. An entry the store refuses as
// invalid is refused alike on every node, and skipped. Any other failure
// (a full or failing disk, a bucket an older build lacks) is this node's:
// skipping the entry would fork its store from the others', so Apply
// retries until the store takes it, and the node falls behind meanwhile
// (Status.ApplyStuck, CommitLag).
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		err := f.db.ApplyWriteSet(l.Index, l.Data)
		if err == nil {
			if f.stuck.Swap(false) {
				f.log.Info("cluster: the store takes log entries again", "index", l.Index)
			}
			return nil
		}
		if loa.ErrorCode(err) == loa.EINVALID {
			f.log.Error("cluster: log entry refused by the store (on every node alike)", "index", l.Index, "err", err)
			return err
		}
		if !f.stuck.Swap(true) {
			f.log.Error("cluster: cannot apply a log entry; retrying, this node stays behind until it can", "index", l.Index, "err", err)
		}
		select {
		case <-f.closing:
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Snapshot copies the store as it is now (Apply is not running: raft calls
// this on the FSM's goroutine) to a temporary file that Persist streams.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	tmp, err := os.CreateTemp(f.dir, fsmSnapshotPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot: %w", err)
	}
	if _, err := f.db.Backup(tmp); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("cluster: snapshot: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("cluster: snapshot: %w", err)
	}
	return &fsmSnapshot{f: tmp}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	if err := f.db.RestoreSnapshot(rc); err != nil {
		return fmt.Errorf("cluster: restore snapshot: %w", err)
	}
	f.restores.Add(1)
	return nil
}

// fsmSnapshotPrefix names a snapshot's copy of the store while raft
// persists it; Open removes any a crash left.
const fsmSnapshotPrefix = ".fsm-snapshot-"

func removeSnapshotTemps(dir string) {
	leftovers, _ := filepath.Glob(filepath.Join(dir, fsmSnapshotPrefix+"*"))
	for _, f := range leftovers {
		_ = os.Remove(f)
	}
}

type fsmSnapshot struct{ f *os.File }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := io.Copy(sink, s.f); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cluster: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {
	_ = s.f.Close()
	_ = os.Remove(s.f.Name())
}

// restoreNewerSnapshot brings a store that is behind the newest local
// snapshot up to it before raft starts (raft itself is told not to restore
// on start: the store is persistent and normally ahead of any snapshot).
func restoreNewerSnapshot(snaps *raft.FileSnapshotStore, db *store.DB, log *slog.Logger) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	applied, err := db.AppliedIndex()
	if err != nil {
		return err
	}
	newest := list[0]
	if newest.Index <= applied {
		return nil
	}
	log.Info("cluster: store behind the newest snapshot, restoring it", "applied", applied, "snapshot", newest.Index)
	_, rc, err := snaps.Open(newest.ID)
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	return db.RestoreSnapshot(rc)
}
