package failure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap/zaptest"

	"github.com/poller-dev/poller/pkg/event"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
	"github.com/poller-dev/poller/pkg/wait"
)

// scriptedSink answers each call with answer(call number from 1, batch); it keeps every call's
// sequence numbers and the records it accepted (a nil answer, or the head before a partial report).
type scriptedSink struct {
	answer   func(call int, b sinks.Batch) error
	mu       sync.Mutex
	calls    [][]string
	accepted []string
}

func (s *scriptedSink) Deliver(_ context.Context, b sinks.Batch) error {
	s.mu.Lock()
	var seqs []string
	for _, r := range b.Records {
		seqs = append(seqs, r.Change.SequenceNumber)
	}
	s.calls = append(s.calls, seqs)
	n := len(s.calls)
	s.mu.Unlock()
	err := s.answer(n, b)
	s.mu.Lock()
	defer s.mu.Unlock()
	var partial *sinks.BatchError
	switch {
	case err == nil:
		s.accepted = append(s.accepted, seqs...)
	case errors.As(err, &partial):
		if i := firstFailed(b.Records, partial.Failed); i > 0 {
			s.accepted = append(s.accepted, seqs[:i]...)
		}
	}
	return err
}

func (s *scriptedSink) Close(context.Context) error { return nil }

// failOn fails every call whose batch holds one of the sequence numbers.
func failOn(seqs ...string) func(int, sinks.Batch) error {
	return func(_ int, b sinks.Batch) error {
		for _, r := range b.Records {
			if slices.Contains(seqs, r.Change.SequenceNumber) {
				return &sinks.HTTPError{StatusCode: 500, Body: "poison"}
			}
		}
		return nil
	}
}

// memDest stores reports; its first down sends fail.
type memDest struct {
	mu      sync.Mutex
	down    int
	sends   int
	reports []onfailure.Failure
}

func (d *memDest) Send(_ context.Context, f onfailure.Failure) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sends++
	if d.sends <= d.down {
		return errors.New("destination unavailable")
	}
	d.reports = append(d.reports, f)
	return nil
}

// counts are the policy's hooks as a test sees them.
type counts struct {
	mu            sync.Mutex
	invoked       map[string]int
	dropped       map[string]int
	bisects       int
	delivers      int
	reportsFailed int
	throttled     int
	onFailure     int
	inFlight      int // sink calls started and not ended
}

// hooks returns c as the policy's hooks, counting from zero.
func (c *counts) hooks() *counts {
	c.invoked, c.dropped = map[string]int{}, map[string]int{}
	return c
}

func (c *counts) OnSinkCall(_, r string, _ time.Duration, _ error) {
	c.mu.Lock()
	c.invoked[r]++
	c.inFlight--
	c.mu.Unlock()
}

func (c *counts) OnSinkCallStarted(string) { c.mu.Lock(); c.inFlight++; c.mu.Unlock() }

func (c *counts) OnSinkThrottled(string) { c.mu.Lock(); c.throttled++; c.mu.Unlock() }

func (c *counts) OnRecordsOnFailure(_ string, n int) { c.mu.Lock(); c.onFailure += n; c.mu.Unlock() }

func (c *counts) calls() (inFlight int) { c.mu.Lock(); defer c.mu.Unlock(); return c.inFlight }

func (c *counts) OnRecordsDelivered(_ string, recs []events.DynamoDBEventRecord) {
	c.mu.Lock()
	c.delivers += len(recs)
	c.mu.Unlock()
}

func (c *counts) OnRecordsDropped(_, r string, n int) { c.mu.Lock(); c.dropped[r] += n; c.mu.Unlock() }

func (c *counts) OnBatchBisected(string) { c.mu.Lock(); c.bisects++; c.mu.Unlock() }

func (c *counts) OnOnFailureError(string, error) { c.mu.Lock(); c.reportsFailed++; c.mu.Unlock() }

