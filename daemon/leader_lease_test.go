package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loa-broadcast/loa/loatest"
)

// fakeVerify stands in for Raft's VerifyLeader: each call announces
// itself on calls (with the instant it began) and returns what the test
// sends on reply, so the test decides when and how each verify ends.
type fakeVerify struct {
	calls chan time.Time
	reply chan error
	stop  chan struct{}
}

var errNotLeader = errors.New("fake: not the leader")

func newFakeVerify() *fakeVerify {
	return &fakeVerify{calls: make(chan time.Time), reply: make(chan error), stop: make(chan struct{})}
}

func (f *fakeVerify) verify() error {
	select {
	case f.calls <- time.Now():
	case <-f.stop:
		return errNotLeader
	}
	select {
	case err := <-f.reply:
		return err
	case <-f.stop:
		return errNotLeader
	}
}

// next waits for the lease's next verify to begin and returns when it did;
// the verify then waits for a reply.
func (f *fakeVerify) next(t *testing.T) time.Time {
	t.Helper()
	select {
	case at := <-f.calls:
		return at
	case <-time.After(20 * time.Second):
		t.Fatal("the lease did not verify its lead within 20 s")
		return time.Time{}
	}
}

// answer replies err to every verify until cond holds.
func (f *fakeVerify) answer(t *testing.T, err error, cond func() bool, msg string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-f.calls:
			f.reply <- err
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("not within 20 s: %s", msg)
		}
	}
}

// runLease runs a lease on f until the test ends, and checks that run
// returns once its context is done.
func runLease(t *testing.T, f *fakeVerify) *leaderLease {
	l := newLeaderLease(f.verify)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		close(f.stop) // a verify under way returns
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("the lease's run did not return within 20 s of its context's end")
		}
	})
	return l
}

// A new lease is valid (the node was just elected) and, never confirmed,
// lapses after leaseFor.
func TestLeaderLeaseValidWhenCreated(t *testing.T) {
	t.Parallel() // waits on the lease's clock only
	created := time.Now()
	l := newLeaderLease(func() error { t.Error("verify called without run"); return nil })
	if !l.valid() {
		t.Fatal("a lease just created is not valid")
	}
	loatest.Eventually(t, 20*time.Second, func() bool { return !l.valid() }, "an unconfirmed lease to lapse")
	if d := time.Since(created); d < leaseFor {
		t.Errorf("an unconfirmed lease lapsed %v after its creation, before leaseFor (%v)", d, leaseFor)
	}
}

// Confirmations keep the lease valid past leaseFor; verifies that fail
// let it lapse; a later successful one makes it valid again.
func TestLeaderLeaseLapsesWhileVerifyFails(t *testing.T) {
	t.Parallel() // waits on the lease's clock only
	f := newFakeVerify()
	created := time.Now()
	l := runLease(t, f)
	f.answer(t, nil, func() bool { return time.Since(created) > leaseFor && l.valid() },
		"the lease to stay valid past leaseFor while its lead is confirmed")
	failing := time.Now()
	f.answer(t, errNotLeader, func() bool { return !l.valid() }, "the lease to lapse while verify fails")
	t.Logf("lapsed %v after verify began failing", time.Since(failing).Round(time.Millisecond))
	f.answer(t, nil, l.valid, "the lease to be valid again once verify succeeds")
}

// A verify that blocks (a frozen quorum, a partition) lets the lease
// lapse. When it does succeed, the lead is confirmed as of when it was
// asked: a confirmation asked more than leaseFor ago does not revive the
// lease; the next, prompt one does.
func TestLeaderLeaseLapsesWhileVerifyBlocks(t *testing.T) {
	t.Parallel() // waits on the lease's clock only
	f := newFakeVerify()
	created := time.Now()
	l := runLease(t, f)
	f.answer(t, nil, func() bool { return time.Since(created) > leaseFor && l.valid() },
		"the lease to stay valid past leaseFor while its lead is confirmed")
	asked := f.next(t) // held: this verify blocks
	loatest.Eventually(t, 20*time.Second, func() bool { return !l.valid() }, "the lease to lapse while verify blocks")
	for time.Since(asked) <= leaseFor {
		time.Sleep(50 * time.Millisecond)
	}
	f.reply <- nil // the blocked verify succeeds, late
	f.next(t)      // the run loop stored that confirmation before this verify
	if l.valid() {
		t.Error("a confirmation asked more than leaseFor ago made the lease valid")
	}
	f.reply <- nil
	f.answer(t, nil, l.valid, "the lease to be valid again once a prompt verify succeeds")
}
