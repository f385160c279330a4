package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/failure"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
)

// fence keeps a shard worker from calling the sink, or reporting to on_failure, for a lease it may
// have lost. Renewals and checkpoints are fenced by the lease counter, but a sink call is not a
// lease write: a worker that was paused (SIGSTOP, a long GC, a frozen VM) past lease_duration wakes
// up with batches ready to send, and would send them before its loop's next renewal finds the lease
// taken. So before each call the fence looks at when ownership was last confirmed (a renewal or take
// that succeeded, timed from when it was sent, on the monotonic clock); past trust, it renews first,
// and a refused renewal stops the shard at once instead of delivering.
//
// trust is lease_duration minus renew_interval: while nobody asked for the lease, another worker may
// take it only after it saw the counter stand still for lease_duration, so a confirmation younger
// than that still holds, and the loop's renewals every renew_interval keep the fence silent in
// normal operation.
//
// A request for the lease (wanted_by, seen by the loop's List) voids that argument: the requester
// takes the lease lease_duration after its request even while the owner renews. From then on
// renewals extend no trust: every call is preceded by a renewal of its own (confirmed now, or the
// shard stops).
//
// Every call must also be written by its confirmation plus trust (see writeBy): a worker paused
// between the check and the write does not write a stale request.
type fence struct {
	held   *checkpoint.Held
	cancel context.CancelFunc // stops the shard worker
	trust  time.Duration      // immutable
	margin time.Duration      // immutable: the least time a call gets to write
	now    func() time.Time   // the monotonic clock; immutable

	mu        sync.Mutex
	confirmed time.Time // when the last successful renewal or take was sent
	contested bool      // the loop's last List showed another worker's request for the lease
}

// newFence returns a shard's fence; margin is the least time a call gets to write its request
// before the confirmation it relies on runs out (renewed first otherwise).
func newFence(held *checkpoint.Held, cancel context.CancelFunc, trust, margin time.Duration, now func() time.Time) *fence {
	return &fence{held: held, cancel: cancel, trust: trust, margin: margin, now: now}
}

// confirm records that a lease write sent at at succeeded.
func (f *fence) confirm(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if at.After(f.confirmed) {
		f.confirmed = at
	}
}

// contest records whether the loop's last List showed the lease asked for by another worker (or
// held by another).
func (f *fence) contest(asked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contested = asked
}

// check returns the time by which a call may be written when the lease is still this worker's:
// confirmed within trust with margin to spare (and not asked for), or renewed now. When the renewal is refused it
// cancels the shard worker and returns errLeaseLost.
func (f *fence) check(ctx context.Context) (time.Time, error) {
	f.mu.Lock()
	confirmed, contested := f.confirmed, f.contested
	f.mu.Unlock()
	// A confirmation about to run out is renewed too: the call needs time left to write.
	if !contested && f.now().Sub(confirmed) < f.trust-f.margin {
		return confirmed.Add(f.trust), nil
	}
	at := f.now()
	owned, err := f.held.Renew(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("confirm the lease before a sink call: %w: %w", failure.ErrNotInvoked, err)
	}
	if !owned {
		f.cancel()
		return time.Time{}, fmt.Errorf("confirm the lease of shard %s before a sink call: %w: %w", f.held.Lease().ShardID, failure.ErrNotInvoked, errLeaseLost)
	}
	f.confirm(at)
	return at.Add(f.trust), nil
}

// errWriteDeadline cancels a call whose request was not written by the fence's deadline.
var errWriteDeadline = errors.New("request not written before the lease's confirmation ran out")

// writeBy runs call (a sink call or an on_failure report) with a context that is canceled at
// deadline unless the request was written by then. "Written" is seen for requests made with
// net/http (the http sink, the AWS SDK of the sqs, sns and s3 destinations): the transport's
// WroteRequest hook. After it the call runs to its end (its answer is awaited under the sink's own
// timeout: aborting a request the handler has would only repeat it). A call that never says it
// wrote (file, stdout) is canceled at deadline if still running. A call canceled by the deadline
// returns an error wrapping failure.ErrNotInvoked: the policy retries it, and the retry's check
// renews the lease first.
func (f *fence) writeBy(ctx context.Context, deadline time.Time, call func(context.Context) error) error {
	left := deadline.Sub(f.now())
	if left <= 0 {
		return fmt.Errorf("%w: %w", failure.ErrNotInvoked, errWriteDeadline)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu              sync.Mutex
		wrote, timedOut bool
	)
	cctx = httptrace.WithClientTrace(cctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			mu.Lock()
			defer mu.Unlock()
			if !timedOut {
				wrote = true
			}
		},
	})
	timer := time.AfterFunc(left, func() {
		mu.Lock()
		defer mu.Unlock()
		if !wrote {
			timedOut = true
			cancel(errWriteDeadline)
		}
	})
	defer timer.Stop()
	err := call(cctx)
	if err != nil && errors.Is(context.Cause(cctx), errWriteDeadline) && ctx.Err() == nil {
		return fmt.Errorf("%w: %w: %w", failure.ErrNotInvoked, errWriteDeadline, err)
	}
	return err
}

// fencedSink checks the shard's fence before each sink call and bounds the time to the call's
// write. Each shard worker has its own, around the pipeline's sink.
type fencedSink struct {
	sinks.Sink
	fence *fence
}

var _ sinks.Sink = fencedSink{}

func (s fencedSink) Deliver(ctx context.Context, b sinks.Batch) error {
	deadline, err := s.fence.check(ctx)
	if err != nil {
		return err
	}
	return s.fence.writeBy(ctx, deadline, func(ctx context.Context) error { return s.Sink.Deliver(ctx, b) })
}

// MaxEventBytes passes the wrapped sink's limit on (0: none).
func (s fencedSink) MaxEventBytes() int {
	if l, ok := s.Sink.(sinks.Limiter); ok {
		return l.MaxEventBytes()
	}
	return 0
}

// fencedDestination checks the shard's fence before each on_failure report: a report of records
// discarded under a lease this worker lost would precede the new owner's own handling of them
// (which delivers or reports them again), and the checkpoint past them would be refused anyway.
type fencedDestination struct {
	failure.Destination
	fence *fence
}

func (d fencedDestination) Send(ctx context.Context, f onfailure.Failure) error {
	deadline, err := d.fence.check(ctx)
	if err != nil {
		return err
	}
	return d.fence.writeBy(ctx, deadline, func(ctx context.Context) error { return d.Destination.Send(ctx, f) })
}
