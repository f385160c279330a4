// Package sinks holds the Sink contract and the built-in sinks. A sink receives batches of stream
// records in exactly the event shape AWS Lambda gives a DynamoDB Streams trigger, so a handler written
// for Lambda works unchanged.
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
	// Records are the records, in Lambda's event shape.
	Records []events.DynamoDBEventRecord
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
	Deliver(ctx context.Context, b Batch) error
	Close(ctx context.Context) error
}

// BatchError is a partial failure: the sink accepted the batch but reported some records as failed,
// by sequence number (Lambda's batchItemFailures). The poller treats the batch as failed from the
// lowest reported sequence number on.
type BatchError struct {
	// Failed holds the itemIdentifier values the sink reported, as given.
	Failed []string
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("sink reported %d failed item(s): %s", len(e.Failed), strings.Join(e.Failed, ", "))
}

// Limiter is implemented by a sink that accepts events only up to a size: the poller closes a batch
// before its event JSON ({"Records": [...]}) would pass MaxEventBytes, as Lambda does at 6 MB.
type Limiter interface {
	MaxEventBytes() int
}
