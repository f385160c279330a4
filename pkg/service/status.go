package service

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/poller-dev/poller/pkg/hooks"
)

// Status is this process's view of its pipelines, as GET /status serves it (README, "/status"):
// what it is doing right now, not what the lease table says (poller status reads that).
type Status struct {
	WorkerID  string           `json:"worker_id"`
	Version   string           `json:"version"`
	Pipelines []PipelineStatus `json:"pipelines"`
}

// PipelineStatus is one pipeline in Status.
type PipelineStatus struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused"`
	// Leases is how many shard leases this process holds for the pipeline.
	Leases int `json:"leases"`
	// LastProcessingResult is Lambda's LastProcessingResult: "No records processed" before the
	// first sink call, "OK" after a call that succeeded, "PROBLEM: " and the error after one that
	// failed (or that the sink answered with a partial batch failure).
	LastProcessingResult string `json:"last_processing_result"`
	// LastProcessingTime is when that call ended; null before the first.
	LastProcessingTime *time.Time `json:"last_processing_time"`
	// LastError is the last sink call that failed, kept after later calls succeed; null if none did.
	LastError *SinkError `json:"last_error"`
	// Shards are the shards this process reads, by shard ID.
	Shards []ShardStatus `json:"shards"`
}

// SinkError is a failed sink call. Error is the sink's error text, which the sinks redact (no
// header values, secrets or query strings).
type SinkError struct {
	Time    time.Time `json:"time"`
	ShardID string    `json:"shard_id"`
	Error   string    `json:"error"`
}

// ShardStatus is one shard this process reads.
type ShardStatus struct {
	ShardID string `json:"shard_id"`
	// Checkpoint is the last checkpoint this process wrote for the shard; "" until it wrote one.
	Checkpoint string `json:"checkpoint"`
	// IteratorAgeSeconds is the age of the shard's oldest record not yet done (0: caught up); null
	// until the shard's first page.
	IteratorAgeSeconds *float64 `json:"iterator_age_seconds"`
}

// maxErrorText bounds an error text in /status.
const maxErrorText = 1024

// noRecordsProcessed is Lambda's LastProcessingResult before any invocation.
const noRecordsProcessed = "No records processed"

// statusBoard keeps Status up to date from the pipelines' hooks. Safe for concurrent use.
type statusBoard struct {
	workerID, version string
	now               func() time.Time

	mu        sync.Mutex
	pipelines []*pipelineBoard // in config order
}

// pipelineBoard is one pipeline's part of the board; its fields are guarded by the board's mu.
type pipelineBoard struct {
	b      *statusBoard
	s      PipelineStatus
	shards map[string]*shardBoard
}

type shardBoard struct {
	checkpoint string
	since      *time.Time // the iterator age's creation time; zero: caught up; nil: unknown
}

var _ interface {
	hooks.HookShardStarted
	hooks.HookShardStopped
	hooks.HookIteratorAge
	hooks.HookCheckpointWritten
	hooks.HookSinkCall
	hooks.HookPipelinePaused
	hooks.HookLeasesOwned
} = (*pipelineBoard)(nil)

func newStatusBoard(workerID, version string, now func() time.Time) *statusBoard {
	return &statusBoard{workerID: workerID, version: version, now: now}
}

// pipeline adds a pipeline to the board and returns its hooks.
func (b *statusBoard) pipeline(name string) *pipelineBoard {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := &pipelineBoard{b: b, s: PipelineStatus{Name: name, LastProcessingResult: noRecordsProcessed}, shards: map[string]*shardBoard{}}
	b.pipelines = append(b.pipelines, p)
	return p
}

// status returns a copy of the board, iterator ages taken now.
func (b *statusBoard) status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	st := Status{WorkerID: b.workerID, Version: b.version, Pipelines: make([]PipelineStatus, 0, len(b.pipelines))}
	for _, p := range b.pipelines {
		ps := p.s
		if ps.LastError != nil {
			e := *ps.LastError
			ps.LastError = &e
		}
		ps.Shards = make([]ShardStatus, 0, len(p.shards))
		for _, id := range slices.Sorted(maps.Keys(p.shards)) {
			ps.Shards = append(ps.Shards, p.shards[id].status(id, now))
		}
		st.Pipelines = append(st.Pipelines, ps)
	}
	return st
}

func (s *shardBoard) status(id string, now time.Time) ShardStatus {
	out := ShardStatus{ShardID: id, Checkpoint: s.checkpoint}
	if s.since != nil {
		age := 0.0
		if !s.since.IsZero() {
			age = max(0, now.Sub(*s.since).Seconds())
		}
		out.IteratorAgeSeconds = &age
	}
	return out
}

// locked runs f with the board locked.
func (p *pipelineBoard) locked(f func()) {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	f()
}

func (p *pipelineBoard) OnShardStarted(shardID string) {
	p.locked(func() { p.shards[shardID] = &shardBoard{} })
}

func (p *pipelineBoard) OnShardStopped(shardID string, _ bool) {
	p.locked(func() { delete(p.shards, shardID) })
}

func (p *pipelineBoard) OnIteratorAge(shardID string, since time.Time) {
	p.locked(func() {
		if s := p.shards[shardID]; s != nil {
			s.since = &since
		}
	})
}

func (p *pipelineBoard) OnCheckpointWritten(shardID, seq string) {
	p.locked(func() {
		if s := p.shards[shardID]; s != nil {
			s.checkpoint = seq
		}
	})
}

func (p *pipelineBoard) OnSinkCall(shardID, result string, _ time.Duration, err error) {
	now := p.b.now()
	p.locked(func() {
		p.s.LastProcessingTime = &now
		if result == hooks.ResultOK || err == nil {
			p.s.LastProcessingResult = "OK"
			return
		}
		text := err.Error()
		if len(text) > maxErrorText {
			text = text[:maxErrorText] + "..."
		}
		p.s.LastProcessingResult = "PROBLEM: " + text
		p.s.LastError = &SinkError{Time: now, ShardID: shardID, Error: text}
	})
}

func (p *pipelineBoard) OnPipelinePaused(paused bool) {
	p.locked(func() { p.s.Paused = paused })
}

func (p *pipelineBoard) OnLeasesOwned(n int) {
	p.locked(func() { p.s.Leases = n })
}
