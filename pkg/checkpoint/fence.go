package checkpoint

import (
	"context"
	"sync"
	"time"
)

// Fence keeps a shard's calls to the outside (a sink call, an on_failure report) from going out for a
// lease this worker may have lost. Lease writes are fenced by the counter, but such a call is not a
// lease write: a worker that was paused (SIGSTOP, a long GC, a frozen VM) past lease_duration wakes
// up with batches ready to send, and would send them before its next renewal finds the lease taken.
// So before each call, Check looks at when ownership was last confirmed (a take, renewal or other
// write of the lease, a checkpoint above all, that succeeded, timed from when it was sent, on the
// monotonic clock); past trust, it renews first.
//
// trust is lease_duration minus renew_interval: while nobody asked for the lease, another worker may
// take it only after it saw the counter stand still for lease_duration, so a confirmation younger
// than that still holds, and the Coordinator's renewals every renew_interval keep the fence silent in
// normal operation. A clean heartbeat of a worker that vouches for its leases (Vouch) is such a
// confirmation too: its leases are taken only over a heartbeat that stood still for lease_duration,
// and a take marks the heartbeat item, so that the next heartbeat vouches for nothing (Unvouch).
//
// A request for the lease (wanted_by, seen in a List) voids that argument: the requester takes the
// lease lease_duration after its request even while the owner renews. From then on renewals extend no
// trust: every call is preceded by a renewal of its own (confirmed now, or refused).
//
// The Coordinator makes one Fence per lease it takes (Grant.Fence), confirms it with each renewal and
// contests it with each List. A Fence is safe for concurrent use.
type Fence struct {
	held   *Held
	trust  time.Duration    // immutable
	margin time.Duration    // immutable: the least time a call gets to write
	now    func() time.Time // the monotonic clock; immutable

	mu        sync.Mutex
	confirmed time.Time // when the last successful write of the lease (take, renewal, checkpoint) was sent
	contested bool      // the last List showed another worker's request for the lease
	// unvouched: a heartbeat of this worker found one of its leases taken over its heartbeat, maybe
	// this one; heartbeats vouch for it no more until a write of its own confirms it.
	unvouched bool
}

// NewFence returns a fence for held that trusts a confirmation for trust; margin is the least time a
// call gets to write before the confirmation it relies on runs out (renewed first otherwise); now is
// the clock (time.Now, or a test's). Nothing is confirmed yet: call Confirm with the take's time.
// From then on every write of held that keeps the lease (a renewal, a checkpoint, a pin) confirms the
// fence as of when it was sent: each bumps the counter as a renewal does. Call it before held is
// shared.
func NewFence(held *Held, trust, margin time.Duration, now func() time.Time) *Fence {
	f := &Fence{held: held, trust: trust, margin: margin, now: now}
	held.observe(now, f.Confirm)
	return f
}

// Confirmed returns when the last write of the lease that succeeded was sent (zero: none yet).
func (f *Fence) Confirmed() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.confirmed
}

// state returns when the lease was last confirmed, and whether the last List contested it.
func (f *Fence) state() (confirmed time.Time, contested bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.confirmed, f.contested
}

// Confirm records that a write of the lease sent at at succeeded (a take, a renewal, a checkpoint).
func (f *Fence) Confirm(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unvouched = false
	if at.After(f.confirmed) {
		f.confirmed = at
	}
}

// Vouch records that a clean heartbeat of this worker, sent at at, vouched for the lease (see
// Store.Beat): no other worker takes it for lease_duration from then unless it asked for it, as after a
// renewal. Ignored while the lease is contested (a request lets its worker take it whatever the
// heartbeat says) and while it is unvouched.
func (f *Fence) Vouch(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.contested && !f.unvouched && at.After(f.confirmed) {
		f.confirmed = at
	}
}

// Unvouch records that a heartbeat found a lease of this worker taken over its heartbeat, maybe this
// one: until a write of the lease's own confirms it (a renewal, a checkpoint), heartbeats vouch for it
// no more, so it is renewed when its last confirmation ages, and found lost if it was taken.
func (f *Fence) Unvouch() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unvouched = true
}

// Contest records whether the last List showed the lease asked for by another worker (or held by
// another): while it is, every Check renews.
func (f *Fence) Contest(asked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contested = asked
}

// Check returns the time by which a call may write its request when the lease is still this worker's:
// confirmed within trust with margin to spare (and not asked for), or renewed now. (_, false, nil): the
// renewal was refused, the lease is lost and the call must not go out; the caller stops the shard. An
// error is a renewal that failed: the call must not go out either (retry it later).
func (f *Fence) Check(ctx context.Context) (deadline time.Time, owned bool, err error) {
	f.mu.Lock()
	confirmed, contested := f.confirmed, f.contested
	f.mu.Unlock()
	// A confirmation about to run out is renewed too: the call needs time left to write.
	if !contested && f.now().Sub(confirmed) < f.trust-f.margin {
		return confirmed.Add(f.trust), true, nil
	}
	at := f.now()
	owned, err = f.held.Renew(ctx)
	if err != nil || !owned {
		return time.Time{}, false, err
	}
	f.Confirm(at)
	return at.Add(f.trust), true, nil
}
