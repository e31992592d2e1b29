//go:build amd64 || arm64

package broadcast

import "unsafe"

// prefetch asks the CPU to bring the n bytes at p into its cache, without
// waiting for them (PREFETCHT0, PRFM): a hint, which never faults.
//
//go:noescape
func prefetch(p unsafe.Pointer, n uintptr)
