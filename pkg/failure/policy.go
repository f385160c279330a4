// Package failure carries out Lambda's failure policy for a DynamoDB Streams event source mapping
// on one batch: retries with backoff, bisect_batch_on_error, report_batch_item_failures,
// max_record_age and max_retry_attempts, and reports of discarded records to an on_failure
// destination. It sits between the dispatcher (pkg/dispatch), which hands it each batch it cut, and
// the sink (pkg/sinks).
//
// The decisions are pure functions (decide.go) that follow Lambda's documented behaviour; Policy
// only carries them out. A batch's records are done once the sink accepted them or they were
// discarded (and reported); the dispatcher checkpoints only records that are done.
package failure

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
)

// Destination receives reports of discarded records (an on_failure destination); every
// onfailure.Destination satisfies it.
type Destination interface {
	Send(ctx context.Context, f onfailure.Failure) error
}

// Hooks is told what the policy does, per shard; *hooks.Set satisfies it. Results and reasons are
// the constants of pkg/hooks.
type Hooks interface {
	// OnSinkCallStarted is told that a sink call starts; OnSinkCall follows when it ends.
	OnSinkCallStarted(shardID string)
	// OnSinkCall is told each sink call's result (ok, partial, error), its duration and its error
	// (nil when ok).
	OnSinkCall(shardID, result string, took time.Duration, err error)
	// OnSinkThrottled is told of each call the sink refused before its handler ran
	// (sinks.IsThrottled); it is told to OnSinkCall too, as an error.
	OnSinkThrottled(shardID string)
	// OnRecordsDelivered is told the records a sink accepted.
	OnRecordsDelivered(shardID string, recs []events.DynamoDBEventRecord)
	// OnRecordsDropped is told of records discarded, by reason: max_age or retries_exhausted.
	OnRecordsDropped(shardID, reason string, n int)
	// OnRecordsOnFailure is told of discarded records the on_failure destination stored.
	OnRecordsOnFailure(shardID string, n int)
	// OnBatchBisected is told that a failed batch was split in two.
	OnBatchBisected(shardID string)
	// OnOnFailureError is told of each failed attempt to store a report in the on_failure
	// destination (the shard waits and retries meanwhile).
	OnOnFailureError(shardID string, err error)
}

var _ Hooks = (*hooks.Set)(nil)

// Policy delivers a batch under Lambda's failure semantics for DynamoDB Streams: retries with
// exponential backoff and jitter up to MaxRetryAttempts, bisect on error, partial batch responses,
// MaxRecordAge, and reports of discarded records to OnFailure. The decisions are the pure functions
// of decide.go; Policy only carries them out.
//
// Invariants:
//   - Deliver returns nil only once every record of the batch is done: accepted by the sink, or
//     discarded and stored by the on_failure destination (or, without one, logged and counted).
//   - Records are attempted in batch order: a segment is finished (delivered or discarded) before
//     any later record is sent, so while a batch fails its lane does not advance and order holds.
//   - A discarded segment is reported before any later record is sent; a destination that fails is
//     retried with backoff (the shard waits) until it stores the report or the shard stops.
//   - Once stop is closed no further segment is sent or reported: the call in flight finishes, the
//     rest of the batch is left undone.
//
// Policy is safe for concurrent use: every field is immutable after construction, and each Deliver
// keeps its state in its own locals.
type Policy struct {
	Sink sinks.Sink
	// OnFailure receives discarded records; nil means they are only logged and counted.
	OnFailure Destination
	// MaxRetryAttempts is max_retry_attempts: -1 retries until the records expire, else the number of
	// retries after the first call (0..10000).
	MaxRetryAttempts int
	// MaxRecordAge is max_record_age; 0 means no limit.
	MaxRecordAge time.Duration
	// BisectOnError is bisect_batch_on_error.
	BisectOnError bool
	// ReportBatchItemFailures is report_batch_item_failures: honour a *sinks.BatchError.
	ReportBatchItemFailures bool
	// Backoff gives the wait before retry number attempt (1, 2, ...) of one segment, and before the
	// next try of a failed on_failure report: exponential, jittered, capped (see wait.Backoff).
	Backoff func(attempt int) time.Duration
	// Now is the clock record ages are judged by; nil means time.Now.
	Now func() time.Time
	// Hooks is told what the policy does; nil tells nothing.
	Hooks Hooks
	Log   *zap.Logger // required
}

// Deliver delivers b under the policy: it returns nil once every record of b is done, ctx.Err()
// when ctx is canceled, and wait.ErrStopped when stop was closed before a segment or while it
// waited to retry (the records not done by then are not checkpointed and are delivered again after
// a restart or by the shard's next owner: at least once). When some records at the head of b were
// done before it gave up, the error is an *IncompleteError that says how many.
func (p *Policy) Deliver(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
	d := newDelivery(ctx, stop, p, b)
	defer d.timer.Stop()
	return d.incomplete(d.run())
}

// IncompleteError is a delivery given up (stop or ctx) after its first Done records were done:
// delivered, or stored by on_failure. The dispatcher counts those as done, so a graceful stop in
// the middle of a bisect or a partial batch response repeats none of them.
type IncompleteError struct {
	Done int
	Err  error
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("gave up after %d records were done: %v", e.Done, e.Err)
}

func (e *IncompleteError) Unwrap() error { return e.Err }

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Policy) hooks() Hooks {
	if p.Hooks == nil {
		return noHooks{}
	}
	return p.Hooks
}

// noHooks is told everything and does nothing.
type noHooks struct{}

func (noHooks) OnSinkCallStarted(string)                                {}
func (noHooks) OnSinkCall(string, string, time.Duration, error)         {}
func (noHooks) OnSinkThrottled(string)                                  {}
func (noHooks) OnRecordsOnFailure(string, int)                          {}
func (noHooks) OnRecordsDelivered(string, []events.DynamoDBEventRecord) {}
func (noHooks) OnRecordsDropped(string, string, int)                    {}
func (noHooks) OnBatchBisected(string)                                  {}
func (noHooks) OnOnFailureError(string, error)                          {}
