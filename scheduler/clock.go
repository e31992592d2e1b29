package scheduler

import (
	"sync/atomic"
	"time"
)

// Clock gives the wall clock, which can step (NTP, an operator, a VM
// resumed), and a monotonic clock, which cannot; the scheduler compares
// their advances to see a step.
type Clock interface {
	Now() time.Time         // wall clock
	Elapsed() time.Duration // monotonic, from any fixed origin
}

// SystemClock is the host's clock shifted by an offset that can change at
// run time: the daemon's -clock-offset hook for tests and `loa bench
// chaos` (Go ignores libfaketime). Changing the offset is a wall-clock
// step; the monotonic clock does not move with it.
type SystemClock struct {
	offset atomic.Int64 // ns
	origin time.Time    // carries the monotonic reading Elapsed counts from
}

// NewSystemClock returns the host clock shifted by offset.
func NewSystemClock(offset time.Duration) *SystemClock {
	c := &SystemClock{origin: time.Now()}
	c.offset.Store(int64(offset))
	return c
}

// Now is the host's wall time plus the offset, without a monotonic
// reading, so comparing it with other times uses the shifted wall clock.
func (c *SystemClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load())).Round(0)
}

// Elapsed is the monotonic time since the clock was made.
func (c *SystemClock) Elapsed() time.Duration { return time.Since(c.origin) }

// Offset is the current shift of the wall clock.
func (c *SystemClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// SetOffset steps the wall clock to the host's plus d.
func (c *SystemClock) SetOffset(d time.Duration) { c.offset.Store(int64(d)) }

// DefaultStepThreshold is Config.StepThreshold when none is set: NTP
// slews smaller errors, so a larger divergence is a step.
const DefaultStepThreshold = 2 * time.Second

// Step is a wall-clock step the scheduler saw: Delta > 0 forward, < 0
// back. Cursor is how far it had handled occurrences before the step, Now
// the wall time after it.
type Step struct {
	Delta  time.Duration
	Cursor time.Time
	Now    time.Time
}

// stepWatch detects steps between successive readings of a Clock.
type stepWatch struct {
	clock     Clock
	threshold time.Duration
	wall      time.Time
	mono      time.Duration
}

func newStepWatch(c Clock, threshold time.Duration) *stepWatch {
	return &stepWatch{clock: c, threshold: threshold, wall: c.Now(), mono: c.Elapsed()}
}

// read returns the wall time and, when the wall clock moved more than the
// threshold away from the monotonic clock since the last read, by how much.
func (w *stepWatch) read() (now time.Time, step time.Duration) {
	now, mono := w.clock.Now(), w.clock.Elapsed()
	d := now.Round(0).Sub(w.wall.Round(0)) - (mono - w.mono)
	w.wall, w.mono = now, mono
	if d > w.threshold || d < -w.threshold {
		return now, d
	}
	return now, 0
}
