package devices

import "sync"

// queue is an unbounded-until-limit FIFO between one or more producers that
// must never block (paho's router) and one consumer goroutine. The consumer
// swaps its drained batch for the pending one, so a steady stream of
// messages reuses two backing arrays instead of allocating.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	limit  int
	ready  chan struct{} // capacity 1: "there may be items, or the queue closed"
}

func newQueue[T any](limit int) *queue[T] {
	return &queue[T]{limit: limit, ready: make(chan struct{}, 1)}
}

// push appends v without blocking. It reports false, keeping nothing, when
// the queue is closed or holds limit items already.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if q.closed || len(q.items) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *queue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// close refuses further pushes; run returns once what is queued is done.
func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// swap hands the pending items to the consumer in exchange for spare, which
// must be empty (cleared) and is reused for the next pushes.
func (q *queue[T]) swap(spare []T) (batch []T, closed bool) {
	q.mu.Lock()
	batch, q.items = q.items, spare[:0]
	closed = q.closed
	q.mu.Unlock()
	return batch, closed
}

// run consumes batches in FIFO order until the queue is closed and drained.
// It is the queue's only consumer.
func (q *queue[T]) run(process func(batch []T)) {
	var spare []T
	for range q.ready {
		for {
			batch, closed := q.swap(spare)
			if len(batch) == 0 {
				if closed {
					return
				}
				spare = batch
				break
			}
			process(batch)
			clear(batch)
			spare = batch
		}
	}
}
