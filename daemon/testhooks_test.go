package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
)

// With -test-hooks, the clock hook steps the scheduler clock to the offset
// in the file and removes the file (the sender's acknowledgement).
func TestClockHook(t *testing.T) {
	cfg := testConfig(t)
	cfg.TestHooks = true
	m := openMain(t, cfg)
	defer m.Close()
	path := filepath.Join(cfg.DataDir, ClockHookFile)
	signal := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(os.Getpid(), ClockHookSignal); err != nil {
			t.Fatal(err)
		}
	}

	signal("-42s\n")
	loatest.Eventually(t, 10*time.Second, func() bool {
		_, err := os.Stat(path)
		return errors.Is(err, os.ErrNotExist)
	}, "the hook took the offset and removed the file")
	if got := m.Clock.Offset(); got != -42*time.Second {
		t.Fatalf("clock offset %v, want -42s", got)
	}
	if skew := time.Until(m.Clock.Now()) + 42*time.Second; skew > time.Second || skew < -time.Second {
		t.Errorf("the scheduler clock is %v off the host's, want -42s", time.Until(m.Clock.Now()))
	}

	signal("0s")
	loatest.Eventually(t, 10*time.Second, func() bool { return m.Clock.Offset() == 0 }, "the hook took the next offset")
}
