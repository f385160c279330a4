// Package pipeline runs one configured pipeline: it discovers the stream's shards (following the
// table's current stream), creates their leases (the first run's from starting_position), and runs a
// shard worker for each lease its checkpoint.Coordinator grants it (parents before children), which
// reads the shard, dispatches its records to the sink through the lease's fence, and checkpoints. The
// coordinator decides which leases this worker holds, shared fairly with the other replicas; the
// pipeline starts, drains and stops shard workers as it says. On stop it drains, checkpoints and
// leaves the leases to the others.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/dispatch"
	"github.com/poller-dev/poller/pkg/failure"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/membudget"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/pace"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
	"github.com/poller-dev/poller/pkg/wait"
)

// StreamsAPI is the part of the DynamoDB Streams API a pipeline uses (describing the stream and
// reading its shards); *dynamodbstreams.Client
// satisfies it.
type StreamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// LeaseStore is the part of the lease table a pipeline uses: the coordinator's, plus creating and
// deleting leases as shards come and go, and the first run's decision. *checkpoint.Store satisfies it.
type LeaseStore interface {
	checkpoint.LeaseTable
	Create(ctx context.Context, l checkpoint.Lease) (bool, error)
	Delete(ctx context.Context, l checkpoint.Lease) (bool, error)
	Decide(ctx context.Context, d checkpoint.Decision) (checkpoint.Decision, bool, error)
	TakeDecision(ctx context.Context, d checkpoint.Decision, owner string) (checkpoint.Decision, bool, error)
	RenewDecision(ctx context.Context, d checkpoint.Decision) (checkpoint.Decision, bool, error)
	DecisionDone(ctx context.Context, d checkpoint.Decision) (checkpoint.Decision, bool, error)
	Control(ctx context.Context, pipeline string) (checkpoint.Control, error)
}

// Pipeline is one running pipeline. Fields are set by New and immutable after Run starts.
type Pipeline struct {
	Name     string
	Config   config.Pipeline
	Streams  StreamsAPI
	Tables   TablesAPI
	Store    LeaseStore
	Sink     sinks.Sink
	Filter   dispatch.Matcher // nil delivers everything
	WorkerID string
	// LeaseDuration and RenewInterval come from the leases config.
	LeaseDuration time.Duration
	RenewInterval time.Duration
	// RefreshInterval is how often the whole shard list is described again, at least (longer for
	// streams of over 1,000 shards: refreshEvery; children of a finished shard are looked up at once
	// regardless).
	RefreshInterval time.Duration
	Log             *zap.Logger

	hooks         *hooks.Set      // every observer of the pipeline (metrics, readiness), checked once
	policy        *failure.Policy // unfenced; each shard worker uses shardPolicy
	maxEventBytes int
	memory        *membudget.Budget // the process's, shared with the other pipelines
	shardMemory   int64             // each shard's cap within memory
	fleet         *checkpoint.Fleet // the process's, shared with the other pipelines
	pace          *pace.Governor    // the process's, shared with the other pipelines; may be nil
}

// Deps are what a pipeline needs from outside.
type Deps struct {
	// Streams reads the stream (required); Tables finds a table's stream and key schema (required
	// when the config names a table rather than a stream ARN; without it, parallelization_factor
	// keeps every key in one lane).
	Streams StreamsAPI
	Tables  TablesAPI
	// Store is the lease table shared with the other replicas (required): checkpoint.New.
	Store LeaseStore
	// Sink receives the batches (required). OnFailure receives reports of discarded batches; nil
	// means they are only logged and counted.
	Sink      sinks.Sink
	OnFailure onfailure.Destination
	// Filter keeps the records it matches (a filter.Set); nil delivers every record.
	Filter dispatch.Matcher
	// WorkerID names this replica in the lease table; unique among the replicas.
	WorkerID string
	// LeaseDuration and RenewInterval are the leases config: how long a lease lives without
	// renewal, and how often this worker renews its leases and balances.
	LeaseDuration time.Duration
	RenewInterval time.Duration
	// Log is scoped to the pipeline by New; nil logs nothing.
	Log *zap.Logger
	// Hooks are told what the pipeline does (see package hooks): metrics.Metrics.Pipeline for the
	// Prometheus metrics, the service's readiness (hooks.HookLeaseRound), a test's observer.
	Hooks []hooks.Hook
	// Memory is the process-wide byte budget every shard of every pipeline reads within, and
	// ShardMemory each shard's cap in it; nil or 0: a budget of the config's defaults, for this
	// pipeline alone.
	Memory      *membudget.Budget
	ShardMemory int64
	// Fleet is the process's lease view shared by all its pipelines, so that the fair share is one
	// over all of them (checkpoint.Fleet); nil: this pipeline's alone.
	Fleet *checkpoint.Fleet
	// Pace is the process's reading pace, shared by all its pipelines: told how each renewal round
	// went, it stretches the readers' waits while rounds fall behind (see package pace); nil: the
	// configured cadence always.
	Pace *pace.Governor
}