func noWait(int) time.Duration { return 0 }

func batchOf(recs []events.DynamoDBEventRecord) sinks.Batch {
	return sinks.Batch{Pipeline: "p", StreamARN: "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2026-01-01T00:00:00.000", ShardID: "shard-1", Records: recs}
}

func seqsOf(recs []events.DynamoDBEventRecord) []string {
	var s []string
	for _, r := range recs {
		s = append(s, r.Change.SequenceNumber)
	}
	return s
}

func TestPolicyPoisonRecordWithBisectIsIsolated(t *testing.T) {
	recs := lambdaRecs(100, nil)
	sink := &scriptedSink{answer: failOn(seqOf(42))}
	dest := &memDest{}
	var c counts
	p := &Policy{Sink: sink, OnFailure: dest, MaxRetryAttempts: 2, BisectOnError: true, Backoff: noWait,
		Hooks: c.hooks(), Log: zaptest.NewLogger(t)}
	if err := p.Deliver(context.Background(), nil, batchOf(recs)); err != nil {
		t.Fatalf("Deliver() = %v, want nil", err)
	}
	if len(dest.reports) != 1 {
		t.Fatalf("on_failure got %d reports, want 1", len(dest.reports))
	}
	r := dest.reports[0]
	if got := seqsOf(r.Batch.Records); !slices.Equal(got, []string{seqOf(42)}) {
		t.Errorf("reported records = %v, want only the poison record %s", got, seqOf(42))
	}
	// 100 -> 50 -> 25 -> 12 -> 6 -> 3 -> 2 -> 1 carried it 8 times, then 2 retries.
	if r.Condition != onfailure.RetryAttemptsExhausted || r.InvokeCount != 10 || r.StatusCode != 500 || r.LastErr == nil {
		t.Errorf("report = %s, invoke count %d, status %d, last error %v; want RetryAttemptsExhausted, 10, 500, the sink's error",
			r.Condition, r.InvokeCount, r.StatusCode, r.LastErr)
	}
	want := seqsOf(recs)
	want = slices.Delete(want, 42, 43)
	if !slices.Equal(sink.accepted, want) {
		t.Errorf("accepted %d records (%v...), want the other 99 once each, in order", len(sink.accepted), sink.accepted[:min(5, len(sink.accepted))])
	}
	// About log2(100) = 7 levels: a failing and a good half each, plus the 2 retries of the poison record.
	if len(sink.calls) != 17 {
		t.Errorf("sink calls = %d, want 17 (1 + 7 levels x 2 + 2 retries)", len(sink.calls))
	}
	if c.bisects != 7 || c.dropped["retries_exhausted"] != 1 || c.delivers != 99 || c.invoked["ok"] != 7 || c.invoked["error"] != 10 {
		t.Errorf("counters: bisects %d, dropped %v, delivered %d, invoked %v; want 7, retries_exhausted 1, 99, ok 7 error 10",
			c.bisects, c.dropped, c.delivers, c.invoked)
	}
}

