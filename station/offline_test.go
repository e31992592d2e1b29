package station

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/loa-broadcast/loa"
	"github.com/loa-broadcast/loa/protocol"
)

// countSource is n packets that can be skipped.
type countSource struct{ n, at int }

func (c *countSource) Next() ([]byte, error) {
	if c.at >= c.n {
		return nil, io.EOF
	}
	c.at++
	return []byte{0}, nil
}

func (c *countSource) Skip(k int) (int, error) {
	k = min(k, c.n-c.at)
	c.at += k
	if c.at >= c.n {
		return k, io.EOF
	}
	return k, nil
}

func (c *countSource) Close() error { return nil }

// A programme on a fixed timeline starting on time starts at frame 0; one
// starting late joins at the wall clock's frame (+ lateJoin); one whose
// end has passed is over; one without a fixed timeline is left alone.
func TestAlignToTimeline(t *testing.T) {
	t0 := time.UnixMilli(1_800_000_000_000)
	for _, c := range []struct {
		now        time.Time
		wantFrames int
		wantErr    error
	}{
		{t0.Add(-time.Second), 500, nil},
		{t0, 500, nil},
		{t0.Add(3 * time.Second), 500 - (3000+500)/20, nil},
		{t0.Add(3*time.Second + 10*time.Millisecond), 500 - (3000+500)/20 - 1, nil},
		{t0.Add(10 * time.Second), 0, errProgrammeOver},
	} {
		src := &countSource{n: 500}
		sess := &loa.Session{T0Ms: t0.UnixMilli()}
		frames, err := alignToTimeline(sess, src, 500, c.now)
		if !errors.Is(err, c.wantErr) || frames != c.wantFrames {
			t.Errorf("at %v: %d frames, %v; want %d, %v", c.now.Sub(t0), frames, err, c.wantFrames, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		k := 500 - frames
		if src.at != k || !sess.ScheduledAt.Equal(t0.Add(time.Duration(k)*protocol.FrameDuration)) {
			t.Errorf("at %v: skipped %d, scheduled %v; want %d frames skipped and frame %d's instant", c.now.Sub(t0), src.at, sess.ScheduledAt.Sub(t0), k, k)
		}
	}
	src := &countSource{n: 10}
	sess := &loa.Session{ScheduledAt: t0}
	if frames, err := alignToTimeline(sess, src, 10, t0.Add(time.Hour)); frames != 10 || err != nil || src.at != 0 || !sess.ScheduledAt.Equal(t0) {
		t.Errorf("no fixed timeline: %d frames, %v, skipped %d", frames, err, src.at)
	}
}