// lambdaMaxEventBytes is Lambda's synchronous invocation payload limit, the default event size cap.
const lambdaMaxEventBytes = 6 * 1024 * 1024

// New builds a pipeline from its config.
func New(cfg config.Pipeline, deps Deps) (*Pipeline, error) {
	if deps.Streams == nil || deps.Store == nil || deps.Sink == nil {
		return nil, fmt.Errorf("pipeline %s: streams client, lease store and sink are required", cfg.Name)
	}
	if deps.Tables == nil && cfg.Source.StreamARN == "" {
		return nil, fmt.Errorf("pipeline %s: source.table %q needs a DynamoDB client (Deps.Tables) to find its stream", cfg.Name, cfg.Source.Table)
	}
	log := deps.Log
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("pipeline", cfg.Name))
	p := &Pipeline{
		Name: cfg.Name, Config: cfg, Streams: deps.Streams, Tables: deps.Tables, Store: deps.Store,
		Sink: deps.Sink, Filter: deps.Filter, WorkerID: deps.WorkerID,
		LeaseDuration: deps.LeaseDuration, RenewInterval: deps.RenewInterval, RefreshInterval: 10 * time.Second,
		Log: log, maxEventBytes: lambdaMaxEventBytes, hooks: hooks.New(deps.Hooks...),
	}
	p.memory, p.shardMemory, p.fleet, p.pace = deps.Memory, deps.ShardMemory, deps.Fleet, deps.Pace
	if def := config.Default().Memory; p.memory == nil || p.shardMemory <= 0 {
		p.memory, p.shardMemory = membudget.New(int64(def.MaxBufferedBytes)), int64(def.MaxBufferedBytesPerShard)
	}
	if l, ok := deps.Sink.(interface{ MaxEventBytes() int }); ok && l.MaxEventBytes() > 0 {
		p.maxEventBytes = l.MaxEventBytes()
	}
	p.policy = p.newPolicy(deps)
	return p, nil
}

// state is the loop's view of the stream and its leases. Owned by Run's goroutine; the channels and
// wg are shared with the shard workers' goroutines.
type state struct {
	stream    shards.Stream
	described time.Time
	// all are the pipeline's leases as last listed; leases those of the stream being read, by shard.
	all    []checkpoint.Lease
	leases map[string]checkpoint.Lease
	// decided: the fleet's first-run decision is done (see decide); until then this worker creates
	// no lease unless it is the decider. decision is the decision item as last seen while waiting,
	// and decisionSeen when it was first seen so (monotonic), to take over from a stalled decider.
	decided      bool
	decision     checkpoint.Decision
	decisionSeen time.Time
	// coord holds this worker's leases and says which shards to start, drain and stop.
	coord   *checkpoint.Coordinator
	running map[string]*shardWorker
	// hashKey is the table's partition key attribute, "" until learnt (see learnHashKey).
	hashKey string
	// paused is the control item's switch as last read; controlRead says it was read once.
	paused, controlRead bool

	finished chan string   // a shard worker read its shard to the end: start its children at once
	ended    chan struct{} // a shard worker ended: reap it (and hand its lease over) at once
	stop     <-chan struct{}
	wg       sync.WaitGroup
	// stopBeats ends the coordinator's heartbeats (StartHeartbeats), before it leaves.
	stopBeats func()
}