func TestPolicy(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		recs []events.DynamoDBEventRecord
		// policy sets the knobs on a policy that has the sink, destination, counters and log.
		policy func(p *Policy)
		answer func(call int, b sinks.Batch) error
		// clock, when set, is the policy's clock; tick is called after each sink call.
		destDown    int
		wantCalls   [][]string
		wantReports []onfailure.Failure // Batch.Records compared by sequence number; Time ignored
		wantDropped map[string]int
	}{
		{
			name:   "without bisect a failing batch goes whole to on_failure after max_retry_attempts+1 calls",
			recs:   lambdaRecs(5, nil),
			policy: func(p *Policy) { p.MaxRetryAttempts = 2 },
			answer: failOn(seqOf(2)),
			wantCalls: [][]string{
				{seqOf(0), seqOf(1), seqOf(2), seqOf(3), seqOf(4)},
				{seqOf(0), seqOf(1), seqOf(2), seqOf(3), seqOf(4)},
				{seqOf(0), seqOf(1), seqOf(2), seqOf(3), seqOf(4)},
			},
			wantReports: []onfailure.Failure{{Batch: batchOf(lambdaRecs(5, nil)), Condition: onfailure.RetryAttemptsExhausted, InvokeCount: 3, StatusCode: 500}},
			wantDropped: map[string]int{"retries_exhausted": 5},
		},
		{
			name:   "max_retry_attempts 0 discards after the first failed call",
			recs:   lambdaRecs(2, nil),
			policy: func(p *Policy) { p.MaxRetryAttempts = 0 },
			answer: failOn(seqOf(0)),
			wantCalls: [][]string{
				{seqOf(0), seqOf(1)},
			},
			wantReports: []onfailure.Failure{{Batch: batchOf(lambdaRecs(2, nil)), Condition: onfailure.RetryAttemptsExhausted, InvokeCount: 1, StatusCode: 500}},
			wantDropped: map[string]int{"retries_exhausted": 2},
		},
		{
			name:   "a partial batch response re-delivers from the lowest reported record and never before it",
			recs:   lambdaRecs(6, nil),
			policy: func(p *Policy) { p.MaxRetryAttempts = -1; p.ReportBatchItemFailures = true },
			answer: func(call int, _ sinks.Batch) error {
				if call == 1 {
					return &sinks.BatchError{Failed: []string{seqOf(4), seqOf(2)}}
				}
				return nil
			},
			wantCalls: [][]string{
				{seqOf(0), seqOf(1), seqOf(2), seqOf(3), seqOf(4), seqOf(5)},
				{seqOf(2), seqOf(3), seqOf(4), seqOf(5)},
			},
		},
		{
			name:   "a record reported failed every time ends in on_failure with the records after it",
			recs:   lambdaRecs(4, nil),
			policy: func(p *Policy) { p.MaxRetryAttempts = 1; p.ReportBatchItemFailures = true },
			answer: func(int, sinks.Batch) error { return &sinks.BatchError{Failed: []string{seqOf(2)}} },
			wantCalls: [][]string{
				{seqOf(0), seqOf(1), seqOf(2), seqOf(3)},
				{seqOf(2), seqOf(3)},
			},
			wantReports: []onfailure.Failure{{Batch: batchOf(lambdaRecs(4, nil)[2:]), Condition: onfailure.RetryAttemptsExhausted, InvokeCount: 2, StatusCode: 200}},
			wantDropped: map[string]int{"retries_exhausted": 2},
		},
		{
			name:   "with bisect a partial response cuts the batch at the reported record and isolates it",
			recs:   lambdaRecs(4, nil),
			policy: func(p *Policy) { p.MaxRetryAttempts = 0; p.ReportBatchItemFailures = true; p.BisectOnError = true },
			answer: func(_ int, b sinks.Batch) error {
				for _, r := range b.Records {
					if r.Change.SequenceNumber == seqOf(1) {
						return &sinks.BatchError{Failed: []string{seqOf(1)}}
					}
				}
				return nil
			},
			wantCalls: [][]string{
				{seqOf(0), seqOf(1), seqOf(2), seqOf(3)},
				{seqOf(1), seqOf(2), seqOf(3)}, // cut at the reported record: a fresh budget
				{seqOf(1), seqOf(2)},           // it failed from its first record: bisected
				{seqOf(1)},
				{seqOf(2)},
				{seqOf(3)},
			},
			wantReports: []onfailure.Failure{{Batch: batchOf(lambdaRecs(2, nil)[1:]), Condition: onfailure.RetryAttemptsExhausted, InvokeCount: 4, StatusCode: 200}},
			wantDropped: map[string]int{"retries_exhausted": 1},
		},
		{
			name:   "an empty partial report list is success",
			recs:   lambdaRecs(3, nil),
			policy: func(p *Policy) { p.MaxRetryAttempts = 0; p.ReportBatchItemFailures = true },
			answer: func(int, sinks.Batch) error { return nil }, // the sink parses [] as success
			wantCalls: [][]string{
				{seqOf(0), seqOf(1), seqOf(2)},
			},
		},
		{
			name:        "records older than max_record_age are discarded unsent with RecordAgeExceeded",
			recs:        lambdaRecs(3, func(int) time.Time { return t0.Add(-2 * time.Minute) }),
			policy:      func(p *Policy) { p.MaxRecordAge = time.Minute; p.Now = func() time.Time { return t0 } },
			answer:      func(int, sinks.Batch) error { return nil },
			wantReports: []onfailure.Failure{{Batch: batchOf(lambdaRecs(3, nil)), Condition: onfailure.RecordAgeExceeded, InvokeCount: 0}},
			wantDropped: map[string]int{"max_age": 3},
		},
		{
			name: "the old head of a batch is discarded and the rest delivered",
			recs: lambdaRecs(4, func(i int) time.Time { return t0.Add(-time.Duration(4-i) * 30 * time.Second) }),
			policy: func(p *Policy) {
				p.MaxRecordAge = time.Minute
				p.Now = func() time.Time { return t0 }
			},
			answer:      func(int, sinks.Batch) error { return nil },
			wantCalls:   [][]string{{seqOf(2), seqOf(3)}},
			wantReports: []onfailure.Failure{{Batch: batchOf(lambdaRecs(2, nil)), Condition: onfailure.RecordAgeExceeded}},
			wantDropped: map[string]int{"max_age": 2},
		},
		{
			name: "an old record amid fresh ones is never sent",
			recs: lambdaRecs(3, func(i int) time.Time {
				if i == 1 {
					return t0.Add(-time.Hour)
				}
				return t0
			}),
			policy: func(p *Policy) {
				p.MaxRecordAge = time.Minute
				p.Now = func() time.Time { return t0 }
			},
			answer:      func(int, sinks.Batch) error { return nil },
			wantCalls:   [][]string{{seqOf(0)}, {seqOf(2)}},
			wantReports: []onfailure.Failure{{Batch: batchOf(lambdaRecs(2, nil)[1:]), Condition: onfailure.RecordAgeExceeded}},
			wantDropped: map[string]int{"max_age": 1},
		},
		{
			name: "a sink that cannot be reached is retried past max_retry_attempts",
			recs: lambdaRecs(2, nil),
			policy: func(p *Policy) {
				p.MaxRetryAttempts = 0
				p.BisectOnError = true
			},
			answer: func(call int, _ sinks.Batch) error {
				if call <= 3 {
					return &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
				}
				return nil
			},
			wantCalls: [][]string{{seqOf(0), seqOf(1)}, {seqOf(0), seqOf(1)}, {seqOf(0), seqOf(1)}, {seqOf(0), seqOf(1)}},
		},
		{
			name:     "a destination that is down is retried until it stores the report",
			recs:     lambdaRecs(1, nil),
			policy:   func(p *Policy) { p.MaxRetryAttempts = 0 },
			answer:   failOn(seqOf(0)),
			destDown: 3,
			wantCalls: [][]string{
				{seqOf(0)},
			},
			wantReports: []onfailure.Failure{{Batch: batchOf(lambdaRecs(1, nil)), Condition: onfailure.RetryAttemptsExhausted, InvokeCount: 1, StatusCode: 500}},
			wantDropped: map[string]int{"retries_exhausted": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &scriptedSink{answer: tt.answer}
			dest := &memDest{down: tt.destDown}
			var c counts
			p := &Policy{Sink: sink, OnFailure: dest, Backoff: noWait, Hooks: c.hooks(), Log: zaptest.NewLogger(t)}
			tt.policy(p)
			if err := p.Deliver(context.Background(), nil, batchOf(tt.recs)); err != nil {
				t.Fatalf("Deliver() = %v, want nil", err)
			}
			if !slices.EqualFunc(sink.calls, tt.wantCalls, slices.Equal) {
				t.Errorf("sink calls = %v, want %v", sink.calls, tt.wantCalls)
			}
			if len(dest.reports) != len(tt.wantReports) {
				t.Fatalf("on_failure reports = %d, want %d", len(dest.reports), len(tt.wantReports))
			}
			for i, got := range dest.reports {
				want := tt.wantReports[i]
				if !slices.Equal(seqsOf(got.Batch.Records), seqsOf(want.Batch.Records)) || got.Condition != want.Condition ||
					got.InvokeCount != want.InvokeCount || got.StatusCode != want.StatusCode || got.Batch.ShardID != "shard-1" {
					t.Errorf("report %d = {%v %s invokes %d status %d shard %s}, want {%v %s invokes %d status %d shard-1}", i,
						seqsOf(got.Batch.Records), got.Condition, got.InvokeCount, got.StatusCode, got.Batch.ShardID,
						seqsOf(want.Batch.Records), want.Condition, want.InvokeCount, want.StatusCode)
				}
			}
			if want := tt.destDown + len(tt.wantReports); dest.sends != want {
				t.Errorf("destination sends = %d, want %d", dest.sends, want)
			}
			if c.reportsFailed != tt.destDown {
				t.Errorf("failed reports counted = %d, want %d (one per failed send)", c.reportsFailed, tt.destDown)
			}
			for _, reason := range []string{"max_age", "retries_exhausted"} {
				if c.dropped[reason] != tt.wantDropped[reason] {
					t.Errorf("dropped{%s} = %d, want %d", reason, c.dropped[reason], tt.wantDropped[reason])
				}
			}
		})
	}
}

