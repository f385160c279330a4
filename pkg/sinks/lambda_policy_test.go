package sinks_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/failure"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
)

// reportsDest keeps the on_failure reports.
type reportsDest struct {
	mu      sync.Mutex
	reports []onfailure.Failure
}

func (d *reportsDest) Send(_ context.Context, f onfailure.Failure) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reports = append(d.reports, f)
	return nil
}

// The delivery policy reads the lambda sink's errors as Lambda's trigger does: throttles and 5xx
// service errors are retried without using up max_retry_attempts, a function error uses it up.
func TestLambdaSinkUnderTheDeliveryPolicy(t *testing.T) {
	type answer struct {
		status int
		header map[string]string
		body   string
	}
	throttle := answer{429, map[string]string{"X-Amzn-ErrorType": "TooManyRequestsException"}, `{"message":"Rate exceeded"}`}
	service := answer{503, map[string]string{"X-Amzn-ErrorType": "ServiceException"}, `{"message":"unavailable"}`}
	ok := answer{200, nil, `{}`}
	fnErr := answer{200, map[string]string{"X-Amz-Function-Error": "Unhandled"}, `{"errorMessage":"boom","errorType":"errorString"}`}
	tests := []struct {
		name        string
		answers     []answer
		wantCalls   int
		wantReports int
	}{
		{name: "throttles and service errors are retried with max_retry_attempts 0 until the function succeeds",
			answers: []answer{throttle, service, throttle, ok}, wantCalls: 4, wantReports: 0},
		{name: "a function error with max_retry_attempts 0 goes to on_failure after one call",
			answers: []answer{fnErr}, wantCalls: 1, wantReports: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				mu.Lock()
				a := tt.answers[min(calls, len(tt.answers)-1)]
				calls++
				mu.Unlock()
				for k, v := range a.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(a.status)
				_, _ = io.WriteString(w, a.body)
			}))
			t.Cleanup(srv.Close)
			sink, err := sinks.NewLambda(sinks.LambdaConfig{FunctionName: "fn", AWSOverrides: sinks.AWSOverrides{EndpointURL: srv.URL}, Timeout: 10 * time.Second},
				sinks.Deps{Logger: zap.NewNop(), AWS: testenv.AWSConfig()})
			if err != nil {
				t.Fatal(err)
			}
			dest := &reportsDest{}
			p := &failure.Policy{Sink: sink, OnFailure: dest, MaxRetryAttempts: 0,
				Backoff: func(int) time.Duration { return time.Millisecond }, Log: zap.NewNop()}
			b := sinks.Batch{Pipeline: "p", ShardID: "shardId-1", Records: []events.DynamoDBEventRecord{{EventID: "e1", Change: events.DynamoDBStreamRecord{SequenceNumber: "100"}}}}
			if err := p.Deliver(context.Background(), make(chan struct{}), b); err != nil {
				t.Fatalf("Deliver() = %v, want nil", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != tt.wantCalls || len(dest.reports) != tt.wantReports {
				t.Errorf("%d Invoke calls and %d on_failure reports, want %d and %d", calls, len(dest.reports), tt.wantCalls, tt.wantReports)
			}
		})
	}
}
