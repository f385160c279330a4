package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/failure"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
)

var tableSeq atomic.Int64

// leaseStoreForTest returns a store on a fresh lease table in the shared DynamoDB Local.
func leaseStoreForTest(t *testing.T) *checkpoint.Store {
	t.Helper()
	ep := testenv.DynamoDBLocal(t)
	db := dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
	s := checkpoint.New(db, fmt.Sprintf("pipeline-leases-%d-%d", time.Now().UnixNano(), tableSeq.Add(1)))
	if err := s.EnsureTable(t.Context(), true); err != nil {
		t.Fatalf("EnsureTable() = %v", err)
	}
	return s
}

// heldLease creates shard's lease and takes it for owner.
func heldLease(t *testing.T, s *checkpoint.Store, shard, owner string) *checkpoint.Held {
	t.Helper()
	l := checkpoint.Lease{Pipeline: "p", ShardID: shard}
	if ok, err := s.Create(t.Context(), l); !ok || err != nil {
		t.Fatalf("Create() = %v, %v", ok, err)
	}
	l.Counter = 1
	h, ok, err := s.Take(t.Context(), l, owner)
	if !ok || err != nil {
		t.Fatalf("Take() = %v, %v", ok, err)
	}
	return h
}

// recordingSink records the batches it was given.
type recordingSink struct {
	mu      sync.Mutex
	batches int
}

func (r *recordingSink) Deliver(context.Context, sinks.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches++
	return nil
}

func (r *recordingSink) Close(context.Context) error { return nil }

func (r *recordingSink) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches
}

// leaseCounter returns shard's counter in the lease table.
func leaseCounter(t *testing.T, s *checkpoint.Store, shard string) int64 {
	t.Helper()
	leases, _, err := s.List(t.Context(), "p")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.ShardID == shard {
			return l.Counter
		}
	}
	t.Fatalf("no lease for %s", shard)
	return 0
}

func TestFence(t *testing.T) {
	s := leaseStoreForTest(t)
	const trust, margin = 2 * time.Second, 250 * time.Millisecond
	t0 := time.Now()
	tests := []struct {
		name string
		// after is how long after the last confirmation the call comes; asked: the loop saw a
		// request for the lease; takeover makes the requester take the lease first.
		after     time.Duration
		asked     bool
		takeover  bool
		report    bool // the call is an on_failure report, not a sink call
		wantErr   error
		wantCalls int  // calls that went through
		wantRenew bool // the fence renewed the lease
		canceled  bool // the shard worker was stopped
	}{
		{name: "a lease confirmed within trust is delivered without a lease write", after: trust - 2*margin, wantCalls: 1},
		{name: "a lease confirmed longer ago is renewed, then delivered", after: trust, wantCalls: 1, wantRenew: true},
		{name: "a confirmation that leaves too little time to write is renewed first", after: trust - margin/2,
			wantCalls: 1, wantRenew: true},
		{name: "a worker that lost its lease while paused delivers nothing and stops the shard", after: time.Minute, takeover: true,
			wantErr: errLeaseLost, canceled: true},
		{name: "a lease asked for is renewed before a call, however fresh its last confirmation", asked: true,
			wantCalls: 1, wantRenew: true},
		{name: "a lease asked for and taken by the requester after a fresh renewal delivers nothing", asked: true, takeover: true,
			wantErr: errLeaseLost, canceled: true},
		{name: "an on_failure report for a lease taken while paused is not sent", after: time.Minute, takeover: true, report: true,
			wantErr: errLeaseLost, canceled: true},
		{name: "an on_failure report for a lease asked for and taken is not sent", asked: true, takeover: true, report: true,
			wantErr: errLeaseLost, canceled: true},
		{name: "an on_failure report within trust is sent", report: true, wantCalls: 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shard := fmt.Sprintf("shard-%d", i)
			held := heldLease(t, s, shard, "me")
			before := held.Lease().Counter
			if tt.takeover {
				l := held.Lease()
				if _, ok, err := s.Take(t.Context(), l, "other"); !ok || err != nil {
					t.Fatalf("Take() by other = %v, %v", ok, err)
				}
				before = l.Counter + 1
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			now := t0
			clock := func() time.Time { return now }
			lease := checkpoint.NewFence(held, trust, margin, clock)
			lease.Confirm(t0)
			lease.Contest(tt.asked)
			f := &fence{lease: lease, shardID: shard, cancel: cancel, now: clock}
			now = t0.Add(tt.after)

			sink, dest := &recordingSink{}, &recordingReports{}
			var err error
			if tt.report {
				err = fencedDestination{dest, f}.Send(ctx, onfailure.Failure{Batch: sinks.Batch{ShardID: shard}})
			} else {
				err = fencedSink{sink, f}.Deliver(ctx, sinks.Batch{ShardID: shard})
			}
			if !errors.Is(err, tt.wantErr) || (err != nil && tt.wantErr == nil) {
				t.Fatalf("call = %v, want %v", err, tt.wantErr)
			}
			if got := sink.count() + dest.count(); got != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", got, tt.wantCalls)
			}
			after := leaseCounter(t, s, shard)
			if renewed := after == before+1; renewed != tt.wantRenew || (!tt.wantRenew && after != before) {
				t.Fatalf("lease counter %d -> %d, want a renewal: %v", before, after, tt.wantRenew)
			}
			if (ctx.Err() != nil) != tt.canceled {
				t.Fatalf("shard worker canceled = %v, want %v", ctx.Err() != nil, tt.canceled)
			}
			if tt.wantRenew && !tt.asked {
				// The renewal confirmed the lease: the next call within trust writes nothing.
				now = now.Add(trust - 2*margin)
				if _, err := f.check(ctx); err != nil || held.Lease().Counter != after {
					t.Fatalf("check() after a renewal = %v, counter %d, want nil and no write", err, held.Lease().Counter)
				}
			}
		})
	}
}