func TestPolicyRetriesUntilTheRecordExpiresWithUnlimitedAttempts(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// Every failed call takes ten seconds of the record's life.
	sink := &scriptedSink{answer: func(int, sinks.Batch) error {
		mu.Lock()
		now = now.Add(10 * time.Second)
		mu.Unlock()
		return &sinks.HTTPError{StatusCode: 503}
	}}
	dest := &memDest{}
	var c counts
	p := &Policy{Sink: sink, OnFailure: dest, MaxRetryAttempts: -1, MaxRecordAge: time.Minute, Now: clock,
		Backoff: noWait, Hooks: c.hooks(), Log: zaptest.NewLogger(t)}
	recs := lambdaRecs(3, func(int) time.Time { return t0 })
	if err := p.Deliver(context.Background(), nil, batchOf(recs)); err != nil {
		t.Fatalf("Deliver() = %v, want nil", err)
	}
	// Ages 0, 10, ..., 60 s are not older than a minute: seven calls; at 70 s the records expire.
	if len(sink.calls) != 7 {
		t.Errorf("sink calls = %d, want 7 (retried until the records were older than a minute)", len(sink.calls))
	}
	if len(dest.reports) != 1 {
		t.Fatalf("on_failure reports = %d, want 1", len(dest.reports))
	}
	if r := dest.reports[0]; r.Condition != onfailure.RecordAgeExceeded || r.InvokeCount != 7 || r.StatusCode != 503 || len(r.Batch.Records) != 3 {
		t.Errorf("report = %s, invokes %d, status %d, %d records; want RecordAgeExceeded, 7, 503, 3", r.Condition, r.InvokeCount, r.StatusCode, len(r.Batch.Records))
	}
	if c.dropped["max_age"] != 3 {
		t.Errorf("dropped{max_age} = %d, want 3", c.dropped["max_age"])
	}
}

