package pipeline

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/metrics"
)

// TestLatestAppliesToTheFirstListingOnly: on a pipeline's first run with starting_position LATEST,
// closed shards are skipped and open ones start at their tip; a shard found later (a rollover's
// child) is read from its first record, whatever the setting.
func TestLatestAppliesToTheFirstListingOnly(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
	put := func(shard, key string) {
		k := streamstest.S(key)
		st.Put(shard, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
	}
	old := st.OpenShard("")
	put(old, "old-closed")
	open := st.Rollover(old)
	put(open, "old-open")

	store := leaseStoreForTest(t)
	shared := &sharedSink{}
	cfg := config.DefaultPipeline()
	cfg.Name, cfg.Source.StreamARN = fmt.Sprintf("latest-%d", time.Now().UnixNano()), st.ARN()
	cfg.Source.StartingPosition = config.Latest
	m := metrics.New(prometheus.NewRegistry())
	p, err := New(cfg, Deps{Streams: srv.Client(), Store: store, Sink: replicaSink{shared, "a"}, WorkerID: "a",
		LeaseDuration: 2 * time.Second, RenewInterval: 250 * time.Millisecond, Hooks: []hooks.Hook{m.Pipeline(cfg.Name)}})
	if err != nil {
		t.Fatal(err)
	}
	p.RefreshInterval = 200 * time.Millisecond
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background(), stop) }()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	}()
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; delivered %v", what, shared.snapshot())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The open shard's LATEST iterator exists once a GetRecords answered.
	waitUntil("the open shard to be polled", func() bool {
		return testutil.ToFloat64(m.GetRecords.WithLabelValues(cfg.Name, "ok")) > 0
	})
	put(open, "new-open")
	child := st.Rollover(open)
	for i := range 5 {
		put(child, fmt.Sprintf("child-%d", i))
	}
	want := []string{"new-open", "child-0", "child-1", "child-2", "child-3", "child-4"}
	waitUntil("the open shard's new record and every record of its child", func() bool {
		return len(shared.snapshot()) >= len(want)
	})
	var got []string
	for _, d := range shared.snapshot() {
		got = append(got, d.key)
	}
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v (nothing written before the start; all of the child)", got, want)
	}
}