// Run runs the pipeline until stop is closed (graceful: batches in flight finish and are
// checkpointed, leases are released, and Run returns nil) or ctx is canceled (at once).
func (p *Pipeline) Run(ctx context.Context, stop <-chan struct{}) error {
	arn, err := p.streamARN(ctx, stop)
	if errors.Is(err, wait.ErrStopped) {
		return nil
	}
	if err != nil {
		return err
	}
	st := &state{
		stream:  shards.Stream{ARN: arn},
		leases:  map[string]checkpoint.Lease{},
		running: map[string]*shardWorker{},
		coord: checkpoint.NewCoordinator(checkpoint.CoordinatorConfig{
			Store: p.Store, Pipeline: p.Name, WorkerID: p.WorkerID,
			LeaseDuration: p.LeaseDuration, RenewInterval: p.RenewInterval, Hooks: p.hooks, Log: p.Log,
			Fleet: p.fleet, Pace: p.pace,
		}),
		finished: make(chan string, 16),
		ended:    make(chan struct{}, 1),
		stop:     stop,
	}
	defer st.wg.Wait()
	// The heartbeat runs apart from the rounds, so that a long round (thousands of takes, the first
	// run's lease creation) never makes this worker look gone.
	st.stopBeats = st.coord.StartHeartbeats(ctx)
	defer st.stopBeats()

	syncNow := true
	tick := time.NewTicker(p.RenewInterval)
	defer tick.Stop()
	// expiry fires when a lease may have expired, between ticks: a dead owner's leases are taken as
	// soon as they may be, not up to a renew_interval later.
	expiry := wait.NewTimer()
	defer expiry.Stop()
	for {
		if syncNow {
			if err := p.sync(ctx, st); err != nil {
				p.Log.Warn("sync with the lease table failed; retrying at the next tick", zap.Error(err))
			}
			if at := st.coord.NextExpiry(); !at.IsZero() {
				expiry.Reset(time.Until(at))
			} else {
				expiry.Stop()
			}
		}
		syncNow = true
		select {
		case <-tick.C:
		case <-expiry.C:
		case id := <-st.finished:
			p.startChildren(ctx, st, id)
		case <-st.ended:
			p.reap(ctx, st)
			syncNow = false
		case <-stop:
			p.shutdown(ctx, st)
			return nil
		case <-ctx.Done():
			p.stopAll(st, true)
			return ctx.Err()
		}
	}
}

// sync is one round (see checkpoint.Coordinator): reap ended workers (handing drained leases over),
// renew the leases held and stop the shards whose lease was lost, list the lease table, refresh the
// shard list when due (creating leases for new shards and deleting finished leases past retention),
// and balance: drain the shards asked for, start the leases taken.
//
// The round's long parts with thousands of shards, the renewals and the stream's listing, end at once
// when stop is closed, so that SIGTERM does not wait for them: the shutdown renews the leases itself
// (RenewUntil), and a listing cut short is taken again at the next start.
func (p *Pipeline) sync(ctx context.Context, st *state) error {
	p.reap(ctx, st)
	sctx, cancel := untilStop(ctx, st.stop)
	defer cancel()
	p.stopLost(st, st.coord.Renew(sctx))
	listing, err := st.coord.List(ctx)
	if err != nil {
		return err
	}
	p.control(ctx, st)
	st.all, st.leases = listing.Leases, streamLeases(listing.Leases, st.stream.ARN)
	if st.described.IsZero() || !st.decided || listing.At.Sub(st.described) >= jitter(refreshEvery(p.RefreshInterval, len(st.stream.Shards))) {
		p.refresh(sctx, st, listing.Leases, listing.At)
	}
	if !st.controlRead {
		return errors.New("the pipeline's control item was never read: not starting any shard, it may be paused")
	}
	moves := st.coord.Balance(ctx, checkpoint.Scope{Leases: slices.Collect(maps.Values(st.leases)), Ready: st.ready()})
	for _, id := range moves.Drain {
		if w, ok := st.running[id]; ok && !wait.Closed(w.stop) {
			close(w.stop)
		}
	}
	for _, g := range moves.Start {
		p.start(ctx, st, g)
	}
	return nil
}

// untilStop returns a context of ctx that also ends when stop is closed; call cancel when done with it.
func untilStop(ctx context.Context, stop <-chan struct{}) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-sctx.Done():
		}
	}()
	return sctx, cancel
}

