package broker

import (
	"sync"
	"time"
)

// backoff slows the failed connects of one account: from the
// (backoffFree+1)-th failure in a row, the refusal is held back
// backoffBase, doubling with each further failure up to backoffMax, before
// the broker answers it. A success, or backoffForget without a failure,
// clears the account.
//
// The refusal is delayed, never the check: a device whose id an attacker
// keeps failing with still gets in at once with its own password, so
// nobody can lock another account out. What it bounds is the rate at
// which any one connection can try passwords (the controller's account
// above all) and the load of a device retrying with stale credentials.
// It is keyed by account alone, never by address: a whole commune's
// receivers share one carrier-NAT IP.
type backoff struct {
	now func() time.Time

	mu       sync.Mutex
	accounts map[string]*failures
}

type failures struct {
	n    int
	last time.Time
}

const (
	backoffFree   = 3
	backoffBase   = 250 * time.Millisecond
	backoffMax    = 5 * time.Second
	backoffForget = 10 * time.Minute
	// backoffAccounts bounds the table (any user name can fail): past it,
	// forgotten accounts are pruned, and if none is, it starts again.
	backoffAccounts = 1 << 16
)

func newBackoff(now func() time.Time) *backoff {
	return &backoff{now: now, accounts: map[string]*failures{}}
}

// failed records a refused connect of account and returns how long to
// hold the refusal back.
func (b *backoff) failed(account string) time.Duration {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.accounts[account]
	if f == nil || now.Sub(f.last) > backoffForget {
		if f == nil && len(b.accounts) >= backoffAccounts {
			b.prune(now)
		}
		f = &failures{}
		b.accounts[account] = f
	}
	f.n++
	f.last = now
	return delayAfter(f.n)
}

// succeeded clears account.
func (b *backoff) succeeded(account string) {
	b.mu.Lock()
	delete(b.accounts, account)
	b.mu.Unlock()
}

func (b *backoff) prune(now time.Time) {
	for k, f := range b.accounts {
		if now.Sub(f.last) > backoffForget {
			delete(b.accounts, k)
		}
	}
	if len(b.accounts) >= backoffAccounts {
		clear(b.accounts)
	}
}

// delayAfter is the hold-back of the n-th failure in a row.
func delayAfter(n int) time.Duration {
	if n <= backoffFree {
		return 0
	}
	d := backoffBase
	for i := backoffFree + 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}
