//go:build !linux

package broadcast

import "errors"

// pinThreads is Linux only.
func pinThreads() (restore func(), err error) {
	return nil, errors.New("pinning threads to one CPU is Linux only")
}
