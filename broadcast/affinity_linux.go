package broadcast

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// cpuMask is a sched_setaffinity(2) mask of up to 1024 CPUs.
type cpuMask [16]uint64

func (m *cpuMask) affinity(call uintptr, tid int) error {
	_, _, e := syscall.RawSyscall(call, uintptr(tid), unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m)))
	if e != 0 {
		return e
	}
	return nil
}

// pinThreads puts every thread of the process on one CPU, the first it may
// run on, and returns what puts them back: the bench's negative control,
// where shards cannot run in parallel whatever the Go scheduler does (with
// GOMAXPROCS=1 alone, a thread in a long sendmmsg hands its P over, and the
// kernel part of two shards' sends still runs on two CPUs).
func pinThreads() (restore func(), err error) {
	var orig cpuMask
	if err := orig.affinity(syscall.SYS_SCHED_GETAFFINITY, 0); err != nil {
		return nil, err
	}
	var one cpuMask
	for i, w := range orig {
		if w != 0 {
			one[i] = w & -w
			break
		}
	}
	if err := setThreads(&one); err != nil {
		setThreads(&orig)
		return nil, err
	}
	return func() { setThreads(&orig) }, nil
}

// setThreads sets the mask of every thread, again while new ones appear (a
// thread started meanwhile inherits its creator's mask, set or not).
func setThreads(m *cpuMask) error {
	done := map[int]bool{}
	for {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := 0
		for _, ent := range ents {
			tid, err := strconv.Atoi(ent.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh++
			done[tid] = true
			if err := m.affinity(syscall.SYS_SCHED_SETAFFINITY, tid); err != nil && !errors.Is(err, syscall.ESRCH) {
				return err
			}
		}
		if fresh == 0 {
			return nil
		}
	}
}
