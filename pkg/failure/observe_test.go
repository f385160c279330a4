package failure

import (
	"context"
	"fmt"
	"net"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/sinks"
)

// TestThrottledCallsAreCountedAndRetriedWithoutUsingUpRetries: a call the sink refused before its
// handler ran is told to OnSinkThrottled and retried even with max_retry_attempts 0 (a function
// error is not a throttle); every call is in flight between OnSinkCallStarted and OnSinkCall.
func TestThrottledCallsAreCountedAndRetriedWithoutUsingUpRetries(t *testing.T) {
	tests := []struct {
		name          string
		first         error
		wantThrottled int
		wantDelivered int
	}{
		{name: "an HTTP 429 is a throttle", first: &sinks.HTTPError{StatusCode: 429}, wantThrottled: 1, wantDelivered: 3},
		{name: "a refused connection is a throttle", first: &net.OpError{Op: "dial", Err: fmt.Errorf("connection refused")}, wantThrottled: 1, wantDelivered: 3},
		{name: "an error a sink marks with ErrThrottled is a throttle", first: fmt.Errorf("invoke fn: %w", sinks.ErrThrottled), wantThrottled: 1, wantDelivered: 3},
		{name: "a 500 is a function error, not a throttle: discarded at once", first: &sinks.HTTPError{StatusCode: 500}, wantThrottled: 0, wantDelivered: 0},
		{name: "a call that gave up before sending is not the sink's throttle", first: fmt.Errorf("fence: %w", ErrNotInvoked), wantThrottled: 0, wantDelivered: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &counts{}
			var inFlightDuringCall []int
			sink := &scriptedSink{answer: func(call int, _ sinks.Batch) error {
				inFlightDuringCall = append(inFlightDuringCall, c.calls())
				if call == 1 {
					return tt.first
				}
				return nil
			}}
			p := &Policy{Sink: sink, MaxRetryAttempts: 0, Backoff: noWait, Hooks: c.hooks(), Log: zaptest.NewLogger(t)}
			if err := p.Deliver(context.Background(), nil, batchOf(lambdaRecs(3, nil))); err != nil {
				t.Fatalf("Deliver() = %v, want nil", err)
			}
			if c.throttled != tt.wantThrottled {
				t.Errorf("OnSinkThrottled told %d times, want %d", c.throttled, tt.wantThrottled)
			}
			if c.delivers != tt.wantDelivered {
				t.Errorf("records delivered = %d, want %d", c.delivers, tt.wantDelivered)
			}
			for i, n := range inFlightDuringCall {
				if n != 1 {
					t.Errorf("call %d: %d calls in flight during it, want 1", i+1, n)
				}
			}
			if c.calls() != 0 {
				t.Errorf("%d calls in flight after Deliver, want 0", c.calls())
			}
		})
	}
}

// TestOnlyRecordsTheDestinationStoredCountAsOnFailure: discarded records are told to
// OnRecordsOnFailure once the on_failure destination stored them (after a failed send, once);
// without a destination they are dropped but not told.
func TestOnlyRecordsTheDestinationStoredCountAsOnFailure(t *testing.T) {
	tests := []struct {
		name          string
		dest          *memDest
		wantOnFailure int
	}{
		{name: "a destination that stores the report", dest: &memDest{}, wantOnFailure: 2},
		{name: "a destination down once, then storing it", dest: &memDest{down: 1}, wantOnFailure: 2},
		{name: "no destination", wantOnFailure: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &counts{}
			sink := &scriptedSink{answer: failOn(seqOf(0))}
			p := &Policy{Sink: sink, MaxRetryAttempts: 0, Backoff: noWait, Hooks: c.hooks(), Log: zaptest.NewLogger(t)}
			if tt.dest != nil {
				p.OnFailure = tt.dest
			}
			if err := p.Deliver(context.Background(), nil, batchOf(lambdaRecs(2, nil))); err != nil {
				t.Fatalf("Deliver() = %v, want nil", err)
			}
			if c.onFailure != tt.wantOnFailure {
				t.Errorf("OnRecordsOnFailure told %d records, want %d", c.onFailure, tt.wantOnFailure)
			}
			if got := c.dropped[hooks.DroppedRetriesExhausted]; got != 2 {
				t.Errorf("OnRecordsDropped told %d records, want 2 either way", got)
			}
		})
	}
}
