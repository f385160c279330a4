package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/metrics"
	"github.com/poller-dev/poller/pkg/sinks"
)

func TestTableOf(t *testing.T) {
	tests := []struct {
		name, arn, want string
	}{
		{"a stream ARN names its table", "arn:aws:dynamodb:us-east-1:123456789012:table/GameScores/stream/2026-11-28T05:00:00.000", "GameScores"},
		{"a table name may hold dots, dashes and underscores", "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/a.b-c_d/stream/label", "a.b-c_d"},
		{"an ARN without a table part names none", "arn:aws:kinesis:us-east-1:123456789012:stream/x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tableOf(tt.arn); got != tt.want {
				t.Errorf("tableOf(%q) = %q, want %q", tt.arn, got, tt.want)
			}
		})
	}
}

// batchSink keeps the partition keys of each batch it was given.
type batchSink struct {
	mu      sync.Mutex
	batches [][]string
}

func (s *batchSink) Deliver(_ context.Context, b sinks.Batch) error {
	var keys []string
	for _, r := range b.Records {
		keys = append(keys, r.Change.Keys["pk"].String()+"/"+r.Change.Keys["sk"].String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, keys)
	return nil
}

func (s *batchSink) Close(context.Context) error { return nil }

func (s *batchSink) snapshot() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.batches...)
}

// TestLanesHashOnThePartitionKeyWhileDescribeStreamFails: a table with a sort key, read with
// parallelization_factor 4 by a worker that starts while every DescribeStream fails (its lease is in
// the table already). The key schema comes from DescribeTable (the table named in the stream ARN), so
// lanes hash on the partition key alone: each user's records travel in one batch, in order, and the
// users spread over several lanes.
func TestLanesHashOnThePartitionKeyWhileDescribeStreamFails(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Orders", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk", "sk"))
	shard := st.OpenShard("")
	srv.Fault(streamstest.OpDescribeStream, func(streamstest.Request) error { return streamstest.InternalError() })
	const users, perUser = 8, 5
	for i := range users * perUser {
		keys := streamstest.Item{"pk": streamstest.S(fmt.Sprint("user-", i%users)), "sk": streamstest.S(fmt.Sprintf("order-%02d", i))}
		st.Put(shard, streamstest.Insert(keys, keys))
	}

	store := leaseStoreForTest(t)
	cfg := config.DefaultPipeline()
	cfg.Name, cfg.Source.StreamARN = fmt.Sprintf("keys-%d", time.Now().UnixNano()), st.ARN()
	cfg.ParallelizationFactor, cfg.BatchSize = 4, 100
	if ok, err := store.Create(t.Context(), checkpoint.Lease{Pipeline: cfg.Name, ShardID: shard, StreamARN: st.ARN()}); !ok || err != nil {
		t.Fatalf("Create() = %v, %v", ok, err)
	}
	tables := dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = streamstest.ConnectionRetryer()
	})
	sink := &batchSink{}
	m := metrics.New(prometheus.NewRegistry())
	p, err := New(cfg, Deps{Streams: srv.Client(), Tables: tables, Store: store, Sink: sink, WorkerID: "a",
		LeaseDuration: 2 * time.Second, RenewInterval: 250 * time.Millisecond, Hooks: []hooks.Hook{m.Pipeline(cfg.Name)}, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background(), stop) }()
	delivered := func() int {
		n := 0
		for _, b := range sink.snapshot() {
			n += len(b)
		}
		return n
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); delivered() < users*perUser; <-tick.C {
		if time.Now().After(deadline) {
			close(stop)
			<-done
			t.Fatalf("timed out waiting for %d records; got %d", users*perUser, delivered())
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Errorf("Run() = %v after a graceful stop, want nil", err)
	}

	batches := sink.snapshot()
	batchOf := map[string]int{} // user -> the batch that carried it
	last := map[string]string{} // user -> its last sort key seen
	for i, b := range batches {
		for _, k := range b {
			user, order, _ := strings.Cut(k, "/")
			if j, ok := batchOf[user]; ok && j != i {
				t.Errorf("%s's records were split over batches %d and %d (lanes hashed on more than the partition key)", user, j, i)
			}
			batchOf[user] = i
			if order <= last[user] {
				t.Errorf("%s: %s after %s", user, order, last[user])
			}
			last[user] = order
		}
	}
	if len(batches) < 2 {
		t.Errorf("%d batches for %d users and 4 lanes, want several: the key schema was not learnt from DescribeTable (one lane)", len(batches), users)
	}
	if delivered() != users*perUser {
		t.Errorf("delivered %d records, want %d", delivered(), users*perUser)
	}
}
