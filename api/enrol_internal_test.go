package api

import (
	"fmt"
	"testing"
	"time"
)

// A code gets a burst, then one poll per refill; a flood of other codes
// makes the limiter forget, which only ever gives a code a fresh burst.
func TestEnrolLimiter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newEnrolLimiter(func() time.Time { return now })
	for i := range enrolBurst {
		if wait := l.take("box"); wait != 0 {
			t.Fatalf("poll %d of the burst waited %v", i+1, wait)
		}
	}
	wait := l.take("box")
	if wait <= 0 || wait > enrolRefill {
		t.Fatalf("past the burst: wait %v, want within (0, %v]", wait, enrolRefill)
	}
	if l.take("another box") != 0 {
		t.Error("another code was limited by the first")
	}
	now = now.Add(wait)
	if w := l.take("box"); w != 0 {
		t.Errorf("after the wait it said (%v) the code still waits %v", wait, w)
	}
	if l.take("box") == 0 {
		t.Error("a second poll within one refill passed")
	}

	for i := range 2 * enrolMaxCodes {
		l.take(fmt.Sprint("guess-", i))
		if len(l.buckets) > enrolMaxCodes {
			t.Fatalf("the limiter holds %d codes, more than %d", len(l.buckets), enrolMaxCodes)
		}
	}
}
