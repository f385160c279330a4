package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/sinks"
)

// Policy delivers batches to a sink, retrying a failed batch with backoff until the sink accepts it.
// While a batch fails its lane does not advance, so records keep their order.
//
// A partial batch response (*sinks.BatchError) counts the records before the lowest failed one as
// delivered and retries from that record on, as Lambda does.
type Policy struct {
	Sink sinks.Sink
	// Backoff gives the wait before retry number attempt (1, 2, ...).
	Backoff  func(attempt int) time.Duration
	Counters PolicyCounters
	Log      *zap.Logger
}

// PolicyCounters are the policy's metrics, already labelled with the pipeline.
type PolicyCounters struct {
	// Invoked counts a sink call by result ("ok", "partial", "error") and its duration.
	Invoked func(result string, took time.Duration)
	// Delivered is called with the records a sink accepted.
	Delivered func(recs []events.DynamoDBEventRecord)
}

// Deliver implements DeliverFunc.
func (p *Policy) Deliver(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := p.Sink.Deliver(ctx, b)
		took := time.Since(start)
		if err == nil {
			p.Counters.Invoked("ok", took)
			p.Counters.Delivered(b.Records)
			return nil
		}
		if ctx.Err() != nil {
			p.Counters.Invoked("error", took)
			return ctx.Err()
		}
		var partial *sinks.BatchError
		if errors.As(err, &partial) {
			p.Counters.Invoked("partial", took)
			if i := firstFailed(b.Records, partial.Failed); i > 0 {
				p.Counters.Delivered(b.Records[:i])
				b.Records = b.Records[i:]
			}
		} else {
			p.Counters.Invoked("error", took)
		}
		wait := p.Backoff(attempt)
		p.Log.Warn("sink call failed; retrying", zap.String("shard_id", b.ShardID), zap.Int("records", len(b.Records)),
			zap.String("first_sequence_number", b.Records[0].Change.SequenceNumber),
			zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-stop:
			return errStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var errStopped = errors.New("stopped while retrying")

// firstFailed returns the index of the earliest record of the batch whose sequence number the sink
// reported as failed. A batch is in sequence-number order, so that is the lowest failed one. A
// report naming no record of the batch (the sink validates this) gives 0: all is retried.
func firstFailed(recs []events.DynamoDBEventRecord, failed []string) int {
	set := make(map[string]bool, len(failed))
	for _, f := range failed {
		set[f] = true
	}
	for i, r := range recs {
		if set[r.Change.SequenceNumber] {
			return i
		}
	}
	return 0
}
