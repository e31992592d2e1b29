package daemon

import (
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ClockHookFile is the file, in the data dir, the -test-hooks clock hook
// reads: a Go duration, the scheduler's new clock offset.
const ClockHookFile = "test-clock-offset"

// ClockHookSignal makes a controller started with -test-hooks read
// ClockHookFile and step its scheduler clock to that offset; it removes the
// file once applied, so the sender can tell. It is a test hook (for
// `loa bench chaos`, which runs the controller as a child process it
// kills): only a process that may signal the controller and write its data
// dir can use it, and without -test-hooks the signal is not handled.
const ClockHookSignal = syscall.SIGUSR1

// watchClockHook serves the clock hook until m.bg ends.
func (m *Main) watchClockHook() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, ClockHookSignal)
	path := filepath.Join(m.Config.DataDir, ClockHookFile)
	log := m.Logger.With("component", "test-hooks")
	log.Warn("test hooks on: " + ClockHookSignal.String() + " steps the scheduler clock to the offset in " + path)
	m.schedWG.Add(1)
	go func() {
		defer m.schedWG.Done()
		defer signal.Stop(sig)
		for {
			select {
			case <-m.bg.Done():
				return
			case <-sig:
			}
			b, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			var d time.Duration
			if err == nil {
				d, err = time.ParseDuration(strings.TrimSpace(string(b)))
			}
			if err != nil {
				log.Error("clock hook", "file", path, "err", err)
				continue
			}
			m.SetClockOffset(d)
			log.Warn("clock hook: scheduler clock offset set", "offset", d)
			if err := os.Remove(path); err != nil {
				log.Error("clock hook", "err", err)
			}
		}
	}()
}
