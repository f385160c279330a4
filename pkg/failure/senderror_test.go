package failure

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
)

// A sink that sends record by record reports what its service stored with a *sinks.SendError.
// Without report_batch_item_failures and with max_retry_attempts 1: a throttle at record 2 retries
// records 2.. without using the budget; a record too large for the service (record 3) goes to
// on_failure alone at once, and the records after it are sent on; a plain failure at record 5
// retries record 5 alone. No record before a failed one is ever sent again.
func TestPolicyHonoursSendErrors(t *testing.T) {
	answers := map[int]error{
		1: &sinks.SendError{Sent: 2, Err: fmt.Errorf("%w: ProvisionedThroughputExceededException", sinks.ErrThrottled)},
		2: &sinks.SendError{Sent: 1, Err: fmt.Errorf("%w: 300000 bytes", sinks.ErrRecordTooLarge)},
		3: fmt.Errorf("put records: %w", &sinks.SendError{Sent: 1, Err: errors.New("InternalFailure")}),
	}
	sink := &scriptedSink{answer: func(call int, _ sinks.Batch) error { return answers[call] }}
	dest := &memDest{}
	c := (&counts{}).hooks()
	p := &Policy{Sink: sink, OnFailure: dest, MaxRetryAttempts: 1, Backoff: noWait, Hooks: c, Log: zaptest.NewLogger(t)}
	recs := lambdaRecs(6, nil)
	if err := p.Deliver(t.Context(), nil, batchOf(recs)); err != nil {
		t.Fatalf("Deliver() = %v, want nil", err)
	}
	s := seqsOf(recs)
	want := [][]string{s[0:6], s[2:6], s[4:6], s[5:6]}
	if !slices.EqualFunc(sink.calls, want, slices.Equal) {
		t.Errorf("sink calls = %v, want %v", sink.calls, want)
	}
	if len(dest.reports) != 1 {
		t.Fatalf("on_failure reports = %d, want 1 (the record too large)", len(dest.reports))
	}
	r := dest.reports[0]
	if got := seqsOf(r.Batch.Records); !slices.Equal(got, s[3:4]) || r.Condition != onfailure.RecordTooLarge {
		t.Errorf("report = %v %s, want %v %s", got, r.Condition, s[3:4], onfailure.RecordTooLarge)
	}
	if !sinks.IsRecordTooLarge(r.LastErr) {
		t.Errorf("report's last error = %v, want the reason (sinks.ErrRecordTooLarge)", r.LastErr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.throttled != 1 || c.dropped["too_large"] != 1 {
		t.Errorf("throttles = %d, dropped{too_large} = %d, want 1 and 1", c.throttled, c.dropped["too_large"])
	}
}
