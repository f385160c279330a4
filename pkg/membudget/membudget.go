// Package membudget bounds the memory that stream records hold between the GetRecords call that read
// them and the moment they are done (delivered, filtered out or discarded): a Budget for the whole
// process, shared by every shard of every pipeline, and an Account per shard with its own cap.
//
// A shard asks before each GetRecords call (Wait) and charges what it read; it releases records as
// they are done. Nothing is ever refused once read: a page already fetched is charged even when it
// passes a limit, so a limit can be passed by what one call returns. Wait lets a shard read when it
// is under its own cap and the process is under its budget, and always when the shard holds nothing:
// a shard never waits on bytes that other shards hold, so one shard stuck behind a failing sink
// cannot stall the others, and no shard can wait forever.
package membudget

import (
	"context"
	"sync"
)

// Budget is the process-wide byte budget. Its methods are safe for concurrent use.
type Budget struct {
	limit int64 // immutable

	mu   sync.Mutex
	used int64
	// freed is closed by the next release, waking the accounts waiting in Wait; nil when nobody
	// waits.
	freed chan struct{}
	// Lock order: Budget.mu only; accounts keep their state under their budget's mu.
}

// New returns a budget of limit bytes (limit > 0).
func New(limit int64) *Budget {
	return &Budget{limit: limit}
}

// Limit is the budget in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used is the number of bytes charged to the budget's accounts and not released.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Open returns a new account of b that may hold up to limit bytes (limit > 0) before it waits.
// onChange, if not nil, is called with every change of what the account holds (for a gauge);
// it must not call back into the budget.
func (b *Budget) Open(limit int64, onChange func(delta int64)) *Account {
	return &Account{b: b, limit: limit, onChange: onChange}
}

// Account is one shard's share of a Budget. Its methods are safe for concurrent use (the shard's
// reader and dispatcher share it).
type Account struct {
	b        *Budget
	limit    int64 // immutable
	onChange func(delta int64)
	held     int64 // guarded by b.mu
}

// Limit is the account's cap in bytes.
func (a *Account) Limit() int64 { return a.limit }

// Held is the number of bytes the account holds.
func (a *Account) Held() int64 {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return a.held
}

// mayRead is Wait's rule; b.mu is held.
func (a *Account) mayRead() bool {
	return a.held <= 0 || a.held < a.limit && a.b.used < a.b.limit
}

// Room is how many bytes the account may still take before Wait waits: what is left of its own
// limit or of the budget, whichever is less (0 when none is).
func (a *Account) Room() int64 {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return max(0, min(a.limit-a.held, a.b.limit-a.b.used))
}

// Full reports whether Wait would wait now.
func (a *Account) Full() bool {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	return !a.mayRead()
}

// Wait returns nil once the account may read more: it holds nothing, or it holds less than its
// limit while the budget has bytes left. It returns ctx.Err() if ctx ends first.
func (a *Account) Wait(ctx context.Context) error {
	for {
		a.b.mu.Lock()
		if a.mayRead() {
			a.b.mu.Unlock()
			return nil
		}
		if a.b.freed == nil {
			a.b.freed = make(chan struct{})
		}
		freed := a.b.freed
		a.b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Charge adds n bytes to what the account holds. It never waits: the bytes are already in memory.
func (a *Account) Charge(n int64) { a.add(func(int64) int64 { return n }) }

// Release gives back n bytes the account held.
func (a *Account) Release(n int64) { a.add(func(int64) int64 { return -n }) }

// Close releases everything the account still holds. Its users should have stopped using it.
func (a *Account) Close() { a.add(func(held int64) int64 { return -held }) }

// add changes what the account holds by delta(held), and wakes the waiters when bytes are released.
func (a *Account) add(delta func(held int64) int64) {
	a.b.mu.Lock()
	n := delta(a.held)
	a.held += n
	a.b.used += n
	if n < 0 && a.b.freed != nil {
		close(a.b.freed)
		a.b.freed = nil
	}
	a.b.mu.Unlock()
	if n != 0 && a.onChange != nil {
		a.onChange(n)
	}
}
