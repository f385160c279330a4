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

// fence applies a shard's lease fence (checkpoint.Fence: is the lease still this worker's, and until
// when may a request go out) to the shard's calls to the outside. Each sink call and on_failure report
// first passes check, which renews the lease when its last confirmation is too old or the lease is
// asked for; a lease found lost stops the shard worker at once instead of delivering. Then the call
// must write its request by the fence's deadline (see writeBy): a worker paused between the check and
// the write does not write a stale request.
type fence struct {
	lease   *checkpoint.Fence
	shardID string
	cancel  context.CancelFunc // stops the shard worker
	now     func() time.Time   // the clock the lease fence runs on
}

// check returns the time by which a call may be written when the lease is still this worker's (see
// checkpoint.Fence.Check). A refused renewal cancels the shard worker and returns errLeaseLost; any
// failure counts as a call not invoked (failure.ErrNotInvoked: retried, no attempt used).
func (f *fence) check(ctx context.Context) (time.Time, error) {
	deadline, owned, err := f.lease.Check(ctx)
	switch {
	case err != nil:
		return time.Time{}, fmt.Errorf("confirm the lease before a sink call: %w: %w", failure.ErrNotInvoked, err)
	case !owned:
		f.cancel()
		return time.Time{}, fmt.Errorf("confirm the lease of shard %s before a sink call: %w: %w", f.shardID, failure.ErrNotInvoked, errLeaseLost)
	}
	return deadline, nil
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
