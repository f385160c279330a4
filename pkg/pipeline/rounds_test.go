package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/shards"
)

func TestRefreshEvery(t *testing.T) {
	tests := []struct {
		name   string
		shards int
		want   time.Duration
	}{
		{"an empty stream is listed at the configured interval", 0, 10 * time.Second},
		{"1,000 shards (10 pages) are listed at the configured interval", 1000, 10 * time.Second},
		{"1,001 shards take 11 pages: one listing every 11 s", 1001, 11 * time.Second},
		{"4,000 shards (40 pages) are listed every 40 s", 4000, 40 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refreshEvery(10*time.Second, tt.shards); got != tt.want {
				t.Errorf("refreshEvery(10s, %d) = %v, want %v", tt.shards, got, tt.want)
			}
		})
	}
}

// createBarrier holds every Create until n of them are in flight at once (or their ctx ends): it
// lets creations through only when they are made in parallel.
type createBarrier struct {
	LeaseStore
	n       int
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func (b *createBarrier) Create(ctx context.Context, l checkpoint.Lease) (bool, error) {
	b.mu.Lock()
	if b.waiting++; b.waiting == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return b.LeaseStore.Create(ctx, l)
}

// TestLeasesAreCreatedInParallel: the leases of many new shards are created by writes in flight
// together, and each is recorded as created, to be taken in the same round.
func TestLeasesAreCreatedInParallel(t *testing.T) {
	const n = createConcurrency
	b := &createBarrier{LeaseStore: leaseStoreForTest(t), n: n, open: make(chan struct{})}
	p := &Pipeline{Name: "p", Store: b}
	st := &state{stream: shards.Stream{ARN: "arn:stream"}, leases: map[string]checkpoint.Lease{}}
	var list []shards.Shard
	for i := range n {
		list = append(list, shards.Shard{ID: fmt.Sprintf("shard-%03d", i)})
	}
	// The bound only ends a sequential creation, whose first Create would wait for the others forever.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := p.createLeases(ctx, st, list, nil, nil); err != nil {
		t.Fatalf("createLeases() = %v", err)
	}
	if len(st.leases) != n {
		t.Fatalf("createLeases() recorded %d leases, want %d", len(st.leases), n)
	}
	for id, l := range st.leases {
		if l.Counter != 1 || l.StreamARN != "arn:stream" {
			t.Errorf("lease %s = %+v, want counter 1 on arn:stream", id, l)
		}
	}
}
