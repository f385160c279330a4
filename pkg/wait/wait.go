// Package wait holds the waiting helpers every loop in poller shares: a sleep that a context (and,
// for graceful stops, a stop channel) can cut short, a non-blocking "is it closed" check, and the
// capped, jittered exponential backoff that paces every retry.
//
// Every wait in poller goes through here, so that none of them is a time.Sleep or time.After that
// a shutdown cannot interrupt.
package wait

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// ErrStopped is what Until returns when stop was closed before the wait was over.
var ErrStopped = errors.New("stopped")

// Sleep waits d, or until ctx is done. It reports whether the whole wait passed (false: ctx is
// done). A wait of d <= 0 returns at once, reporting whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	return Until(ctx, nil, nil, d) == nil
}

// Until waits d, or until stop is closed (ErrStopped) or ctx is done (ctx.Err()). A nil stop never
// closes. timer, if not nil, is reused (loops pass one timer for all their waits) and is stopped on
// return; nil makes a new one. A wait of d <= 0 returns at once with what is already closed.
func Until(ctx context.Context, stop <-chan struct{}, timer *time.Timer, d time.Duration) error {
	if d <= 0 {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case Closed(stop):
			return ErrStopped
		}
		return nil
	}
	if timer == nil {
		timer = time.NewTimer(d)
	} else {
		timer.Reset(d)
	}
	// Since Go 1.23 a stopped timer delivers no stale tick, so a reused timer needs no draining.
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-stop:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewTimer returns a stopped timer, for a loop to reuse with Until.
func NewTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// Closed reports, without blocking, whether c is closed. A nil channel is never closed.
func Closed(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Backoff returns the wait before retry number attempt (1, 2, ...): base doubling up to max, with
// jitter (each wait is drawn from the upper half of its step, so retries of many shards spread
// out). Attempts below 1 wait as the first.
func Backoff(base, max time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := min(base, max)
		for i := 1; i < attempt && d < max; i++ {
			if d > max/2 { // doubling would pass max, or overflow when max is near the largest Duration
				d = max
				break
			}
			d *= 2
		}
		if d <= 0 {
			return 0
		}
		return d/2 + rand.N(d/2+1)
	}
}

// permanent marks an error Retry must not retry.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: Retry returns it (unwrapped) at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Retry calls try with attempt 1, 2, ... until it returns nil or a Permanent error, waiting
// backoff(attempt) after each failed attempt. It returns nil, the permanent error as try gave it
// to Permanent, ErrStopped once stop is closed (a nil stop never closes), or ctx.Err(). try
// reports (logs, counts) its own failures.
func Retry(ctx context.Context, stop <-chan struct{}, backoff func(attempt int) time.Duration, try func(attempt int) error) error {
	timer := NewTimer()
	for attempt := 1; ; attempt++ {
		err := try(attempt)
		if err == nil {
			return nil
		}
		if p, ok := errors.AsType[permanent](err); ok {
			return p.err
		}
		if err := Until(ctx, stop, timer, backoff(attempt)); err != nil {
			return err
		}
	}
}
