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

// TestStuckShardShowsTheAgeOfItsOldestRecord: while the sink fails a shard's batch (retried without
// end, as max_retry_attempts -1 does), the shard's reads keep coming back empty, and
// poller_iterator_age_seconds must still show the age of the record stuck in that batch, not 0.
// Once the sink takes the batch and an empty read shows the shard caught up, it is 0.
func TestStuckShardShowsTheAgeOfItsOldestRecord(t *testing.T) {
	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	table := fmt.Sprintf("Age%d", time.Now().UnixNano())
	createTable(t, db, table)
	s := newSink(t)
	var healed atomic.Bool
	s.mu.Lock()
	s.fail = func(events.DynamoDBEvent) bool { return !healed.Load() }
	s.mu.Unlock()
	port := freePort(t)
	p := startPoller(t, pipelineConfig{Endpoint: endpoint, Table: table, SinkURL: s.srv.URL, Port: port,
		LeaseTable: fmt.Sprintf("age-leases-%d", time.Now().UnixNano())}.yaml(t))
	metric := func(name, labels string) float64 { return metricValue(t, port, "e2e", name, labels) }
	waitServing(t, port)
	writeItems(t, db, table, 0, 1, 10)

	waitFor(t, "the sink to refuse the batch", time.Minute, func() bool { return len(s.triedCalls()) >= 1 })
	// Reads after the batch was sent: each one that answers is an empty page (nothing else was
	// written), which poller used to take for "caught up".
	reads := metric("poller_getrecords_total", `result="ok"`)
	waitFor(t, "two more reads, empty, while the batch is retried", time.Minute, func() bool {
		return metric("poller_getrecords_total", `result="ok"`) >= reads+2
	})
	if tried := len(s.triedCalls()); s.count() != 0 {
		t.Fatalf("the sink accepted records after %d calls; want every call refused so far", tried)
	}
	if age := metric("poller_iterator_age_seconds", ""); age <= 0 {
		t.Errorf("poller_iterator_age_seconds = %v while the shard's only record is stuck retrying, want its age (> 0)", age)
	}

	healed.Store(true)
	waitFor(t, "the record to be delivered", time.Minute, func() bool { return s.count() == 1 })
	waitFor(t, "the shard to be caught up (age 0)", time.Minute, func() bool {
		return metric("poller_iterator_age_seconds", "") == 0
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
}