// TestFenceWriteDeadline: a call is canceled, unsent, when it has not written its request by the
// fence's deadline (a worker paused between the check and the write), and reported as not invoked
// so that the policy retries it after a renewal; a request written in time is never cut, however
// long its answer takes.
func TestFenceWriteDeadline(t *testing.T) {
	f := &fence{cancel: func() {}, now: time.Now}
	t.Run("a call that has not written by the deadline is canceled and counts as not invoked", func(t *testing.T) {
		err := f.writeBy(t.Context(), time.Now().Add(50*time.Millisecond), func(ctx context.Context) error {
			<-ctx.Done() // a call stuck before its write: a paused process, a slow dial
			return ctx.Err()
		})
		if !errors.Is(err, failure.ErrNotInvoked) || !errors.Is(err, errWriteDeadline) {
			t.Fatalf("writeBy() = %v, want ErrNotInvoked and errWriteDeadline", err)
		}
	})
	t.Run("a deadline already passed sends nothing", func(t *testing.T) {
		called := false
		err := f.writeBy(t.Context(), time.Now().Add(-time.Millisecond), func(context.Context) error { called = true; return nil })
		if !errors.Is(err, failure.ErrNotInvoked) || called {
			t.Fatalf("writeBy() = %v, called %v; want ErrNotInvoked and no call", err, called)
		}
	})
	t.Run("an http request written in time runs to its answer past the deadline", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			select { // a slow handler: the answer comes after the deadline
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer srv.CloseClientConnections()
		deadline := time.Now().Add(100 * time.Millisecond)
		err := f.writeBy(t.Context(), deadline, func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(`{"Records":[]}`))
			if err != nil {
				return err
			}
			answer := time.AfterFunc(time.Until(deadline)+100*time.Millisecond, func() { close(release) })
			defer answer.Stop()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
		if err != nil {
			t.Fatalf("writeBy() = %v, want nil: the request was written in time", err)
		}
	})
}
