package store

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
)

// EIO cannot be injected through a descriptor without a faulty device, so
// its classification is tested here; ENOSPC goes through the real writes
// (storage_fault_test.go).
func TestStorageErrorClassifies(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name    string
		err     error
		code    string
		msg     string
		healthy bool
	}{
		{"write ENOSPC", &os.PathError{Op: "write", Path: "loa.db", Err: syscall.ENOSPC}, loa.ENOSPACE, "disk is full", false},
		{"grow ENOSPC (formatted with %s)", fmt.Errorf("file resize error: %s", syscall.ENOSPC), loa.ENOSPACE, "disk is full", false},
		{"quota", &os.PathError{Op: "write", Path: "loa.db", Err: syscall.EDQUOT}, loa.ENOSPACE, "disk is full", false},
		{"fdatasync EIO", fmt.Errorf("sync: %w", syscall.EIO), loa.EUNAVAILABLE, "I/O error", false},
		{"grow EIO (formatted with %s)", fmt.Errorf("file sync error: %s", syscall.EIO), loa.EUNAVAILABLE, "I/O error", false},
		{"refused change", loa.Errorf(loa.ECONFLICT, "exists"), loa.ECONFLICT, "exists", true},
		{"other", errors.New("decode"), loa.EINTERNAL, "internal error", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := storageError(tc.err)
			if loa.ErrorCode(err) != tc.code || !strings.Contains(loa.ErrorMessage(err), tc.msg) {
				t.Fatalf("storageError(%v) = %v, want %s %q", tc.err, err, tc.code, tc.msg)
			}
			if !errors.Is(err, tc.err) && tc.code != loa.ENOSPACE {
				t.Errorf("the cause is not wrapped: %v", err)
			}
			var h writeHealth
			h.observe(err, now)
			if ok := h.err == ""; ok != tc.healthy {
				t.Fatalf("healthy after %v = %v, want %v", err, ok, tc.healthy)
			}
			h.observe(nil, now)
			if h.err != "" {
				t.Fatal("a successful write did not make the store healthy")
			}
		})
	}
}
