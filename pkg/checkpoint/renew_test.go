package checkpoint

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/poller-dev/poller/internal/streamstest"
)

// holding returns a coordinator of worker "me" on clock that took the n leases of a fresh pipeline in
// s, and its grants by shard.
func holding(t *testing.T, s *Store, n int, leaseDuration time.Duration, clock *streamstest.ManualClock) (*Coordinator, map[string]Grant) {
	t.Helper()
	return holdingWith(t, s, n, CoordinatorConfig{LeaseDuration: leaseDuration, RenewInterval: leaseDuration / 4, Clock: clock.Now})
}

// holdingWith is holding with the coordinator's config (its store, pipeline and worker are set here).
func holdingWith(t *testing.T, s *Store, n int, cfg CoordinatorConfig) (*Coordinator, map[string]Grant) {
	t.Helper()
	for i := range n {
		created(t, s, Lease{ShardID: fmt.Sprintf("shard-%03d", i)})
	}
	cfg.Store, cfg.Pipeline, cfg.WorkerID = s, pipe, "me"
	c := NewCoordinator(cfg)
	grants := map[string]Grant{}
	for _, g := range listAndBalance(t, c).Start {
		grants[g.Held.Lease().ShardID] = g
	}
	if len(grants) != n {
		t.Fatalf("the coordinator took %d leases, want %d", len(grants), n)
	}
	return c, grants
}

// listAndBalance lists the lease table with c and balances every lease listed, all of them ready.
func listAndBalance(t *testing.T, c *Coordinator) Moves {
	t.Helper()
	listing, err := c.List(t.Context())
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	ready := map[string]bool{}
	for _, l := range listing.Leases {
		ready[l.ShardID] = true
	}
	return c.Balance(t.Context(), Scope{Leases: listing.Leases, Ready: ready})
}

// stalling holds the UpdateItem calls of the shards in stall until their ctx ends.
type stalling struct {
	DynamoAPI
	stall sync.Map // shard ID -> true
}

func (s *stalling) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if k, ok := in.Key[attrKey].(*types.AttributeValueMemberS); ok {
		if _, hung := s.stall.Load(k.Value[len(leasePrefix):]); hung {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return s.DynamoAPI.UpdateItem(ctx, in, o...)
}

// TestRenewalsDoNotShareADeadline: renewals that hang (as many as the old limit of writes in flight)
// fail alone, at their own deadline; every other lease is renewed in the same round.
func TestRenewalsDoNotShareADeadline(t *testing.T) {
	t.Parallel()
	st := &stalling{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { st.DynamoAPI = api; return st })
	clock := streamstest.NewManualClock(time.Unix(1_000_000, 0))
	c, grants := holding(t, s, 28, 8*time.Second, clock)
	hung := map[string]bool{}
	for i := range 8 {
		id := fmt.Sprintf("shard-%03d", i*3)
		hung[id] = true
		st.stall.Store(id, true)
	}
	before := map[string]int64{}
	for id := range grants {
		before[id] = mustGet(t, s, id).Counter
	}
	clock.Advance(c.renewInterval)

	if lost := c.Renew(t.Context()); len(lost) != 0 {
		t.Fatalf("Renew() lost %v, want none", lost)
	}
	for id, g := range grants {
		got := mustGet(t, s, id).Counter
		switch {
		case hung[id] && got != before[id]:
			t.Errorf("hung lease %s: counter %d, want %d unchanged", id, got, before[id])
		case !hung[id] && got != before[id]+1:
			t.Errorf("lease %s: counter %d, want %d: its renewal failed with the hung ones", id, got, before[id]+1)
		case !hung[id] && !g.Fence.Confirmed().Equal(clock.Now()):
			t.Errorf("lease %s: fence confirmed at %v, want %v", id, g.Fence.Confirmed(), clock.Now())
		}
	}
}

// TestCheckpointCountsAsRenewal: a lease checkpointed within the renew interval is not renewed again
// in the round, and its fence counts the checkpoint as the confirmation; a lease not written since its
// last confirmation is renewed.
func TestCheckpointCountsAsRenewal(t *testing.T) {
	t.Parallel()
	calls := &counting{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { calls.DynamoAPI = api; return calls })
	clock := streamstest.NewManualClock(time.Unix(1_000_000, 0))
	c, grants := holding(t, s, 2, 8*time.Second, clock)
	busy := grants["shard-000"]

	clock.Advance(c.renewInterval)
	if ok, err := busy.Held.Checkpoint(t.Context(), "100"); !ok || err != nil {
		t.Fatalf("Checkpoint() = %v, %v", ok, err)
	}
	checkpointed := clock.Now()
	if got := busy.Fence.Confirmed(); !got.Equal(checkpointed) {
		t.Fatalf("fence confirmed at %v after the checkpoint, want %v", got, checkpointed)
	}
	calls.take()
	busyCounter, idleCounter := mustGet(t, s, "shard-000").Counter, mustGet(t, s, "shard-001").Counter
	clock.Advance(c.renewInterval / 2)
	if lost := c.Renew(t.Context()); len(lost) != 0 {
		t.Fatalf("Renew() lost %v, want none", lost)
	}
	if got := calls.take()["UpdateItem"]; got != 1 {
		t.Errorf("Renew() made %d UpdateItem calls, want 1: the checkpointed lease needs no renewal", got)
	}
	if got := mustGet(t, s, "shard-000").Counter; got != busyCounter {
		t.Errorf("checkpointed lease: counter %d, want %d (not renewed)", got, busyCounter)
	}
	if got := mustGet(t, s, "shard-001").Counter; got != idleCounter+1 {
		t.Errorf("idle lease: counter %d, want %d (renewed)", got, idleCounter+1)
	}
	calls.take()
	deadline, owned, err := busy.Fence.Check(t.Context())
	if !owned || err != nil || !deadline.Equal(checkpointed.Add(c.fenceTrust())) {
		t.Errorf("Check() = %v, %v, %v, want the checkpoint's confirmation %v", deadline, owned, err, checkpointed.Add(c.fenceTrust()))
	}
	if got := calls.take()["UpdateItem"]; got != 0 {
		t.Errorf("Check() made %d UpdateItem calls, want none", got)
	}
}

// barrier holds every UpdateItem, once armed, until n of them are waiting at once (or their ctx
// ends): it lets writes through only when they are made in parallel.
type barrier struct {
	DynamoAPI
	armed   atomic.Bool
	n       int
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func (b *barrier) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if b.armed.Load() {
		b.mu.Lock()
		if b.waiting++; b.waiting == b.n {
			close(b.open)
		}
		b.mu.Unlock()
		select {
		case <-b.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.DynamoAPI.UpdateItem(ctx, in, o...)
}

// TestLeaveReleasesInParallel: on a graceful stop the leases are released by writes in flight
// together, not one after the other.
func TestLeaveReleasesInParallel(t *testing.T) {
	t.Parallel()
	const n = 20
	b := &barrier{n: n, open: make(chan struct{})}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { b.DynamoAPI = api; return b })
	c, grants := holding(t, s, n, 8*time.Second, streamstest.NewManualClock(time.Unix(1_000_000, 0)))
	var ended []Ended
	for id := range grants {
		ended = append(ended, Ended{ShardID: id})
	}
	b.armed.Store(true)
	// The bound only ends a sequential Leave, whose first release would wait for the others forever.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c.Leave(ctx, ended)
	b.armed.Store(false)
	for id := range grants {
		if l := mustGet(t, s, id); l.Owner != "" {
			t.Errorf("lease %s: owner %q after Leave, want released", id, l.Owner)
		}
	}
}
