package e2e

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/testenv"
)

// DynamoDB Local has one shard per table, so the arrival order of all records is the shard's order.

func TestEveryRecordArrivesExactlyOnceInOrder(t *testing.T) {
	const n = 10_000
	endpoint := testenv.NewDynamoDBLocal(t) // fresh: see the pitfall in testenv.NewDynamoDBLocal
	db := dynamo(endpoint)
	createTable(t, db, "Scores")
	writeItems(t, db, "Scores", 0, n, 100)

	s := newSink(t)
	p := startPoller(t, pipelineConfig{Endpoint: endpoint, Table: "Scores", SinkURL: s.srv.URL}.yaml(t))
	waitFor(t, fmt.Sprintf("%d records at the sink", n), 3*time.Minute, func() bool { return s.count() >= n })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}

	recs := s.snapshot()
	if len(recs) != n {
		t.Fatalf("sink got %d records, want exactly %d", len(recs), n)
	}
	counts := byKey(recs)
	for i := range n {
		if k := fmt.Sprintf("item-%06d", i); counts[k] != 1 {
			t.Fatalf("%s delivered %d times, want once", k, counts[k])
		}
	}
	checkOrder(t, recs)
}

func TestRestartAfterSIGTERMLosesNothingAndRepeatsNothing(t *testing.T) {
	const n = 6_000
	endpoint := testenv.NewDynamoDBLocal(t)
	db := dynamo(endpoint)
	createTable(t, db, "Scores")
	writeItems(t, db, "Scores", 0, n, 100)

	s := newSink(t)
	s.delay = 10 * time.Millisecond // slow enough to stop it halfway
	cfg := pipelineConfig{Endpoint: endpoint, Table: "Scores", SinkURL: s.srv.URL}.yaml(t)

	first := startPoller(t, cfg)
	waitFor(t, "half the records", 3*time.Minute, func() bool { return s.count() >= n/2 })
	if code := first.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("poller exited with %d after SIGTERM, want 0", code)
	}
	s.settle(t)
	before := s.count()
	if before >= n {
		t.Fatalf("all %d records were delivered before SIGTERM took effect; the test needs a stop halfway", n)
	}
	checkOrder(t, s.snapshot())

	second := startPoller(t, cfg)
	waitFor(t, "every record", 3*time.Minute, func() bool { return s.count() >= n })
	// A redelivery, if any, happens before the process exits: judge once it did and the sink
	// answered every request, not after a guessed pause.
	if code := second.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("second poller exited with %d, want 0", code)
	}
	s.settle(t)
	recs := s.snapshot()
	counts := byKey(recs)
	for i := range n {
		if k := fmt.Sprintf("item-%06d", i); counts[k] != 1 {
			t.Fatalf("%s delivered %d times across the restart, want exactly once (first run delivered %d)", k, counts[k], before)
		}
	}
	checkOrder(t, recs)
}

func TestRestartAfterKill9RedeliversAtMostTwoBatches(t *testing.T) {
	const n, batch = 6_000, 100
	endpoint := testenv.NewDynamoDBLocal(t)
	db := dynamo(endpoint)
	createTable(t, db, "Scores")
	writeItems(t, db, "Scores", 0, n, 100)

	s := newSink(t)
	s.delay = 10 * time.Millisecond
	cfg := pipelineConfig{Endpoint: endpoint, Table: "Scores", SinkURL: s.srv.URL, BatchSize: batch}.yaml(t)

	first := startPoller(t, cfg)
	waitFor(t, "half the records", 3*time.Minute, func() bool { return s.count() >= n/2 })
	first.stop(t, syscall.SIGKILL)
	s.settle(t)
	firstRun := s.snapshot()
	if len(firstRun) >= n {
		t.Fatalf("all records were delivered before kill -9; the test needs a kill halfway")
	}

	// A new process (a new worker ID) takes the dead worker's lease once it expires and resumes from
	// the checkpoint.
	second := startPoller(t, cfg)
	waitFor(t, "every record", 3*time.Minute, func() bool { return len(distinct(s.snapshot())) >= n })
	second.stop(t, syscall.SIGTERM) // a redelivery, if any, happens before the exit
	s.settle(t)

	recs := s.snapshot()
	counts := byKey(recs)
	dups := 0
	for i := range n {
		k := fmt.Sprintf("item-%06d", i)
		switch c := counts[k]; {
		case c == 0:
			t.Fatalf("%s was never delivered: lost across kill -9", k)
		case c > 2:
			t.Fatalf("%s delivered %d times", k, c)
		case c == 2:
			dups++
		}
	}
	if dups > 2*batch {
		t.Errorf("%d records delivered twice, want at most two batches (%d) after kill -9", dups, 2*batch)
	}
	// The repeated records are the last ones of the first run: after its last checkpoint written,
	// which passes every call but the last two (the next batch overlaps a checkpoint write).
	lastTwo := []int{firstRun[len(firstRun)-1].Batch}
	for i := len(firstRun) - 1; i >= 0 && len(lastTwo) < 2; i-- {
		if b := firstRun[i].Batch; b != lastTwo[0] {
			lastTwo = append(lastTwo, b)
		}
	}
	for _, r := range firstRun {
		if counts[r.Key] == 2 && !slices.Contains(lastTwo, r.Batch) {
			t.Errorf("%s (sink call %d) was delivered again, but only the last two calls (%v) may be", r.Key, r.Batch, lastTwo)
			break
		}
	}
	t.Logf("first run delivered %d records; %d delivered twice", len(firstRun), dups)
	checkOrder(t, recs[len(firstRun):])
}

func distinct(recs []received) map[string]bool {
	m := map[string]bool{}
	for _, r := range recs {
		m[r.Key] = true
	}
	return m
}