// TestPolicyNeverDiscardsARecordWithoutCreationTimeForAge: a stream record without
// ApproximateCreationDateTime, converted as poller converts every record, is delivered under the
// stream's retention limit (max_record_age -1), not discarded as 56 years old; expired records
// around it are discarded, and it is sent between them, in order.
func TestPolicyNeverDiscardsARecordWithoutCreationTimeForAge(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2026-01-01T00:00:00.000"
	convert := func(i int, created *time.Time) events.DynamoDBEventRecord {
		r, err := event.FromStreams(streamtypes.Record{
			EventID: aws.String(fmt.Sprint("ev", i)), EventName: streamtypes.OperationTypeInsert,
			Dynamodb: &streamtypes.StreamRecord{
				ApproximateCreationDateTime: created,
				Keys:                        map[string]streamtypes.AttributeValue{"pk": &streamtypes.AttributeValueMemberS{Value: "k"}},
				SequenceNumber:              aws.String(seqOf(i)), StreamViewType: streamtypes.StreamViewTypeKeysOnly,
			},
		}, arn)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	old := t0.Add(-25 * time.Hour)
	tests := []struct {
		name          string
		recs          []events.DynamoDBEventRecord
		wantCalls     [][]string
		wantDiscarded []string
	}{
		{name: "a lone record without a creation time is delivered",
			recs: []events.DynamoDBEventRecord{convert(0, nil)}, wantCalls: [][]string{{seqOf(0)}}},
		{name: "a record without a creation time between expired ones is delivered between their discards",
			recs:          []events.DynamoDBEventRecord{convert(0, &old), convert(1, nil), convert(2, &old), convert(3, &t0)},
			wantCalls:     [][]string{{seqOf(1)}, {seqOf(3)}},
			wantDiscarded: []string{seqOf(0), seqOf(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &scriptedSink{answer: func(int, sinks.Batch) error { return nil }}
			dest := &memDest{}
			var c counts
			p := &Policy{Sink: sink, OnFailure: dest, MaxRetryAttempts: -1, MaxRecordAge: 24 * time.Hour,
				Now: func() time.Time { return t0 }, Backoff: noWait, Hooks: c.hooks(), Log: zaptest.NewLogger(t)}
			if err := p.Deliver(context.Background(), nil, batchOf(tt.recs)); err != nil {
				t.Fatalf("Deliver() = %v, want nil", err)
			}
			if fmt.Sprint(sink.calls) != fmt.Sprint(tt.wantCalls) {
				t.Errorf("sink calls = %v, want %v", sink.calls, tt.wantCalls)
			}
			var discarded []string
			for _, r := range dest.reports {
				discarded = append(discarded, seqsOf(r.Batch.Records)...)
			}
			if fmt.Sprint(discarded) != fmt.Sprint(tt.wantDiscarded) {
				t.Errorf("discarded = %v, want %v", discarded, tt.wantDiscarded)
			}
			if c.dropped["max_age"] != len(tt.wantDiscarded) {
				t.Errorf("dropped{max_age} = %d, want %d", c.dropped["max_age"], len(tt.wantDiscarded))
			}
		})
	}
}

func TestPolicyGivesUpOnlyWhenStoppedOrCanceled(t *testing.T) {
	alwaysFails := func(int, sinks.Batch) error { return &sinks.HTTPError{StatusCode: 500} }
	tests := []struct {
		name     string
		destDown int
		cancel   bool
		want     error
	}{
		{"stop while a failing batch waits to retry ends Deliver undone", 0, false, wait.ErrStopped},
		{"stop while the destination is down ends Deliver undone", 1 << 30, false, wait.ErrStopped},
		{"a canceled context while retrying ends Deliver with the context's error", 0, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := make(chan struct{})
			maxRetries := -1
			if tt.destDown > 0 {
				maxRetries = 0
			}
			sink := &scriptedSink{answer: alwaysFails}
			dest := &memDest{down: tt.destDown}
			p := &Policy{Sink: sink, OnFailure: dest, MaxRetryAttempts: maxRetries, Log: zaptest.NewLogger(t),
				Backoff: func(attempt int) time.Duration {
					if attempt == 3 { // the third wait outlasts the test: end it from here
						if tt.cancel {
							cancel()
						} else {
							close(stop)
						}
						return time.Hour
					}
					return 0
				}}
			err := p.Deliver(ctx, stop, batchOf(lambdaRecs(3, nil)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Deliver() = %v, want %v", err, tt.want)
			}
			if len(dest.reports) != 0 {
				t.Errorf("on_failure stored %d reports, want none", len(dest.reports))
			}
		})
	}
}

func TestPolicyWithoutDestinationCountsAndMovesOn(t *testing.T) {
	var c counts
	p := &Policy{Sink: &scriptedSink{answer: failOn(seqOf(0))}, MaxRetryAttempts: 0, Backoff: noWait,
		Hooks: c.hooks(), Log: zaptest.NewLogger(t)}
	if err := p.Deliver(context.Background(), nil, batchOf(lambdaRecs(2, nil))); err != nil {
		t.Fatalf("Deliver() = %v, want nil", err)
	}
	if c.dropped["retries_exhausted"] != 2 {
		t.Errorf("dropped{retries_exhausted} = %d, want 2", c.dropped["retries_exhausted"])
	}
}

// TestPolicyStopsBetweenSegments: stop (a handoff, SIGTERM) closed while one segment's call is in
// flight lets that call finish and sends no later segment: not the second bisect half, not a
// partial response's remainder, not the next age-split run, and reports nothing to on_failure. The
// records the sink accepted are reported done, so the shard's next owner starts after them.
func TestPolicyStopsBetweenSegments(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// first answers the first call (during which stop is closed).
		first    error
		bisect   bool
		rbif     bool
		maxAge   time.Duration
		created  func(i int) time.Time
		wantDone int // records reported done by the IncompleteError (0: a bare wait.ErrStopped)
	}{
		{name: "the second bisect half is not sent after stop", first: &sinks.HTTPError{StatusCode: 500}, bisect: true},
		{name: "a partial batch response's remainder is not sent after stop",
			first: &sinks.BatchError{Failed: []string{seqOf(2)}}, rbif: true, bisect: true, wantDone: 2},
		{name: "the next age-split run is neither reported nor sent after stop", first: nil, maxAge: time.Minute,
			// records 0-1 fresh, 2 expired (clock disorder), 3 fresh: the first run is 0-1 alone.
			created: func(i int) time.Time {
				if i == 2 {
					return t0.Add(-time.Hour)
				}
				return t0
			}, wantDone: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stop := make(chan struct{})
			sink := &scriptedSink{answer: func(call int, _ sinks.Batch) error {
				if call == 1 {
					close(stop) // the handoff is decided while this call is in flight
					return tt.first
				}
				return nil
			}}
			dest := &memDest{}
			p := &Policy{Sink: sink, OnFailure: dest, MaxRetryAttempts: -1, BisectOnError: tt.bisect,
				ReportBatchItemFailures: tt.rbif, MaxRecordAge: tt.maxAge, Now: func() time.Time { return t0 },
				Backoff: noWait, Log: zaptest.NewLogger(t)}
			err := p.Deliver(t.Context(), stop, batchOf(lambdaRecs(4, tt.created)))
			if !errors.Is(err, wait.ErrStopped) {
				t.Fatalf("Deliver() = %v, want wait.ErrStopped", err)
			}
			done := 0
			if inc, ok := errors.AsType[*IncompleteError](err); ok {
				done = inc.Done
			}
			if done != tt.wantDone {
				t.Errorf("Deliver() = %v: %d records done, want %d", err, done, tt.wantDone)
			}
			if len(sink.calls) != 1 {
				t.Errorf("sink calls = %v, want only the first one (stop was closed during it)", sink.calls)
			}
			if len(dest.reports) != 0 {
				t.Errorf("on_failure got %d reports after stop, want none", len(dest.reports))
			}
		})
	}
}
