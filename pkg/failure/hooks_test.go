package failure

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.uber.org/zap/zaptest"

	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/sinks"
)

// errLog keeps the errors the policy gives its hooks, by hook.
type errLog struct {
	mu        sync.Mutex
	sinkCalls []string // result: error text, or "<nil>"
	onFailure []error
	shards    map[string]bool
}

func (l *errLog) OnSinkCall(shardID, result string, _ time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shards[shardID] = true
	text := "<nil>"
	if err != nil {
		text = err.Error()
	}
	l.sinkCalls = append(l.sinkCalls, result+": "+text)
}

func (l *errLog) OnOnFailureError(_ string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onFailure = append(l.onFailure, err)
}

func (*errLog) OnRecordsDelivered(string, []events.DynamoDBEventRecord) {}
func (*errLog) OnRecordsDropped(string, string, int)                    {}
func (*errLog) OnBatchBisected(string)                                  {}
func (*errLog) OnSinkCallStarted(string)                                {}
func (*errLog) OnSinkThrottled(string)                                  {}
func (*errLog) OnRecordsOnFailure(string, int)                          {}

// TestPolicyHooksReceiveEachCallsError: a sink call's hook receives the call's error (nil when the
// call succeeded), and a failed on_failure report's hook receives the destination's error, each
// under the batch's shard.
func TestPolicyHooksReceiveEachCallsError(t *testing.T) {
	partial := &sinks.BatchError{Failed: []string{seqOf(1)}}
	fail := &sinks.HTTPError{StatusCode: 500, Body: "poison"}
	answers := []error{partial, fail, nil}
	sink := &scriptedSink{answer: func(call int, _ sinks.Batch) error { return answers[call-1] }}
	dest := &memDest{down: 1}
	log := &errLog{shards: map[string]bool{}}
	p := &Policy{Sink: sink, OnFailure: dest, MaxRetryAttempts: 1, ReportBatchItemFailures: true, Backoff: noWait,
		Hooks: log, Log: zaptest.NewLogger(t)}
	// Call 1 delivers record 0 and reports 1 failed; call 2 fails records 1-2 (the second failure:
	// discarded, reported once the destination's first send failed). Call 3 is never made.
	if err := p.Deliver(context.Background(), nil, batchOf(lambdaRecs(3, nil))); err != nil {
		t.Fatalf("Deliver() = %v, want nil", err)
	}
	want := []string{hooks.ResultPartial + ": " + partial.Error(), hooks.ResultError + ": " + fail.Error()}
	if len(log.sinkCalls) != len(want) || log.sinkCalls[0] != want[0] || log.sinkCalls[1] != want[1] {
		t.Errorf("OnSinkCall got %q, want %q", log.sinkCalls, want)
	}
	if len(log.onFailure) != 1 || log.onFailure[0] == nil || log.onFailure[0].Error() != "destination unavailable" {
		t.Errorf("OnOnFailureError got %v, want the destination's error once", log.onFailure)
	}
	if !log.shards["shard-1"] || len(log.shards) != 1 {
		t.Errorf("hooks told of shards %v, want only the batch's shard-1", log.shards)
	}

	ok := &Policy{Sink: &scriptedSink{answer: func(int, sinks.Batch) error { return nil }}, Backoff: noWait, Hooks: log,
		Log: zaptest.NewLogger(t)}
	log.sinkCalls = nil
	if err := ok.Deliver(context.Background(), nil, batchOf(lambdaRecs(2, nil))); err != nil {
		t.Fatalf("Deliver() = %v, want nil", err)
	}
	if len(log.sinkCalls) != 1 || log.sinkCalls[0] != hooks.ResultOK+": <nil>" {
		t.Errorf("OnSinkCall got %q for a successful call, want ok with a nil error", log.sinkCalls)
	}
}

// TestPolicyWithoutHooks: a nil Hooks tells nothing, and the policy bisects, discards and
// delivers as it does with hooks.
func TestPolicyWithoutHooks(t *testing.T) {
	sink := &scriptedSink{answer: failOn(seqOf(0))}
	p := &Policy{Sink: sink, MaxRetryAttempts: 0, BisectOnError: true, Backoff: noWait, Log: zaptest.NewLogger(t)}
	if err := p.Deliver(context.Background(), nil, batchOf(lambdaRecs(2, nil))); err != nil {
		t.Fatalf("Deliver() = %v, want nil", err)
	}
	if len(sink.calls) != 3 || !slices.Equal(sink.accepted, []string{seqOf(1)}) {
		t.Errorf("sink calls %v accepted %v, want 3 calls (the batch, then each half) accepting only %s",
			sink.calls, sink.accepted, seqOf(1))
	}
}
