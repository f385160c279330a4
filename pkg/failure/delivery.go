package failure

import (
	"cmp"
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
	"github.com/poller-dev/poller/pkg/wait"
)

// segment is a run of consecutive records of the batch that the policy handles as one sink batch.
type segment struct {
	// b holds the segment's records, and their kept JSON (see sinks.Batch.Slice): a part of the
	// delivery's batch, which every cut takes with Slice, so that the sink never encodes a record
	// again, a bisected half included.
	b sinks.Batch
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

// delivery is one Deliver call: its batch and the segments of it not done yet.
type delivery struct {
	p     *Policy
	hooks Hooks
	knobs knobs
	ctx   context.Context
	stop  <-chan struct{}
	timer *time.Timer // for every wait of this call
	batch sinks.Batch
	// queue holds the segments not done yet, in batch order; the head is worked on. The records of
	// the batch before the queue are done.
	queue []segment
}

func newDelivery(ctx context.Context, stop <-chan struct{}, p *Policy, b sinks.Batch) *delivery {
	return &delivery{p: p, hooks: p.hooks(), knobs: knobs{maxRetries: p.MaxRetryAttempts, bisect: p.BisectOnError},
		ctx: ctx, stop: stop, timer: wait.NewTimer(), batch: b, queue: []segment{{b: b}}}
}

// run works the queue off, head first, until it is empty or the delivery gives up.
func (d *delivery) run() error {
	for len(d.queue) > 0 {
		// No segment starts after stop: a handoff or SIGTERM must not wait for the rest of a
		// bisect, a partial response's remainder or an age-split run, each of which is a new sink
		// call (or on_failure report) the shard's next owner makes instead. The records done so far
		// are reported done (IncompleteError).
		if wait.Closed(d.stop) {
			return wait.ErrStopped
		}
		emptied, err := d.expire()
		if err != nil {
			return err
		}
		if emptied {
			d.queue = d.queue[1:]
			continue
		}
		if err := d.call(); err != nil {
			return err
		}
	}
	return nil
}

// incomplete wraps err, the reason the delivery gave up part way, into an *IncompleteError when
// some records (those before the queue) are done: delivered, or stored by on_failure. They must not
// be sent again after a restart or a handoff.
func (d *delivery) incomplete(err error) error {
	if err == nil {
		return nil
	}
	left := 0
	for _, seg := range d.queue {
		left += len(seg.b.Records)
	}
	if done := len(d.batch.Records) - left; done > 0 {
		return &IncompleteError{Done: done, Err: err}
	}
	return err
}

// expire applies max_record_age to the head segment (see ageSplit): it discards the expired records
// at its start, and cuts it before a later expired record, which is judged once the fresh run
// before it is done. It reports whether it discarded the whole segment.
func (d *delivery) expire() (emptied bool, err error) {
	seg := &d.queue[0]
	expired, fresh := ageSplit(seg.b.Records, d.p.now(), d.p.MaxRecordAge)
	if expired > 0 {
		if err := d.discard(seg, seg.b.Slice(0, expired), onfailure.RecordAgeExceeded); err != nil {
			return false, err
		}
		seg.b = seg.b.Slice(expired, len(seg.b.Records))
		if len(seg.b.Records) == 0 {
			return true, nil
		}
	}
	if n := len(seg.b.Records); fresh > 0 && fresh < n {
		// A later record is expired too: send the fresh run alone, judge the rest after it.
		rest := *seg
		rest.b = seg.b.Slice(fresh, n)
		seg.b = seg.b.Slice(0, fresh)
		d.queue = slices.Insert(d.queue, 1, rest)
	}
	return false, nil
}

// call sends the head segment to the sink and carries out what next decides.
func (d *delivery) call() error {
	seg := &d.queue[0]
	d.hooks.OnSinkCallStarted(d.batch.ShardID)
	start := time.Now()
	err := d.p.Sink.Deliver(d.ctx, seg.b)
	took := time.Since(start)
	seg.invokes++
	if d.ctx.Err() != nil {
		d.hooks.OnSinkCall(d.batch.ShardID, hooks.ResultError, took, cmp.Or(err, d.ctx.Err()))
		return d.ctx.Err()
	}
	recs := seg.b.Records
	o := classify(err, recs, d.p.ReportBatchItemFailures)
	s := next(o, len(recs), seg.failures, d.knobs)
	result := callResult(s, o)
	if (o.kind == callNotInvoked || o.throttled) && sinks.IsThrottled(err) {
		d.hooks.OnSinkThrottled(d.batch.ShardID)
	}
	if result == hooks.ResultOK {
		d.hooks.OnSinkCall(d.batch.ShardID, result, took, nil)
	} else {
		d.hooks.OnSinkCall(d.batch.ShardID, result, took, err)
	}
	if s.delivered > 0 {
		d.hooks.OnRecordsDelivered(d.batch.ShardID, recs[:s.delivered])
		seg.b = seg.b.Slice(s.delivered, len(recs))
	}
	if s.act == actDone {
		d.queue = d.queue[1:]
		return nil
	}
	seg.lastErr, seg.status, seg.failures = err, statusOf(err), s.failures
	switch s.act {
	case actSplit:
		d.split(s, err)
	case actDiscard:
		if err := d.discard(seg, seg.b, onfailure.RetryAttemptsExhausted); err != nil {
			return err
		}
		d.queue = d.queue[1:]
	case actReject:
		return d.reject(seg)
	case actRetry:
		return d.retry(o, err)
	}
	return nil
}

// callResult is the result a sink call is reported with (see Hooks.OnSinkCall).
func callResult(s step, o outcome) string {
	switch {
	case s.act == actDone:
		return hooks.ResultOK
	case o.kind == callPartial:
		return hooks.ResultPartial
	default:
		return hooks.ResultError
	}
}

// split replaces the head segment by its two halves, [:s.at] and [s.at:], each with a fresh
// retry budget; an empty half is dropped.
func (d *delivery) split(s step, err error) {
	seg := d.queue[0]
	d.hooks.OnBatchBisected(d.batch.ShardID)
	left, right := seg, seg
	left.b, right.b = seg.b.Slice(0, s.at), seg.b.Slice(s.at, len(seg.b.Records))
	left.failures, right.failures, left.waits, right.waits = 0, 0, 0, 0
	d.p.Log.Warn("sink call failed; bisecting the batch", zap.String("shard_id", d.batch.ShardID),
		zap.Int("delivered", s.delivered), zap.Int("first_half", len(left.b.Records)), zap.Int("second_half", len(right.b.Records)),
		zap.String("first_sequence_number", seg.b.Records[0].Change.SequenceNumber), zap.Error(err))
	var halves []segment
	for _, h := range []segment{left, right} {
		if len(h.b.Records) > 0 {
			halves = append(halves, h)
		}
	}
	d.queue = append(halves, d.queue[1:]...)
}

// reject reports the head segment's first record alone to on_failure, as one that can never be
// delivered, and leaves the rest of the segment to be sent next, without a wait.
func (d *delivery) reject(seg *segment) error {
	if err := d.discard(seg, seg.b.Slice(0, 1), onfailure.RecordTooLarge); err != nil {
		return err
	}
	if seg.b = seg.b.Slice(1, len(seg.b.Records)); len(seg.b.Records) == 0 {
		d.queue = d.queue[1:]
	}
	return nil
}

// retry waits out the head segment's next backoff before it is sent again.
func (d *delivery) retry(o outcome, err error) error {
	seg := &d.queue[0]
	seg.waits++
	pause := d.p.Backoff(seg.waits)
	d.p.Log.Warn("sink call failed; retrying", zap.String("shard_id", d.batch.ShardID), zap.Int("records", len(seg.b.Records)),
		zap.String("first_sequence_number", seg.b.Records[0].Change.SequenceNumber), zap.Bool("reached_sink", o.kind != callNotInvoked),
		zap.Int("failures", seg.failures), zap.Int("max_retry_attempts", d.p.MaxRetryAttempts),
		zap.Duration("retry_in", pause), zap.Error(err))
	return wait.Until(d.ctx, d.stop, d.timer, pause)
}

// discard reports sb (part of seg) to the on_failure destination, retrying with backoff until it
// is stored: a destination that is down must not lose records, so the shard waits for it.
func (d *delivery) discard(seg *segment, sb sinks.Batch, cond onfailure.Condition) error {
	recs := sb.Records
	reason := hooks.DroppedRetriesExhausted
	switch cond {
	case onfailure.RecordAgeExceeded:
		reason = hooks.DroppedMaxAge
	case onfailure.RecordTooLarge:
		reason = hooks.DroppedTooLarge
	}
	f := onfailure.Failure{Batch: sb, Condition: cond, InvokeCount: seg.invokes, LastErr: seg.lastErr,
		StatusCode: seg.status, Time: d.p.now()}
	log := d.p.Log.With(zap.String("shard_id", sb.ShardID), zap.String("condition", string(cond)),
		zap.Int("records", len(recs)), zap.String("start_sequence_number", recs[0].Change.SequenceNumber),
		zap.String("end_sequence_number", recs[len(recs)-1].Change.SequenceNumber), zap.Int("invoke_count", seg.invokes))
	if d.p.OnFailure == nil {
		log.Warn("records discarded; no on_failure destination is configured", zap.NamedError("last_error", seg.lastErr))
		d.hooks.OnRecordsDropped(sb.ShardID, reason, len(recs))
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := d.p.OnFailure.Send(d.ctx, f)
		if err == nil {
			log.Warn("records discarded and reported to on_failure", zap.NamedError("last_error", seg.lastErr))
			d.hooks.OnRecordsDropped(sb.ShardID, reason, len(recs))
			d.hooks.OnRecordsOnFailure(sb.ShardID, len(recs))
			return nil
		}
		if d.ctx.Err() != nil {
			return d.ctx.Err()
		}
		d.hooks.OnOnFailureError(sb.ShardID, err)
		pause := d.p.Backoff(attempt)
		log.Error("on_failure destination failed; the shard waits and retries it", zap.Int("attempt", attempt),
			zap.Duration("retry_in", pause), zap.Error(err))
		if err := wait.Until(d.ctx, d.stop, d.timer, pause); err != nil {
			return err
		}
	}
}
