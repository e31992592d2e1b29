package station

import (
	"context"
	"runtime"
	"time"

	"github.com/loa-broadcast/loa"
)

// TranscodeLimits bound the CPU media imports take: Workers transcode at
// once, each on about one core; Queue more wait, received in full (in a
// temporary file); any further upload is refused at once with EUNAVAILABLE
// and a Retry-After hint, before its body is read.
type TranscodeLimits struct {
	Workers int // 0: DefaultTranscodeWorkers()
	Queue   int // 0: 4 per worker
}

// DefaultTranscodeWorkers is half the CPUs, at least one: the other half
// stays for streaming, the broker and the API.
func DefaultTranscodeWorkers() int { return max(1, runtime.NumCPU()/2) }

// transcodeRetryAfter is what a refused upload is told to wait: about as
// long as a long upload takes to transcode.
const transcodeRetryAfter = 30 * time.Second

// transcodePool admits imports (running or waiting) up to a bound and runs
// a few at a time. Urgent imports (an alert's embedded audio) have one
// worker of their own: they never wait behind music uploads, and at most
// one runs beyond the pool.
type transcodePool struct {
	admitted chan struct{} // running + waiting
	workers  chan struct{}
	urgent   chan struct{}
}

func newTranscodePool(l TranscodeLimits) *transcodePool {
	if l.Workers <= 0 {
		l.Workers = DefaultTranscodeWorkers()
	}
	if l.Queue <= 0 {
		l.Queue = 4 * l.Workers
	}
	return &transcodePool{
		admitted: make(chan struct{}, l.Workers+l.Queue),
		workers:  make(chan struct{}, l.Workers),
		urgent:   make(chan struct{}, 1),
	}
}

// admit takes a place in the queue, or refuses at once when it is full.
func (p *transcodePool) admit() (release func(), err error) {
	select {
	case p.admitted <- struct{}{}:
		return func() { <-p.admitted }, nil
	default:
		return nil, &retryError{
			err: loa.Errorf(loa.EUNAVAILABLE, "the transcoder is busy: %d uploads are being converted or waiting; try again later",
				cap(p.admitted)),
			after: transcodeRetryAfter,
		}
	}
}

// work waits for a worker.
func (p *transcodePool) work(ctx context.Context, urgent bool) (release func(), err error) {
	slots := p.workers
	if urgent {
		slots = p.urgent
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// retryError is a refusal that may succeed later; the API sends after as
// Retry-After.
type retryError struct {
	err   *loa.Error
	after time.Duration
}

func (e *retryError) Error() string             { return e.err.Error() }
func (e *retryError) Unwrap() error             { return e.err }
func (e *retryError) RetryAfter() time.Duration { return e.after }
