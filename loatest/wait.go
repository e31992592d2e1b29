package loatest

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds, and fails the test with msg if it
// does not within timeout. It must run on the test's goroutine. For state
// that has no signal to wait on; prefer a channel when there is one.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, msg string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %v: %s", timeout, msg)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond) // quick at first, cheap later
	}
}
