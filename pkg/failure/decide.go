package failure

import (
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/pkg/sinks"
)

// This file holds the failure decisions of the delivery policy as pure functions, each following
// Lambda's documented behaviour for a DynamoDB Streams event source mapping, or, where AWS is
// silent, the decision written next to it (and in DESIGN.md, "Failure semantics").

// ErrNotInvoked marks a sink call that gave up before the batch was sent (for instance a check
// that the shard's lease is still held, made before each call). Wrap it into such an error: the
// policy then retries the batch like a throttle, without using up retry attempts or bisecting.
var ErrNotInvoked = errors.New("batch not sent to the sink")

// outcomeKind is what one sink call came to.
type outcomeKind int

const (
	// callOK: the sink accepted every record.
	callOK outcomeKind = iota
	// callPartial: the sink answered with Lambda's partial batch response; outcome.first is the
	// index of the lowest reported record.
	callPartial
	// callFailed: a function error. The sink was reached and failed the batch (a non-2xx answer, a
	// timeout, a malformed partial batch response, ...). It counts against max_retry_attempts and
	// triggers bisect_batch_on_error.
	callFailed
	// callNotInvoked: the batch never reached the handler (the connection was refused, or the
	// endpoint throttled with 429). Lambda retries such "before invocation" errors until the records
	// expire or pass max_record_age, without using up retry attempts and without bisecting; so do we.
	callNotInvoked
	// callTooLarge: the sink sent the records before outcome.first and reports that record as one
	// no call can ever deliver (sinks.ErrRecordTooLarge, in a *sinks.SendError).
	callTooLarge
)

// outcome is a classified sink call.
type outcome struct {
	kind  outcomeKind
	first int // callPartial, callTooLarge: index of the lowest failed record in the batch
	// throttled: a callPartial whose failed record the service throttled (a *sinks.SendError
	// marked with sinks.ErrThrottled): the rest is retried like a callNotInvoked.
	throttled bool
}

// classify reads a sink call's error. rbif is report_batch_item_failures.
//
//   - A *sinks.BatchError is Lambda's partial batch response. Lambda ignores partial responses
//     unless ReportBatchItemFailures is on, so without rbif it is complete success. With rbif, the
//     lowest reported record is where the batch failed; a report naming no record of the batch is a
//     failure of the whole batch (Lambda leaves this undocumented; LocalStack fails the batch).
//   - A *sinks.SendError is a service's account of a partly failed call, honoured whatever rbif
//     says (see sendOutcome).
//   - ErrNotInvoked, or a throttle (a refused connection, an HTTP 429, sinks.ErrThrottled), is
//     callNotInvoked (see there).
//   - Anything else is a function error.
func classify(err error, recs []events.DynamoDBEventRecord, rbif bool) outcome {
	if err == nil {
		return outcome{kind: callOK}
	}
	if o, ok := sendOutcome(err, len(recs)); ok {
		return o
	}
	if partial, ok := errors.AsType[*sinks.BatchError](err); ok {
		if !rbif {
			return outcome{kind: callOK}
		}
		if i := firstFailed(recs, partial.Failed); i >= 0 {
			return outcome{kind: callPartial, first: i}
		}
		return outcome{kind: callFailed}
	}
	if notInvoked(err) {
		return outcome{kind: callNotInvoked}
	}
	return outcome{kind: callFailed}
}

// sendOutcome reads a *sinks.SendError of a call that sent a batch of n records record by record:
// a record over the service's size limit is callTooLarge; records sent before the failed one make
// a callPartial at it (throttled when the service throttled it); with none sent, the call is
// judged by its reason alone, as any other error (ok false). A SendError whose Sent is out of
// range is a function error.
func sendOutcome(err error, n int) (outcome, bool) {
	se, ok := errors.AsType[*sinks.SendError](err)
	switch {
	case !ok:
		return outcome{}, false
	case se.Sent < 0 || se.Sent >= n:
		return outcome{kind: callFailed}, true
	case sinks.IsRecordTooLarge(se.Err):
		return outcome{kind: callTooLarge, first: se.Sent}, true
	case se.Sent == 0:
		return outcome{}, false
	}
	return outcome{kind: callPartial, first: se.Sent, throttled: sinks.IsThrottled(se.Err)}, true
}

// notInvoked reports whether a sink error proves the batch never reached the handler: the call
// gave up before sending (ErrNotInvoked), or the sink refused it (sinks.IsThrottled: a refused
// connection, an HTTP 429, or an error the sink marked with sinks.ErrThrottled). A timeout is not
// among them: the handler may have run, as with a Lambda function timeout, which Lambda counts as a
// function error.
func notInvoked(err error) bool {
	return errors.Is(err, ErrNotInvoked) || sinks.IsThrottled(err)
}

// statusCoder is a sink error that knows the status of the answer behind it (the lambda sink's).
type statusCoder interface {
	error
	HTTPStatus() int
}

// statusOf returns the status code of the sink's answer behind err, for the on-failure record's
// responseContext.statusCode: the HTTP status of an *sinks.HTTPError or of an error that knows it
// (statusCoder), 200 for a partial batch response (a 2xx answer), and 0 when there was no answer.
func statusOf(err error) int {
	if h, ok := errors.AsType[*sinks.HTTPError](err); ok {
		return h.StatusCode
	}
	if s, ok := errors.AsType[statusCoder](err); ok {
		return s.HTTPStatus()
	}
	if _, ok := errors.AsType[*sinks.BatchError](err); ok {
		return http.StatusOK
	}
	return 0
}

// firstFailed returns the index of the earliest record of the batch whose sequence number the sink
// reported as failed, or -1 when the report names no record of the batch. A batch is in
// sequence-number order, so the earliest is the lowest, which Lambda takes as the checkpoint.
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
	return -1
}

