package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// renewalsSeen records what a Coordinator tells its RenewalHooks.
type renewalsSeen struct {
	recordedHooks
	rounds []int // failed renewals, one entry per round
	took   []time.Duration
}

func (h *renewalsSeen) OnLeaseRenewals(took time.Duration, failed int) {
	h.rounds = append(h.rounds, failed)
	h.took = append(h.took, took)
}

// failingUpdates fails every UpdateItem (renewals among them) while fail is set.
type failingUpdates struct {
	DynamoAPI
	fail atomic.Bool
}

func (f *failingUpdates) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if f.fail.Load() {
		return nil, errors.New("injected: the lease table did not answer")
	}
	return f.DynamoAPI.UpdateItem(ctx, in, o...)
}

func TestRenewReportsEachRoundsDurationAndFailedRenewals(t *testing.T) {
	var api *failingUpdates
	s := newStore(t, func(d DynamoAPI) DynamoAPI { api = &failingUpdates{DynamoAPI: d}; return api })
	for i := range 3 {
		created(t, s, Lease{ShardID: fmt.Sprintf("shard-%d", i)})
	}
	ctx := t.Context()
	h := &renewalsSeen{}
	// The clock moves a renew_interval between rounds, so that every lease is due each round (a
	// lease confirmed within the interval is not renewed again).
	var clock atomic.Int64
	now := func() time.Time { return time.Unix(0, clock.Add(int64(time.Millisecond))) } // each reading moves it a little
	c := NewCoordinator(CoordinatorConfig{Store: s, Pipeline: pipe, WorkerID: "a",
		LeaseDuration: 3 * time.Second, RenewInterval: time.Second, Hooks: h, Clock: now})
	listing, err := c.List(ctx)
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	if m := c.Balance(ctx, Scope{Leases: listing.Leases, Ready: map[string]bool{"shard-0": true, "shard-1": true, "shard-2": true}}); len(m.Start) != 3 {
		t.Fatalf("Balance() started %d leases, want 3", len(m.Start))
	}

	clock.Add(int64(time.Second))
	c.Renew(ctx)
	api.fail.Store(true)
	clock.Add(int64(time.Second))
	c.Renew(ctx)
	if want := []int{0, 3}; len(h.rounds) != 2 || h.rounds[0] != want[0] || h.rounds[1] != want[1] {
		t.Fatalf("OnLeaseRenewals failed counts = %v, want %v (one report per round)", h.rounds, want)
	}
	if h.took[0] <= 0 {
		t.Errorf("OnLeaseRenewals took = %v, want the round's duration", h.took[0])
	}
}
