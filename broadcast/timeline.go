package broadcast

import (
	"time"

	"github.com/loa-broadcast/loa/protocol"
)

// timeline is a session's epoch (contract v2, timeline): RTP timestamp ts0
// is the UTC instant t0Ms, and every timestamp the session sends is on it,
// UTC(ts) = t0Ms + (ts − ts0)/48 kHz, so a receiver that knows the
// controller's clock can place every packet alone, without waiting for a
// Sender Report. It is fixed when the session starts, before any device
// is tuned, and never moves: pre-roll, pauses of the source and
// preemptions advance the timestamps with the wall clock instead.
type timeline struct {
	t0Ms int64 // unix ms
	ts0  uint32
}

// newTimeline fixes a timeline at now (to the millisecond, as t0_ms is
// carried) with the random timestamp ts0 (RFC 3550 §5.1).
func newTimeline(now time.Time, ts0 uint32) timeline {
	return timeline{t0Ms: now.UnixMilli(), ts0: ts0}
}

// samplesAt is how many 48 kHz samples lie between t0 and at (floored; 0
// before t0). A uint32 of samples spans 24.8 h: longer sessions wrap, as
// RTP timestamps do.
func (tl timeline) samplesAt(at time.Time) int64 {
	ns := at.UnixNano() - tl.t0Ms*int64(time.Millisecond)
	if ns <= 0 {
		return 0
	}
	return mulDiv(ns, protocol.ClockRate, int64(time.Second))
}

// mulDiv is a·b/c without overflowing for the spans a session has.
func mulDiv(a, b, c int64) int64 {
	q, r := a/c, a%c
	return q*b + r*b/c
}

// tsOf is the RTP timestamp samples after ts0.
func (tl timeline) tsOf(samples int64) uint32 { return tl.ts0 + uint32(samples) }

// utc is the instant of the RTP timestamp samples after ts0.
func (tl timeline) utc(samples int64) time.Time {
	return time.UnixMilli(tl.t0Ms).Add(time.Duration(mulDiv(samples, int64(time.Second), protocol.ClockRate)))
}