// action is what the policy does with a segment after a sink call.
type action int

const (
	// actDone: every record of the segment is delivered.
	actDone action = iota
	// actRetry: call the sink again with the records left, after a backoff.
	actRetry
	// actSplit: replace the records left by two segments, [:at] and [at:] (an empty one is
	// dropped), each with a fresh retry budget, and call the sink with the first at once.
	actSplit
	// actDiscard: retries are exhausted: report the records left to on_failure and move on.
	actDiscard
	// actReject: report the first of the records left alone to on_failure (it can never be
	// delivered) and send the rest at once, under the same budget.
	actReject
)

// step is the policy's decision after a sink call.
type step struct {
	act action
	// delivered is how many records at the head of the segment the sink accepted; the rest are
	// "the records left".
	delivered int
	// at is where actSplit cuts the records left.
	at int
	// failures is the segment's count of failed calls after this one, against max_retry_attempts.
	failures int
}

// knobs are the pipeline's failure settings that decide a step.
type knobs struct {
	maxRetries int // max_retry_attempts: -1 retries until the records expire
	bisect     bool
}

// next decides what follows a sink call with outcome o on a segment of n records that had failed
// failures times before. As Lambda does:
//
//   - Success ends the segment.
//   - max_retry_attempts N allows N retries after the first call: the segment is discarded when its
//     (N+1)th call fails. -1 never discards for retries (max_record_age or the stream's 24 h
//     retention ends it).
//   - A partial batch response: the records before the lowest reported one are delivered. Without
//     bisect the records left are retried under the same budget (a partial failure counts as a
//     failed call, so that a record reported failed forever still ends in on_failure). With
//     bisect_batch_on_error, Lambda "bisects the batch at the returned sequence number and retries
//     only the remaining records": the records left become a new segment, which is a split and so
//     does not consume the retry quota. A report whose lowest record is the batch's first delivered
//     nothing and is handled as a function error.
//   - A function error with bisect_batch_on_error and more than one record splits the segment in
//     two halves (the first half has the extra record of an odd count). Lambda documents that
//     splitting "does not consume the retry quota"; each half starts with a fresh budget, so
//     splitting always reaches the single failing record before the budget decides anything, and
//     it ends because each split halves the batch. A one-record segment is retried and discarded
//     under the budget.
//   - A call that never reached the handler is retried without using the budget or bisecting; so
//     are the records left after a partly sent call whose failed record was throttled.
//   - A record that can never be delivered (over the service's size limit) is reported to
//     on_failure alone, at once: no retry could deliver it, and the records after it are sent on.
func next(o outcome, n, failures int, k knobs) step {
	switch o.kind {
	case callOK:
		return step{act: actDone, delivered: n}
	case callNotInvoked:
		return step{act: actRetry, failures: failures}
	case callTooLarge:
		return step{act: actReject, delivered: o.first, failures: failures}
	case callPartial:
		if o.first > 0 && o.throttled {
			return step{act: actRetry, delivered: o.first, failures: failures}
		}
		if o.first > 0 {
			if k.bisect {
				return step{act: actSplit, delivered: o.first, at: 0}
			}
			return afterFailure(step{delivered: o.first}, failures, k)
		}
	}
	// A function error, or a partial response that delivered nothing.
	if k.bisect && n > 1 {
		return step{act: actSplit, at: (n + 1) / 2, failures: failures}
	}
	return afterFailure(step{}, failures, k)
}

// afterFailure counts one failed call and picks retry or discard.
func afterFailure(s step, failures int, k knobs) step {
	s.failures = failures + 1
	if k.maxRetries >= 0 && s.failures > k.maxRetries {
		s.act = actDiscard
	} else {
		s.act = actRetry
	}
	return s
}

// ageSplit judges recs against max_record_age (limit > 0) at now. It returns how many records at the
// head are expired (older than limit), and how many records right after those are not.
//
// Lambda discards records older than MaximumRecordAgeInSeconds instead of sending them, including
// records never sent before (a lagging shard); it does not document what happens to old records in
// the middle of a batch. A record's age is measured from its ApproximateCreationDateTime, which
// does not decrease along a shard, so in practice the expired records are a prefix of the batch:
// they are discarded and the rest is delivered. Should a later record be expired anyway (creation
// times out of order), the batch is cut before it, so no expired record is ever sent. A record
// without a creation time never expires, whatever the limit (also the stream's retention, which
// max_record_age -1 stands for): its age is unknown, not 56 years. It is fresh, so among expired
// records it cuts the batch like any fresh record: the expired ones around it are discarded on
// their own and it is sent in between, in order.
func ageSplit(recs []events.DynamoDBEventRecord, now time.Time, limit time.Duration) (expired, fresh int) {
	if limit <= 0 {
		return 0, len(recs)
	}
	old := func(r *events.DynamoDBEventRecord) bool {
		t, known := createdAt(r)
		return known && now.Sub(t) > limit
	}
	for expired < len(recs) && old(&recs[expired]) {
		expired++
	}
	for expired+fresh < len(recs) && !old(&recs[expired+fresh]) {
		fresh++
	}
	return expired, fresh
}

// createdAt returns a record's ApproximateCreationDateTime, and false when the record has none: the
// zero time, or the Unix epoch, which is what event.FromStreams gives a record without one (the
// event's field is a number and cannot be left out). No stream record was written in 1970.
func createdAt(r *events.DynamoDBEventRecord) (time.Time, bool) {
	t := r.Change.ApproximateCreationDateTime.Time
	return t, !t.IsZero() && t.Unix() > 0
}
