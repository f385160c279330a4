package failure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/pkg/sinks"
)

// lambdaRecs returns n Lambda-shaped records with 25-digit sequence numbers, created at created(i).
func lambdaRecs(n int, created func(i int) time.Time) []events.DynamoDBEventRecord {
	recs := make([]events.DynamoDBEventRecord, n)
	for i := range recs {
		recs[i].EventID = fmt.Sprint("ev", i)
		recs[i].Change.SequenceNumber = seqOf(i)
		recs[i].Change.Keys = map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute(fmt.Sprint("k", i))}
		if created != nil {
			recs[i].Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: created(i)}
		}
	}
	return recs
}

func seqOf(i int) string { return fmt.Sprintf("1%024d", i) }

func TestNext(t *testing.T) {
	failed := outcome{kind: callFailed}
	tests := []struct {
		name     string
		o        outcome
		n        int
		failures int
		k        knobs
		want     step
	}{
		{"a delivered batch is done", outcome{kind: callOK}, 10, 2, knobs{maxRetries: 2},
			step{act: actDone, delivered: 10}},
		{"a failed batch with retries left is retried and the failure counted", failed, 10, 0, knobs{maxRetries: 2},
			step{act: actRetry, failures: 1}},
		{"the third failed call with max_retry_attempts 2 discards the batch", failed, 10, 2, knobs{maxRetries: 2},
			step{act: actDiscard, failures: 3}},
		{"max_retry_attempts 0 discards after the first failed call", failed, 10, 0, knobs{maxRetries: 0},
			step{act: actDiscard, failures: 1}},
		{"max_retry_attempts -1 never discards for failures", failed, 10, 100_000, knobs{maxRetries: -1},
			step{act: actRetry, failures: 100_001}},
		{"with bisect a failed batch of 100 splits in halves of 50 without using the budget", failed, 100, 0, knobs{maxRetries: 2, bisect: true},
			step{act: actSplit, at: 50}},
		{"with bisect an odd batch gives the first half the extra record", failed, 7, 0, knobs{maxRetries: 0, bisect: true},
			step{act: actSplit, at: 4}},
		{"with bisect a batch of two splits into single records", failed, 2, 0, knobs{maxRetries: 0, bisect: true},
			step{act: actSplit, at: 1}},
		{"with bisect a failing single record is retried under its budget", failed, 1, 1, knobs{maxRetries: 2, bisect: true},
			step{act: actRetry, failures: 2}},
		{"with bisect a failing single record is discarded once its budget is used", failed, 1, 2, knobs{maxRetries: 2, bisect: true},
			step{act: actDiscard, failures: 3}},
		{"a partial response delivers the records before the lowest failed one and retries the rest as a failure", outcome{kind: callPartial, first: 40}, 100, 0, knobs{maxRetries: 2},
			step{act: actRetry, delivered: 40, failures: 1}},
		{"a partial response on the last retry delivers the head and discards the rest", outcome{kind: callPartial, first: 40}, 100, 2, knobs{maxRetries: 2},
			step{act: actDiscard, delivered: 40, failures: 3}},
		{"with bisect a partial response cuts at the failed record without using the budget", outcome{kind: callPartial, first: 40}, 100, 1, knobs{maxRetries: 2, bisect: true},
			step{act: actSplit, delivered: 40, at: 0}},
		{"a partial response naming the first record fails the whole batch", outcome{kind: callPartial, first: 0}, 100, 0, knobs{maxRetries: 2},
			step{act: actRetry, failures: 1}},
		{"with bisect a partial response naming the first record bisects the batch", outcome{kind: callPartial, first: 0}, 100, 0, knobs{maxRetries: 2, bisect: true},
			step{act: actSplit, at: 50}},
		{"a call that never reached the sink is retried without using the budget", outcome{kind: callNotInvoked}, 10, 0, knobs{maxRetries: 0},
			step{act: actRetry, failures: 0}},
		{"a call that never reached the sink is not bisected", outcome{kind: callNotInvoked}, 10, 1, knobs{maxRetries: 0, bisect: true},
			step{act: actRetry, failures: 1}},
		{"a partly sent call whose failed record was throttled delivers the head and retries the rest without using the budget", outcome{kind: callPartial, first: 3, throttled: true}, 10, 0, knobs{maxRetries: 0, bisect: true},
			step{act: actRetry, delivered: 3}},
		{"a record too large for the service delivers the head and rejects that record alone, under the same budget", outcome{kind: callTooLarge, first: 3}, 10, 1, knobs{maxRetries: 0, bisect: true},
			step{act: actReject, delivered: 3, failures: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := next(tt.o, tt.n, tt.failures, tt.k); got != tt.want {
				t.Errorf("next(%+v, %d, %d, %+v) = %+v, want %+v", tt.o, tt.n, tt.failures, tt.k, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	recs := lambdaRecs(5, nil)
	refused := &url.Error{Op: "Post", URL: "http://127.0.0.1:1", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	reset := &url.Error{Op: "Post", URL: "http://127.0.0.1:1", Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}
	tests := []struct {
		name string
		err  error
		rbif bool
		want outcome
	}{
		{"no error is success", nil, true, outcome{kind: callOK}},
		{"a partial response is a failure from its lowest reported record", &sinks.BatchError{Failed: []string{seqOf(3), seqOf(2)}}, true, outcome{kind: callPartial, first: 2}},
		{"a wrapped partial response is still one", fmt.Errorf("deliver: %w", &sinks.BatchError{Failed: []string{seqOf(1)}}), true, outcome{kind: callPartial, first: 1}},
		{"a partial response is ignored without report_batch_item_failures, as Lambda does", &sinks.BatchError{Failed: []string{seqOf(3)}}, false, outcome{kind: callOK}},
		{"a partial response naming no record of the batch fails the whole batch", &sinks.BatchError{Failed: []string{seqOf(99)}}, true, outcome{kind: callFailed}},
		{"a 500 answer is a function error", &sinks.HTTPError{StatusCode: 500}, true, outcome{kind: callFailed}},
		{"a 429 answer is a throttle: the batch never reached the handler", fmt.Errorf("x: %w", &sinks.HTTPError{StatusCode: 429}), false, outcome{kind: callNotInvoked}},
		{"a refused connection never reached the handler", refused, false, outcome{kind: callNotInvoked}},
		{"a call that gave up before sending never reached the handler", fmt.Errorf("confirm the lease: %w: %w", ErrNotInvoked, errors.New("timeout")), false, outcome{kind: callNotInvoked}},
		{"a connection reset after sending may have reached the handler", reset, false, outcome{kind: callFailed}},
		{"a timeout is a function error", fmt.Errorf("no answer within 30s: %w", context.DeadlineExceeded), false, outcome{kind: callFailed}},
		{"a partly sent call is a partial failure without report_batch_item_failures", &sinks.SendError{Sent: 2, Err: errors.New("InternalError")}, false, outcome{kind: callPartial, first: 2}},
		{"a partly sent call throttled at its failed record is a throttled partial failure", fmt.Errorf("put: %w", &sinks.SendError{Sent: 2, Err: fmt.Errorf("%w: slow down", sinks.ErrThrottled)}), true, outcome{kind: callPartial, first: 2, throttled: true}},
		{"a call throttled before its first record is a throttle", &sinks.SendError{Sent: 0, Err: fmt.Errorf("%w: slow down", sinks.ErrThrottled)}, false, outcome{kind: callNotInvoked}},
		{"a call failed at its first record is a function error", &sinks.SendError{Sent: 0, Err: errors.New("InternalError")}, false, outcome{kind: callFailed}},
		{"a record over the service's limit is too large wherever it is", &sinks.SendError{Sent: 0, Err: fmt.Errorf("%w: 300000 bytes", sinks.ErrRecordTooLarge)}, false, outcome{kind: callTooLarge, first: 0}},
		{"a send error past the batch's end fails the whole batch", &sinks.SendError{Sent: 5, Err: errors.New("x")}, false, outcome{kind: callFailed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err, recs, tt.rbif); got != tt.want {
				t.Errorf("classify(%v) = %+v, want %+v", tt.err, got, tt.want)
			}
		})
	}
}

func TestAgeSplit(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// An age of none is a record without a creation time (the zero time), epoch one that
	// event.FromStreams converted without one (the Unix epoch).
	const none, epoch = -1, -2
	at := func(ages ...time.Duration) []events.DynamoDBEventRecord {
		return lambdaRecs(len(ages), func(i int) time.Time {
			switch ages[i] {
			case none:
				return time.Time{}
			case epoch:
				return time.Unix(0, 0)
			}
			return now.Add(-ages[i])
		})
	}
	m, day := time.Minute, 24*time.Hour
	tests := []struct {
		name           string
		recs           []events.DynamoDBEventRecord
		limit          time.Duration
		expired, fresh int
	}{
		{"without a limit nothing expires", at(100*m, 200*m), 0, 0, 2},
		{"records younger than the limit are all fresh", at(3*m, 2*m, m), 5 * m, 0, 3},
		{"old records at the head are expired and the rest is fresh", at(10*m, 9*m, 2*m, m), 5 * m, 2, 2},
		{"a batch older than the limit is expired whole", at(10*m, 9*m), 5 * m, 2, 0},
		{"a record exactly as old as the limit is not older than it", at(5*m, 4*m), 5 * m, 0, 2},
		{"an expired record after fresh ones cuts the fresh run before it", at(m, 10*m, m), 5 * m, 0, 1},
		{"a record without a creation time never expires", at(none, 10*m), 5 * m, 0, 1},
		{"a converted record without a creation time (the epoch) never expires", at(epoch, 10*m), 5 * m, 0, 1},
		{"a record without a creation time outlives the stream's retention (max_record_age -1)", at(epoch, epoch), day, 0, 2},
		{"a record without a creation time among expired ones is fresh and cuts them", at(10*m, epoch, 10*m, m), 5 * m, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, f := ageSplit(tt.recs, now, tt.limit)
			if e != tt.expired || f != tt.fresh {
				t.Errorf("ageSplit() = (%d, %d), want (%d, %d)", e, f, tt.expired, tt.fresh)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"an HTTP error gives its status", fmt.Errorf("w: %w", &sinks.HTTPError{StatusCode: 502}), 502},
		{"a partial response came with a 2xx answer", &sinks.BatchError{Failed: []string{"1"}}, 200},
		{"no answer gives 0", context.DeadlineExceeded, 0},
		{"Lambda's answer to an Invoke it refused gives its status", fmt.Errorf("w: %w", &sinks.InvokeError{StatusCode: 503, Throttled: true, Err: errors.New("x")}), 503},
		{"a function error came with Lambda's 200", &sinks.FunctionError{Kind: "Unhandled"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(tt.err); got != tt.want {
				t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
