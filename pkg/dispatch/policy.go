package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
)

// Destination receives reports of discarded records (an on_failure destination);
// every onfailure.Destination satisfies it.
type Destination interface {
	Send(ctx context.Context, f onfailure.Failure) error
}

// Policy delivers a batch under Lambda's failure semantics for DynamoDB Streams: retries with
// exponential backoff and jitter up to MaxRetryAttempts, bisect on error, partial batch responses,
// MaxRecordAge, and reports of discarded records to OnFailure. The decisions are the pure functions
// of failure.go; Policy only carries them out.
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
	// next try of a failed on_failure report: exponential, jittered, capped.
	Backoff func(attempt int) time.Duration
	// Now is the clock record ages are judged by; nil means time.Now.
	Now      func() time.Time
	Counters PolicyCounters
	Log      *zap.Logger // required
}

// PolicyCounters are the policy's metrics, already labelled with the pipeline. Nil fields are skipped.
type PolicyCounters struct {
	// Invoked counts a sink call by result ("ok", "partial", "error") and its duration.
	Invoked func(result string, took time.Duration)
	// Delivered is called with the records a sink accepted.
	Delivered func(recs []events.DynamoDBEventRecord)
	// Dropped counts records discarded, by reason: "max_age" or "retries_exhausted".
	Dropped func(reason string, n int)
	// Bisected counts a failed batch split in two.
	Bisected func()
	// ReportFailed counts a failed attempt to store a report in the on_failure destination (the
	// shard waits meanwhile); nil counts nothing.
	ReportFailed func()
}

// segment is a run of consecutive records of the batch that the policy handles as one sink batch.
type segment struct {
	recs []events.DynamoDBEventRecord
	// failures counts the failed calls of this segment since it was cut (the retry budget).
	failures int
	// invokes counts the sink calls that carried these records, including the calls of the larger
	// segments they were split from: the on-failure record's approximateInvokeCount.
	invokes int
	// waits counts the backoffs of this segment, for the backoff's growth.
	waits int
	// lastErr and status are the last failed call's error and answer status.
	lastErr error
	status  int
}

// Deliver implements DeliverFunc: it returns nil once every record of b is done, ctx.Err() when ctx
// is canceled, and an error when stop was closed before a segment or while it waited to retry (the
// records not done by then are not checkpointed and are delivered again after a restart or by the
// shard's next owner: at least once).
func (p *Policy) Deliver(ctx context.Context, stop <-chan struct{}, b sinks.Batch) (err error) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	k := knobs{maxRetries: p.MaxRetryAttempts, bisect: p.BisectOnError}
	// queue holds the segments not done yet, in batch order; the head is worked on.
	queue := []segment{{recs: b.Records}}
	defer func() {
		// Given up part way (stop or ctx): the records before the queue are done (delivered, or
		// stored by on_failure), and must not be sent again after a restart or a handoff.
		if err == nil {
			return
		}
		left := 0
		for _, seg := range queue {
			left += len(seg.recs)
		}
		if done := len(b.Records) - left; done > 0 {
			err = &IncompleteError{Done: done, Err: err}
		}
	}()
	for len(queue) > 0 {
		// No segment starts after stop: a handoff or SIGTERM must not wait for the rest of a
		// bisect, a partial response's remainder or an age-split run, each of which is a new sink
		// call (or on_failure report) the shard's next owner makes instead. The records done so far
		// are reported done (IncompleteError).
		if isClosed(stop) {
			return errStopped
		}
		seg := &queue[0]
		if expired, fresh := ageSplit(seg.recs, p.now(), p.MaxRecordAge); expired > 0 || fresh < len(seg.recs) {
			if expired > 0 {
				if err := p.discard(ctx, stop, timer, b, seg.recs[:expired], onfailure.RecordAgeExceeded, seg); err != nil {
					return err
				}
				seg.recs = seg.recs[expired:]
			}
			if fresh < len(seg.recs) && fresh > 0 {
				// A later record is expired too: send the fresh run alone, judge the rest after it.
				rest := *seg
				rest.recs = seg.recs[fresh:]
				seg.recs = seg.recs[:fresh]
				queue = append(queue[:1], append([]segment{rest}, queue[1:]...)...)
				seg = &queue[0]
			}
			if len(seg.recs) == 0 {
				queue = queue[1:]
				continue
			}
		}

		sb := b
		sb.Records = seg.recs
		start := time.Now()
		err := p.Sink.Deliver(ctx, sb)
		took := time.Since(start)
		seg.invokes++
		if ctx.Err() != nil {
			p.invoked("error", took)
			return ctx.Err()
		}
		o := classify(err, seg.recs, p.ReportBatchItemFailures)
		s := next(o, len(seg.recs), seg.failures, k)
		switch {
		case s.act == actDone:
			p.invoked("ok", took)
		case o.kind == callPartial:
			p.invoked("partial", took)
		default:
			p.invoked("error", took)
		}
		if s.delivered > 0 {
			p.delivered(seg.recs[:s.delivered])
			seg.recs = seg.recs[s.delivered:]
		}
		if s.act == actDone {
			queue = queue[1:]
			continue
		}
		seg.lastErr, seg.status, seg.failures = err, statusOf(err), s.failures

		switch s.act {
		case actSplit:
			p.bisected()
			left, right := *seg, *seg
			left.recs, right.recs = seg.recs[:s.at], seg.recs[s.at:]
			left.failures, right.failures, left.waits, right.waits = 0, 0, 0, 0
			p.Log.Warn("sink call failed; bisecting the batch", zap.String("shard_id", b.ShardID),
				zap.Int("delivered", s.delivered), zap.Int("first_half", len(left.recs)), zap.Int("second_half", len(right.recs)),
				zap.String("first_sequence_number", seg.recs[0].Change.SequenceNumber), zap.Error(err))
			var halves []segment
			for _, h := range []segment{left, right} {
				if len(h.recs) > 0 {
					halves = append(halves, h)
				}
			}
			queue = append(halves, queue[1:]...)
		case actDiscard:
			if err := p.discard(ctx, stop, timer, b, seg.recs, onfailure.RetryAttemptsExhausted, seg); err != nil {
				return err
			}
			queue = queue[1:]
		case actRetry:
			seg.waits++
			wait := p.Backoff(seg.waits)
			p.Log.Warn("sink call failed; retrying", zap.String("shard_id", b.ShardID), zap.Int("records", len(seg.recs)),
				zap.String("first_sequence_number", seg.recs[0].Change.SequenceNumber), zap.Bool("reached_sink", o.kind != callNotInvoked),
				zap.Int("failures", seg.failures), zap.Int("max_retry_attempts", p.MaxRetryAttempts),
				zap.Duration("retry_in", wait), zap.Error(err))
			if err := sleepOrStop(ctx, stop, timer, wait); err != nil {
				return err
			}
		}
	}
	return nil
}

