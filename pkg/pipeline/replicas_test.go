package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/metrics"
	"github.com/poller-dev/poller/pkg/sinks"
)

// delivery is one record a replica delivered.
type delivery struct {
	worker, key string
}

// sharedSink records, in arrival order, what every replica delivered.
type sharedSink struct {
	mu   sync.Mutex
	recs []delivery
}

// replicaSink is one replica's view of sharedSink.
type replicaSink struct {
	shared *sharedSink
	worker string
}

func (r replicaSink) Deliver(_ context.Context, b sinks.Batch) error {
	r.shared.mu.Lock()
	defer r.shared.mu.Unlock()
	for _, rec := range b.Records {
		r.shared.recs = append(r.shared.recs, delivery{r.worker, rec.Change.Keys["pk"].String()})
	}
	return nil
}

func (r replicaSink) Close(context.Context) error { return nil }

func (s *sharedSink) snapshot() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.recs...)
}

// replica is one Pipeline running in this process.
type replica struct {
	p       *Pipeline
	metrics *metrics.Metrics
	stop    chan struct{}
	done    chan error
}

// TestReplicasInProcess: two pipelines in one process share eight shards through the lease table:
// the second to start gets its half by handoff, the first hands everything over on a graceful stop,
// and no record is lost, repeated or reordered on the way.
func TestReplicasInProcess(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
	ids := st.OpenShards(8)
	store := leaseStoreForTest(t)
	shared := &sharedSink{}

	var putMu sync.Mutex
	written := 0
	put := func(rounds int) {
		putMu.Lock()
		defer putMu.Unlock()
		for range rounds {
			for i, sh := range ids {
				k := streamstest.S(fmt.Sprintf("s%d-%05d", i, written))
				st.Put(sh, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
			}
			written++
		}
	}
	start := func(worker string) *replica {
		cfg := config.DefaultPipeline()
		cfg.Name, cfg.Source.StreamARN, cfg.BatchSize = "in-process", st.ARN(), 10
		m := metrics.New(prometheus.NewRegistry())
		p, err := New(cfg, Deps{Streams: srv.Client(), Store: store, Sink: replicaSink{shared, worker}, WorkerID: worker,
			LeaseDuration: 2 * time.Second, RenewInterval: 250 * time.Millisecond, Hooks: []hooks.Hook{m.Pipeline(cfg.Name)}})
		if err != nil {
			t.Fatalf("New() = %v", err)
		}
		r := &replica{p: p, metrics: m, stop: make(chan struct{}), done: make(chan error, 1)}
		go func() { r.done <- p.Run(context.Background(), r.stop) }()
		return r
	}
	owned := func(r *replica) float64 {
		return testutil.ToFloat64(r.metrics.LeasesOwned.WithLabelValues("in-process"))
	}
	// wait waits for cond while records keep flowing; waitFor waits without writing more.
	poll := func(what string, cond func() bool, writing bool) {
		t.Helper()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for deadline := time.Now().Add(30 * time.Second); !cond(); <-tick.C {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			if writing {
				put(1)
			}
		}
	}
	wait := func(what string, cond func() bool) { t.Helper(); poll(what, cond, true) }
	waitFor := func(what string, cond func() bool) { t.Helper(); poll(what, cond, false) }
	stopReplica := func(r *replica) {
		t.Helper()
		close(r.stop)
		if err := <-r.done; err != nil {
			t.Fatalf("Run() = %v after a graceful stop, want nil", err)
		}
	}

	a := start("a")
	wait("a alone to hold all 8 leases", func() bool { return owned(a) == 8 })
	b := start("b")
	wait("a and b to hold 4 leases each", func() bool { return owned(a) == 4 && owned(b) == 4 })
	if got := testutil.ToFloat64(b.metrics.LeaseTakeovers.WithLabelValues("in-process")); got != 4 {
		t.Errorf("b's poller_lease_takeovers_total = %v, want 4 (every lease it holds was handed over)", got)
	}
	stopReplica(a)
	wait("b to hold all 8 leases", func() bool { return owned(b) == 8 })
	// The writer stops here: a sink that must catch up with a writer adding a round every tick
	// would only match when a poll happened to land right after a write.
	waitFor("every record at the sink", func() bool {
		putMu.Lock()
		defer putMu.Unlock()
		return len(shared.snapshot()) >= written*len(ids)
	})
	stopReplica(b)

	recs := shared.snapshot()
	seen := map[string]string{}
	last := map[string]int{}
	for _, r := range recs {
		if prev, ok := seen[r.key]; ok {
			t.Errorf("%s delivered by %s and again by %s", r.key, prev, r.worker)
		}
		seen[r.key] = r.worker
		shard, n, _ := strings.Cut(r.key, "-")
		i, _ := strconv.Atoi(n)
		if prev, ok := last[shard]; ok && i <= prev {
			t.Errorf("%s arrived after record %d of its shard", r.key, prev)
		}
		last[shard] = i
	}
	if len(seen) != written*len(ids) {
		t.Errorf("%d distinct records delivered, want %d", len(seen), written*len(ids))
	}
	leases, workers, err := store.List(t.Context(), "in-process")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.Owner != "" || l.WantedBy != "" {
			t.Errorf("lease %s after both stopped: owner %q, wanted by %q; want it free", l.ShardID, l.Owner, l.WantedBy)
		}
	}
	if len(workers) != 0 {
		t.Errorf("worker items after both stopped: %v, want none (each removes its own)", workers)
	}
}
