package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/metrics"
	"github.com/poller-dev/poller/pkg/sinks"
)

// leaseStoreThrough returns a store on a fresh lease table in DynamoDB Local, reached through srv
// (its Upstream), so that srv's fault hooks apply to the lease table's calls. The client does not
// retry errors the test injects: each attempt of poller's is one request.
func leaseStoreThrough(t *testing.T, srv *streamstest.Server) *checkpoint.Store {
	t.Helper()
	db := dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = streamstest.ConnectionRetryer()
	})
	s := checkpoint.New(db, fmt.Sprintf("pipeline-leases-%d-%d", time.Now().UnixNano(), tableSeq.Add(1)))
	if err := s.EnsureTable(t.Context(), true); err != nil {
		t.Fatalf("EnsureTable() = %v", err)
	}
	return s
}

// armingSink is a replicaSink that calls arm at its first call, from inside it.
type armingSink struct {
	replicaSink
	arm   func()
	calls atomic.Int32
}

func (s *armingSink) Deliver(ctx context.Context, b sinks.Batch) error {
	if s.calls.Add(1) == 1 {
		s.arm()
	}
	return s.replicaSink.Deliver(ctx, b)
}

// TestThrottledCheckpointWritesAreRetriedWithoutRedelivery: the lease table throttles every write
// from the moment the first batch reaches the sink until poller has failed more checkpoint
// attempts than it used to allow (three). The shard waits and retries in place: it is not torn
// down, re-taken and read again from the old checkpoint, so every record arrives exactly once.
func TestThrottledCheckpointWritesAreRetriedWithoutRedelivery(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
	shard := st.OpenShard("")
	store := leaseStoreThrough(t, srv)
	var throttled atomic.Bool
	srv.Fault(streamstest.Op("UpdateItem"), func(streamstest.Request) error {
		if throttled.Load() {
			return &streamstest.APIError{Code: "ProvisionedThroughputExceededException", Status: 400,
				Message: "The level of configured provisioned throughput for the table was exceeded (injected)"}
		}
		return nil
	})

	shared := &sharedSink{}
	sink := &armingSink{replicaSink: replicaSink{shared, "a"}, arm: func() { throttled.Store(true) }}
	cfg := config.DefaultPipeline()
	cfg.Name, cfg.Source.StreamARN, cfg.BatchSize = fmt.Sprintf("throttled-%d", time.Now().UnixNano()), st.ARN(), 10
	m := metrics.New(prometheus.NewRegistry())
	p, err := New(cfg, Deps{Streams: srv.Client(), Store: store, Sink: sink, WorkerID: "a",
		LeaseDuration: 2 * time.Second, RenewInterval: 250 * time.Millisecond, Hooks: []hooks.Hook{m.Pipeline(cfg.Name)}})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background(), stop) }()
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			<-done
		}
	}()
	owned := func() float64 { return testutil.ToFloat64(m.LeasesOwned.WithLabelValues(cfg.Name)) }
	ckErrors := func() float64 { return testutil.ToFloat64(m.Checkpoints.WithLabelValues(cfg.Name, "error")) }
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for deadline := time.Now().Add(30 * time.Second); !cond(); <-tick.C {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; delivered %d records", what, len(shared.snapshot()))
			}
		}
	}
	// The lease is held (and the metric says so) before any record exists: a shard torn down later
	// shows as 0 leases owned.
	waitUntil("the shard's lease to be held", func() bool { return owned() == 1 })
	const n = 30
	for i := range n {
		k := streamstest.S(fmt.Sprintf("k-%02d", i))
		st.Put(shard, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
	}
	waitUntil("the first batch to arm the throttling", func() bool { return throttled.Load() })
	// Five failed attempts, or the shard torn down (what poller did after three).
	waitUntil("five failed checkpoint attempts, or the shard torn down", func() bool { return ckErrors() >= 5 || owned() == 0 })
	failedAttempts := ckErrors()
	throttled.Store(false)
	waitUntil(fmt.Sprintf("all %d records at the sink", n), func() bool { return len(shared.snapshot()) >= n })
	stopped = true
	close(stop)
	if err := <-done; err != nil {
		t.Errorf("Run() = %v after a graceful stop, want nil", err)
	}

	if failedAttempts < 5 {
		t.Errorf("the shard was torn down after %v failed checkpoint attempts, want it retrying in place", failedAttempts)
	}
	counts := map[string]int{}
	for _, d := range shared.snapshot() {
		counts[d.key]++
	}
	for i := range n {
		if k := fmt.Sprintf("k-%02d", i); counts[k] != 1 {
			t.Errorf("%s delivered %d times, want once", k, counts[k])
		}
	}
	if got := len(shared.snapshot()); got != n {
		t.Errorf("sink got %d records, want %d", got, n)
	}
}
