package e2e

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/internal/testenv"
)

// Behind a sink that fails every call, a shard of 100 KB items stops reading once it holds its
// memory budget (memory.max_buffered_bytes_per_shard, 16 MiB by default) instead of reading ahead
// by record count (batch_size x lanes + 1000 records: 110 MB of such items). When the sink recovers,
// every record arrives once, in order.
func TestReadAheadStopsAtTheShardsMemoryBudgetBehindAFailingSink(t *testing.T) {
	const (
		n        = 300
		pad      = 100_000
		perShard = 16 << 20 // the default
		// Past the budget by at most what the reader read while the dispatcher converted the page
		// before: two GetRecords pages, about 1 MB of items each.
		slack = 2 << 20
	)
	endpoint := testenv.NewDynamoDBLocal(t)
	db := dynamo(endpoint)
	createTable(t, db, "Big")
	writeItems(t, db, "Big", 0, n, pad)

	s := newSink(t)
	var failing atomic.Bool
	failing.Store(true)
	s.fail = func(events.DynamoDBEvent) bool { return failing.Load() }
	port := freePort(t)
	p := startPoller(t, pipelineConfig{Endpoint: endpoint, Table: "Big", SinkURL: s.srv.URL, Port: port}.yaml(t))
	waitServing(t, port)

	// Each record read costs more than pad bytes, so the records read bound what is held.
	bound := (perShard + slack) / pad
	polled := func() float64 { return metricValue(t, port, "e2e", "poller_records_polled_total", "") }
	waitFor(t, "the reader to wait for the memory budget (or to read past it)", 2*time.Minute, func() bool {
		return metricValue(t, port, "e2e", "poller_memory_waits_total", "") >= 1 || polled() > float64(bound)
	})
	if got := polled(); got > float64(bound) {
		t.Fatalf("%.0f records of %d KB read behind a failing sink, want at most %d (%d MiB per shard plus two pages)",
			got, pad/1000, bound, perShard>>20)
	}
	held := metricValue(t, port, "e2e", "poller_buffered_bytes", "")
	t.Logf("reading paused at %.0f records read, %.0f bytes held", polled(), held)
	if held <= 0 || held > perShard+slack {
		t.Errorf("poller_buffered_bytes = %.0f, want 1..%d", held, perShard+slack)
	}

	failing.Store(false)
	waitFor(t, fmt.Sprintf("%d records at the sink", n), 3*time.Minute, func() bool { return s.count() >= n })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
	recs := s.snapshot()
	if len(recs) != n {
		t.Fatalf("sink accepted %d records, want exactly %d", len(recs), n)
	}
	checkOrder(t, recs)
}