// discard reports recs (part of seg) to the on_failure destination, retrying with backoff until it
// is stored: a destination that is down must not lose records, so the shard waits for it.
func (p *Policy) discard(ctx context.Context, stop <-chan struct{}, timer *time.Timer, b sinks.Batch,
	recs []events.DynamoDBEventRecord, cond onfailure.Condition, seg *segment) error {
	reason := "retries_exhausted"
	if cond == onfailure.RecordAgeExceeded {
		reason = "max_age"
	}
	sb := b
	sb.Records = recs
	f := onfailure.Failure{Batch: sb, Condition: cond, InvokeCount: seg.invokes, LastErr: seg.lastErr,
		StatusCode: seg.status, Time: p.now()}
	log := p.Log.With(zap.String("shard_id", b.ShardID), zap.String("condition", string(cond)),
		zap.Int("records", len(recs)), zap.String("start_sequence_number", recs[0].Change.SequenceNumber),
		zap.String("end_sequence_number", recs[len(recs)-1].Change.SequenceNumber), zap.Int("invoke_count", seg.invokes))
	if p.OnFailure == nil {
		log.Warn("records discarded; no on_failure destination is configured", zap.NamedError("last_error", seg.lastErr))
		p.dropped(reason, len(recs))
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := p.OnFailure.Send(ctx, f)
		if err == nil {
			log.Warn("records discarded and reported to on_failure", zap.NamedError("last_error", seg.lastErr))
			p.dropped(reason, len(recs))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p.Counters.ReportFailed != nil {
			p.Counters.ReportFailed()
		}
		wait := p.Backoff(attempt)
		log.Error("on_failure destination failed; the shard waits and retries it", zap.Int("attempt", attempt),
			zap.Duration("retry_in", wait), zap.Error(err))
		if err := sleepOrStop(ctx, stop, timer, wait); err != nil {
			return err
		}
	}
}

var errStopped = errors.New("stopped while retrying")

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

// sleepOrStop waits d on timer (stopped and drained on entry); errStopped if stop closes first,
// ctx.Err() if ctx ends first.
func sleepOrStop(ctx context.Context, stop <-chan struct{}, timer *time.Timer, d time.Duration) error {
	timer.Reset(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-stop:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Policy) invoked(result string, took time.Duration) {
	if p.Counters.Invoked != nil {
		p.Counters.Invoked(result, took)
	}
}

func (p *Policy) delivered(recs []events.DynamoDBEventRecord) {
	if p.Counters.Delivered != nil {
		p.Counters.Delivered(recs)
	}
}

func (p *Policy) dropped(reason string, n int) {
	if p.Counters.Dropped != nil {
		p.Counters.Dropped(reason, n)
	}
}

func (p *Policy) bisected() {
	if p.Counters.Bisected != nil {
		p.Counters.Bisected()
	}
}
