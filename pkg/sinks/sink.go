// Package sinks holds the Sink contract and the built-in sinks (http, lambda, file, stdout). A sink receives
// batches of stream records in exactly the event shape AWS Lambda gives a DynamoDB Streams trigger,
// so a handler written for Lambda works unchanged.
//
// A sink is where a pipeline's data flow ends: each shard's Reader (pkg/shards) reads records, the
// shard's dispatcher converts them to Lambda's shape (pkg/event), filters and batches them, and
// delivers each batch to the pipeline's Sink; what the sink accepts is checkpointed, and a batch
// it keeps failing is retried, bisected or reported to the pipeline's on_failure destination
// (pkg/onfailure) as Lambda would.
//
// Sink types are registered by name: a pipeline's `sink.type` key picks one, and the type's config
// takes the mapping's other keys. A module adds its own type with Register (see its example) before
// the configuration is loaded; the config loader then checks it like a built-in one.
package sinks

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Batch is one sink call: records of one shard, in sequence-number order.
type Batch struct {
	// Pipeline is the name of the pipeline delivering the batch.
	Pipeline string
	// StreamARN and ShardID say where the records come from.
	StreamARN string
	ShardID   string
	// HashKey is the table's partition key attribute, "" when not known: the fan-out sinks order
	// by its value (SQS FIFO message groups, Kinesis partition keys).
	HashKey string
	// Records are the records, in Lambda's event shape.
	Records []events.DynamoDBEventRecord
	// RecordJSON, when it has one entry per record, holds records' JSON: RecordJSON[i], unless nil,
	// is exactly what event.AppendJSON writes for Records[i]. The dispatcher keeps the bytes it
	// sized the batch with (for all but large records), so that sinks write them instead of
	// encoding each record again (EventJSON, Lines, AppendRecordJSON encode what is not kept); a
	// batch built by hand may leave it nil. Code that takes part of a batch takes both with Slice.
	// The bytes are shared: read them, never change them.
	RecordJSON [][]byte
	// Window, with tumbling_window set, is the call's tumbling window: the event is then Lambda's
	// DynamoDBTimeWindowEvent and the answer carries the window's new state (see Window). It is
	// shared by the slices of a batch, so that each call of a retry or bisect carries the state of
	// the last successful one.
	Window *Window
}

// Event returns the batch as Lambda's event: {"Records": [...]}.
func (b Batch) Event() events.DynamoDBEvent {
	return events.DynamoDBEvent{Records: b.Records}
}

// Sink delivers batches. Deliver returns nil when the whole batch was accepted, a *BatchError when
// only some records failed (Lambda's partial batch response), and any other error when the whole batch
// failed. Deliver must be safe for concurrent use: with parallelization_factor > 1, several batches of
// one shard, and batches of many shards, are in flight at once.
type Sink interface {
	// Deliver sends one batch. It must return soon after ctx ends (the batch then counts as failed).
	Deliver(ctx context.Context, b Batch) error
	// Close releases the sink. It is called once, after the pipelines stopped delivering; ctx bounds
	// how long it may take.
	Close(ctx context.Context) error
}

// BatchError is a partial failure: the sink accepted the batch but reported some records as failed,
// by sequence number (Lambda's batchItemFailures). The poller treats the batch as failed from the
// lowest reported sequence number on.
type BatchError struct {
	// Failed holds the itemIdentifier values the sink reported, as given.
	Failed []string
}

// Error lists the failed sequence numbers.
func (e *BatchError) Error() string {
	return fmt.Sprintf("sink reported %d failed item(s): %s", len(e.Failed), strings.Join(e.Failed, ", "))
}

// Limiter is implemented by a sink that accepts events only up to a size: the poller closes a batch
// before its event JSON ({"Records": [...]}) would pass MaxEventBytes, as Lambda does at 6 MB.
type Limiter interface {
	// MaxEventBytes is the largest event, in bytes of JSON, the sink accepts.
	MaxEventBytes() int
}
