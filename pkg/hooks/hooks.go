// Package hooks is how poller tells observers what it does: metrics, readiness, tracing, tests.
//
// A hook is any value that implements one or more of the Hook* interfaces below; each method is
// called synchronously, from the goroutine that did the work, so it must be quick and must not
// block. A Set checks the interfaces each hook implements once, when it is built, and then calls
// only those: an observer implements just what it cares about. The Prometheus metrics
// (pkg/metrics) are one implementation; the service's readiness check is another.
//
// One Set serves one pipeline, so no method takes the pipeline's name: an implementation that
// labels by pipeline is built per pipeline (see metrics.Metrics.Pipeline). A pipeline takes its hooks
// in pipeline.Deps.Hooks, builds its Set once, and every stage reports through it: the shard reader
// (GetRecords, memory), the dispatcher and delivery policy (records, sink calls, checkpoints) and the
// lease coordination (leases, takeovers, lease rounds).
package hooks

import (
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Hook is a value implementing any of the Hook* interfaces.
type Hook any

// Results of a GetRecords call, as HookGetRecords reports them.
const (
	ResultOK        = "ok"
	ResultThrottled = "throttled"
	ResultError     = "error"
)

// Results of a sink call, as HookSinkCall reports them: ResultOK, ResultError, or ResultPartial
// (the sink reported some records of the batch failed).
const ResultPartial = "partial"

// Results of a checkpoint write, as HookCheckpoint reports them: ResultOK, ResultError, or
// ResultLost (the lease was no longer this worker's).
const ResultLost = "lost"

// Reasons records are dropped, as HookRecordsDropped reports them.
const (
	DroppedMaxAge           = "max_age"           // older than max_record_age
	DroppedRetriesExhausted = "retries_exhausted" // max_retry_attempts used up
	DroppedMalformed        = "malformed"         // a record the event could not carry
	DroppedTooLarge         = "too_large"         // over the sink's service's size limit (sinks.ErrRecordTooLarge)
)

// Reasons records are skipped (read, never delivered, checkpointed past), as HookRecordsSkipped
// reports them.
const (
	SkippedBeforeStart = "before_start" // created before the pipeline's or a reset's start time (AT_TIMESTAMP)
)

// HookGetRecords is told the result of each GetRecords call: ResultOK, ResultThrottled or ResultError.
type HookGetRecords interface {
	OnGetRecords(shardID, result string)
}

// HookTrimmed is told that a shard's position was trimmed from the stream (records lost to the
// 24 h retention) and reading restarted at TRIM_HORIZON.
type HookTrimmed interface {
	OnTrimmed(shardID string)
}

// HookMemoryWait is told that a shard's reader held back a GetRecords call until the memory
// budget allowed it.
type HookMemoryWait interface {
	OnMemoryWait(shardID string)
}

// HookBufferedBytes is told each change of the bytes the pipeline holds (read, not yet done).
type HookBufferedBytes interface {
	OnBufferedBytes(delta int64)
}

// HookRecordsPolled is told how many records a page of GetRecords brought.
type HookRecordsPolled interface {
	OnRecordsPolled(shardID string, n int)
}

// HookRecordsFilteredOut is told how many records of a page matched no filter.
type HookRecordsFilteredOut interface {
	OnRecordsFilteredOut(shardID string, n int)
}

// HookRecordsDropped is told of records discarded (to on_failure, if any), with the reason:
// DroppedMaxAge, DroppedRetriesExhausted, DroppedMalformed or DroppedTooLarge.
type HookRecordsDropped interface {
	OnRecordsDropped(shardID, reason string, n int)
}

// HookSinkCall is told each sink call's result (ResultOK, ResultPartial, ResultError), how long it
// took and its error (nil on ResultOK).
type HookSinkCall interface {
	OnSinkCall(shardID, result string, took time.Duration, err error)
}

// HookSinkCallStarted is told that a sink call starts; HookSinkCall is told when it ends (every
// start is followed by exactly one end), so the two give the calls in flight.
type HookSinkCallStarted interface {
	OnSinkCallStarted(shardID string)
}

// HookSinkThrottled is told of each sink call the sink refused before its handler ran (an HTTP 429,
// a refused connection, or an error the sink marked with sinks.ErrThrottled). Such a call is also
// reported to HookSinkCall, as ResultError; it is retried without using up max_retry_attempts.
type HookSinkThrottled interface {
	OnSinkThrottled(shardID string)
}

// HookRecordsDelivered is told the records a sink accepted.
type HookRecordsDelivered interface {
	OnRecordsDelivered(shardID string, recs []events.DynamoDBEventRecord)
}

// HookRecordsOnFailure is told of records discarded and stored in the on_failure destination
// (Lambda's OnFailureDestinationDeliveredEventCount); they are told to HookRecordsDropped too.
type HookRecordsOnFailure interface {
	OnRecordsOnFailure(shardID string, n int)
}

// HookBatchBisected is told that a failed batch was split in two (bisect_batch_on_error).
type HookBatchBisected interface {
	OnBatchBisected(shardID string)
}

// HookOnFailureError is told of each failed attempt to store a report in the on_failure
// destination; the shard waits and retries meanwhile.
type HookOnFailureError interface {
	OnOnFailureError(shardID string, err error)
}

// HookCheckpoint is told each checkpoint write's result: ResultOK, ResultLost or ResultError.
type HookCheckpoint interface {
	OnCheckpoint(shardID, result string)
}

// HookCheckpointWritten is told each checkpoint written for a shard: every record up to seq is done.
// A quick succession may be told only its newest.
type HookCheckpointWritten interface {
	OnCheckpointWritten(shardID, seq string)
}

// HookShardStarted is told that this worker started reading a shard.
type HookShardStarted interface {
	OnShardStarted(shardID string)
}

// HookShardStopped is told that this worker stopped reading a shard; finished: it was read and
// delivered to its end.
type HookShardStopped interface {
	OnShardStopped(shardID string, finished bool)
}

// HookIteratorAge is told the creation time a shard's iterator age is measured from whenever it
// changes: the oldest record read and not yet done (with every record done, the newest read); the
// zero time means caught up.
type HookIteratorAge interface {
	OnIteratorAge(shardID string, since time.Time)
}

// HookLeasesOwned is told how many leases the pipeline's worker holds, whenever that may change.
type HookLeasesOwned interface {
	OnLeasesOwned(n int)
}

// HookLeaseTakeover is told that this worker took a shard's lease from another (expired or
// stolen).
type HookLeaseTakeover interface {
	OnLeaseTakeover(shardID string)
}

// HookLeaseRound is told the outcome of each round with the lease table: nil means the table
// answered.
type HookLeaseRound interface {
	OnLeaseRound(err error)
}

// HookLeaseRenewals is told how each round of lease renewals went: how long renewing every lease
// held took, and how many renewals failed (an error or a timeout, not a lease found taken; each is
// retried at the next round).
type HookLeaseRenewals interface {
	OnLeaseRenewals(took time.Duration, failed int)
}

// HookRecordsSkipped is told of records read but never delivered on purpose (checkpointed past),
// with the reason: SkippedBeforeStart.
type HookRecordsSkipped interface {
	OnRecordsSkipped(shardID, reason string, n int)
}

// HookPipelinePaused is told whether the pipeline is paused (poller pause / resume, or the
// pipeline's enabled: false), whenever that may change.
type HookPipelinePaused interface {
	OnPipelinePaused(paused bool)
}
