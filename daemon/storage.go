package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/store"
)

// Exit statuses of a failed start, for cmd/loa.
const (
	ExitFailure         = 1
	ExitCorruptDatabase = 3 // the database file is empty, truncated or damaged; it was left untouched
)

// ExitCode returns the exit status for err from Open: ExitCorruptDatabase
// when the database was refused as damaged, so a supervisor (systemd's
// RestartPreventExitStatus) stops restarting a station that must be
// restored by hand, ExitFailure otherwise.
func ExitCode(err error) int {
	if errors.Is(err, store.ErrCorrupt) {
		return ExitCorruptDatabase
	}
	return ExitFailure
}

// Free-space alarm bounds, in percent of the data directory's filesystem.
const (
	diskSpaceRaise = 5.0 // raise below
	diskSpaceClear = 7.0 // clear above: the gap keeps it from flapping
	diskSpaceProbe = 1.0 // probe an unhealthy store only with this much free
	// DefaultDiskCheckEvery is how often free space is checked.
	DefaultDiskCheckEvery = 30 * time.Second
)

// startWatches runs the watches that raise station alarms (watchStorage,
// watchBrokerLink) until stopWatches, which Close calls before it closes
// the alarms.
func (m *Main) startWatches() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { m.watchStorage(ctx) })
	alarms, fleet := m.Alarms, m.Fleet
	wg.Go(func() { watchBrokerLink(ctx, alarms, fleet) })
	m.watchStop = func() { cancel(); wg.Wait() }
}

func (m *Main) stopWatches() {
	if m.watchStop != nil {
		m.watchStop()
		m.watchStop = nil
	}
}

// diskFree returns the free (available to this user) and total bytes of
// the filesystem holding path.
func diskFree(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// watchStorage checks the data directory's free space every interval,
// raising a disk_space alarm below diskSpaceRaise % and clearing it above
// diskSpaceClear %, and, while the store is unhealthy after a failed
// write, probes it with a small write so /healthz recovers once space is
// back.
func (m *Main) watchStorage(ctx context.Context) {
	every := m.Config.DiskCheckEvery
	if every <= 0 {
		every = DefaultDiskCheckEvery
	}
	statfs := m.statfs
	if statfs == nil {
		statfs = diskFree
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m.checkStorage(ctx, statfs)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Main) checkStorage(ctx context.Context, statfs func(string) (uint64, uint64, error)) {
	free, total, err := statfs(m.Config.DataDir)
	known := err == nil && total > 0
	pct := 0.0
	if known {
		pct = 100 * float64(free) / float64(total)
	} else {
		m.Logger.Warn("cannot check the data directory's free space", "dir", m.Config.DataDir, "err", err)
	}
	// A probe on a full disk could only land in pages bbolt has free
	// inside its file and would call the store healthy too soon.
	if !m.DB.StorageHealth().OK && (!known || pct >= diskSpaceProbe) {
		if err := m.DB.ProbeWrite(ctx); err != nil {
			m.Logger.Warn("storage still refuses writes", "err", err)
		} else {
			m.Logger.Info("storage takes writes again")
		}
	}
	if !known {
		return
	}
	switch {
	case pct < diskSpaceRaise:
		m.Alarms.Station(loa.AlarmDiskSpace, true, loa.SeverityCritical, pct, diskSpaceRaise,
			fmt.Sprintf("the data directory's filesystem has %.1f%% free (%d MiB of %d MiB); below %.0f%% the station may soon refuse changes",
				pct, free>>20, total>>20, diskSpaceRaise))
	case pct > diskSpaceClear:
		m.Alarms.Station(loa.AlarmDiskSpace, false, "", pct, diskSpaceClear,
			fmt.Sprintf("%.1f%% free", pct))
	}
}
