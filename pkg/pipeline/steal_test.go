package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/metrics"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
)

// gateSink holds its first call until release is closed, then fails it (so the policy bisects);
// later calls succeed. It keeps the size of every call.
type gateSink struct {
	first   chan struct{} // closed when the first call arrived
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func (g *gateSink) Deliver(ctx context.Context, b sinks.Batch) error {
	g.mu.Lock()
	g.sizes = append(g.sizes, len(b.Records))
	n := len(g.sizes)
	g.mu.Unlock()
	if n > 1 {
		return nil
	}
	close(g.first)
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	return &sinks.HTTPError{StatusCode: 500, Body: "first call fails"}
}

func (g *gateSink) Close(context.Context) error { return nil }

func (g *gateSink) calls() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

// recordingReports counts on_failure reports.
type recordingReports struct{ recordingSink }

func (r *recordingReports) Send(context.Context, onfailure.Failure) error {
	return r.Deliver(context.Background(), sinks.Batch{})
}

// TestAskedLeaseTakenMidBatchSendsNothingMore: the owner of a lease, which keeps renewing, sees
// another worker's request for it (wanted_by) but does not hand it over (the requester has no
// heartbeat, so it is not live to the owner); the requester takes the lease anyway, as it may
// lease_duration after asking, while the owner's first call of a batch is in flight. That call
// fails, and the owner must send nothing more for the batch: its loop's renewals, however recent,
// vouch for nothing once the lease was asked for.
func TestAskedLeaseTakenMidBatchSendsNothingMore(t *testing.T) {
	tests := []struct {
		name   string
		bisect bool // else max_retry_attempts 0: the failed batch is reported to on_failure
	}{
		{name: "the first bisect half is not sent", bisect: true},
		{name: "the discarded batch is not reported to on_failure", bisect: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testAskedLeaseTaken(t, tt.bisect) })
	}
}

func testAskedLeaseTaken(t *testing.T, bisect bool) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
	shard := st.OpenShards(1)[0]
	for i := range 4 {
		k := streamstest.S(fmt.Sprintf("k%d", i))
		st.Put(shard, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
	}
	table := fmt.Sprintf("steal-%d-%d", time.Now().UnixNano(), tableSeq.Add(1))
	// The pipeline reaches the lease table through the Streams endpoint, which counts its Query
	// calls (its Lists); the test's own calls go to DynamoDB Local directly.
	direct := checkpoint.New(testenv.DynamoDB(testenv.DynamoDBLocal(t)), table)
	if err := direct.EnsureTable(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	sink := &gateSink{first: make(chan struct{}), release: make(chan struct{})}
	cfg := config.DefaultPipeline()
	cfg.Name, cfg.Source.StreamARN, cfg.BatchSize, cfg.BisectBatchOnError = "p", st.ARN(), 4, bisect
	if !bisect {
		cfg.MaxRetryAttempts = 0
	}
	m := metrics.New(prometheus.NewRegistry())
	reports := &recordingReports{}
	p, err := New(cfg, Deps{Streams: srv.Client(), Store: checkpoint.New(testenv.DynamoDB(srv.URL), table), Sink: sink, OnFailure: reports,
		WorkerID: "owner", LeaseDuration: 2 * time.Second, RenewInterval: 250 * time.Millisecond, Hooks: []hooks.Hook{m.Pipeline(cfg.Name)}})
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- p.Run(t.Context(), stop) }()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()
	defer closeOnce(sink.release)

	select {
	case <-sink.first:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for the owner's first sink call")
	}
	lease := func() checkpoint.Lease {
		leases, _, err := direct.List(t.Context(), "p")
		if err != nil || len(leases) != 1 {
			t.Fatalf("List() = %v, %v, want one lease", leases, err)
		}
		return leases[0]
	}
	if ok, err := direct.Want(t.Context(), lease(), "thief"); !ok || err != nil {
		t.Fatalf("Want() = %v, %v", ok, err)
	}
	// Two Lists received after the request was written: the owner's loop is done with the first.
	seen := srv.Calls("Query") + 2
	pollUntil(t, "the owner to list the lease table twice after the request", func() bool { return srv.Calls("Query") >= seen })
	// The requester takes the lease on the counter it sees (the owner's renewals may move it
	// between the List and the Take).
	pollUntil(t, "the requester to take the lease", func() bool {
		_, ok, err := direct.Take(t.Context(), lease(), "thief")
		return err == nil && ok
	})
	close(sink.release)
	pollUntil(t, "the owner to stop the shard it lost", func() bool {
		return testutil.ToFloat64(m.LeasesOwned.WithLabelValues("p")) == 0
	})
	// A worker taking the lease back later (the requester never renews it) would send the whole
	// batch of 4 again: only a smaller call is a bisect half sent for the lost lease.
	for i, n := range sink.calls() {
		if n < 4 {
			t.Fatalf("sink call %d carried %d records (calls %v): a bisect half was sent after the lease was taken", i+1, n, sink.calls())
		}
	}
	if n := reports.count(); n != 0 {
		t.Fatalf("on_failure got %d reports for the lease taken, want none", n)
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// pollUntil polls cond every 20 ms until it holds, failing the test after 30 s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); !cond(); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
