package checkpoint

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/poller-dev/poller/internal/streamstest"
)

// benchHeld returns a Held on a fresh table.
func benchHeld(b *testing.B) *Held {
	s := newStore(b, nil)
	ctx := context.Background()
	if _, err := s.Create(ctx, Lease{Pipeline: pipe, ShardID: "s"}); err != nil {
		b.Fatal(err)
	}
	h, ok, err := s.Take(ctx, Lease{Pipeline: pipe, ShardID: "s", Counter: 1}, "me")
	if !ok || err != nil {
		b.Fatalf("Take() = %v, %v", ok, err)
	}
	return h
}

func BenchmarkRenew(b *testing.B) {
	h := benchHeld(b)
	for b.Loop() {
		if ok, err := h.Renew(context.Background()); !ok || err != nil {
			b.Fatalf("Renew() = %v, %v", ok, err)
		}
	}
}

func BenchmarkCheckpoint(b *testing.B) {
	h := benchHeld(b)
	i := 0
	for b.Loop() {
		i++
		if ok, err := h.Checkpoint(context.Background(), fmt.Sprintf("%021d", i)); !ok || err != nil {
			b.Fatalf("Checkpoint() = %v, %v", ok, err)
		}
	}
}

// BenchmarkList lists a pipeline of n leases (1 MB Query pages).
func BenchmarkList(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("%d leases", n), func(b *testing.B) {
			s := newStore(b, nil)
			var batch []types.WriteRequest
			for i := range n {
				id := fmt.Sprintf("shardId-00000001647710671110-%08d", i)
				av, err := attributevalue.MarshalMap(leaseItem{Pipeline: pipe, Key: leaseKey(id), ShardID: id, Counter: 1,
					StreamARN: "arn:aws:dynamodb:us-east-1:123456789012:table/GameScores/stream/2026-01-01T00:00:00.000",
					Parents:   []string{"shardId-00000001647710671110-aaaaaaaa"}, Owner: "host-1234abcd", Checkpoint: "000000000000012345678",
					UpdatedAt: "2026-01-01T00:00:00.123456789Z"})
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: av}})
				if len(batch) == 25 || i == n-1 {
					if _, err := client(b).BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.table: batch}}); err != nil {
						b.Fatal(err)
					}
					batch = nil
				}
			}
			for b.Loop() {
				leases, _, err := s.List(context.Background(), pipe)
				if err != nil || len(leases) != n {
					b.Fatalf("List() = %d leases, %v", len(leases), err)
				}
			}
		})
	}
}

// BenchmarkRenewRound renews n held leases in one round (each is due: the clock moves a
// renew_interval between rounds) and reports the round's renewals a second: the lease table's
// throughput at leaseWriteConcurrency writes in flight, which bounds how many leases one replica can
// renew every renew_interval.
func BenchmarkRenewRound(b *testing.B) {
	for _, n := range []int{1000, 4000} {
		b.Run(fmt.Sprintf("%d leases", n), func(b *testing.B) {
			s := newStore(b, nil)
			clock := streamstest.NewManualClock(time.Unix(1_000_000, 0))
			c := NewCoordinator(CoordinatorConfig{Store: s, Pipeline: pipe, WorkerID: "me",
				LeaseDuration: 4 * time.Minute, RenewInterval: time.Minute, Clock: clock.Now})
			for i := range n {
				l := Lease{Pipeline: pipe, ShardID: fmt.Sprintf("shard-%05d", i)}
				if _, err := s.Create(context.Background(), l); err != nil {
					b.Fatal(err)
				}
			}
			listing, err := c.List(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			ready := map[string]bool{}
			for _, l := range listing.Leases {
				ready[l.ShardID] = true
			}
			if m := c.Balance(context.Background(), Scope{Leases: listing.Leases, Ready: ready}); len(m.Start) != n {
				b.Fatalf("took %d leases, want %d", len(m.Start), n)
			}
			var took time.Duration
			for b.Loop() {
				clock.Advance(time.Minute)
				start := time.Now()
				if lost := c.Renew(context.Background()); len(lost) > 0 {
					b.Fatalf("Renew() lost %d leases", len(lost))
				}
				took += time.Since(start)
			}
			b.ReportMetric(float64(n*b.N)/took.Seconds(), "renewals/s")
		})
	}
}