// start runs a shard worker for a lease just granted.
func (p *Pipeline) start(ctx context.Context, st *state, g checkpoint.Grant) {
	l := g.Held.Lease()
	wctx, cancel := context.WithCancel(ctx)
	w := &shardWorker{id: l.ShardID, held: g.Held, stop: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	pol := p.shardPolicy(&fence{lease: g.Fence, shardID: w.id, cancel: cancel, now: time.Now})
	w.deliver, w.final = pol.Deliver, p.finalCall(w.id, pol.Sink)
	st.running[w.id] = w
	start := startOf(l)
	p.Log.Info("reading shard", zap.String("shard_id", w.id), zap.Stringer("from", start.Pos), zap.Bool("resolving_latest", start.Resolve))
	stream := st.stream
	stream.HashKey = st.hashKey
	if stream.HashKey == "" && p.Config.ParallelizationFactor > 1 {
		p.Log.Warn("the table's key schema is not known yet: this shard is read with one lane (every key in order) until its worker restarts",
			zap.String("shard_id", w.id))
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer cancel()
		p.runShard(wctx, w, start, l.Checkpoint, stream)
		if w.finished {
			select {
			case st.finished <- w.id:
			case <-st.stop: // the loop is shutting down and no longer starts children
			case <-ctx.Done():
			}
		}
		select {
		case st.ended <- struct{}{}:
		default: // the loop has a wake-up pending already
		}
	}()
}

// reap forgets workers that ended, and tells the coordinator, which hands over the leases drained for
// a handoff; a worker that failed is started again by the next Balance if its lease is still ours.
func (p *Pipeline) reap(ctx context.Context, st *state) {
	var ended []checkpoint.Ended
	for id, w := range st.running {
		select {
		case <-w.done:
		default:
			continue
		}
		delete(st.running, id)
		if w.err != nil && !errors.Is(w.err, context.Canceled) {
			p.Log.Warn("shard worker stopped", zap.String("shard_id", id), zap.Error(w.err))
		}
		ended = append(ended, endOf(w))
	}
	st.coord.Ended(ctx, ended)
}

// endOf is how an ended worker left its shard. Read after w.done is closed.
func endOf(w *shardWorker) checkpoint.Ended {
	iter, _ := w.idleIter.Load().(string)
	return checkpoint.Ended{ShardID: w.id, Finished: w.finished, IdleIterator: iter}
}

// stopLost stops the workers of leases lost to another worker at once (cancel, not drain) and waits
// for them.
func (p *Pipeline) stopLost(st *state, lost []string) {
	for _, id := range lost {
		if w, ok := st.running[id]; ok { // a lease kept while paused has no worker
			w.cancel()
		}
	}
	for _, id := range lost {
		if w, ok := st.running[id]; ok {
			<-w.done
			delete(st.running, id)
		}
	}
}

// shutdown stops every worker gracefully while the coordinator keeps their leases renewed, then
// leaves: the leases are released (or handed over when asked for) and this worker's heartbeat item
// removed, so that the other workers take over at once.
func (p *Pipeline) shutdown(ctx context.Context, st *state) {
	// Keep renewing while the batches in flight finish: a slow sink must not let the leases expire
	// under the drain (another worker would then deliver the same batches again).
	drained := make(chan struct{})
	var renewing sync.WaitGroup
	renewing.Go(func() { st.coord.RenewUntil(ctx, drained) })
	p.stopAll(st, false)
	close(drained)
	renewing.Wait()
	ended := make([]checkpoint.Ended, 0, len(st.running))
	for _, w := range st.running {
		ended = append(ended, endOf(w))
	}
	st.stopBeats()
	st.coord.Leave(ctx, ended)
	p.Log.Info("pipeline stopped; leases released", zap.Int("leases", len(st.running)))
	st.running = map[string]*shardWorker{}
}

// stopAll stops every worker in parallel and waits: gracefully (close stop) or at once (cancel).
func (p *Pipeline) stopAll(st *state, now bool) {
	for _, w := range st.running {
		if now {
			w.cancel()
		} else if !wait.Closed(w.stop) { // a draining or paused worker's stop is closed already
			close(w.stop)
		}
	}
	for _, w := range st.running {
		<-w.done
	}
}

// jitter spreads d by ±10% so that replicas do not describe the stream in step.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}
