package store

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// WriteFaults injects write failures into an open database for tests of
// disk-full handling. bbolt's Options.OpenFile must return an *os.File, so
// the injector cannot wrap one: when armed it makes the file's descriptor
// refer to /dev/full (every write fails with ENOSPC, like a full disk) and
// when disarmed gives it back the database file. The memory map and the
// file lock belong to the original file description, which the injector
// keeps open, so reads and the lock are unaffected.
type WriteFaults struct {
	mu    sync.Mutex
	file  *os.File // the descriptor bbolt writes through
	saved int      // a duplicate of the database file's descriptor
	armed bool
}

// openFile is the bbolt Options.OpenFile that records the file.
func (f *WriteFaults) openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	file, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	saved, err := syscall.Dup(int(file.Fd()))
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("write faults: dup: %w", err)
	}
	f.mu.Lock()
	f.file, f.saved = file, saved
	f.mu.Unlock()
	return file, nil
}

// Arm makes every later write to the database fail with ENOSPC.
func (f *WriteFaults) Arm() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil || f.armed {
		return nil
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("write faults: %w", err)
	}
	defer full.Close()
	if err := syscall.Dup3(int(full.Fd()), int(f.file.Fd()), syscall.O_CLOEXEC); err != nil {
		return fmt.Errorf("write faults: dup3: %w", err)
	}
	f.armed = true
	return nil
}

// Disarm lets writes reach the database file again.
func (f *WriteFaults) Disarm() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		return nil
	}
	if err := syscall.Dup3(f.saved, int(f.file.Fd()), syscall.O_CLOEXEC); err != nil {
		return fmt.Errorf("write faults: dup3: %w", err)
	}
	f.armed = false
	return nil
}

// close releases the duplicate once the database is closed.
func (f *WriteFaults) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file != nil {
		_ = syscall.Close(f.saved)
		f.file = nil
	}
}
