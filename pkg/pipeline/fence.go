package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/dispatch"
	"github.com/poller-dev/poller/pkg/sinks"
)

// fence keeps a shard worker from calling the sink for a lease it may have lost. Renewals and
// checkpoints are fenced by the lease counter, but a sink call is not a lease write: a worker that was
// paused (SIGSTOP, a long GC, a frozen VM) past lease_duration wakes up with batches ready to send,
// and would send them before its loop's next renewal finds the lease taken. So before each sink call
// the fence looks at when ownership was last confirmed (a renewal or take that succeeded, on the
// monotonic clock); past trust, it renews first, and a refused renewal stops the shard at once
// instead of delivering.
//
// trust is lease_duration minus renew_interval: another worker may take the lease only after it saw
// the counter stand still for lease_duration, so a confirmation younger than that still holds, and the
// loop's renewals every renew_interval keep the fence silent in normal operation.
type fence struct {
	held   *checkpoint.Held
	cancel context.CancelFunc // stops the shard worker
	trust  time.Duration      // immutable
	now    func() time.Time   // the monotonic clock; immutable

	mu        sync.Mutex
	confirmed time.Time // when the last successful renewal or take was sent
}

func newFence(held *checkpoint.Held, cancel context.CancelFunc, trust time.Duration, now func() time.Time) *fence {
	return &fence{held: held, cancel: cancel, trust: trust, now: now}
}

// confirm records that a lease write sent at at succeeded.
func (f *fence) confirm(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if at.After(f.confirmed) {
		f.confirmed = at
	}
}

// check returns nil when the lease is still this worker's: confirmed within trust, or renewed now.
// When the renewal is refused it cancels the shard worker and returns errLeaseLost.
func (f *fence) check(ctx context.Context) error {
	f.mu.Lock()
	fresh := f.now().Sub(f.confirmed) < f.trust
	f.mu.Unlock()
	if fresh {
		return nil
	}
	at := f.now()
	owned, err := f.held.Renew(ctx)
	if err != nil {
		return fmt.Errorf("confirm the lease before a sink call: %w: %w", dispatch.ErrNotInvoked, err)
	}
	if !owned {
		f.cancel()
		return fmt.Errorf("confirm the lease of shard %s before a sink call: %w: %w", f.held.Lease().ShardID, dispatch.ErrNotInvoked, errLeaseLost)
	}
	f.confirm(at)
	return nil
}

type fenceKey struct{}

// withFence returns a shard worker's context carrying its fence, which fencedSink finds there: every
// sink call of the shard, retries included, runs under that context.
func withFence(ctx context.Context, f *fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// fencedSink checks the shard's fence before each sink call. A call without a fence in its context
// goes through unchecked.
type fencedSink struct {
	sinks.Sink
}

var _ sinks.Sink = fencedSink{}

func (s fencedSink) Deliver(ctx context.Context, b sinks.Batch) error {
	if f, ok := ctx.Value(fenceKey{}).(*fence); ok {
		if err := f.check(ctx); err != nil {
			return err
		}
	}
	return s.Sink.Deliver(ctx, b)
}

// MaxEventBytes passes the wrapped sink's limit on (0: none).
func (s fencedSink) MaxEventBytes() int {
	if l, ok := s.Sink.(sinks.Limiter); ok {
		return l.MaxEventBytes()
	}
	return 0
}
