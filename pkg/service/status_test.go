package service

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/poller-dev/poller/pkg/hooks"
)

// TestStatusBoardFollowsThePipelinesHooks: /status lists every pipeline, in order, from the start;
// each shard this process reads with its last checkpoint written and its iterator age (null until
// known); the paused flag; and Lambda's LastProcessingResult, with the last error kept after the
// sink recovers.
func TestStatusBoardFollowsThePipelinesHooks(t *testing.T) {
	clock := &manualClock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	b := newStatusBoard("w-1", "v1.2.3", clock.now)
	orders, audit := b.pipeline("orders"), b.pipeline("audit")

	st := b.status()
	if len(st.Pipelines) != 2 || st.Pipelines[0].Name != "orders" || st.Pipelines[1].Name != "audit" ||
		st.WorkerID != "w-1" || st.Version != "v1.2.3" {
		t.Fatalf("status() before any activity = %+v, want both pipelines in config order, the worker and version", st)
	}
	if got := st.Pipelines[0]; got.LastProcessingResult != noRecordsProcessed || got.LastProcessingTime != nil || got.LastError != nil || len(got.Shards) != 0 {
		t.Errorf("an idle pipeline = %+v, want %q and no shards", got, noRecordsProcessed)
	}

	orders.OnShardStarted("shard-b")
	orders.OnShardStarted("shard-a")
	orders.OnLeasesOwned(2)
	if got := b.status().Pipelines[0].Shards; len(got) != 2 || got[0].ShardID != "shard-a" || got[0].IteratorAgeSeconds != nil || got[0].Checkpoint != "" {
		t.Errorf("shards just started = %+v, want shard-a first, no checkpoint, age unknown (nil)", got)
	}
	orders.OnIteratorAge("shard-a", clock.now().Add(-90*time.Second))
	orders.OnIteratorAge("shard-b", time.Time{})
	orders.OnCheckpointWritten("shard-a", "4960000000000000000123")
	clock.add(10 * time.Second)
	p := b.status().Pipelines[0]
	if a := p.Shards[0]; a.Checkpoint != "4960000000000000000123" || a.IteratorAgeSeconds == nil || *a.IteratorAgeSeconds != 100 {
		t.Errorf("shard-a = %+v, want its checkpoint and an age of 100s", a)
	}
	if s := p.Shards[1]; s.IteratorAgeSeconds == nil || *s.IteratorAgeSeconds != 0 {
		t.Errorf("a caught-up shard-b = %+v, want age 0", s)
	}
	if p.Leases != 2 {
		t.Errorf("leases = %d, want 2", p.Leases)
	}

	failedAt := clock.now()
	orders.OnSinkCall("shard-a", hooks.ResultError, time.Second, errors.New(`POST http://sink/: status 500, body "boom"`))
	p = b.status().Pipelines[0]
	if p.LastProcessingResult != `PROBLEM: POST http://sink/: status 500, body "boom"` || p.LastError == nil ||
		p.LastError.ShardID != "shard-a" || !p.LastError.Time.Equal(failedAt) {
		t.Errorf("after a failed call: result %q, last error %+v; want PROBLEM with the error, its shard and time", p.LastProcessingResult, p.LastError)
	}
	clock.add(time.Second)
	orders.OnSinkCall("shard-a", hooks.ResultOK, time.Second, nil)
	orders.OnPipelinePaused(true)
	orders.OnShardStopped("shard-b", false)
	p = b.status().Pipelines[0]
	if p.LastProcessingResult != "OK" || !p.LastProcessingTime.Equal(clock.now()) || p.LastError == nil || !p.Paused || len(p.Shards) != 1 {
		t.Errorf("after a good call, a pause and a shard stopped = %+v; want OK, the last error kept, paused, one shard", p)
	}

	audit.OnSinkCall("s", hooks.ResultError, time.Second, errors.New(strings.Repeat("x", 5000)))
	if e := b.status().Pipelines[1].LastError.Error; len(e) > maxErrorText+3 {
		t.Errorf("a 5000-byte error is kept as %d bytes, want at most %d", len(e), maxErrorText+3)
	}

	doc, err := json.Marshal(Status{Pipelines: []PipelineStatus{{Shards: []ShardStatus{{ShardID: "s"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"iterator_age_seconds":null`, `"last_error":null`, `"paused":false`, `"checkpoint":""`, `"last_processing_result"`} {
		if !strings.Contains(string(doc), key) {
			t.Errorf("status JSON %s lacks %s", doc, key)
		}
	}
}
