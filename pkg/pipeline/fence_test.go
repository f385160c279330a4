package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
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

func TestFence(t *testing.T) {
	s := leaseStoreForTest(t)
	const trust = 2 * time.Second
	t0 := time.Now()
	tests := []struct {
		name string
		// after is how long after the last confirmation the sink call comes; takeover makes another
		// worker take the lease first.
		after     time.Duration
		takeover  bool
		wantErr   error
		wantCalls int  // sink calls that went through
		wantRenew bool // the fence renewed the lease
		canceled  bool // the shard worker was stopped
	}{
		{name: "a lease confirmed within trust is delivered without a lease write", after: trust - time.Millisecond, wantCalls: 1},
		{name: "a lease confirmed longer ago is renewed, then delivered", after: trust, wantCalls: 1, wantRenew: true},
		{name: "a worker that lost its lease while paused delivers nothing and stops the shard", after: time.Minute, takeover: true,
			wantErr: errLeaseLost, canceled: true},
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
			f := newFence(held, cancel, trust, func() time.Time { return now })
			f.confirm(t0)
			now = t0.Add(tt.after)

			sink := &recordingSink{}
			err := fencedSink{sink}.Deliver(withFence(ctx, f), sinks.Batch{ShardID: shard})
			if !errors.Is(err, tt.wantErr) || (err != nil && tt.wantErr == nil) {
				t.Fatalf("Deliver() = %v, want %v", err, tt.wantErr)
			}
			if got := sink.count(); got != tt.wantCalls {
				t.Fatalf("sink calls = %d, want %d", got, tt.wantCalls)
			}
			leases, _, err := s.List(t.Context(), "p")
			if err != nil {
				t.Fatal(err)
			}
			var after int64
			for _, l := range leases {
				if l.ShardID == shard {
					after = l.Counter
				}
			}
			if renewed := after == before+1; renewed != tt.wantRenew || (!tt.wantRenew && after != before) {
				t.Fatalf("lease counter %d -> %d, want a renewal: %v", before, after, tt.wantRenew)
			}
			if (ctx.Err() != nil) != tt.canceled {
				t.Fatalf("shard worker canceled = %v, want %v", ctx.Err() != nil, tt.canceled)
			}
			if tt.wantRenew {
				// The renewal confirmed the lease: the next call within trust writes nothing.
				now = now.Add(trust - time.Millisecond)
				if err := f.check(ctx); err != nil || held.Lease().Counter != after {
					t.Fatalf("check() after a renewal = %v, counter %d, want nil and no write", err, held.Lease().Counter)
				}
			}
		})
	}

	t.Run("a sink call without a fence goes through unchecked", func(t *testing.T) {
		sink := &recordingSink{}
		if err := (fencedSink{sink}).Deliver(t.Context(), sinks.Batch{}); err != nil || sink.count() != 1 {
			t.Fatalf("Deliver() = %v with %d calls, want nil and 1", err, sink.count())
		}
	})
}
